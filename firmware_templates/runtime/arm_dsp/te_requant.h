/*
 * te_requant.h (arm_dsp) - the DSP variant of runtime/te_requant.h: the same
 * integer as TFLM's double-rounding MultiplyByQuantizedMultiplier plus the
 * output zero point, in five instructions:
 *   hi  = SMMULR(2 * acc, mult)                     = SRDHM(acc, mult) for |acc| < 2^30
 *   out = (hi + round_zp + (hi >> 31)) >> rshift     = RoundingDivideByPOT(hi, rshift) + zp
 * (round_zp = 2^(rshift-1) + zp * 2^rshift; hi >> 31 is the -1 that sends
 * negative ties away from zero). The host proved |acc| < 2^30 and no overflow
 * for every input the channel can see (tinyedge/ops/layout.py).
 */
#ifndef TE_REQUANT_H
#define TE_REQUANT_H

#include <stdint.h>

#include "te_common.h"
#include "te_dsp.h"

static inline int32_t te_requant(const te_chan_t *c, int32_t acc, int32_t output_zp)
{
    const int32_t hi = te_smmulr((int32_t)((uint32_t)acc << 1), c->mult);
    (void)output_zp; /* in round_zp */
    return (hi + c->round_zp + (hi >> 31)) >> c->rshift;
}

static inline int8_t te_clamp_out(int32_t v, int32_t act_min, int32_t act_max)
{
    return (int8_t)TE_MIN(TE_MAX(v, act_min), act_max);
}

/* requant then clamp; full: the clamp is int8's whole range, one SSAT */
static inline int8_t te_requant_out(const te_chan_t *c, int32_t acc, int32_t output_zp, int full,
                                    int32_t act_min, int32_t act_max)
{
    const int32_t v = te_requant(c, acc, output_zp);
    return full ? (int8_t)te_ssat8(v) : te_clamp_out(v, act_min, act_max);
}

#endif /* TE_REQUANT_H */
