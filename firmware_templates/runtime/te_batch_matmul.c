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

/* One int8 output element: the dot product over the depth with both
 * operands' zero points applied, requantized (int32 MBQM), clamped. */
static int8_t element_s8(const te_batch_matmul_params_t *p, const int8_t *a, const int8_t *b)
{
    int32_t acc = 0;
    int32_t k;
    for (k = 0; k < p->depth; ++k) {
        acc += ((int32_t)*a + p->lhs_offset) * ((int32_t)*b + p->rhs_offset);
        a += p->lhs_depth;
        b += p->rhs_depth;
    }
    acc = te_mul_by_quantized_mult(acc, p->mult, p->shift) + p->output_offset;
    return (int8_t)te_clamp_s32(acc, p->act_min, p->act_max);
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

/* One int16 output element (zero points 0): int64 dot product, int64 MBQM. */
static int16_t element_s16(const te_batch_matmul_params_t *p, const int16_t *a, const int16_t *b)
{
    int64_t acc = 0;
    int32_t k;
    for (k = 0; k < p->depth; ++k) {
        acc += (int32_t)*a * (int32_t)*b;
        a += p->lhs_depth;
        b += p->rhs_depth;
    }
    return (int16_t)te_clamp_s32(mul_by_quantized_mult_s64(acc, p->mult, p->shift), p->act_min, p->act_max);
}

/* The output in order [b0][b1][b2][rows][cols]: element offsets into both
 * operands (strides in elements, 0 where a batch dim broadcasts). */
static void batch_matmul(const te_batch_matmul_params_t *p, const void *lhs, const void *rhs, void *output,
                         int32_t is_s16)
{
    int32_t i0, i1, i2, i, j;
    int32_t n = 0;
    for (i0 = 0; i0 < p->b0; ++i0) {
        for (i1 = 0; i1 < p->b1; ++i1) {
            for (i2 = 0; i2 < p->b2; ++i2) {
                const int32_t l = i0 * p->lhs_b0 + i1 * p->lhs_b1 + i2 * p->lhs_b2;
                const int32_t r = i0 * p->rhs_b0 + i1 * p->rhs_b1 + i2 * p->rhs_b2;
                for (i = 0; i < p->rows; ++i) {
                    for (j = 0; j < p->cols; ++j, ++n) {
                        const int32_t a = l + i * p->lhs_row;
                        const int32_t b = r + j * p->rhs_col;
                        if (is_s16) {
                            ((int16_t *)output)[n] =
                                element_s16(p, (const int16_t *)lhs + a, (const int16_t *)rhs + b);
                        } else {
                            ((int8_t *)output)[n] =
                                element_s8(p, (const int8_t *)lhs + a, (const int8_t *)rhs + b);
                        }
                    }
                }
            }
        }
    }
}

void te_batch_matmul_s8(const te_batch_matmul_params_t *p, const int8_t *lhs, const int8_t *rhs,
                        int8_t *output)
{
    batch_matmul(p, lhs, rhs, output, 0);
}

void te_batch_matmul_s16(const te_batch_matmul_params_t *p, const int16_t *lhs, const int16_t *rhs,
                         int16_t *output)
{
    batch_matmul(p, lhs, rhs, output, 1);
}
