/*
 * te_add_fast.h - int8 ADD and SUB from two 256-entry tables (the kernel the
 * lowering picks for the dsp and mve kernel sets; tinyedge/ops/elementwise.py).
 *
 * TFLM rescales each input on its own before adding (te_elementwise.c):
 *   x1 = MultiplyByQuantizedMultiplierSmallerThanOneExp((q1 + offset1) << 20, mult1, shift1)
 * so x1 is a function of the int8 q1 alone: the host tabulates it for all
 * 256 values (and x2, negated for SUB: -x2 is exact), and per element the
 * kernel adds two table entries and requantizes the sum with a te_chan_t
 * record (te_requant.h). The result is TFLM's integer.
 */
#ifndef TE_ADD_FAST_H
#define TE_ADD_FAST_H

#include <stdint.h>

#include "te_broadcast.h"
#include "te_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is computed on the host (tinyedge/ops/elementwise.py). */
typedef struct {
    const int32_t *table1;    /* [256]: input 1's rescaled value of q at [q + 128] */
    const int32_t *table2;    /* [256]: input 2's, negated for SUB */
    int32_t output_offset;    /* output zero point */
    int32_t act_min, act_max; /* fused activation clamp */
    te_chan_t out;            /* requantization of the sum (bias 0) */
    te_bcast_t walk;          /* the output as rows (one row of every element for equal shapes) */
} te_add_fast_params_t;

/* out may be in1 or in2 when that input has the output's shape (the planner
 * may run the op in place, tinyedge/planner.py): every variant reads element
 * i of both inputs before it writes element i of out, and no element after. */
void te_add_fast_s8(const te_add_fast_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TE_ADD_FAST_H */
