/*
 * te_window.h - the sliding window of CONV_2D and DEPTHWISE_CONV_2D: which
 * input pixel each filter tap of an output pixel reads (TFLite's geometry:
 * stride, dilation, padding as the rows/columns before the first one read,
 * from ComputePaddingHeightWidth on the host). Shared by every conv kernel.
 * Plain C99; compiles for the host and for Cortex-M.
 */
#ifndef TE_WINDOW_H
#define TE_WINDOW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* The input rows of one image for a window op that may run in place (the
 * planner gave the output the input's bytes: output == input; only with
 * stride 1, out_h == in_h, out_w == in_w, out_c <= in_c, one batch). Output
 * row o then covers only input bytes of rows <= o, so before a kernel writes
 * any output of rows <= o it calls te_rows_keep(o), which copies the input
 * rows up to o into a ring of TE_ROWS_RING(pad_top) rows (in its scratch);
 * every row up to the last copied is read from the ring from then on, the
 * later ones from the image, which they still are. A kernel keeps rows for at
 * most two consecutive output rows at once (a pixel pair may straddle two).
 * With ring == NULL (not in place) every row is read from the image. */
#define TE_ROWS_RING(pad_top) ((pad_top) + 2)

typedef struct {
    const int8_t *image;
    int8_t *ring;      /* NULL: not in place */
    size_t row_bytes;  /* in_w * in_c */
    int32_t in_h;
    int32_t ring_rows; /* TE_ROWS_RING(pad_top) */
    int32_t copied;    /* the last row copied into the ring (-1: none) */
} te_rows_t;

static inline void te_rows_init(te_rows_t *r, const te_window_t *w, const int8_t *image, int8_t *ring)
{
    r->image = image;
    r->ring = ring;
    r->row_bytes = (size_t)w->in_w * (size_t)w->in_c;
    r->in_h = w->in_h;
    r->ring_rows = TE_ROWS_RING(w->pad_top);
    r->copied = -1;
}

/* Input rows up to `row` are about to be overwritten: keep a copy. */
static inline void te_rows_keep(te_rows_t *r, int32_t row)
{
    if (r->ring == NULL) {
        return;
    }
    while (r->copied < row && r->copied + 1 < r->in_h) {
        ++r->copied;
        memcpy(r->ring + (size_t)(r->copied % r->ring_rows) * r->row_bytes,
               r->image + (size_t)r->copied * r->row_bytes, r->row_bytes);
    }
}

/* Input row iy (0 <= iy < in_h). */
static inline const int8_t *te_rows_get(const te_rows_t *r, int32_t iy)
{
    if (r->ring != NULL && iy <= r->copied) {
        return r->ring + (size_t)(iy % r->ring_rows) * r->row_bytes;
    }
    return r->image + (size_t)iy * r->row_bytes;
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
