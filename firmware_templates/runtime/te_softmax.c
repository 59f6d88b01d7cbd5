/*
 * te_softmax.c - SOFTMAX, int8 in, int8/int16 out: TensorFlow Lite Micro's
 * integer softmax, bit for bit.
 *
 * Where the arithmetic comes from: TFLM's micro/kernels/softmax.cc runs
 * reference_ops::Softmax (kernels/internal/reference/softmax.h) with the
 * parameters of CalculateSoftmaxParams (micro/kernels/softmax_common.cc).
 * Per row of `depth` values:
 *     max  = the largest input of the row (int8)
 *     for each x with d = max - x and -d >= diff_min:
 *         e(d) = exp_on_negative_values(Q5.26 value
 *                MultiplyByQuantizedMultiplierGreaterThanOne(-d, input_multiplier,
 *                input_left_shift))                          -- Q0.31
 *     sum  = sum of Rescale<12>(e) = RoundingDivideByPOT(e, 12)  -- Q12.19, int32
 *     GetReciprocal(sum): headroom = clz(sum), num_bits_over_unit = 12 - headroom,
 *         scale = one_over_one_plus_x_for_x_in_0_1((sum << headroom) - 2^31)   -- Q0.31
 *     y    = RoundingDivideByPOT(SRDHM(scale, e(d)), num_bits_over_unit + 31 - bits)
 *            + type min, clamped; the type min where -d < diff_min.
 * e(d) depends only on d (0..255), so the host computes it for every d with
 * TFLM's integer algorithm and passes it as `exp_table`, with 0 where TFLM
 * skips d: a 0 adds nothing to the sum and gives the type min, exactly what
 * TFLM does for a skipped element. What remains here is integer arithmetic:
 * the row sum, GetReciprocal (gemmlowp's Newton-Raphson division, written
 * from gemmlowp's fixedpoint.h) and the rescale of every element.
 *
 * Where TFLM has no answer: TFLM checks 0 <= exponent <= 31 with TFLITE_CHECK
 * and aborts the process otherwise. With int8 output that happens as soon as a
 * row's sum of exponentials reaches 512 (more than 512 values close to the
 * row's maximum); the int16 exponent stays in range unless the int32 sum
 * wraps (4096+ values at the maximum). In such a row every exact
 * probability is below 2^-9 and RoundingDivideByPOT continued past 31 gives
 * 0, so tinyedge writes the type minimum for the whole row.
 *
 * The sum wraps in 32 bits like TFLM's int32 accumulation does in practice.
 * Our own code, written from that behaviour.
 */
#include "te_softmax.h"

#include "te_common.h"

#define TE_SOFTMAX_ACCUM_INTEGER_BITS 12 /* reference_ops::Softmax kAccumulationIntegerBits */

/* Count leading zeros of a nonzero 32-bit value. */
static int32_t te_clz32(uint32_t x)
{
#if defined(__GNUC__)
    return (int32_t)__builtin_clz(x);
#else
    int32_t n = 0;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

/* gemmlowp's FixedPoint + and -: int32 arithmetic that wraps (no call below overflows). */
static int32_t te_fp_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t te_fp_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent in 1..30:
 * x * 2^exponent, saturated to int32. */
static int32_t te_sat_mul_by_pot(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for a in (0, 1),
 * Q0.31 in and out. half_denominator = RoundingHalfSum(a, 1.0) (Q0), then
 * three Newton-Raphson steps x += x * (1 - half_denominator * x) from
 * 48/17 - 32/17 * half_denominator, all in Q2.29; the result is x / 2 in Q0. */
static int32_t te_one_over_one_plus_x(int32_t a)
{
    const int32_t c48_17 = 1515870810;   /* 48/17 in Q2.29 */
    const int32_t cm32_17 = -1010580540; /* -32/17 in Q2.29 */
    const int32_t one_q2 = (int32_t)1 << 29;
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = te_fp_add(c48_17, te_sat_rounding_doubling_high_mul(half_denominator, cm32_17));
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t hdx = te_sat_rounding_doubling_high_mul(half_denominator, x);
        const int32_t one_minus = te_fp_sub(one_q2, hdx);
        /* x * one_minus is Q4.27; Rescale<2> multiplies it by 4, saturating */
        const int32_t step = te_sat_rounding_doubling_high_mul(x, one_minus);
        x = te_fp_add(x, te_sat_mul_by_pot(step, 2));
    }
    /* ExactMulByPot<-1> (Q2 -> Q1, same raw), then Rescale<0>: times 2, saturating */
    return te_sat_mul_by_pot(x, 1);
}

/* One row; writes int8 (y8) or int16 (y16) results. */
static void te_softmax_row(int32_t depth, const int32_t *exp_table, const int8_t *x, int8_t *y8,
                           int16_t *y16)
{
    const int32_t bits = y8 != 0 ? 8 : 16;
    const int32_t type_min = y8 != 0 ? -128 : -32768;
    const int32_t type_max = y8 != 0 ? 127 : 32767;
    int32_t max = -128;
    uint32_t sum = 0;
    int32_t headroom, exponent, scale, j;
    for (j = 0; j < depth; ++j) {
        max = x[j] > max ? x[j] : max;
    }
    for (j = 0; j < depth; ++j) {
        /* Rescale<12>: Q0.31 -> Q12.19 */
        sum += (uint32_t)te_rounding_divide_by_pot(exp_table[max - x[j]], TE_SOFTMAX_ACCUM_INTEGER_BITS);
    }
    headroom = sum != 0 ? te_clz32(sum) : 32;
    exponent = (TE_SOFTMAX_ACCUM_INTEGER_BITS - headroom) + 31 - bits;
    if (sum == 0 || exponent < 0 || exponent > 31) { /* TFLM aborts here (see above) */
        for (j = 0; j < depth; ++j) {
            if (y8 != 0) {
                y8[j] = (int8_t)type_min;
            } else {
                y16[j] = (int16_t)type_min;
            }
        }
        return;
    }
    scale = te_one_over_one_plus_x((int32_t)((sum << headroom) - 0x80000000u));
    for (j = 0; j < depth; ++j) {
        const int32_t e = exp_table[max - x[j]];
        const int32_t prob = te_sat_rounding_doubling_high_mul(scale, e); /* Q0.31 */
        const int32_t unsat = te_rounding_divide_by_pot(prob, exponent);
        const int32_t q = te_clamp_s32(unsat + type_min, type_min, type_max);
        if (y8 != 0) {
            y8[j] = (int8_t)q;
        } else {
            y16[j] = (int16_t)q;
        }
    }
}

void te_softmax_s8(const te_softmax_params_t *p, const int32_t *exp_table, const int8_t *in,
                   int8_t *out)
{
    int32_t r;
    for (r = 0; r < p->outer; ++r) {
        te_softmax_row(p->depth, exp_table, in + r * p->depth, out + r * p->depth, 0);
    }
}

void te_softmax_s8_s16(const te_softmax_params_t *p, const int32_t *exp_table, const int8_t *in,
                       int16_t *out)
{
    int32_t r;
    for (r = 0; r < p->outer; ++r) {
        te_softmax_row(p->depth, exp_table, in + r * p->depth, 0, out + r * p->depth);
    }
}
