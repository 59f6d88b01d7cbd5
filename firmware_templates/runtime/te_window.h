/*
 * te_window.h - the sliding window of CONV_2D and DEPTHWISE_CONV_2D: which
 * input pixel each filter tap of an output pixel reads (TFLite's geometry:
 * stride, dilation, padding as the rows/columns before the first one read,
 * from ComputePaddingHeightWidth on the host). Shared by every conv kernel.
 * Plain C99; compiles for the host and for Cortex-M.
 */
#ifndef TE_WINDOW_H
#define TE_WINDOW_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is computed on the host (tinyedge/ops/conv.py). NHWC. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dil_h, dil_w;
    int32_t pad_top, pad_left; /* input rows/cols before the first one read */
} te_window_t;

/* The input pixel (iy * in_w + ix) that tap t (row-major in the k_h x k_w
 * window) of output pixel (oy, ox) reads, or -1 for a padding tap. */
static inline int32_t te_window_tap(const te_window_t *w, int32_t oy, int32_t ox, int32_t t)
{
    const int32_t iy = oy * w->stride_h - w->pad_top + (t / w->k_w) * w->dil_h;
    const int32_t ix = ox * w->stride_w - w->pad_left + (t % w->k_w) * w->dil_w;
    return (iy < 0 || iy >= w->in_h || ix < 0 || ix >= w->in_w) ? -1 : iy * w->in_w + ix;
}

/* Whether every tap of output pixel (oy, ox) is inside the input. */
static inline int te_window_inside(const te_window_t *w, int32_t oy, int32_t ox)
{
    const int32_t iy = oy * w->stride_h - w->pad_top, ix = ox * w->stride_w - w->pad_left;
    return iy >= 0 && ix >= 0 && iy + (w->k_h - 1) * w->dil_h < w->in_h &&
           ix + (w->k_w - 1) * w->dil_w < w->in_w;
}

/* Gather output pixel (oy, ox)'s receptive field from image into patch
 * (k_h * k_w * in_c bytes, filter order [k_h][k_w][in_c]); padding taps get
 * `pad` (the input zero point). */
void te_window_patch(const te_window_t *w, const int8_t *image, int32_t oy, int32_t ox, int8_t pad,
                     int8_t *patch);

#ifdef __cplusplus
}
#endif

#endif /* TE_WINDOW_H */
