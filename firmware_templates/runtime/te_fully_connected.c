/*
 * te_fully_connected.c - int8 FULLY_CONNECTED, and the int8 dot products
 * te_conv.c shares.
 *
 * Arithmetic: TFLM's reference kernels
 * reference_integer_ops::FullyConnected (per-tensor weights) and
 * FullyConnectedPerChannel (one multiplier per output unit), int8 in/out:
 *   acc = bias[o] + sum_d filter[o][d] * (input[b][d] - input_zp)   (int32)
 *   out = min(max(MultiplyByQuantizedMultiplier(acc, mult, shift)
 *                 + output_zp, act_min), act_max)
 * with TFLM's double-rounding MultiplyByQuantizedMultiplier
 * (te_mul_by_quantized_mult). The multipliers and the clamp range come from
 * the host (tinyedge/ops/fully_connected.py), derived as TFLM's Prepare does.
 *
 * The input zero point is folded into the bias on the host, so the inner
 * loop is a plain int8 dot product, 4 output units per pass over the input.
 * Under TE_USE_DSP (te_common.h) 4 products take one 32-bit load of each
 * operand, SXTB16 (bytes 0,2 and 1,3 as halfword pairs) and two SMLADs; the
 * portable loop multiplies bytes. Both give the same integer.
 */
#include "te_fully_connected.h"

#include <stddef.h>
#include <string.h>

#include "te_common.h"

#if TE_USE_DSP
static inline int32_t te_load32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4); /* one unaligned LDR on Armv7E-M */
    return v;
}

/* acc + a[0..3] . b[0..3], a's bytes already split into (0,2) and (1,3) halfword pairs. */
static inline int32_t te_mac4(int32_t a02, int32_t a13, const int8_t *b, int32_t acc)
{
    const int32_t bv = te_load32(b);
    acc = te_smlad(a02, te_sxtb16(bv), acc);
    return te_smlad(a13, te_sxtb16_ror8(bv), acc);
}
#endif

int32_t te_dot_s8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
#if TE_USE_DSP
    /* Four products per iteration with SMLAD on sign-extended halfword
     * pairs. The sum is the same integer as the portable loop's. */
    for (; i + 4 <= n; i += 4) {
        const int32_t av = te_load32(a + i);
        acc = te_mac4(te_sxtb16(av), te_sxtb16_ror8(av), b + i, acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

void te_dot4_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t acc[4])
{
    const int8_t *w0 = w;
    const int8_t *w1 = w + n;
    const int8_t *w2 = w1 + n;
    const int8_t *w3 = w2 + n;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t i = 0;
#if TE_USE_DSP
    /* x is loaded and split once for the 4 rows. */
    for (; i + 4 <= n; i += 4) {
        const int32_t xv = te_load32(x + i);
        const int32_t x02 = te_sxtb16(xv);
        const int32_t x13 = te_sxtb16_ror8(xv);
        a0 = te_mac4(x02, x13, w0 + i, a0);
        a1 = te_mac4(x02, x13, w1 + i, a1);
        a2 = te_mac4(x02, x13, w2 + i, a2);
        a3 = te_mac4(x02, x13, w3 + i, a3);
    }
#endif
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

/* TFLM's output stage: requantize, add the output zero point, then max with
 * act_min and min with act_max, in that order. */
static inline int8_t te_fc_requant(const te_fc_params_t *p, int32_t o, int32_t acc)
{
    const int32_t c = p->per_channel ? o : 0;
    acc = te_mul_by_quantized_mult(acc, p->mult[c], p->shift[c]) + p->output_offset;
    return (int8_t)TE_MIN(TE_MAX(acc, p->act_min), p->act_max);
}

void te_fully_connected_s8(const te_fc_params_t *p, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, int8_t *output)
{
    const int32_t depth = p->in_depth;
    const int32_t units = p->out_depth;
    int32_t b;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = input + (size_t)b * (size_t)depth;
        int8_t *y = output + (size_t)b * (size_t)units;
        int32_t o = 0;
        for (; o + 4 <= units; o += 4) {
            int32_t acc[4];
            int32_t k;
            for (k = 0; k < 4; ++k) {
                acc[k] = bias != NULL ? bias[o + k] : 0;
            }
            te_dot4_s8(x, filter + (size_t)o * (size_t)depth, depth, acc);
            for (k = 0; k < 4; ++k) {
                y[o + k] = te_fc_requant(p, o + k, acc[k]);
            }
        }
        for (; o < units; ++o) {
            const int32_t acc = (bias != NULL ? bias[o] : 0) +
                                te_dot_s8(x, filter + (size_t)o * (size_t)depth, depth);
            y[o] = te_fc_requant(p, o, acc);
        }
    }
}
