/*
 * te_activations.c - int8 RELU / RELU_N1_TO_1, RELU6, LEAKY_RELU, PRELU,
 * HARD_SWISH and table lookups (LOGISTIC, TANH).
 *
 * Where the arithmetic comes from (TensorFlow Lite Micro's kernels, the
 * oracle; our own code written from their behaviour):
 *   - RELU: micro/kernels/activations.h ReluQuantized with the parameters of
 *     CalculateReluOpData: out_zp + MultiplyByQuantizedMultiplier(x - in_zp)
 *     with the Q31 form of float(input_scale / output_scale), clamped to
 *     [max(-128, out_zp), 127].
 *   - RELU_N1_TO_1: TFLM has no kernel for it; tinyedge keeps TFLite's
 *     reference arithmetic (the same requantization, clamped to the output's
 *     quantized -1 and 1), and such models are compared with the TFLite
 *     interpreter.
 *   - RELU6: TFLM's Relu6Quantized clamps the raw input values to
 *     [in_zp, quantized 6.0 on the input scale]; the output's quantization is
 *     not read (te_clamp_s8).
 *   - LEAKY_RELU: reference_ops::QuantizeLeakyRelu: x - in_zp >= 0 uses the
 *     identity multiplier; below, MultiplyByQuantizedMultiplier with |alpha
 *     multiplier| and the result negated when alpha < 0; + out_zp; saturate.
 *   - PRELU: reference_ops::BroadcastPrelu4DSlow: x - in_zp >= 0 ->
 *     MBQM(x - in_zp, m1); else MBQM((x - in_zp) * (alpha - alpha_zp), m2);
 *     + out_zp; saturate. Every element takes the same recipe, walked with
 *     te_broadcast.h.
 *   - HARD_SWISH: the 16-bit fixed-point "reluish" formulation of
 *     reference_ops::HardSwish (kernels/internal/reference/hard_swish.h),
 *     reproduced step by step with int16 values, including gemmlowp's int16
 *     SaturatingRoundingDoublingHighMul / RoundingDivideByPOT and the
 *     truncating SaturatingDoublingHighMul.
 *   - LOGISTIC / TANH: reference_integer_ops::Logistic / Tanh (gemmlowp's
 *     fixed-point logistic and tanh on a Q4.27 input) depend on nothing but
 *     the int8 input value, so the host runs that integer algorithm for all
 *     256 inputs at generate time (tinyedge/ops/activations.py, exact integer
 *     arithmetic) and the device only indexes the table: the same bytes as
 *     TFLM, in one load per element.
 * MultiplyByQuantizedMultiplier is TFLM's double-rounding one
 * (te_mul_by_quantized_mult). Sums TFLM does in int32 wrap here too.
 */
#include "te_activations.h"

#include "te_common.h"

static inline int32_t te_act_add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

void te_relu_s8(const te_relu_params_t *p, const int8_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = te_act_add_wrap(p->out_zp,
                                          te_mul_by_quantized_mult(in[i] - p->in_zp, p->mult, p->shift));
        out[i] = (int8_t)te_clamp_s32(v, p->act_min, p->act_max);
    }
}

void te_clamp_s8(const te_clamp_params_t *p, const int8_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = in[i];
        out[i] = (int8_t)(v > p->hi ? p->hi : (v < p->lo ? p->lo : v));
    }
}

void te_leaky_relu_s8(const te_leaky_relu_params_t *p, const int8_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t x = in[i] - p->in_zp;
        int32_t scaled;
        if (x >= 0) {
            scaled = te_mul_by_quantized_mult(x, p->identity_mult, p->identity_shift);
        } else {
            scaled = te_mul_by_quantized_mult(x, p->alpha_mult, p->alpha_shift);
            if (p->alpha_negative) {
                scaled = (int32_t)(0u - (uint32_t)scaled); /* wraps like TFLM's int32 negation */
            }
        }
        out[i] = te_sat_s8(te_act_add_wrap(p->out_zp, scaled));
    }
}

