/*
 * te_depthwise.c - int8 DEPTHWISE_CONV_2D.
 *
 * Arithmetic: TFLM's reference kernel
 * reference_integer_ops::DepthwiseConvPerChannel (int8; a per-tensor filter
 * scale is broadcast to every channel by TFLM's Prepare):
 *   acc = bias[oc] + sum over the taps inside the input of
 *         filter[ky][kx][oc] * (x[ic] - input_zp),  ic = oc / depth_mult (int32)
 *   out = min(max(MultiplyByQuantizedMultiplier(acc, mult[oc], shift[oc])
 *                 + output_zp, act_min), act_max)
 * (double rounding, te_mul_by_quantized_mult) for every channel alike. TFLM
 * skips the taps outside the input; here the input zero-point term is folded
 * into the bias on the host (bias[oc] - input_zp * sum of the filter over the
 * taps) and a padding tap reads input_zp, so
 *   acc = bias'[oc] + sum over all the taps of x' * w[oc],
 * the same integer modulo 2^32.
 *
 * Loop order: for each output pixel a table of tap pointers is built in
 * scratch (each tap's input pixel, or a row of zero points for a padding
 * tap), so the inner loops carry no bounds checks. With depth_mult == 1,
 * groups of 4 channels are held in 4 accumulators while walking the taps:
 * NHWC and the filter's [k_h][k_w][out_c] layout give 4 contiguous bytes of
 * input and of filter per tap (te_dot.h's te_dot4_lanes_s8). Other channel
 * multipliers take a per-channel loop.
 */
#include "te_depthwise.h"

#include <stddef.h>
#include <string.h>

#include "te_common.h"
#include "te_dot.h"
#include "te_window.h"


/* Requantization constants, copied out of the params so that the compiler
 * need not reload them after every int8 store. */
typedef struct {
    const int32_t *mult;
    const int32_t *shift;
    int32_t per_channel;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} te_dw_requant_t;

static inline int8_t te_dw_requant(const te_dw_requant_t *r, int32_t oc, int32_t acc)
{
    const int32_t c = r->per_channel ? oc : 0;
    acc = te_mul_by_quantized_mult(acc, r->mult[c], r->shift[c]) + r->output_offset;
    return (int8_t)TE_MIN(TE_MAX(acc, r->act_min), r->act_max);
}

/* Any depth_mult: output channel oc reading input channel ic. */
static inline int32_t te_dw_one(const int8_t *const *tap, int32_t taps, const int8_t *w, int32_t out_c,
                                int32_t ic, int32_t acc)
{
    int32_t t;
    for (t = 0; t < taps; ++t, w += out_c) {
        acc += (int32_t)tap[t][ic] * (int32_t)*w;
    }
    return acc;
}

void te_depthwise_conv_s8(const te_depthwise_params_t *p, const int8_t *input,
                          const int8_t *filter, const int32_t *bias, int8_t *output,
                          int8_t *scratch)
{
    const te_window_t *win = &p->win;
    const int32_t in_c = win->in_c, out_c = p->out_c, taps = win->k_h * win->k_w;
    const int32_t depth_mult = p->depth_mult;
    const int32_t quads = depth_mult == 1 ? out_c / 4 * 4 : 0;
    const size_t in_image = (size_t)win->in_h * (size_t)win->in_w * (size_t)in_c;
    const te_dw_requant_t rq = { p->mult, p->shift, p->per_channel, p->output_offset,
                                 p->act_min, p->act_max };
    /* scratch: tap pointers (8-byte slots), then a row of zero points */
    const int8_t **tap = (const int8_t **)(void *)scratch;
    int8_t *pad_row = scratch + 8 * taps;
    int32_t b;
    memset(pad_row, (int8_t)p->input_zero_point, (size_t)in_c);
    for (b = 0; b < win->batches; ++b) {
        const int8_t *image = input + (size_t)b * in_image;
        int32_t oy;
        for (oy = 0; oy < win->out_h; ++oy) {
            int32_t ox;
            for (ox = 0; ox < win->out_w; ++ox) {
                int32_t oc = 0;
                int32_t t;
                for (t = 0; t < taps; ++t) {
                    const int32_t pixel = te_window_tap(win, oy, ox, t);
                    tap[t] = pixel < 0 ? pad_row : image + (size_t)pixel * (size_t)in_c;
                }
                for (; oc < quads; oc += 4) {
                    int32_t acc[4];
                    acc[0] = bias[oc];
                    acc[1] = bias[oc + 1];
                    acc[2] = bias[oc + 2];
                    acc[3] = bias[oc + 3];
                    te_dot4_lanes_s8(tap, taps, oc, filter + oc, out_c, acc);
                    output[oc] = te_dw_requant(&rq, oc, acc[0]);
                    output[oc + 1] = te_dw_requant(&rq, oc + 1, acc[1]);
                    output[oc + 2] = te_dw_requant(&rq, oc + 2, acc[2]);
                    output[oc + 3] = te_dw_requant(&rq, oc + 3, acc[3]);
                }
                for (; oc < out_c; ++oc) {
                    const int32_t acc = te_dw_one(tap, taps, filter + oc, out_c, oc / depth_mult, bias[oc]);
                    output[oc] = te_dw_requant(&rq, oc, acc);
                }
                output += out_c;
            }
        }
    }
}
