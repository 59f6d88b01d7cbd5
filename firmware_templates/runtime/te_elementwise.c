/*
 * te_elementwise.c - int8 and int16 ADD and SUB with broadcast.
 *
 * What TensorFlow Lite Micro computes (micro/kernels/add.cc ->
 * reference_integer_ops::Add / BroadcastAdd4DSlow for int8, whose per-element
 * function is AddFunc in kernels/internal/reference/integer_ops/add.h, and
 * reference_ops::Add / BroadcastAdd6DSlow for int16 in reference/add.h;
 * micro/kernels/sub.cc -> reference_ops::Sub / BroadcastQuantSubSlow in
 * kernels/internal/reference/sub.h). Every element, wherever it sits and
 * whatever the broadcast, takes the same steps:
 *
 *   x1  = MultiplyByQuantizedMultiplierSmallerThanOneExp(
 *             (q1 + in1_offset) << left_shift, in1_mult, in1_shift)
 *   x2  = likewise for input 2
 *   raw = x1 + x2        (ADD)      or      x1 - x2        (SUB)
 *   out = clamp(MultiplyByQuantizedMultiplierSmallerThanOneExp(raw, out_mult,
 *               out_shift) + out_offset, act_min, act_max)
 *
 * (SRDHM, then RoundingDivideByPOT with ties away from zero: te_common.h;
 * left_shift is 20 for int8, 15 for int16.) SUB is a true subtraction, not
 * ADD with input 2's multiplier negated: SRDHM rounds ties upward, so the two
 * differ at ties.
 *
 * Since no element depends on its position, the walk order is free: the
 * output in order as rows (te_broadcast.h), adjacent dimensions merged on the
 * host so the rows are as long as the broadcast allows (one row of every
 * element when the shapes are equal). Overflow: the
 * offset inputs are at most 255 (int8) or 65535 (int16) in magnitude, so the
 * shifted values stay below 2^31, and each rescaled input is at most half of
 * that (its multiplier is at most 1/2).
 */
#include "te_elementwise.h"

#include "te_common.h"

/* One rescaled input: (q + offset) << left_shift, times mult * 2^shift. */
static int32_t te_binary_scaled_in(int32_t q, int32_t offset, int32_t left_shift, int32_t mult,
                                   int32_t shift)
{
    const int32_t shifted = (int32_t)((uint32_t)(q + offset) << left_shift);
    return te_mul_by_quantized_mult_smaller_than_one(shifted, mult, shift);
}

/* One output element from its two inputs; sign is +1 (ADD) or -1 (SUB). The
 * result lies in [act_min, act_max], which the host keeps inside the type. */
static int32_t te_binary_one(const te_add_params_t *p, int32_t q1, int32_t q2, int32_t sign)
{
    const int32_t x1 = te_binary_scaled_in(q1, p->in1_offset, p->left_shift, p->in1_mult,
                                           p->in1_shift);
    const int32_t x2 = te_binary_scaled_in(q2, p->in2_offset, p->left_shift, p->in2_mult,
                                           p->in2_shift);
    const int32_t raw = sign > 0 ? x1 + x2 : x1 - x2;
    const int32_t s = te_mul_by_quantized_mult_smaller_than_one(raw, p->out_mult, p->out_shift)
                      + p->out_offset;
    return te_clamp_s32(s, p->act_min, p->act_max);
}

/* The kernels differ only in their element type, so each is one instance of
 * this walk (C has no templates): the output in order, row by row. sign is +1
 * (ADD) or -1 (SUB). */
#define TE_BINARY_KERNEL(name, T, sign)                                                    \
    void name(const te_add_params_t *p, const T *in1, const T *in2, T *out)                \
    {                                                                                      \
        te_bcast_cursor_t c;                                                               \
        int32_t i;                                                                         \
        te_bcast_begin(&p->walk, &c);                                                      \
        do {                                                                               \
            for (i = 0; i < c.n; ++i) {                                                    \
                *out++ = (T)te_binary_one(p, in1[c.off1 + i * c.step1],                    \
                                          in2[c.off2 + i * c.step2], (sign));              \
            }                                                                              \
        } while (te_bcast_next_row(&p->walk, &c));                                         \
    }

TE_BINARY_KERNEL(te_add_s8, int8_t, 1)
TE_BINARY_KERNEL(te_sub_s8, int8_t, -1)
TE_BINARY_KERNEL(te_add_s16, int16_t, 1)
TE_BINARY_KERNEL(te_sub_s16, int16_t, -1)
