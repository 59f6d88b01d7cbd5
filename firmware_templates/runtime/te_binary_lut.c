/*
 * te_binary_lut.c - int8 ADD and SUB through per-input tables (te_binary_lut.h),
 * in plain C: the reference of arm_mve/te_binary_lut.c.
 */
#include "te_binary_lut.h"

#include "te_common.h"

/* table[(uint8_t)q] = input `which`'s rescaled value of q, for every int8 q. */
static void te_binary_tables(const te_add_params_t *p, int32_t *t1, int32_t *t2)
{
    int32_t q;
    for (q = TE_INT8_MIN; q <= TE_INT8_MAX; ++q) {
        t1[(uint8_t)q] = te_binary_scaled_in(q, p->in1_offset, p->left_shift, p->in1_mult, p->in1_shift);
        t2[(uint8_t)q] = te_binary_scaled_in(q, p->in2_offset, p->left_shift, p->in2_mult, p->in2_shift);
    }
}

/* sign: +1 ADD, -1 SUB. */
static void te_binary_lut(const te_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                          int8_t *scratch, int32_t sign)
{
    int32_t *t1 = (int32_t *)(void *)scratch;
    int32_t *t2 = t1 + TE_BINARY_LUT_ENTRIES;
    te_bcast_cursor_t c;
    te_binary_tables(p, t1, t2);
    te_bcast_begin(&p->walk, &c);
    do {
        out = te_binary_lut_row(p, t1, t2, in1, in2, &c, out, sign);
    } while (te_bcast_next_row(&p->walk, &c));
}

TE_BINARY_LUT_ENTRY_POINTS
