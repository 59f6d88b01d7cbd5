/*
 * te_blocked.h - int8 FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D (channel
 * multiplier 1) over constants the host lays out in blocks for vector
 * kernels. Plain C99, no malloc; compiles for the host and for Cortex-M.
 *
 * The arithmetic is the same as te_fully_connected.c / te_conv.c /
 * te_depthwise.c (TFLM's reference kernels: int32 accumulation with the input
 * zero point folded into the bias on the host, MultiplyByQuantizedMultiplier
 * with double rounding, output zero point, activation clamp); only the order
 * in which the constants are stored differs. te_blocked.c reads the layouts in
 * plain C (the reference); arm_mve/te_blocked.c is the Helium variant, which
 * reads 16 bytes of weights, or 4 lanes of requantization constants, per
 * vector load. Every layout below is produced by tinyedge/ops/blocked.py.
 *
 * Requantization table `rq` (int32): entries of 16 words for 4 output
 * channels ("lanes"): the 4 biases (input zero-point term folded in), the 4
 * Q31 multipliers, the 4 left shifts max(shift, 0) and the 4 right shifts
 * min(shift, 0) (<= 0), as MultiplyByQuantizedMultiplier splits TFLite's
 * exponent `shift`; entry e, lane j: rq[16e + TE_RQ4_xxx + j]. Per-tensor
 * quantization repeats its one multiplier. Lanes past the last channel are 0.
 */
#ifndef TE_BLOCKED_H
#define TE_BLOCKED_H

#include <stdint.h>

#include "te_window.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TE_RQ4_BIAS 0
#define TE_RQ4_MULT 4
#define TE_RQ4_LEFT 8
#define TE_RQ4_RIGHT 12
#define TE_RQ4_WORDS 16

/* ---- FULLY_CONNECTED and CONV_2D: blocks of 4 weight rows --------------------
 *
 * The weight matrix W[n_out][depth] (FULLY_CONNECTED's [units][depth]; CONV_2D's
 * OHWI filter as [out_c][k_h * k_w * in_c]) is stored as blocks of 4 rows
 * (rows past n_out are zero), each split into chunks of 16 bytes along the
 * depth (bytes past depth are zero), the 4 rows' chunks side by side:
 *   filter[((b * chunks + c) * 4 + r) * 16 + i] = W[4b + r][16c + i],
 *   chunks = ceil(depth / 16);
 * rq entry b holds output channels 4b .. 4b+3. */

#define TE_BLOCK_ROWS 4
#define TE_BLOCK_CHUNK 16

typedef struct {
    int32_t batches;       /* input rows */
    int32_t in_depth;
    int32_t out_depth;
    int32_t output_offset;
    int32_t act_min, act_max;
} te_fc_blocked_params_t;

void te_fully_connected_blocked_s8(const te_fc_blocked_params_t *p, const int8_t *input,
                                   const int8_t *filter, const int32_t *rq, int8_t *output);

typedef struct {
    te_window_t win;           /* geometry: k_h x k_w taps, stride, dilation, padding */
    int32_t input_zero_point;  /* what a padding tap reads */
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t out_c;
    int32_t direct;            /* 1: 1x1 kernel, no padding: a patch is one input pixel */
} te_conv2d_blocked_params_t;

/* Scratch: two patches (im2col: two output pixels at a time) of
 * k_h * k_w * in_c bytes each, none when direct. */
#define TE_CONV2D_BLOCKED_SCRATCH_BYTES(k_h, k_w, in_c, direct) ((direct) ? 0 : 2 * (k_h) * (k_w) * (in_c))

void te_conv2d_blocked_s8(const te_conv2d_blocked_params_t *p, const int8_t *input,
                          const int8_t *filter, const int32_t *rq, int8_t *output, int8_t *scratch);

/* ---- DEPTHWISE_CONV_2D, channel multiplier 1: blocks of 16 lanes -------------
 *
 * The output is computed 16 bytes ("lanes") at a time:
 *   - per pixel, channels 16g .. 16g+15 (lane l is channel 16g + l; lanes past
 *     the last channel are not stored), g < ceil(C / 16) -- or, when `flat`
 *     (stride_w 1 and C divides 16), 16 consecutive bytes of an output row
 *     (16 / C pixels side by side; lane l is channel l % C), g = 0 only;
 *   - filter[(g * taps + t) * 16 + l] = the weight of lane l's channel at tap
 *     t = ky * k_w + kx (zero for lanes past the last channel);
 *   - rq entry 4g + s holds the constants of lanes LANE(s, 0..3), the order a
 *     Helium kernel's widening multiplies leave them in:
 *       s = 0: lanes 0, 4, 8, 12    s = 1: lanes 2, 6, 10, 14
 *       s = 2: lanes 1, 5, 9, 13    s = 3: lanes 3, 7, 11, 15
 *     i.e. LANE(s, k) = 4k + (0, 2, 1, 3)[s].
 * pair_taps: 1 unless some channel has the weight -128 at both taps 2i and
 * 2i+1: then x * w of both can be 128 * 128 and their sum overflows int16; any
 * other two int8 products add in int16. A kernel may add taps in pairs when it
 * is 1; the result is the same integer either way. */

#define TE_DW_LANES 16
#define TE_DW_LANE(s, k) (4 * (k) + ((s) == 1 ? 2 : (s) == 2 ? 1 : (s)))

typedef struct {
    te_window_t win;           /* geometry; channels = win.in_c (multiplier 1) */
    int32_t input_zero_point;  /* what a padding tap reads */
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t flat;              /* lanes run along the output row (see above) */
    int32_t pair_taps;
    int32_t span_w;            /* padded input row, in pixels: (out_w-1)*stride_w + (k_w-1)*dil_w + 1 */
} te_dw_blocked_params_t;

/* Scratch: the tap pointers (8-byte slots), one tag per ring row (4 bytes),
 * then a row of zero points and span_h = (k_h-1)*dil_h + 1 input rows, each
 * span_w * C bytes with the zero point in its padding columns, and 16 bytes a
 * 16-lane load may read past the last row. The host computes the same number. */
#define TE_DW_BLOCKED_SCRATCH_BYTES(k_h, k_w, dil_h, span_w, c)                                  \
    (8 * (k_h) * (k_w) + 8 * ((((k_h) - 1) * (dil_h) + 2) / 2) +                                    \
     (((k_h) - 1) * (dil_h) + 2) * (span_w) * (c) + TE_DW_LANES)

void te_depthwise_blocked_s8(const te_dw_blocked_params_t *p, const int8_t *input,
                             const int8_t *filter, const int32_t *rq, int8_t *output,
                             int8_t *scratch);

#ifdef __cplusplus
}
#endif

#endif /* TE_BLOCKED_H */
