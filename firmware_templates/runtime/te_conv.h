/*
 * te_conv.h - int8 CONV_2D (per-channel or per-tensor weights, stride,
 * dilation, SAME/VALID padding as explicit offsets, fused activation).
 * Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_CONV_H
#define TE_CONV_H

#include <stdint.h>

#include "te_window.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is computed on the host (tinyedge/ops/conv.py). Tensors are
 * NHWC; the filter is OHWI [out_c][k_h][k_w][in_c] (the .tflite layout). */
typedef struct {
    te_window_t win;           /* geometry: k_h x k_w taps, stride, dilation, padding */
    int32_t out_c;
    int32_t input_zero_point;  /* written into the patch for padding taps */
    int32_t output_offset;     /* output zero point */
    int32_t act_min, act_max;  /* fused activation clamp, in output quanta */
    int32_t direct;            /* 1: 1x1 kernel, no padding: a patch is one input pixel, no copy */
    int32_t per_channel;       /* 1: mult/shift hold out_c entries; 0: one */
    const int32_t *mult;       /* Q31 requantization multipliers */
    const int32_t *shift;      /* exponents: > 0 left, < 0 right */
} te_conv2d_params_t;

/* Scratch bytes te_conv2d_s8 needs: one int8 patch (k_h * k_w * in_c),
 * none when `direct`. The host computes the same number. */
#define TE_CONV2D_SCRATCH_BYTES(k_h, k_w, in_c, direct) ((direct) ? 0 : (k_h) * (k_w) * (in_c))

/* bias holds bias[oc] - input_zp * sum(filter[oc]) (folded on the host; not
 * NULL). scratch: TE_CONV2D_SCRATCH_BYTES bytes (NULL when 0). */
void te_conv2d_s8(const te_conv2d_params_t *p, const int8_t *input, const int8_t *filter,
                  const int32_t *bias, int8_t *output, int8_t *scratch);

#ifdef __cplusplus
}
#endif

#endif /* TE_CONV_H */
