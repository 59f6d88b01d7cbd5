/*
 * te_common.h - fixed-point helpers shared by every tinyedge int8 kernel.
 *
 * Plain C99, header-only (static inline), no float, no malloc. Compiles for
 * the host (gcc x86-64) and for Cortex-M (arm-none-eabi-gcc).
 *
 * Where the arithmetic comes from: the TFLite int8 quantization spec and the
 * integer arithmetic of TensorFlow Lite Micro's reference kernels (the
 * oracle, see DESIGN.md), written from TFLM's public sources
 * (tensorflow/lite/kernels/internal/common.cc and third_party gemmlowp's
 * fixedpoint.h):
 *   - gemmlowp fixedpoint: SaturatingRoundingDoublingHighMul (SRDHM) and
 *     RoundingDivideByPOT (round to nearest, ties away from zero);
 *   - tflite::MultiplyByQuantizedMultiplier, the double-rounding build TFLM
 *     ships by default (TFLITE_SINGLE_ROUNDING unset): x * 2^max(shift,0),
 *     SRDHM with the Q31 multiplier, then RoundingDivideByPOT by
 *     max(-shift,0). -> te_mul_by_quantized_mult. FULLY_CONNECTED, CONV_2D
 *     and DEPTHWISE_CONV_2D requantize every output this way
 *     (tests/test_kernels_conv_fc.py pins it against the TFLM interpreter on
 *     accumulators where a single rounding, or ties broken upward as TFLite's
 *     x86 kernels do, would give another integer).
 * These are our own implementations written from the published behaviour.
 *
 * Conventions: `mult` is a Q31 multiplier in [2^30, 2^31) (or 0), `shift` is
 * the TFLite exponent: positive = left shift, negative = right shift, as
 * produced by tinyedge.quant.quantize_multiplier on the host.
 *
 * Implementation-defined C behaviour relied on (true for gcc and clang on
 * every target we build for): >> of a negative integer is arithmetic (a
 * floor division by a power of two), and converting an out-of-range unsigned
 * value to a signed type wraps.
 */
#ifndef TE_COMMON_H
#define TE_COMMON_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TE_INT8_MIN (-128)
#define TE_INT8_MAX 127

/* Inline a kernel's inner loop into each of its specialised callers (gcc/clang). */
#if defined(__GNUC__)
#define TE_ALWAYS_INLINE __attribute__((always_inline))
#else
#define TE_ALWAYS_INLINE
#endif

#define TE_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TE_MAX(a, b) ((a) > (b) ? (a) : (b))

/* gemmlowp SaturatingRoundingDoublingHighMul: a*b / 2^31 rounded to nearest
 * (gemmlowp adds a nudge of 2^30, or 1 - 2^30 when a*b < 0, and divides
 * truncating toward zero; that is exactly floor((a*b + 2^30) / 2^31), which
 * is what we compute: one SMULL, an add and a shift). The only overflow,
 * INT32_MIN * INT32_MIN, saturates to INT32_MAX. */
static inline int32_t te_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int32_t r = (int32_t)((ab + ((int64_t)1 << 30)) >> 31);
    return (a == INT32_MIN && b == INT32_MIN) ? INT32_MAX : r;
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away
 * from zero. exponent in [0, 31]. */
static inline int32_t te_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* tflite::MultiplyByQuantizedMultiplier (double rounding, TFLite's default
 * build): x * mult * 2^shift / 2^31. The left shift wraps on overflow like
 * the oracle's int32 arithmetic does in practice. */
static inline int32_t te_mul_by_quantized_mult(int32_t x, int32_t mult, int32_t shift)
{
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)x << left_shift);
    return te_rounding_divide_by_pot(te_sat_rounding_doubling_high_mul(shifted, mult), right_shift);
}

/* tflite::MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0). */
static inline int32_t te_mul_by_quantized_mult_smaller_than_one(int32_t x, int32_t mult,
                                                                int32_t shift)
{
    return te_rounding_divide_by_pot(te_sat_rounding_doubling_high_mul(x, mult), -shift);
}

/* tflite::MultiplyByQuantizedMultiplierGreaterThanOne (left_shift >= 0). */
static inline int32_t te_mul_by_quantized_mult_greater_than_one(int32_t x, int32_t mult,
                                                                int32_t left_shift)
{
    return te_sat_rounding_doubling_high_mul((int32_t)((uint32_t)x << left_shift), mult);
}

static inline int32_t te_clamp_s32(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* Saturate an int32 to int8. */
static inline int8_t te_sat_s8(int32_t x)
{
    return (int8_t)te_clamp_s32(x, TE_INT8_MIN, TE_INT8_MAX);
}

/* One output channel of the fast kernels (te_conv_fast.h, te_dw_fast.h,
 * te_fc_fast.h), computed on the host (tinyedge/ops/layout.py):
 *   out = clamp(MultiplyByQuantizedMultiplier(acc, mult, -rshift) + zp)
 * with acc = bias + the channel's sum of products (bias has the input
 * zero-point term folded in). rshift >= 1. round_zp = 2^(rshift-1) +
 * zp * 2^rshift lets a kernel do the rounding shift and add zp in one
 * (arm_dsp/te_requant.h); the host checked that it cannot overflow. */
typedef struct {
    int32_t bias;
    int32_t mult;
    int32_t rshift;
    int32_t round_zp;
} te_chan_t;

#ifdef __cplusplus
}
#endif

#endif /* TE_COMMON_H */
