/*
 * te_requant.h - requantization from a per-channel record (te_chan_t), as the
 * fast conv / depthwise / fully-connected kernels (te_conv_fast.h,
 * te_dw_fast.h, te_fc_fast.h) use it. Portable C: TFLM's double-rounding
 * MultiplyByQuantizedMultiplier (te_common.h) with the record's multiplier and
 * right shift, plus the output zero point. arm_dsp/te_requant.h computes the
 * same integer with one SMMULR from the record's round_zp (valid because the
 * host proved its conditions for the channel: tinyedge/ops/layout.py).
 */
#ifndef TE_REQUANT_H
#define TE_REQUANT_H

#include <stdint.h>

#include "te_common.h"

/* MultiplyByQuantizedMultiplier(acc, mult, -rshift) + output_zp, before the clamp. */
static inline int32_t te_requant(const te_chan_t *c, int32_t acc, int32_t output_zp)
{
    return te_mul_by_quantized_mult(acc, c->mult, -c->rshift) + output_zp;
}

/* The fused activation's clamp (act_min >= -128, act_max <= 127). */
static inline int8_t te_clamp_out(int32_t v, int32_t act_min, int32_t act_max)
{
    return (int8_t)TE_MIN(TE_MAX(v, act_min), act_max);
}

/* requant then clamp; full: the clamp is int8's whole range (a hint: the same result) */
static inline int8_t te_requant_out(const te_chan_t *c, int32_t acc, int32_t output_zp, int full,
                                    int32_t act_min, int32_t act_max)
{
    (void)full;
    return te_clamp_out(te_requant(c, acc, output_zp), act_min, act_max);
}

#endif /* TE_REQUANT_H */
