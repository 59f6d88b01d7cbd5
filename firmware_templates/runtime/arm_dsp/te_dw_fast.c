/*
 * te_dw_fast.c (arm_dsp) - te_dw_fast.h's kernel with SMLABB/SMLATT: for
 * each output pixel and each quad of channels, one 32-bit load of the 4
 * input channels per tap, SXTB16 into the halfword pairs (c, c+2) and
 * (c+1, c+3), one doubleword load of the tap's widened weights (laid out on
 * the host in that order), four multiply-accumulates (te_dsp.h te_dw_mac4).
 *
 * The taps are addressed through a table: for pixels whose window lies
 * inside the input, one table of offsets from the window's corner, built
 * once; for the others, a table of pointers rebuilt per pixel, a padding tap
 * pointing at a row of input zero points. The sums are the portable
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
    uintptr_t *inner = (uintptr_t *)(void *)scratch;       /* offsets from the window's corner */
    uintptr_t *edge = (uintptr_t *)(void *)(scratch + 8 * taps); /* pointers, per border pixel */
    int8_t *zp_row = scratch + 16 * taps;
    int32_t b, t;
    memset(zp_row, (int8_t)p->input_zero_point, (size_t)in_c);
    for (t = 0; t < taps; ++t) {
        inner[t] = (uintptr_t)((size_t)((t / k_w) * win->dil_h * in_w + (t % k_w) * win->dil_w) * (size_t)in_c);
    }
    for (b = 0; b < win->batches; ++b) {
        const int8_t *image = input + (size_t)b * in_image;
        int32_t oy;
        for (oy = 0; oy < win->out_h; ++oy) {
            const int32_t iy0 = oy * win->stride_h - win->pad_top;
            int32_t ox;
            for (ox = 0; ox < win->out_w; ++ox, output += in_c) {
                const int32_t ix0 = ox * win->stride_w - win->pad_left;
                const uintptr_t *tab;
                uintptr_t add;
                const int32_t *w = (const int32_t *)(const void *)filter;
                const te_chan_t *c = p->chan;
                int32_t q, ch;
                if (te_window_inside(win, oy, ox)) {
                    tab = inner;
                    add = (uintptr_t)(image + ((size_t)iy0 * (size_t)in_w + (size_t)ix0) * (size_t)in_c);
                } else {
                    for (t = 0; t < taps; ++t) {
                        const int32_t pixel = te_window_tap(win, oy, ox, t);
                        edge[t] = pixel < 0 ? (uintptr_t)zp_row : (uintptr_t)(image + (size_t)pixel * (size_t)in_c);
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
