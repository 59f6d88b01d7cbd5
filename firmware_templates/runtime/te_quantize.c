/*
 * te_quantize.c - QUANTIZE / DEQUANTIZE.
 *
 * What TensorFlow Lite Micro computes (micro/kernels/quantize_common.cc ->
 * reference_ops::AffineQuantize and ::Requantize; micro/kernels/
 * dequantize_common.cc -> reference_ops::Dequantize), the same steps for
 * every element:
 *
 * float32 -> int8 / int16 (AffineQuantize, kernels/internal/reference/quantize.h):
 *     q = static_cast<int32_t>(std::round(x / static_cast<float>(scale))) + zp
 *     clamped to the output type.
 *   The division is a float32 division, std::round of a float rounds half
 *   away from zero. The float -> int32 conversion of a NaN, an infinity or a
 *   value outside the int32 range is undefined in C++; the pinned TFLM wheel
 *   (x86-64, cvttss2si) gives INT32_MIN there, and the zero point is then
 *   added with int32 wrap-around (so +inf with a negative zero point gives
 *   127, with a zero point >= 0 gives -128). We reproduce that, so validation
 *   against the oracle is exact for every float input; TFLM built for Arm
 *   (VCVT saturates, NaN -> 0) would give other bytes for those inputs only.
 *
 * int8/uint8/int16 -> int8/uint8/int16 (Requantize, kernels/internal/reference/requantize.h):
 *     clamp(MultiplyByQuantizedMultiplier(q - in_zp, mult, shift) + out_zp)
 *   clamped to the output type. Its fast path (equal scales, zero points 128
 *   apart, int8 <-> uint8: q ^ 0x80) gives the same bytes as the formula.
 *
 * int8/uint8/int16 -> float32 (Dequantize, kernels/internal/reference/dequantize.h):
 *     y = static_cast<float>(double(scale) * (q - zp))
 *   The double product is exact (a 24-bit mantissa times an integer of at most
 *   17 bits), so
 *   rounding it to float gives the same bits as one float32 multiply of
 *   (float)(q - zp) by the float scale -- which is what we compute (IEEE
 *   multiplication is correctly rounded, also in libgcc's soft-float on
 *   cores without an FPU, subnormal results included).
 *
 * Double arithmetic is never needed on the device.
 */
#include "te_quantize.h"

#include "te_common.h"

/* static_cast<int32_t>(std::round(p)) as the oracle computes it: round half
 * away from zero; NaN, infinities and values outside [-2^31, 2^31) give
 * INT32_MIN (x86's "integer indefinite"). */
static int32_t te_round_f32_to_s32(float p)
{
    int32_t q;
    float d;
    if (!(p >= -2147483648.0f && p < 2147483648.0f)) {
        return INT32_MIN;
    }
    q = (int32_t)p;   /* truncates toward zero */
    d = p - (float)q; /* exact: |p| < 2^24 makes (float)q exact and the difference < 1 */
    if (d >= 0.5f) {
        q += 1;
    } else if (d <= -0.5f) {
        q -= 1;
    }
    return q;
}

/* One float32 input: x / scale rounded, plus the zero point (wrapping in int32
 * like the oracle's add), not yet clamped. */
static int32_t te_quantize_one(const te_quantize_params_t *p, float x)
{
    return (int32_t)((uint32_t)te_round_f32_to_s32(x / p->scale) + (uint32_t)p->zero_point);
}

/* Requantize, one element: q - in_zp scaled by mult * 2^shift / 2^31, plus
 * out_zp (not yet clamped). */
static int32_t te_requant_one(const te_requantize_params_t *p, int32_t q)
{
    return te_mul_by_quantized_mult(q - p->in_zp, p->mult, p->shift) + p->out_zp;
}

/* The kernels differ only in their element types and output range, so each
 * is one instance of a loop below (C has no templates). */

/* float32 -> TOUT: AffineQuantize, clamped to [LO, HI]. */
#define TE_QUANTIZE_F32(name, TOUT, LO, HI)                                          \
    void name(const te_quantize_params_t *p, const float *in, TOUT *out)             \
    {                                                                                \
        int32_t i;                                                                   \
        for (i = 0; i < p->size; ++i) {                                              \
            out[i] = (TOUT)te_clamp_s32(te_quantize_one(p, in[i]), (LO), (HI));      \
        }                                                                            \
    }

/* TIN -> float32: Dequantize, one float32 multiply. */
#define TE_DEQUANTIZE_F32(name, TIN)                                                 \
    void name(const te_dequantize_params_t *p, const TIN *in, float *out)            \
    {                                                                                \
        int32_t i;                                                                   \
        for (i = 0; i < p->size; ++i) {                                              \
            out[i] = (float)((int32_t)in[i] - p->zero_point) * p->scale;             \
        }                                                                            \
    }

/* TIN -> TOUT: Requantize, clamped to [LO, HI]. */
#define TE_REQUANTIZE(name, TIN, TOUT, LO, HI)                                       \
    void name(const te_requantize_params_t *p, const TIN *in, TOUT *out)             \
    {                                                                                \
        int32_t i;                                                                   \
        for (i = 0; i < p->size; ++i) {                                              \
            out[i] = (TOUT)te_clamp_s32(te_requant_one(p, in[i]), (LO), (HI));       \
        }                                                                            \
    }

TE_QUANTIZE_F32(te_quantize_f32_s8, int8_t, -128, 127)
TE_QUANTIZE_F32(te_quantize_f32_s16, int16_t, -32768, 32767)

TE_DEQUANTIZE_F32(te_dequantize_s8_f32, int8_t)
TE_DEQUANTIZE_F32(te_dequantize_u8_f32, uint8_t)
TE_DEQUANTIZE_F32(te_dequantize_s16_f32, int16_t)

TE_REQUANTIZE(te_requantize_s8_s8, int8_t, int8_t, -128, 127)
TE_REQUANTIZE(te_requantize_u8_s8, uint8_t, int8_t, -128, 127)
TE_REQUANTIZE(te_requantize_s8_u8, int8_t, uint8_t, 0, 255)
TE_REQUANTIZE(te_requantize_s8_s16, int8_t, int16_t, -32768, 32767)
TE_REQUANTIZE(te_requantize_s16_s8, int16_t, int8_t, -128, 127)
TE_REQUANTIZE(te_requantize_s16_s16, int16_t, int16_t, -32768, 32767)
