/*
 * te_dw_fast.h - int8 DEPTHWISE_CONV_2D with channel multiplier 1 and
 * weights widened to int16 on the host (the kernel the lowering picks for the
 * dsp and mve kernel sets; tinyedge/ops/conv.py). Arithmetic: TFLM's
 * reference DepthwiseConvPerChannel (see te_depthwise.c); the result is the
 * same integer. Portable C99 here; arm_dsp/te_dw_fast.c is the SMLABB/SMLATT
 * implementation.
 */
#ifndef TE_DW_FAST_H
#define TE_DW_FAST_H

#include <stdint.h>

#include "te_common.h"
#include "te_window.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is computed on the host (tinyedge/ops/conv.py). NHWC tensors,
 * out_c == in_c (multiplier 1). */
typedef struct {
    te_window_t win;          /* geometry: k_h x k_w taps, stride, dilation, padding */
    int32_t input_zero_point; /* what a padding tap reads */
    int32_t output_offset;    /* output zero point */
    int32_t act_min, act_max; /* fused activation clamp */
    const te_chan_t *chan;    /* [in_c]: bias (input zero point folded in) and requantization */
} te_dw_fast_params_t;

/* filter: int16, channels in quads (the last padded with zeros); per quad,
 * per tap (row-major [k_h][k_w]), 4 values: w[c] w[c+2] w[c+1] w[c+3] -- the
 * order in which SXTB16 widens 4 input bytes into (c, c+2), (c+1, c+3). */

/* Scratch bytes: two tables of one 8-byte slot per tap, then a row of in_c
 * input zero points (what padding taps read). The kernel may run in place
 * (output == input, as the planner may decide) with stride 1, the output as
 * large as the input and one batch, when its scratch also holds te_window.h's
 * ring of input rows, TE_ROWS_RING(pad_top) * in_w * in_c bytes from
 * TE_DW_FAST_RING_AT. */
#define TE_DW_FAST_SCRATCH_BYTES(k_h, k_w, in_c) (16 * (k_h) * (k_w) + (in_c))
#define TE_DW_FAST_RING_AT(k_h, k_w, in_c) ((TE_DW_FAST_SCRATCH_BYTES(k_h, k_w, in_c) + 3) / 4 * 4)

void te_dw_fast_s8(const te_dw_fast_params_t *p, const int8_t *input, const int16_t *filter, int8_t *output,
                   int8_t *scratch);

#ifdef __cplusplus
}
#endif

#endif /* TE_DW_FAST_H */
