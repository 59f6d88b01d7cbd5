/*
 * te_blocked.c - the blocked-layout kernels of te_blocked.h in plain C: the
 * readable reference of arm_mve/te_blocked.c, which a set without a vector
 * variant runs too.
 *
 * Arithmetic: as te_fully_connected.c, te_conv.c and te_depthwise.c (TFLM's
 * reference FullyConnected, ConvPerChannel and DepthwiseConvPerChannel):
 *   acc = bias' + sum of x * w          (bias' = bias - input_zp * sum(w), host)
 *   out = min(max(MultiplyByQuantizedMultiplier(acc, mult, shift) + output_zp,
 *                 act_min), act_max)
 * with padding taps reading the input zero point, which the folded bias
 * removes again, so the integer is TFLM's. Here the weights and the constants
 * are only read from their blocked positions (te_blocked.h).
 */
#include "te_blocked.h"

#include <stddef.h>

#include "te_common.h"

/* A channel's requantization from lane `lane` of rq entry e (te_blocked.h). */
static int8_t te_blocked_requant(const int32_t *e, int32_t lane, int32_t acc, int32_t out_off,
                                 int32_t act_min, int32_t act_max)
{
    const int32_t shift = e[TE_RQ4_LEFT + lane] + e[TE_RQ4_RIGHT + lane]; /* one of the two is 0 */
    acc = te_mul_by_quantized_mult(acc, e[TE_RQ4_MULT + lane], shift) + out_off;
    return (int8_t)TE_MIN(TE_MAX(acc, act_min), act_max);
}

/* W[o][d] of a row-blocked matrix with `chunks` 16-byte chunks per row. */
static int32_t te_blocked_w(const int8_t *filter, int32_t chunks, int32_t o, int32_t d)
{
    const size_t block = (size_t)(o / TE_BLOCK_ROWS) * (size_t)chunks + (size_t)(d / TE_BLOCK_CHUNK);
    return filter[(block * TE_BLOCK_ROWS + (size_t)(o % TE_BLOCK_ROWS)) * TE_BLOCK_CHUNK +
                  (size_t)(d % TE_BLOCK_CHUNK)];
}

void te_fully_connected_blocked_s8(const te_fc_blocked_params_t *p, const int8_t *input,
                                   const int8_t *filter, const int32_t *rq, int8_t *output)
{
    const int32_t depth = p->in_depth;
    const int32_t chunks = (depth + TE_BLOCK_CHUNK - 1) / TE_BLOCK_CHUNK;
    int32_t b, o, d;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = input + (size_t)b * (size_t)depth;
        for (o = 0; o < p->out_depth; ++o) {
            const int32_t *e = rq + (size_t)(o / TE_BLOCK_ROWS) * TE_RQ4_WORDS;
            int32_t acc = e[TE_RQ4_BIAS + o % TE_BLOCK_ROWS];
            for (d = 0; d < depth; ++d) {
                acc += (int32_t)x[d] * te_blocked_w(filter, chunks, o, d);
            }
            *output++ = te_blocked_requant(e, o % TE_BLOCK_ROWS, acc, p->output_offset, p->act_min,
                                           p->act_max);
        }
    }
}

void te_conv2d_blocked_s8(const te_conv2d_blocked_params_t *p, const int8_t *input,
                          const int8_t *filter, const int32_t *rq, int8_t *output, int8_t *scratch)
{
    const te_window_t *win = &p->win;
    const int32_t in_c = win->in_c, taps = win->k_h * win->k_w;
    const int32_t chunks = (taps * in_c + TE_BLOCK_CHUNK - 1) / TE_BLOCK_CHUNK;
    const size_t in_image = (size_t)win->in_h * (size_t)win->in_w * (size_t)in_c;
    int32_t b, oy, ox, oc, t, ic;
    (void)scratch; /* the vector variant gathers patches there */
    for (b = 0; b < win->batches; ++b) {
        const int8_t *image = input + (size_t)b * in_image;
        for (oy = 0; oy < win->out_h; ++oy) {
            for (ox = 0; ox < win->out_w; ++ox) {
                for (oc = 0; oc < p->out_c; ++oc) {
                    const int32_t *e = rq + (size_t)(oc / TE_BLOCK_ROWS) * TE_RQ4_WORDS;
                    int32_t acc = e[TE_RQ4_BIAS + oc % TE_BLOCK_ROWS];
                    for (t = 0; t < taps; ++t) {
                        const int32_t pix = te_window_tap(win, oy, ox, t);
                        const int8_t *px = pix < 0 ? NULL : image + (size_t)pix * (size_t)in_c;
                        for (ic = 0; ic < in_c; ++ic) {
                            const int32_t x = px != NULL ? px[ic] : p->input_zero_point;
                            acc += x * te_blocked_w(filter, chunks, oc, t * in_c + ic);
                        }
                    }
                    *output++ = te_blocked_requant(e, oc % TE_BLOCK_ROWS, acc, p->output_offset,
                                                   p->act_min, p->act_max);
                }
            }
        }
    }
}

/* The rq entry and its lane k holding depthwise lane l of block g:
 * l = TE_DW_LANE(s, k) = 4k + (0, 2, 1, 3)[s] is in entry 4g + s. */
static const int32_t *te_dw_rq(const int32_t *rq, int32_t g, int32_t l, int32_t *k)
{
    static const int32_t slot_of_rem[4] = {0, 2, 1, 3}; /* l % 4 -> s */
    *k = l / 4;
    return rq + (size_t)(4 * g + slot_of_rem[l % 4]) * TE_RQ4_WORDS;
}

void te_depthwise_blocked_s8(const te_dw_blocked_params_t *p, const int8_t *input,
                             const int8_t *filter, const int32_t *rq, int8_t *output,
                             int8_t *scratch)
{
    const te_window_t *win = &p->win;
    const int32_t C = win->in_c, taps = win->k_h * win->k_w;
    const size_t in_image = (size_t)win->in_h * (size_t)win->in_w * (size_t)C;
    int32_t b, oy, ox, c, t;
    (void)scratch; /* the vector variant keeps zero-point-padded input rows there */
    for (b = 0; b < win->batches; ++b) {
        const int8_t *image = input + (size_t)b * in_image;
        for (oy = 0; oy < win->out_h; ++oy) {
            for (ox = 0; ox < win->out_w; ++ox) {
                for (c = 0; c < C; ++c) {
                    /* a flat block's lane c holds channel c (any lane l with l % C == c would do) */
                    const int32_t g = p->flat ? 0 : c / TE_DW_LANES;
                    const int32_t l = p->flat ? c : c % TE_DW_LANES;
                    const int8_t *w = filter + (size_t)g * (size_t)taps * TE_DW_LANES + (size_t)l;
                    int32_t k;
                    const int32_t *e = te_dw_rq(rq, g, l, &k);
                    int32_t acc = e[TE_RQ4_BIAS + k];
                    for (t = 0; t < taps; ++t, w += TE_DW_LANES) {
                        const int32_t pix = te_window_tap(win, oy, ox, t);
                        const int32_t x = pix < 0 ? p->input_zero_point : image[(size_t)pix * (size_t)C + (size_t)c];
                        acc += x * (int32_t)*w;
                    }
                    *output++ = te_blocked_requant(e, k, acc, p->output_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}
