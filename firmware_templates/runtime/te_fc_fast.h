/*
 * te_fc_fast.h - int8 FULLY_CONNECTED with weights widened to int16 on the
 * host (the kernel the lowering picks for the dsp and mve kernel sets;
 * tinyedge/ops/fully_connected.py). Arithmetic: TFLM's reference
 * FullyConnected / FullyConnectedPerChannel (see te_fully_connected.c); the
 * result is the same integer. Portable C99 here; arm_dsp/te_fc_fast.c is the
 * SMLAD implementation.
 */
#ifndef TE_FC_FAST_H
#define TE_FC_FAST_H

#include <stdint.h>

#include "te_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is computed on the host (tinyedge/ops/fully_connected.py). */
typedef struct {
    int32_t batches;          /* input rows */
    int32_t in_depth;         /* accumulation depth */
    int32_t depth4;           /* in_depth rounded up to a multiple of 4 (the weights' zero padding) */
    int32_t units;            /* output units */
    int32_t output_offset;    /* output zero point */
    int32_t act_min, act_max; /* fused activation clamp */
    const te_chan_t *chan;    /* [units rounded up to 4]: bias (input zero point folded in) and
                                 requantization; padding entries repeat the last unit's */
} te_fc_fast_params_t;

/* filter: int16, units in blocks of 4 (the last padded with zero rows); per
 * block, per group of 4 depth values d..d+3, for each of the 4 units the
 * values w[d] w[d+2] w[d+1] w[d+3] -- the order in which SXTB16 widens 4
 * input bytes into (d, d+2) and (d+1, d+3). */
void te_fc_fast_s8(const te_fc_fast_params_t *p, const int8_t *input, const int16_t *filter, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* TE_FC_FAST_H */
