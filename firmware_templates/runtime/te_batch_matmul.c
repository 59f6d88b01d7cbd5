/*
 * te_batch_matmul.c - int8 and int16 BATCH_MATMUL, as TensorFlow Lite Micro
 * computes it.
 *
 * Where the arithmetic comes from: TFLM's BATCH_MATMUL
 * (micro/kernels/batch_matmul.cc, EvalInt8 / EvalInt16), which transposes
 * the operands into a row-major LHS x column-major RHS layout and calls
 * reference_ops::BatchMatMul (kernels/internal/reference/batch_matmul.h).
 * Per output element, the exact sum over the depth of
 * (lhs - lhs_zp) * (rhs - rhs_zp), then MultiplyByQuantizedMultiplier with
 * the Q31 form (QuantizeMultiplier) of
 * double(float(lhs_scale * rhs_scale)) / double(output_scale)
 * (GetQuantizedConvolutionMultipler), + output zero point, clamped to the
 * output type:
 *   - int8: int32 accumulator, the int32 MultiplyByQuantizedMultiplier with
 *     double rounding (SaturatingRoundingDoublingHighMul, then
 *     RoundingDivideByPOT) -- te_mul_by_quantized_mult;
 *   - int16 (zero points 0, TFLM's rule): int64 accumulator, and the int64
 *     MultiplyByQuantizedMultiplier, which rounds the multiplier to 16 bits
 *     and then rounds once: (acc * round(mult / 2^16) + 2^(14 - shift))
 *     >> (15 - shift).
 * TFLM's re-layouts (transposes, and folding the LHS batch into its rows
 * when the RHS's third-last dim is 1) only move operands around; the sums
 * are the same. Batch broadcasting: a batch dim of size 1 does not advance,
 * expressed here as a zero stride.
 * Our own implementation of that published behaviour.
 */
#include "te_batch_matmul.h"

#include "te_common.h"

/* Dot product over the depth with both operands' zero points applied (int8). */
static int32_t dot_strided(const int8_t *a, int32_t a_stride, int32_t a_offset, const int8_t *b,
                           int32_t b_stride, int32_t b_offset, int32_t depth)
{
    int32_t acc = 0;
    int32_t k;
    if (a_stride == 1 && b_stride == 1) {
        for (k = 0; k < depth; ++k) {
            acc += ((int32_t)a[k] + a_offset) * ((int32_t)b[k] + b_offset);
        }
    } else {
        for (k = 0; k < depth; ++k) {
            acc += ((int32_t)*a + a_offset) * ((int32_t)*b + b_offset);
            a += a_stride;
            b += b_stride;
        }
    }
    return acc;
}

void te_batch_matmul_s8(const te_batch_matmul_params_t *p, const int8_t *lhs, const int8_t *rhs,
                        int8_t *output)
{
    int32_t i0, i1, i2, i, j;
    int8_t *out = output;
    for (i0 = 0; i0 < p->b0; ++i0) {
        for (i1 = 0; i1 < p->b1; ++i1) {
            for (i2 = 0; i2 < p->b2; ++i2) {
                const int8_t *l = lhs + i0 * p->lhs_b0 + i1 * p->lhs_b1 + i2 * p->lhs_b2;
                const int8_t *r = rhs + i0 * p->rhs_b0 + i1 * p->rhs_b1 + i2 * p->rhs_b2;
                for (i = 0; i < p->rows; ++i) {
                    const int8_t *l_row = l + i * p->lhs_row;
                    for (j = 0; j < p->cols; ++j) {
                        const int32_t acc = dot_strided(l_row, p->lhs_depth, p->lhs_offset,
                                                        r + j * p->rhs_col, p->rhs_depth,
                                                        p->rhs_offset, p->depth);
                        int32_t v = te_mul_by_quantized_mult(acc, p->mult, p->shift);
                        v += p->output_offset;
                        *out++ = (int8_t)te_clamp_s32(v, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

/* tflite::MultiplyByQuantizedMultiplier(int64_t x, ...), the default
 * (double rounding) build's: the Q31 multiplier reduced to Q15 with rounding,
 * one rounding right shift by 15 - shift (shift in -31..7, |x| < 2^47: the
 * host checks both). The int32 result keeps the low bits, as TFLM's
 * conversion does. */
static int32_t mul_by_quantized_mult_s64(int64_t x, int32_t mult, int32_t shift)
{
    const int64_t reduced = mult < 0x7FFF0000 ? (mult + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    const int64_t v = x * reduced + ((int64_t)1 << (total_shift - 1));
    return (int32_t)(uint32_t)(uint64_t)(v >> total_shift);
}

/* Dot product over the depth, int16 operands (zero points 0), int64 sum. */
static int64_t dot_strided_s16(const int16_t *a, int32_t a_stride, const int16_t *b, int32_t b_stride,
                               int32_t depth)
{
    int64_t acc = 0;
    int32_t k;
    for (k = 0; k < depth; ++k) {
        acc += (int32_t)*a * (int32_t)*b;
        a += a_stride;
        b += b_stride;
    }
    return acc;
}

void te_batch_matmul_s16(const te_batch_matmul_params_t *p, const int16_t *lhs, const int16_t *rhs,
                         int16_t *output)
{
    int32_t i0, i1, i2, i, j;
    int16_t *out = output;
    for (i0 = 0; i0 < p->b0; ++i0) {
        for (i1 = 0; i1 < p->b1; ++i1) {
            for (i2 = 0; i2 < p->b2; ++i2) {
                const int16_t *l = lhs + i0 * p->lhs_b0 + i1 * p->lhs_b1 + i2 * p->lhs_b2;
                const int16_t *r = rhs + i0 * p->rhs_b0 + i1 * p->rhs_b1 + i2 * p->rhs_b2;
                for (i = 0; i < p->rows; ++i) {
                    const int16_t *l_row = l + i * p->lhs_row;
                    for (j = 0; j < p->cols; ++j) {
                        const int64_t acc = dot_strided_s16(l_row, p->lhs_depth, r + j * p->rhs_col,
                                                            p->rhs_depth, p->depth);
                        const int32_t v = mul_by_quantized_mult_s64(acc, p->mult, p->shift);
                        *out++ = (int16_t)te_clamp_s32(v, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}
