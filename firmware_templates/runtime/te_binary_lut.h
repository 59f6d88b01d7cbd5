/*
 * te_binary_lut.h - int8 ADD and SUB through per-input tables.
 * Plain C99, no malloc; compiles for the host and for Cortex-M.
 *
 * The same arithmetic as te_add_s8 / te_sub_s8 (te_elementwise.c, TFLM's
 * reference Add/Sub): each input's rescaled value
 *   x = MultiplyByQuantizedMultiplierSmallerThanOneExp((q + offset) << 20, ...)
 * depends on its int8 q alone, so the kernel first tabulates it for the 256
 * values of q (one int32 table per input, in scratch, indexed by q's byte
 * (uint8_t)q), then every element is two table reads, a sum or difference
 * and the output requantization (te_binary_out). Same parameter block
 * (te_add_params_t, te_elementwise.h), same walk over the broadcast.
 */
#ifndef TE_BINARY_LUT_H
#define TE_BINARY_LUT_H

#include <stdint.h>

#include "te_elementwise.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Scratch: the two tables, 256 int32 each (word-aligned: the arena gives
 * scratch 16-byte alignment). */
#define TE_BINARY_LUT_ENTRIES 256
#define TE_BINARY_LUT_SCRATCH_BYTES (2 * TE_BINARY_LUT_ENTRIES * 4)

void te_add_lut_s8(const te_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                   int8_t *scratch);
void te_sub_lut_s8(const te_sub_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                   int8_t *scratch);

/* What each implementation (te_binary_lut.c, arm_mve/te_binary_lut.c) shares:
 * one row of the walk element by element, from the tables t1, t2; sign is +1
 * (ADD) or -1 (SUB). */
static inline int8_t *te_binary_lut_row(const te_add_params_t *p, const int32_t *t1, const int32_t *t2,
                                        const int8_t *in1, const int8_t *in2, const te_bcast_cursor_t *c,
                                        int8_t *out, int32_t sign)
{
    int32_t i;
    for (i = 0; i < c->n; ++i) {
        const int32_t x1 = t1[(uint8_t)in1[c->off1 + i * c->step1]];
        const int32_t x2 = t2[(uint8_t)in2[c->off2 + i * c->step2]];
        *out++ = (int8_t)te_binary_out(p, sign > 0 ? x1 + x2 : x1 - x2);
    }
    return out;
}

/* The two entry points, over an implementation's
 * static void te_binary_lut(p, in1, in2, out, scratch, sign). */
#define TE_BINARY_LUT_ENTRY_POINTS                                                                \
    void te_add_lut_s8(const te_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out, \
                       int8_t *scratch)                                                           \
    {                                                                                             \
        te_binary_lut(p, in1, in2, out, scratch, 1);                                              \
    }                                                                                             \
    void te_sub_lut_s8(const te_sub_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out, \
                       int8_t *scratch)                                                           \
    {                                                                                             \
        te_binary_lut(p, in1, in2, out, scratch, -1);                                             \
    }

#ifdef __cplusplus
}
#endif

#endif /* TE_BINARY_LUT_H */
