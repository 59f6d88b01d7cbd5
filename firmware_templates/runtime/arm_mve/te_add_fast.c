/*
 * te_add_fast.c (arm_mve) - te_add_fast.h's int8 ADD / SUB with Helium: the
 * same function, tables and results as the portable runtime/te_add_fast.c.
 *
 * Per 4 elements: each input's 4 bytes loaded sign-extended to 32-bit lanes,
 * + 128 gives their table rows, one gather (VLDRW with scaled offsets) reads
 * the rescaled values; their sum is requantized as TFLM does
 * (MultiplyByQuantizedMultiplier with the record's multiplier and right shift,
 * double rounding: VQRDMULH is SaturatingRoundingDoublingHighMul, and VRSHL's
 * ties-up rounding is turned into ties away from zero by first taking 1 from
 * negative values -- the record's shift is >= 1, tinyedge/ops/layout.py), plus
 * the output zero point, clamped. Rows where one input is broadcast read its
 * table once; other steps go element by element (te_requant.h).
 */
#include "te_add_fast.h"

#include <arm_mve.h>

#include "te_requant.h"

/* 4 table entries for the int8 values at q (the last, partial group predicated). */
static inline int32x4_t add_rows(const int32_t *table, const int8_t *q)
{
    return vldrwq_gather_shifted_offset_s32(table, vreinterpretq_u32_s32(vaddq_n_s32(vldrbq_s32(q), 128)));
}

static inline int32x4_t add_rows_p(const int32_t *table, const int8_t *q, mve_pred16_t pred)
{
    const uint32x4_t row = vreinterpretq_u32_s32(vaddq_n_s32(vldrbq_z_s32(q, pred), 128));
    return vldrwq_gather_shifted_offset_z_s32(table, row, pred);
}

/* The output of 4 sums. */
static inline int32x4_t add_out(const te_add_fast_params_t *p, int32x4_t sum)
{
    int32x4_t x = vqrdmulhq_n_s32(sum, p->out.mult);
    x = vrshlq_n_s32(vqaddq_s32(x, vshrq_n_s32(x, 31)), -p->out.rshift);
    x = vaddq_n_s32(x, p->output_offset);
    return vminq_s32(vmaxq_s32(x, vdupq_n_s32(p->act_min)), vdupq_n_s32(p->act_max));
}

/* One row of n elements whose steps are 0 (the same element) or 1. */
static void add_row(const te_add_fast_params_t *p, const int8_t *a, const int8_t *b, int32_t step1,
                    int32_t step2, int32_t n, int8_t *out)
{
    const int32x4_t c1 = vdupq_n_s32(p->table1[*a + 128]), c2 = vdupq_n_s32(p->table2[*b + 128]);
    for (; n >= 4; n -= 4, a += 4 * step1, b += 4 * step2, out += 4) {
        const int32x4_t x1 = step1 ? add_rows(p->table1, a) : c1;
        const int32x4_t x2 = step2 ? add_rows(p->table2, b) : c2;
        vstrbq_s32(out, add_out(p, vaddq_s32(x1, x2)));
    }
    if (n > 0) {
        const mve_pred16_t pred = vctp32q((uint32_t)n);
        const int32x4_t x1 = step1 ? add_rows_p(p->table1, a, pred) : c1;
        const int32x4_t x2 = step2 ? add_rows_p(p->table2, b, pred) : c2;
        vstrbq_p_s32(out, add_out(p, vaddq_s32(x1, x2)), pred);
    }
}

void te_add_fast_s8(const te_add_fast_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    te_bcast_cursor_t c;
    te_bcast_begin(&p->walk, &c);
    do {
        const int8_t *a = in1 + c.off1, *b = in2 + c.off2;
        int32_t i;
        if ((uint32_t)c.step1 <= 1u && (uint32_t)c.step2 <= 1u) {
            add_row(p, a, b, c.step1, c.step2, c.n, out);
            out += c.n;
            continue;
        }
        for (i = 0; i < c.n; ++i, a += c.step1, b += c.step2) {
            *out++ = te_requant_out(&p->out, p->table1[*a + 128] + p->table2[*b + 128], p->output_offset, 0,
                                    p->act_min, p->act_max);
        }
    } while (te_bcast_next_row(&p->walk, &c));
}
