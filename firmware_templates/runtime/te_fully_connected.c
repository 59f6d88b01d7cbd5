/*
 * te_fully_connected.c - int8 FULLY_CONNECTED.
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
 * loop is a plain int8 dot product (te_dot.h), 4 output units per pass over
 * the input.
 */
#include "te_fully_connected.h"

#include <stddef.h>
#include <string.h>

#include "te_common.h"
#include "te_dot.h"

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