static inline int8_t te_prelu_one(const te_prelu_params_t *p, int8_t x, int8_t alpha)
{
    const int32_t v = p->in_offset + x;
    const int32_t scaled = v >= 0 ? te_mul_by_quantized_mult(v, p->mult1, p->shift1)
                                  : te_mul_by_quantized_mult(v * (p->alpha_offset + alpha), p->mult2,
                                                             p->shift2);
    return te_sat_s8(te_act_add_wrap(scaled, p->out_offset));
}

void te_prelu_s8(const te_prelu_params_t *p, const int8_t *in, const int8_t *alpha, int8_t *out)
{
    te_bcast_cursor_t c;
    te_bcast_begin(&p->walk, &c);
    do {
        int32_t i;
        for (i = 0; i < c.n; ++i) {
            *out++ = te_prelu_one(p, in[c.off1 + i * c.step1], alpha[c.off2 + i * c.step2]);
        }
    } while (te_bcast_next_row(&p->walk, &c));
}

/* ---- HARD_SWISH: int16 fixed-point helpers with C++ int16 semantics ---------- */

/* gemmlowp SaturatingRoundingDoublingHighMul<int16_t>. */
static inline int16_t te_hs_srdhm(int16_t a, int16_t b)
{
    int32_t ab;
    int32_t nudge;
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    ab = (int32_t)a * (int32_t)b;
    nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* reference_ops::SaturatingDoublingHighMul: like the above, truncating. */
static inline int16_t te_hs_sdhm(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

/* gemmlowp RoundingDivideByPOT<int16_t>: mask, threshold and sum in int16
 * (the mask wraps to -1 for exponents >= 16, as in the oracle). */
static inline int16_t te_hs_rdbpot(int16_t x, int32_t exponent)
{
    const int16_t mask = (int16_t)(uint16_t)(((uint64_t)1 << exponent) - 1u);
    const int16_t remainder = (int16_t)(x & mask);
    const int16_t threshold = (int16_t)((mask >> 1) + (x < 0 ? 1 : 0));
    return (int16_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

/* reference_ops::SaturatingLeftShift: value * 2^amount in int64, saturated to
 * int16 (amount <= 30 for any scale the host accepts). */
static inline int16_t te_hs_sat_lshift(int16_t value, int32_t amount)
{
    const int64_t r = (int64_t)value * ((int64_t)1 << amount);
    return (int16_t)(r > INT16_MAX ? INT16_MAX : (r < INT16_MIN ? INT16_MIN : r));
}

void te_hard_swish_s8(const te_hard_swish_params_t *p, const int8_t *in, int8_t *out)
{
    const int16_t out_mult = (int16_t)p->output_mult_fp16;
    const int16_t relu_mult = (int16_t)p->reluish_mult_fp16;
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int16_t x = (int16_t)(in[i] - p->in_zp);
        /* x on the "hires" input scale (input_scale / 128): |x| * 128 <= 32640 */
        const int16_t hires = (int16_t)(x * (1 << 7));
        const int16_t preshift_out = te_hs_srdhm(hires, out_mult);
        int16_t reluish = hires;
        int16_t pre;
        int16_t y;
        /* rescale to the reluish scale (3.0 <-> 32768), saturating */
        if (p->reluish_exp > 0) {
            reluish = te_hs_sat_lshift(reluish, p->reluish_exp - 1);
        }
        reluish = te_hs_srdhm(reluish, relu_mult);
        if (p->reluish_exp > 0) {
            reluish = te_hs_sat_lshift(reluish, 1);
        }
        if (p->reluish_exp < 0) {
            reluish = te_hs_rdbpot(reluish, -p->reluish_exp);
        }
        /* [-1, 1] -> [0, 1] */
        reluish = (int16_t)((reluish + (1 << 15)) >> 1);
        pre = te_hs_sdhm(reluish, preshift_out);
        y = te_hs_rdbpot(pre, -p->output_exp);
        y = (int16_t)(uint16_t)((uint32_t)(int32_t)y + (uint32_t)p->out_zp);
        out[i] = te_sat_s8(y);
    }
}

void te_lookup_s8(const te_lookup_params_t *p, const int8_t *table, const int8_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = table[in[i] + 128];
    }
}
