/*
 * te_pool.c - int8 AVERAGE_POOL_2D and MAX_POOL_2D (NHWC).
 *
 * Arithmetic: TFLM's reference kernels reference_integer_ops::AveragePool
 * and MaxPool (int8; TFLM's Prepare requires the input and output to share
 * their quantization, so no requantization happens):
 *   - the window is clipped to the input: padding cells are not counted, so
 *     count = valid rows * valid cols of this output position (never 0 for
 *     the SAME/VALID geometries the host accepts);
 *   - average: int32 sum of the raw int8 values, then
 *         sum > 0 ? (sum + count/2) / count : (sum - count/2) / count
 *     with C's truncating division, i.e. round half away from zero; then max
 *     with act_min, min with act_max;
 *   - max: the largest valid cell (starting from -128), then max with
 *     (int8)act_min, min with (int8)act_max, as TFLM's std::max<int8_t> /
 *     std::min<int8_t> do.
 * act_min/act_max come from the host (TFLM's CalculateActivationRangeQuantized
 * with the output's scale and zero point).
 */
#include "te_pool.h"

#include "te_common.h"

/* Channels are processed in tranches so the accumulators live on the stack. */
#define TE_POOL_TRANCHE 64

typedef struct {
    int32_t y0, y1, x0, x1; /* valid window rows [y0, y1), cols [x0, x1) of the input */
} te_pool_window_t;

static te_pool_window_t te_pool_window(const te_pool_params_t *p, int32_t oy, int32_t ox)
{
    te_pool_window_t w;
    const int32_t iy = oy * p->stride_h - p->pad_h;
    const int32_t ix = ox * p->stride_w - p->pad_w;
    const int32_t fy0 = iy < 0 ? -iy : 0;
    const int32_t fx0 = ix < 0 ? -ix : 0;
    const int32_t fy1 = p->filter_h < p->in_h - iy ? p->filter_h : p->in_h - iy;
    const int32_t fx1 = p->filter_w < p->in_w - ix ? p->filter_w : p->in_w - ix;
    w.y0 = iy + fy0;
    w.y1 = iy + fy1;
    w.x0 = ix + fx0;
    w.x1 = ix + fx1;
    return w;
}

void te_avgpool_s8(const te_pool_params_t *p, const int8_t *in, int8_t *out)
{
    const int32_t C = p->channels;
    int32_t acc[TE_POOL_TRANCHE];
    int32_t b, oy, ox, c0, y, x, c;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (int32_t)b * p->in_h * p->in_w * C;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const te_pool_window_t w = te_pool_window(p, oy, ox);
                const int32_t count = (w.y1 - w.y0) * (w.x1 - w.x0);
                int8_t *o = out + (((int32_t)b * p->out_h + oy) * p->out_w + ox) * C;
                for (c0 = 0; c0 < C; c0 += TE_POOL_TRANCHE) {
                    const int32_t n = C - c0 < TE_POOL_TRANCHE ? C - c0 : TE_POOL_TRANCHE;
                    for (c = 0; c < n; ++c) {
                        acc[c] = 0;
                    }
                    for (y = w.y0; y < w.y1; ++y) {
                        for (x = w.x0; x < w.x1; ++x) {
                            const int8_t *px = in_b + (y * p->in_w + x) * C + c0;
                            for (c = 0; c < n; ++c) {
                                acc[c] += px[c];
                            }
                        }
                    }
                    for (c = 0; c < n; ++c) {
                        int32_t a = 0;
                        if (count > 0) {
                            a = acc[c] > 0 ? (acc[c] + count / 2) / count
                                           : (acc[c] - count / 2) / count;
                        }
                        a = a < p->act_min ? p->act_min : a;
                        a = a > p->act_max ? p->act_max : a;
                        o[c0 + c] = (int8_t)a;
                    }
                }
            }
        }
    }
}

void te_maxpool_s8(const te_pool_params_t *p, const int8_t *in, int8_t *out)
{
    const int32_t C = p->channels;
    const int8_t act_min = (int8_t)p->act_min;
    const int8_t act_max = (int8_t)p->act_max;
    int32_t b, oy, ox, y, x, c;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (int32_t)b * p->in_h * p->in_w * C;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const te_pool_window_t w = te_pool_window(p, oy, ox);
                int8_t *o = out + (((int32_t)b * p->out_h + oy) * p->out_w + ox) * C;
                for (c = 0; c < C; ++c) {
                    o[c] = (int8_t)TE_INT8_MIN;
                }
                for (y = w.y0; y < w.y1; ++y) {
                    for (x = w.x0; x < w.x1; ++x) {
                        const int8_t *px = in_b + (y * p->in_w + x) * C;
                        for (c = 0; c < C; ++c) {
                            o[c] = px[c] > o[c] ? px[c] : o[c];
                        }
                    }
                }
                for (c = 0; c < C; ++c) {
                    o[c] = o[c] > act_min ? o[c] : act_min;
                    o[c] = o[c] < act_max ? o[c] : act_max;
                }
            }
        }
    }
}
