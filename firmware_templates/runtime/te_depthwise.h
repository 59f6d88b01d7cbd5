/*
 * te_depthwise.h - int8 DEPTHWISE_CONV_2D (per-channel or per-tensor
 * weights, channel multiplier, stride, dilation, padding offsets, fused
 * activation). Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_DEPTHWISE_H
#define TE_DEPTHWISE_H

#include <stdint.h>

#include "te_window.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is computed on the host (tinyedge/ops/conv.py). Tensors are
 * NHWC; the filter keeps the .tflite layout [k_h][k_w][out_c]; output
 * channel oc reads input channel oc / depth_mult. */
typedef struct {
    te_window_t win;             /* geometry: k_h x k_w taps, stride, dilation, padding */
    int32_t out_c;               /* in_c * depth_mult */
    int32_t depth_mult;
    int32_t input_zero_point;    /* what a padding tap reads */
    int32_t output_offset;       /* output zero point */
    int32_t act_min, act_max;
    int32_t per_channel;         /* 1: mult/shift hold out_c entries; 0: one */
    const int32_t *mult;
    const int32_t *shift;
} te_depthwise_params_t;

/* Scratch bytes te_depthwise_conv_s8 needs: one pointer slot (8 bytes, enough
 * on 32- and 64-bit targets) per filter tap, then one row of in_c bytes
 * holding the input zero point (what padding taps read). The host computes
 * the same number; the arena gives scratch 16-byte alignment. */
#define TE_DEPTHWISE_SCRATCH_BYTES(k_h, k_w, in_c) (8 * (k_h) * (k_w) + (in_c))

/* bias holds bias[oc] - input_zp * sum over the taps of filter[.][.][oc]
 * (folded on the host; not NULL). scratch: TE_DEPTHWISE_SCRATCH_BYTES. */
void te_depthwise_conv_s8(const te_depthwise_params_t *p, const int8_t *input,
                          const int8_t *filter, const int32_t *bias, int8_t *output,
                          int8_t *scratch);

#ifdef __cplusplus
}
#endif

#endif /* TE_DEPTHWISE_H */
