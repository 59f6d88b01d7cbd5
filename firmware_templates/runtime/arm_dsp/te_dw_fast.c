/*
 * te_dw_fast.c (arm_dsp) - te_dw_fast.h's kernel with SMLABB/SMLATT: for
 * each output pixel and each quad of channels, one 32-bit load of the 4
 * input channels per tap, SXTB16 into the halfword pairs (c, c+2) and
 * (c+1, c+3), one doubleword load of the tap's widened weights (laid out on
 * the host in that order), four multiply-accumulates (te_dsp.h te_dw_mac4).
 *
 * The taps are addressed through a table of pointers: per output row whose
 * window rows all lie inside the input, each tap's input row (from
 * te_window.h's te_rows_t, a ring of copies when running in place) at its
 * column offset, which serves every pixel whose window lies inside the input
 * horizontally (the pixel's column added); for the others, a table rebuilt
 * per pixel, a padding tap pointing at a row of input zero points. The sums are the portable
 * kernel's integers (the host bounded |acc| < 2^30), and requantization is
 * te_requant.h's. Channels past the last full quad take a scalar loop.
 */
#include "te_dw_fast.h"

#include <stddef.h>
#include <string.h>

#include "te_dsp.h"
#include "te_requant.h"

static inline TE_ALWAYS_INLINE void te_dw_fast_run(const te_dw_fast_params_t *p,
                                                                  const int8_t *input, const int16_t *filter,
                                                                  int8_t *output, int8_t *scratch, int full)
{
    const te_window_t *win = &p->win;
    const int32_t in_c = win->in_c, in_w = win->in_w, k_w = win->k_w;
    const int32_t taps = win->k_h * k_w, quads = in_c / 4;
    const int32_t act_min = p->act_min, act_max = p->act_max, zp = p->output_offset;
    const size_t in_image = (size_t)win->in_h * (size_t)in_w * (size_t)in_c;
    const int32_t span_w = (k_w - 1) * win->dil_w;
    uintptr_t *row_tab = (uintptr_t *)(void *)scratch;        /* per output row: tap rows at column 0 */
    uintptr_t *edge = (uintptr_t *)(void *)(scratch + 8 * taps); /* pointers, per border pixel */
    int8_t *zp_row = scratch + 16 * taps;                      /* in_c input zero points */
    int8_t *ring = (const void *)input == (void *)output ? scratch + TE_DW_FAST_RING_AT(win->k_h, k_w, in_c)
                                                         : NULL;
    int32_t b, t;
    memset(zp_row, (int8_t)p->input_zero_point, (size_t)in_c);
    for (b = 0; b < win->batches; ++b) {
        const int8_t *image = input + (size_t)b * in_image;
        te_rows_t rows;
        int32_t oy;
        te_rows_init(&rows, win, image, ring);
        for (oy = 0; oy < win->out_h; ++oy) {
            const int32_t iy0 = oy * win->stride_h - win->pad_top;
            /* the row table serves the row's pixels only when every tap row is inside */
            const int rows_inside = iy0 >= 0 && iy0 + (win->k_h - 1) * win->dil_h < win->in_h;
            int32_t ox;
            te_rows_keep(&rows, oy);
            for (t = 0; rows_inside && t < taps; ++t) {
                row_tab[t] = (uintptr_t)(te_rows_get(&rows, iy0 + (t / k_w) * win->dil_h) +
                                         (size_t)((t % k_w) * win->dil_w) * (size_t)in_c);
            }
            for (ox = 0; ox < win->out_w; ++ox, output += in_c) {
                const int32_t ix0 = ox * win->stride_w - win->pad_left;
                const uintptr_t *tab;
                uintptr_t add;
                const int32_t *w = (const int32_t *)(const void *)filter;
                const te_chan_t *c = p->chan;
                int32_t q, ch;
                if (rows_inside && ix0 >= 0 && ix0 + span_w < in_w) {
                    tab = row_tab;
                    add = (uintptr_t)((size_t)ix0 * (size_t)in_c);
                } else {
                    for (t = 0; t < taps; ++t) {
                        const int32_t iy = iy0 + (t / k_w) * win->dil_h, ix = ix0 + (t % k_w) * win->dil_w;
                        edge[t] = (iy < 0 || iy >= win->in_h || ix < 0 || ix >= in_w)
                                      ? (uintptr_t)zp_row
                                      : (uintptr_t)(te_rows_get(&rows, iy) + (size_t)ix * (size_t)in_c);
                    }
                    tab = edge;
                    add = 0;
                }
                for (q = 0; q < quads; ++q, c += 4, w += 2 * taps, add += 4) {
                    int32_t acc[4];
                    acc[0] = c[0].bias;
                    acc[1] = c[1].bias;
                    acc[2] = c[2].bias;
                    acc[3] = c[3].bias;
                    te_dw_mac4(tab, add, w, taps, acc);
                    output[4 * q] = te_requant_out(&c[0], acc[0], zp, full, act_min, act_max);
                    output[4 * q + 1] = te_requant_out(&c[1], acc[1], zp, full, act_min, act_max);
                    output[4 * q + 2] = te_requant_out(&c[2], acc[2], zp, full, act_min, act_max);
                    output[4 * q + 3] = te_requant_out(&c[3], acc[3], zp, full, act_min, act_max);
                }
                /* the last 1..3 channels: halfword k of the quad's words, in SXTB16 order */
                for (ch = 4 * quads; ch < in_c; ++ch, ++c, ++add) {
                    const int16_t *wh = (const int16_t *)(const void *)w + ((ch % 4) % 2) * 2 + (ch % 4) / 2;
                    int32_t acc = c->bias;
                    for (t = 0; t < taps; ++t) {
                        acc += (int32_t)*(const int8_t *)(tab[t] + add) * (int32_t)wh[4 * t];
                    }
                    output[ch] = te_requant_out(c, acc, zp, full, act_min, act_max);
                }
            }
        }
    }
}

void te_dw_fast_s8(const te_dw_fast_params_t *p, const int8_t *input, const int16_t *filter, int8_t *output,
                   int8_t *scratch)
{
    if (p->act_min == TE_INT8_MIN && p->act_max == TE_INT8_MAX) {
        te_dw_fast_run(p, input, filter, output, scratch, 1);
    } else {
        te_dw_fast_run(p, input, filter, output, scratch, 0);
    }
}
