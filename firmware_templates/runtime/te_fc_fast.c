/*
 * te_fc_fast.c - the portable reference of te_fc_fast.h: the same constants
 * and results as arm_dsp/te_fc_fast.c, in plain loops.
 *   out[b][o] = clamp(requant(chan[o].bias + sum_d x[b][d] * w[o][d]))   (te_requant.h)
 * chan[o].bias holds bias - input_zp * sum_d w[o][d] (folded on the host).
 */
#include "te_fc_fast.h"

#include <stddef.h>

#include "te_requant.h"

/* Weight d of unit o in te_fc_fast.h's layout. */
static int32_t te_fc_fast_weight(const int16_t *filter, int32_t depth4, int32_t o, int32_t d)
{
    static const uint8_t slot[4] = { 0, 2, 1, 3 };
    return filter[(size_t)(o / 4) * (size_t)depth4 * 4 + (size_t)(d / 4) * 16 + (size_t)(o % 4) * 4 + slot[d % 4]];
}

void te_fc_fast_s8(const te_fc_fast_params_t *p, const int8_t *input, const int16_t *filter, int8_t *output)
{
    int32_t b;
    for (b = 0; b < p->batches; ++b, input += p->in_depth, output += p->units) {
        int32_t o;
        for (o = 0; o < p->units; ++o) {
            int32_t acc = p->chan[o].bias;
            int32_t d;
            for (d = 0; d < p->in_depth; ++d) {
                acc += (int32_t)input[d] * te_fc_fast_weight(filter, p->depth4, o, d);
            }
            output[o] = te_clamp_out(te_requant(&p->chan[o], acc, p->output_offset), p->act_min, p->act_max);
        }
    }
}
