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

/* Gather the receptive field of output pixel (oy, ox) into patch, in filter
 * order [k_h][k_w][in_c]; taps outside the input get the input zero point. */
static void te_conv_patch(const te_conv2d_params_t *p, const int8_t *image, int32_t oy, int32_t ox,
                          int8_t *patch)
{
    const int32_t in_c = p->in_c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int8_t pad = (int8_t)p->input_zero_point;
    int32_t ky;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        int32_t kx;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ix0 + kx * p->dil_w;
            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                memset(patch, pad, (size_t)in_c);
            } else {
                memcpy(patch, image + ((size_t)iy * (size_t)p->in_w + (size_t)ix) * (size_t)in_c,
                       (size_t)in_c);
            }
            patch += in_c;
        }
    }
}

static inline int8_t te_conv_requant(const te_conv2d_params_t *p, int32_t oc, int32_t acc)
{
    const int32_t c = p->per_channel ? oc : 0;
    acc = te_mul_by_quantized_mult(acc, p->mult[c], p->shift[c]) + p->output_offset;
    return (int8_t)TE_MIN(TE_MAX(acc, p->act_min), p->act_max);
}

void te_conv2d_s8(const te_conv2d_params_t *p, const int8_t *input, const int8_t *filter,
                  const int32_t *bias, int8_t *output, int8_t *scratch)
{
    const int32_t depth = p->k_h * p->k_w * p->in_c;
    const size_t in_image = (size_t)p->in_h * (size_t)p->in_w * (size_t)p->in_c;
    int32_t b;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + (size_t)b * in_image;
        int32_t oy;
        for (oy = 0; oy < p->out_h; ++oy) {
            int32_t ox;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int8_t *patch;
                const int8_t *w = filter;
                int32_t oc;
                if (p->direct) {
                    patch = image + ((size_t)(oy * p->stride_h) * (size_t)p->in_w +
                                     (size_t)(ox * p->stride_w)) * (size_t)p->in_c;
                } else {
                    te_conv_patch(p, image, oy, ox, scratch);
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
