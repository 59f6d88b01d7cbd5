/*
 * te_conv.c - int8 CONV_2D.
 *
 * Arithmetic: TFLM's reference kernel reference_integer_ops::ConvPerChannel
 * (int8; a per-tensor filter scale is broadcast to every output channel by
 * TFLM's Prepare, so both cases run this code):
 *   acc = bias[oc] + sum over the taps inside the input of
 *         filter[oc][ky][kx][ic] * (x - input_zp)                     (int32)
 *   out = min(max(MultiplyByQuantizedMultiplier(acc, mult[oc], shift[oc])
 *                 + output_zp, act_min), act_max)
 * (double rounding, te_mul_by_quantized_mult). TFLM skips the taps outside
 * the input; here each output pixel's receptive field is gathered into a
 * patch (im2col) whose padding taps hold input_zp, and the input zero-point
 * term is folded into the bias on the host:
 *   acc = (bias[oc] - input_zp * sum(w[oc])) + dot(patch, w[oc]),
 * the same integer (a padding tap adds input_zp * w, which the fold removes
 * again; int32 sums are the same modulo 2^32 in any order).
 *
 * The dot products are te_dot.h's te_dot4_s8 / te_dot_s8, 4 output channels
 * per pass over the patch.
 */
#include "te_conv.h"

#include <stddef.h>
#include <string.h>

#include "te_common.h"
#include "te_dot.h"
#include "te_window.h"

static inline int8_t te_conv_requant(const te_conv2d_params_t *p, int32_t oc, int32_t acc)
{
    const int32_t c = p->per_channel ? oc : 0;
    acc = te_mul_by_quantized_mult(acc, p->mult[c], p->shift[c]) + p->output_offset;
    return (int8_t)TE_MIN(TE_MAX(acc, p->act_min), p->act_max);
}

void te_conv2d_s8(const te_conv2d_params_t *p, const int8_t *input, const int8_t *filter,
                  const int32_t *bias, int8_t *output, int8_t *scratch)
{
    const te_window_t *win = &p->win;
    const int32_t depth = win->k_h * win->k_w * win->in_c;
    const size_t in_image = (size_t)win->in_h * (size_t)win->in_w * (size_t)win->in_c;
    int32_t b;
    for (b = 0; b < win->batches; ++b) {
        const int8_t *image = input + (size_t)b * in_image;
        int32_t oy;
        for (oy = 0; oy < win->out_h; ++oy) {
            int32_t ox;
            for (ox = 0; ox < win->out_w; ++ox) {
                const int8_t *patch;
                const int8_t *w = filter;
                int32_t oc;
                if (p->direct) {
                    patch = image + ((size_t)(oy * win->stride_h) * (size_t)win->in_w +
                                     (size_t)(ox * win->stride_w)) * (size_t)win->in_c;
                } else {
                    te_window_patch(win, image, oy, ox, (int8_t)p->input_zero_point, scratch);
                    patch = scratch;
                }
                for (oc = 0; oc + 4 <= p->out_c; oc += 4) {
                    int32_t acc[4];
                    int32_t k;
                    for (k = 0; k < 4; ++k) {
                        acc[k] = bias[oc + k];
                    }
                    te_dot4_s8(patch, w, depth, acc);
                    for (k = 0; k < 4; ++k) {
                        output[k] = te_conv_requant(p, oc + k, acc[k]);
                    }
                    output += 4;
                    w += 4 * depth;
                }
                for (; oc < p->out_c; ++oc) {
                    *output++ = te_conv_requant(p, oc, bias[oc] + te_dot_s8(patch, w, depth));
                    w += depth;
                }
            }
        }
    }
}
