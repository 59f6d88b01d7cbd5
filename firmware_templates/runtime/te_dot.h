/*
 * te_dot.h - the int8 dot products FULLY_CONNECTED, CONV_2D and
 * DEPTHWISE_CONV_2D share (portable C).
 *
 * Plain C99, header-only (static inline so that each kernel's loops are
 * compiled around them). arm_dsp/te_dot.h is the DSP-extension variant of
 * this file (same functions, same results: int32 sums are the same integer in
 * any order, modulo 2^32); a project holds one or the other
 * (tinyedge/kernels.py).
 */
#ifndef TE_DOT_H
#define TE_DOT_H

#include <stdint.h>

/* sum_i a[i] * b[i] over n int8 pairs, in int32. */
static inline int32_t te_dot_s8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    int32_t i;
    for (i = 0; i < n; ++i) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

/* acc[k] += sum_i x[i] * w[k * n + i] for the 4 consecutive rows k = 0..3 of
 * w (x read once for all 4). */
static inline void te_dot4_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t acc[4])
{
    const int8_t *w0 = w;
    const int8_t *w1 = w + n;
    const int8_t *w2 = w1 + n;
    const int8_t *w3 = w2 + n;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t xi = x[i];
        a0 += xi * (int32_t)w0[i];
        a1 += xi * (int32_t)w1[i];
        a2 += xi * (int32_t)w2[i];
        a3 += xi * (int32_t)w3[i];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Four lanes at once: acc[k] += sum_t row[t][offset + k] * w[t * w_stride + k]
 * for k = 0..3, over n rows (depthwise: the taps of one output pixel, 4
 * channels side by side in NHWC and in the [k_h][k_w][out_c] filter). */
static inline void te_dot4_lanes_s8(const int8_t *const *row, int32_t n, int32_t offset,
                                    const int8_t *w, int32_t w_stride, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t t;
    for (t = 0; t < n; ++t, w += w_stride) {
        const int8_t *x = row[t] + offset;
        a0 += (int32_t)x[0] * (int32_t)w[0];
        a1 += (int32_t)x[1] * (int32_t)w[1];
        a2 += (int32_t)x[2] * (int32_t)w[2];
        a3 += (int32_t)x[3] * (int32_t)w[3];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

#endif /* TE_DOT_H */
