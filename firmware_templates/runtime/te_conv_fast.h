/*
 * te_conv_fast.h - int8 CONV_2D as a matrix product over pixel pairs, with
 * weights widened to int16 on the host (the kernels the lowering picks for
 * the dsp and mve kernel sets; tinyedge/ops/conv.py):
 *   te_conv1x1_fast_s8  1x1 filters without padding (a pixel's input is one
 *                       row of in_c values), any stride;
 *   te_conv_fast_s8     any filter: each pixel's receptive field is gathered
 *                       (im2col), padding taps reading the input zero point.
 * Arithmetic: TFLM's reference ConvPerChannel (see te_conv.c); the result is
 * the same integer. Channels whose output the host proved constant over
 * every input (tinyedge/ops/layout.py) are not computed: every pixel gets
 * them from `constants`.
 * Portable C99 here; arm_dsp/te_conv_fast.c is the SMLAD implementation.
 */
#ifndef TE_CONV_FAST_H
#define TE_CONV_FAST_H

#include <stdint.h>

#include "te_common.h"
#include "te_window.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is computed on the host (tinyedge/ops/conv.py). NHWC tensors. */
typedef struct {
    te_window_t win;          /* geometry: k_h x k_w taps, stride, dilation, padding */
    int32_t out_c;
    int32_t row;              /* k_w * in_c: one filter row of the patch, in filter order [k_w][in_c] */
    int32_t row4;             /* row rounded up to a multiple of 4: each filter row is zero-padded */
    int32_t depth4;           /* k_h * row4: one pixel's patch, [k_h][row4] */
    int32_t input_zero_point; /* what a padding tap reads */
    int32_t output_offset;    /* output zero point */
    int32_t act_min, act_max; /* fused activation clamp */
    int32_t live;             /* channels computed (>= 1); the others are constant */
    const te_chan_t *chan;    /* [live rounded up to even]: bias (input zero point folded in) and
                                 requantization of each live channel */
    const uint16_t *index;    /* [live rounded up to even]: the output channel of each live channel;
                                 with an odd count the last entry of chan and index is repeated */
    const int8_t *constants;  /* NULL when every channel is live; else [out_c]: the value of every
                                 constant channel (the live channels' entries are overwritten) */
} te_conv_fast_params_t;

/* filter: int16, live channels in pairs (an odd last one paired with zeros),
 * per pair depth4/4 groups of 8 values (the patch is [k_h][row4]: each
 * filter row's k_w * in_c weights then zeros up to row4): for depth d..d+3,
 *   w0[d] w0[d+2] w1[d] w1[d+2] w0[d+1] w0[d+3] w1[d+1] w1[d+3]
 * (w0, w1: the pair's channels) -- the order in which SXTB16 widens 4
 * input bytes into (d, d+2) and (d+1, d+3). */

/* Scratch bytes: two pixels' widened patches (4 * depth4), and for
 * te_conv_fast_s8 one gathered int8 filter row more (row4).
 * In place (output == input, as the planner may decide): te_conv1x1_fast_s8
 * when out_c <= in_c (every output pixel covers only input bytes already
 * read); te_conv_fast_s8 with stride 1, the output as large as the input in
 * height and width, out_c <= in_c and one batch, when its scratch also holds
 * te_window.h's ring of input rows after the rest: TE_ROWS_RING(pad_top) *
 * in_w * in_c bytes from TE_CONV_FAST_RING_AT. */
#define TE_CONV1X1_FAST_SCRATCH_BYTES(depth4) (4 * (depth4))
#define TE_CONV_FAST_SCRATCH_BYTES(depth4, row4) (4 * (depth4) + (row4))
#define TE_CONV_FAST_RING_AT(depth4, row4) (((4 * (depth4) + (row4)) + 3) / 4 * 4)

void te_conv1x1_fast_s8(const te_conv_fast_params_t *p, const int8_t *input, const int16_t *filter,
                        int8_t *output, int8_t *scratch);
void te_conv_fast_s8(const te_conv_fast_params_t *p, const int8_t *input, const int16_t *filter,
                     int8_t *output, int8_t *scratch);

#ifdef __cplusplus
}
#endif

#endif /* TE_CONV_FAST_H */
