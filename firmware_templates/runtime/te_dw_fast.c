/*
 * te_dw_fast.c - the portable reference of te_dw_fast.h: the same constants
 * and results as arm_dsp/te_dw_fast.c, in plain loops.
 *
 *   acc = chan[c].bias + sum over the taps of x[c] * w[tap][c]   (padding taps: x = input zp)
 *   out[pixel][c] = clamp(requant(acc))                           (te_requant.h)
 * chan[c].bias holds bias - input_zp * sum of the channel's taps, so padding
 * taps reading input_zp add back what the fold removed: the sum is TFLM's,
 * which skips them. In place (output == input) the input rows come from
 * te_window.h's ring (te_rows_t).
 */
#include "te_dw_fast.h"

#include <stddef.h>

#include "te_requant.h"

/* Tap t of channel c in te_dw_fast.h's filter layout. */
static int32_t te_dw_fast_weight(const int16_t *filter, int32_t taps, int32_t t, int32_t c)
{
    static const uint8_t slot[4] = { 0, 2, 1, 3 };
    return filter[((size_t)(c / 4) * (size_t)taps + (size_t)t) * 4 + slot[c % 4]];
}

void te_dw_fast_s8(const te_dw_fast_params_t *p, const int8_t *input, const int16_t *filter, int8_t *output,
                   int8_t *scratch)
{
    const te_window_t *win = &p->win;
    const int32_t in_c = win->in_c, taps = win->k_h * win->k_w;
    const size_t in_image = (size_t)win->in_h * (size_t)win->in_w * (size_t)in_c;
    int8_t *ring = (const void *)input == (void *)output ? scratch + TE_DW_FAST_RING_AT(win->k_h, win->k_w, in_c)
                                                         : NULL;
    int32_t b;
    for (b = 0; b < win->batches; ++b) {
        te_rows_t rows;
        int32_t oy;
        te_rows_init(&rows, win, input + (size_t)b * in_image, ring);
        for (oy = 0; oy < win->out_h; ++oy) {
            int32_t ox;
            te_rows_keep(&rows, oy);
            for (ox = 0; ox < win->out_w; ++ox, output += in_c) {
                int32_t c;
                for (c = 0; c < in_c; ++c) {
                    int32_t acc = p->chan[c].bias;
                    int32_t t;
                    for (t = 0; t < taps; ++t) {
                        const int32_t iy = oy * win->stride_h - win->pad_top + (t / win->k_w) * win->dil_h;
                        const int32_t ix = ox * win->stride_w - win->pad_left + (t % win->k_w) * win->dil_w;
                        const int32_t x = (iy < 0 || iy >= win->in_h || ix < 0 || ix >= win->in_w)
                                              ? p->input_zero_point
                                              : te_rows_get(&rows, iy)[(size_t)ix * (size_t)in_c + (size_t)c];
                        acc += x * te_dw_fast_weight(filter, taps, t, c);
                    }
                    output[c] = te_clamp_out(te_requant(&p->chan[c], acc, p->output_offset), p->act_min, p->act_max);
                }
            }
        }
    }
}
