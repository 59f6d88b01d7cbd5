/*
 * te_fc_fast.c (arm_dsp) - te_fc_fast.h's kernel with SMLAD: 4 units per
 * pass over the input. Each 4 input bytes are loaded once and widened by
 * SXTB16 into (d, d+2) and (d+1, d+3); each unit's 4 weights come widened
 * from the host in that order, one doubleword load, two SMLADs (te_dsp.h
 * te_fc_mac4). The sums are the portable kernel's integers (the host bounded
 * |acc| < 2^30), and requantization is te_requant.h's.
 */
#include "te_fc_fast.h"

#include <stddef.h>
#include <string.h>

#include "te_dsp.h"
#include "te_requant.h"

static inline TE_ALWAYS_INLINE void te_fc_fast_run(const te_fc_fast_params_t *p,
                                                                  const int8_t *input, const int16_t *filter,
                                                                  int8_t *output, int full)
{
    const int32_t depth = p->in_depth, groups = depth / 4, rest = depth % 4;
    const int32_t act_min = p->act_min, act_max = p->act_max, zp = p->output_offset;
    int32_t b;
    for (b = 0; b < p->batches; ++b, input += depth, output += p->units) {
        const int32_t *w = (const int32_t *)(const void *)filter;
        const te_chan_t *c = p->chan;
        int32_t o;
        for (o = 0; o < p->units; o += 4, c += 4) {
            int32_t acc[4];
            int32_t k;
            acc[0] = c[0].bias;
            acc[1] = c[1].bias;
            acc[2] = c[2].bias;
            acc[3] = c[3].bias;
            if (groups > 0) {
                te_fc_mac4(input, w, groups, acc);
                w += 8 * groups;
            }
            if (rest) { /* the last 1..3 inputs, zero-padded like the weights */
                uint8_t tail[4] = { 0, 0, 0, 0 };
                int32_t v, xa, xb;
                memcpy(tail, input + 4 * groups, (size_t)rest);
                v = te_load32(tail);
                xa = te_sxtb16(v);
                xb = te_sxtb16_ror8(v);
                for (k = 0; k < 4; ++k) {
                    acc[k] = te_smlad(xb, w[2 * k + 1], te_smlad(xa, w[2 * k], acc[k]));
                }
                w += 8;
            }
            for (k = 0; k < 4 && o + k < p->units; ++k) {
                output[o + k] = te_requant_out(&c[k], acc[k], zp, full, act_min, act_max);
            }
        }
    }
}

void te_fc_fast_s8(const te_fc_fast_params_t *p, const int8_t *input, const int16_t *filter, int8_t *output)
{
    if (p->act_min == TE_INT8_MIN && p->act_max == TE_INT8_MAX) {
        te_fc_fast_run(p, input, filter, output, 1);
    } else {
        te_fc_fast_run(p, input, filter, output, 0);
    }
}
