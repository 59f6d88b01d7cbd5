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

/* ---- Armv7E-M DSP helpers ------------------------------------------------
 * TE_USE_DSP is 1 when the target has the DSP extension (__ARM_FEATURE_DSP,
 * e.g. Cortex-M4/M7/M33/M55), and also on the host when TE_EMULATE_DSP is
 * defined: the tests then run the kernels' DSP code paths with the portable
 * emulations below, against the oracle. TE_PORTABLE_ONLY forces 0. The
 * emulations follow the Armv7-M Architecture Reference Manual's pseudocode
 * for SXTB16, SMLAD, SMLABB and SMLATT (the accumulation wraps mod 2^32). */
#if defined(TE_PORTABLE_ONLY)
#define TE_USE_DSP 0
#elif defined(__ARM_FEATURE_DSP)
#define TE_USE_DSP 1
#include <arm_acle.h>

static inline int32_t te_sxtb16(int32_t v)
{
    return __sxtb16(v);
}

/* SXTB16 of bytes 1 and 3: the instruction's ROR #8 operand rotation. */
static inline int32_t te_sxtb16_ror8(int32_t v)
{
#if defined(__GNUC__)
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
#else
    return __sxtb16((int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24)));
#endif
}

static inline int32_t te_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

static inline int32_t te_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return __smlabb(a, b, acc);
}

static inline int32_t te_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return __smlatt(a, b, acc);
}
#elif defined(TE_EMULATE_DSP)
#define TE_USE_DSP 1

static inline int32_t te_lo16(int32_t v)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v & 0xffffu);
}

static inline int32_t te_hi16(int32_t v)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v >> 16);
}

static inline int32_t te_sxtb16(int32_t v)
{
    const uint32_t lo = (uint32_t)(int32_t)(int8_t)(uint8_t)((uint32_t)v & 0xffu) & 0xffffu;
    const uint32_t hi = (uint32_t)(int32_t)(int8_t)(uint8_t)(((uint32_t)v >> 16) & 0xffu) & 0xffffu;
    return (int32_t)(lo | (hi << 16));
}

static inline int32_t te_sxtb16_ror8(int32_t v)
{
    return te_sxtb16((int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24)));
}

static inline int32_t te_smlad(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_lo16(a) * te_lo16(b)) +
                     (uint32_t)(te_hi16(a) * te_hi16(b)));
}

static inline int32_t te_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_lo16(a) * te_lo16(b)));
}

static inline int32_t te_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_hi16(a) * te_hi16(b)));
}
#else
#define TE_USE_DSP 0
#endif

#ifdef __cplusplus
}
#endif

#endif /* TE_COMMON_H */
