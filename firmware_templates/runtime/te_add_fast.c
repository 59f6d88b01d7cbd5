/*
 * te_add_fast.c - te_add_fast.h's kernel. One file for every kernel set: the
 * per-element work is two table loads, an add and te_requant.h's
 * requantization, which the set's te_requant.h implements (one SMMULR in
 * arm_dsp/). The walk is te_elementwise.c's (te_broadcast.h rows).
 */
#include "te_add_fast.h"

#include "te_requant.h"

static inline TE_ALWAYS_INLINE void te_add_fast_run(const te_add_fast_params_t *p, const int8_t *in1,
                                                    const int8_t *in2, int8_t *out, int full)
{
    const int32_t *t1 = p->table1 + 128, *t2 = p->table2 + 128;
    const int32_t zp = p->output_offset, act_min = p->act_min, act_max = p->act_max;
    te_bcast_cursor_t c;
    te_bcast_begin(&p->walk, &c);
    do {
        const int8_t *a = in1 + c.off1, *b = in2 + c.off2;
        int32_t i;
        for (i = 0; i < c.n; ++i, a += c.step1, b += c.step2) {
            *out++ = te_requant_out(&p->out, t1[*a] + t2[*b], zp, full, act_min, act_max);
        }
    } while (te_bcast_next_row(&p->walk, &c));
}

void te_add_fast_s8(const te_add_fast_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    if (p->act_min == TE_INT8_MIN && p->act_max == TE_INT8_MAX) {
        te_add_fast_run(p, in1, in2, out, 1);
    } else {
        te_add_fast_run(p, in1, in2, out, 0);
    }
}
