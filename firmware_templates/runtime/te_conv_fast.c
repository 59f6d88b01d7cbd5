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
static int32_t te_patch_at(const te_conv_fast_params_t *p, const int8_t *image, int32_t oy, int32_t ox,
                           int32_t ky, int32_t j)
{
    const int32_t in_c = p->win.in_c;
    const int32_t pixel = te_window_tap(&p->win, oy, ox, ky * p->win.k_w + j / in_c);
    return pixel < 0 ? p->input_zero_point : image[(size_t)pixel * (size_t)in_c + (size_t)(j % in_c)];
}

static void te_conv_fast_ref(const te_conv_fast_params_t *p, const int8_t *input, const int16_t *filter,
                             int8_t *output)
{
    const te_window_t *win = &p->win;
    const size_t in_image = (size_t)win->in_h * (size_t)win->in_w * (size_t)win->in_c;
    int32_t b;
    for (b = 0; b < win->batches; ++b) {
        const int8_t *image = input + (size_t)b * in_image;
        int32_t oy;
        for (oy = 0; oy < win->out_h; ++oy) {
            int32_t ox;
            for (ox = 0; ox < win->out_w; ++ox) {
                int32_t j;
                if (p->constants != NULL) {
                    memcpy(output, p->constants, (size_t)p->out_c);
                }
                for (j = 0; j < p->live; ++j) {
                    int32_t acc = p->chan[j].bias;
                    int32_t ky, i;
                    for (ky = 0; ky < win->k_h; ++ky) {
                        for (i = 0; i < p->row; ++i) {
                            acc += te_patch_at(p, image, oy, ox, ky, i) *
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
    (void)scratch;
    te_conv_fast_ref(p, input, filter, output);
}

void te_conv_fast_s8(const te_conv_fast_params_t *p, const int8_t *input, const int16_t *filter,
                     int8_t *output, int8_t *scratch)
{
    (void)scratch;
    te_conv_fast_ref(p, input, filter, output);
}
