/*
 * te_conv_fast.c (arm_dsp) - te_conv_fast.h's kernels with SMLAD: a 2x2
 * block (two pixels x two output channels) per pass over the patch.
 *
 * Two output pixels' patches are widened once into scratch, interleaved per
 * group of 4 depth values d..d+3 as the words
 *   [A(p0) A(p1) B(p0) B(p1)],  A = (x[d], x[d+2]), B = (x[d+1], x[d+3])
 * (what SXTB16 makes of 4 input bytes); the host laid the filter out the
 * same way for a pair of channels, [A(w0) A(w1) B(w0) B(w1)]. Per group, two
 * doubleword loads of each and 8 SMLADs give 16 multiply-accumulates, and
 * every patch word is reused by all the channel pairs. The sums are the
 * portable kernel's integers (int32 addition is exact in any order here:
 * the host bounded |acc| < 2^30), and requantization is te_requant.h's.
 */
#include "te_conv_fast.h"

#include <stddef.h>
#include <string.h>

#include "te_dsp.h"
#include "te_requant.h"

/* Widen n >= 1 bytes of src into the patch words from dst on (a pixel's slot
 * of the interleaved patch): whole groups, then the last 1..3 bytes
 * zero-padded to a group. Returns where the next group goes. */
static inline TE_ALWAYS_INLINE int32_t *te_widen_row(int32_t *dst, const int8_t *src, int32_t n)
{
    dst = te_widen_groups(dst, src, n >> 2);
    if (n & 3) {
        uint8_t tail[4] = { 0, 0, 0, 0 };
        memcpy(tail, src + (n & ~3), (size_t)(n & 3));
        dst = te_widen_groups(dst, (const int8_t *)tail, 1);
    }
    return dst;
}

/* Widen output pixel number `pixel` (raster order within the image) into slot
 * (0 or 1) of the interleaved patch xb: filter row by filter row, straight
 * from the input where the row lies inside it, else from a row gathered into
 * rowbuf with the input zero point at the padding taps. The input rows come
 * through te_window.h's te_rows_t (a ring of copies when running in place). */
static void te_load_pixel(const te_conv_fast_params_t *p, const te_rows_t *rows, int32_t pixel, int32_t *xb,
                          int32_t slot, int8_t *rowbuf, int pointwise)
{
    const te_window_t *win = &p->win;
    const int32_t in_c = win->in_c, in_w = win->in_w;
    const int32_t oy = pixel / win->out_w, ox = pixel - oy * win->out_w;
    const int32_t iy0 = oy * win->stride_h - win->pad_top, ix0 = ox * win->stride_w - win->pad_left;
    int32_t *dst = xb + slot;
    int inside_w;
    int32_t ky;
    if (pointwise) {
        te_widen_row(dst, rows->image + ((size_t)iy0 * (size_t)in_w + (size_t)ix0) * (size_t)in_c, in_c);
        return;
    }
    inside_w = win->dil_w == 1 && ix0 >= 0 && ix0 + win->k_w - 1 < in_w;
    for (ky = 0; ky < win->k_h; ++ky) {
        const int32_t iy = iy0 + ky * win->dil_h;
        const int8_t *src = rowbuf;
        if (inside_w && iy >= 0 && iy < win->in_h) {
            src = te_rows_get(rows, iy) + (size_t)ix0 * (size_t)in_c;
        } else {
            int32_t kx;
            for (kx = 0; kx < win->k_w; ++kx) {
                const int32_t ix = ix0 + kx * win->dil_w;
                if (iy < 0 || iy >= win->in_h || ix < 0 || ix >= in_w) {
                    memset(rowbuf + kx * in_c, (int8_t)p->input_zero_point, (size_t)in_c);
                } else {
                    memcpy(rowbuf + kx * in_c, te_rows_get(rows, iy) + (size_t)ix * (size_t)in_c, (size_t)in_c);
                }
            }
        }
        dst = te_widen_row(dst, src, p->row);
    }
}

