/*
 * te_conv_fast.c - the portable reference of te_conv_fast.h's kernels: the
 * same constants and results as arm_dsp/te_conv_fast.c, in plain loops.
 *
 *   acc = chan[j].bias + sum over the patch of x * w    (padding taps: x = input zp)
 *   out[pixel][index[j]] = clamp(requant(acc))           (te_requant.h)
 * and every constant channel is copied from `constants`. chan[j].bias holds
 * bias - input_zp * sum(w), so padding taps reading input_zp add back what
 * the fold removed: the sum is TFLM's, which skips them.
 */
#include "te_conv_fast.h"

#include <stddef.h>
#include <string.h>

#include "te_requant.h"

/* Weight d of live channel live_ch in te_conv_fast.h's filter layout. */
static int32_t te_conv_fast_weight(const int16_t *filter, int32_t depth4, int32_t live_ch, int32_t d)
{
    static const uint8_t slot[4] = { 0, 4, 1, 5 };
    const int16_t *group = filter + ((size_t)(live_ch / 2) * (size_t)depth4 + (size_t)(d / 4) * 4) * 2;
    return group[slot[d % 4] + 2 * (live_ch % 2)];
}

/* The patch value at filter row ky, position j of output pixel (oy, ox): input, or the
 * zero point at padding. */
static int32_t te_patch_at(const te_conv_fast_params_t *p, const te_rows_t *rows, int32_t oy, int32_t ox,
                           int32_t ky, int32_t j)
{
    const te_window_t *w = &p->win;
    const int32_t iy = oy * w->stride_h - w->pad_top + ky * w->dil_h;
    const int32_t ix = ox * w->stride_w - w->pad_left + (j / w->in_c) * w->dil_w;
    if (iy < 0 || iy >= w->in_h || ix < 0 || ix >= w->in_w) {
        return p->input_zero_point;
    }
    return te_rows_get(rows, iy)[(size_t)ix * (size_t)w->in_c + (size_t)(j % w->in_c)];
}

/* Every pixel's patch is gathered into `patch` (int8, k_h * row) before any of
 * its outputs is written, so a 1x1 convolution may write its output over its
 * input (out_c <= in_c: output pixel p only covers input bytes already read);
 * other filters run in place through te_rows_t's ring (te_window.h). */
static void te_conv_fast_ref(const te_conv_fast_params_t *p, const int8_t *input, const int16_t *filter,
                             int8_t *output, int8_t *patch, int8_t *ring)
{
    const te_window_t *win = &p->win;
    const size_t in_image = (size_t)win->in_h * (size_t)win->in_w * (size_t)win->in_c;
    int32_t b;
    for (b = 0; b < win->batches; ++b) {
        te_rows_t rows;
        int32_t oy;
        te_rows_init(&rows, win, input + (size_t)b * in_image, ring);
        for (oy = 0; oy < win->out_h; ++oy) {
            int32_t ox;
            te_rows_keep(&rows, oy);
            for (ox = 0; ox < win->out_w; ++ox) {
                int32_t j, ky, i;
                for (ky = 0; ky < win->k_h; ++ky) {
                    for (i = 0; i < p->row; ++i) {
                        patch[ky * p->row + i] = (int8_t)te_patch_at(p, &rows, oy, ox, ky, i);
                    }
                }
                if (p->constants != NULL) {
                    memcpy(output, p->constants, (size_t)p->out_c);
                }
                for (j = 0; j < p->live; ++j) {
                    int32_t acc = p->chan[j].bias;
                    for (ky = 0; ky < win->k_h; ++ky) {
                        for (i = 0; i < p->row; ++i) {
                            acc += (int32_t)patch[ky * p->row + i] *
                                   te_conv_fast_weight(filter, p->depth4, j, ky * p->row4 + i);
                        }
                    }
                    output[p->index[j]] = te_clamp_out(te_requant(&p->chan[j], acc, p->output_offset),
                                                       p->act_min, p->act_max);
                }
                output += p->out_c;
            }
        }
    }
}

void te_conv1x1_fast_s8(const te_conv_fast_params_t *p, const int8_t *input, const int16_t *filter,
                        int8_t *output, int8_t *scratch)
{
    te_conv_fast_ref(p, input, filter, output, scratch, NULL);
}

void te_conv_fast_s8(const te_conv_fast_params_t *p, const int8_t *input, const int16_t *filter,
                     int8_t *output, int8_t *scratch)
{
    int8_t *ring = (const void *)input == (void *)output ? scratch + TE_CONV_FAST_RING_AT(p->depth4, p->row4)
                                                         : NULL;
    te_conv_fast_ref(p, input, filter, output, scratch, ring);
}
