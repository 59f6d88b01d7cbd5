/*
 * te_dot.h (arm_dsp) - the DSP-extension variant of runtime/te_dot.h: the
 * same functions with the same results, four int8 products per 32-bit load
 * of each operand: SXTB16 splits a word's bytes into the halfword pairs
 * (0,2) and (1,3), then two SMLADs (or SMLABB/SMLATT per lane) accumulate.
 * int32 sums wrap modulo 2^32 like the portable loops', so the integers are
 * the same.
 */
#ifndef TE_DOT_H
#define TE_DOT_H

#include <stdint.h>

#include "te_dsp.h"

/* acc + a[0..3] . b[0..3], a's bytes already split into (0,2) and (1,3) halfword pairs. */
static inline int32_t te_mac4(int32_t a02, int32_t a13, const int8_t *b, int32_t acc)
{
    const int32_t bv = te_load32(b);
    acc = te_smlad(a02, te_sxtb16(bv), acc);
    return te_smlad(a13, te_sxtb16_ror8(bv), acc);
}

static inline int32_t te_dot_s8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32_t av = te_load32(a + i);
        acc = te_mac4(te_sxtb16(av), te_sxtb16_ror8(av), b + i, acc);
    }
    for (; i < n; ++i) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

static inline void te_dot4_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t acc[4])
{
    const int8_t *w0 = w;
    const int8_t *w1 = w + n;
    const int8_t *w2 = w1 + n;
    const int8_t *w3 = w2 + n;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t i = 0;
    /* x is loaded and split once for the 4 rows */
    for (; i + 4 <= n; i += 4) {
        const int32_t xv = te_load32(x + i);
        const int32_t x02 = te_sxtb16(xv);
        const int32_t x13 = te_sxtb16_ror8(xv);
        a0 = te_mac4(x02, x13, w0 + i, a0);
        a1 = te_mac4(x02, x13, w1 + i, a1);
        a2 = te_mac4(x02, x13, w2 + i, a2);
        a3 = te_mac4(x02, x13, w3 + i, a3);
    }
    for (; i < n; ++i) {
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

/* one 32-bit load of the 4 lanes' inputs and weights per row; SMLABB/SMLATT
 * on the sign-extended (0,2) and (1,3) halfword pairs */
static inline void te_dot4_lanes_s8(const int8_t *const *row, int32_t n, int32_t offset,
                                    const int8_t *w, int32_t w_stride, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t t;
    for (t = 0; t < n; ++t, w += w_stride) {
        const int32_t xv = te_load32(row[t] + offset);
        const int32_t wv = te_load32(w);
        const int32_t x02 = te_sxtb16(xv);
        const int32_t w02 = te_sxtb16(wv);
        const int32_t x13 = te_sxtb16_ror8(xv);
        const int32_t w13 = te_sxtb16_ror8(wv);
        a0 = te_smlabb(x02, w02, a0);
        a2 = te_smlatt(x02, w02, a2);
        a1 = te_smlabb(x13, w13, a1);
        a3 = te_smlatt(x13, w13, a3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

#endif /* TE_DOT_H */