/* full: the clamp is the whole int8 range (one SSAT). two: the second pixel exists. */
static inline TE_ALWAYS_INLINE void te_channels(const te_conv_fast_params_t *p,
                                                              const int32_t *xb, const int16_t *filter,
                                                              int8_t *out0, int two, int full)
{
    const int32_t groups = p->depth4 / 4;
    const int32_t act_min = p->act_min, act_max = p->act_max, zp = p->output_offset;
    int8_t *out1 = out0 + p->out_c;
    const te_chan_t *c = p->chan;
    const uint16_t *index = p->index;
    const int32_t *wb = (const int32_t *)(const void *)filter;
    int32_t j;
    for (j = 0; j < p->live; j += 2, c += 2, index += 2, wb += 4 * groups) {
        int32_t acc[4];
        const int32_t i0 = index[0], i1 = index[1];
        acc[0] = acc[2] = c[0].bias;
        acc[1] = acc[3] = c[1].bias;
        te_mac_2x2(xb, wb, groups, acc);
        /* the second channel first: a padding entry repeats the first's index */
        out0[i1] = te_requant_out(&c[1], acc[1], zp, full, act_min, act_max);
        out0[i0] = te_requant_out(&c[0], acc[0], zp, full, act_min, act_max);
        if (two) {
            out1[i1] = te_requant_out(&c[1], acc[3], zp, full, act_min, act_max);
            out1[i0] = te_requant_out(&c[0], acc[2], zp, full, act_min, act_max);
        }
    }
}

static inline TE_ALWAYS_INLINE void te_conv_fast_run(const te_conv_fast_params_t *p,
                                                                    const int8_t *input, const int16_t *filter,
                                                                    int8_t *output, int8_t *scratch,
                                                                    int pointwise, int full)
{
    const int32_t pixels = p->win.out_h * p->win.out_w;
    const size_t in_image = (size_t)p->win.in_h * (size_t)p->win.in_w * (size_t)p->win.in_c;
    int32_t *xb = (int32_t *)(void *)scratch;
    int8_t *rowbuf = scratch + 4 * p->depth4;
    int8_t *ring = !pointwise && (const void *)input == (void *)output
                       ? scratch + TE_CONV_FAST_RING_AT(p->depth4, p->row4) : NULL;
    int32_t b;
    for (b = 0; b < p->win.batches; ++b) {
        te_rows_t rows;
        int32_t px;
        te_rows_init(&rows, &p->win, input + (size_t)b * in_image, ring);
        for (px = 0; px < pixels; px += 2, output += 2 * p->out_c) {
            const int two = px + 1 < pixels;
            te_rows_keep(&rows, (two ? px + 1 : px) / p->win.out_w);
            te_load_pixel(p, &rows, px, xb, 0, rowbuf, pointwise);
            if (two) {
                te_load_pixel(p, &rows, px + 1, xb, 1, rowbuf, pointwise);
            }
            if (p->constants != NULL) {
                memcpy(output, p->constants, (size_t)p->out_c);
                if (two) {
                    memcpy(output + p->out_c, p->constants, (size_t)p->out_c);
                }
            }
            if (two) {
                te_channels(p, xb, filter, output, 1, full);
            } else {
                te_channels(p, xb, filter, output, 0, full);
            }
        }
        /* an odd pixel count ended on a single pixel: the next image's output starts right after it */
        output -= (size_t)(pixels & 1) * (size_t)p->out_c;
    }
}

static inline TE_ALWAYS_INLINE void te_conv_fast_pick(const te_conv_fast_params_t *p,
                                                                     const int8_t *input, const int16_t *filter,
                                                                     int8_t *output, int8_t *scratch,
                                                                     int pointwise)
{
    if (p->act_min == TE_INT8_MIN && p->act_max == TE_INT8_MAX) {
        te_conv_fast_run(p, input, filter, output, scratch, pointwise, 1);
    } else {
        te_conv_fast_run(p, input, filter, output, scratch, pointwise, 0);
    }
}

void te_conv1x1_fast_s8(const te_conv_fast_params_t *p, const int8_t *input, const int16_t *filter,
                        int8_t *output, int8_t *scratch)
{
    te_conv_fast_pick(p, input, filter, output, scratch, 1);
}

void te_conv_fast_s8(const te_conv_fast_params_t *p, const int8_t *input, const int16_t *filter,
                     int8_t *output, int8_t *scratch)
{
    te_conv_fast_pick(p, input, filter, output, scratch, 0);
}
