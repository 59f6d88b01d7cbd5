/*
 * te_binary_lut.c (arm_mve) - int8 ADD and SUB through per-input tables
 * (te_binary_lut.h) with Helium: the same functions and results as the
 * portable runtime/te_binary_lut.c.
 *
 * Per 4 elements: two byte loads zero-extended to 32-bit lanes (the byte is
 * the table index), two gathers from the tables (VLDRW with scaled offsets),
 * the sum or difference, then TFLM's output stage on 4 lanes -- VQRDMULH by
 * the output multiplier (SaturatingRoundingDoublingHighMul), the rounding
 * right shift with ties away from zero (VRSHL rounds ties up, so negative
 * values lose 1 first when the shift is not 0; see te_mve.h), the output zero
 * point and the activation clamp. Rows where one input is broadcast read its
 * table once; other steps take the portable per-element walk.
 */
#include "te_binary_lut.h"

#include <arm_mve.h>

#include "te_common.h"

/* MultiplyByQuantizedMultiplierSmallerThanOneExp on 4 lanes (shift <= 0). */
static inline int32x4_t lut_scale(int32x4_t x, int32_t mult, int32_t shift)
{
    x = vqrdmulhq_n_s32(x, mult);
    x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, vdupq_n_s32(shift)), 31));
    return vrshlq_n_s32(x, shift);
}

/* Both tables, 4 entries at a time: entry i holds q = (int8_t)i. */
static void lut_tables(const te_add_params_t *p, int32_t *t1, int32_t *t2)
{
    int32_t i;
    for (i = 0; i < TE_BINARY_LUT_ENTRIES; i += 4) {
        const int32x4_t q = vsubq_n_s32(vreinterpretq_s32_u32(vidupq_n_u32((uint32_t)i, 1)),
                                        i < 128 ? 0 : 256);
        vst1q_s32(t1 + i, lut_scale(vshlq_r_s32(vaddq_n_s32(q, p->in1_offset), p->left_shift), p->in1_mult,
                                    p->in1_shift));
        vst1q_s32(t2 + i, lut_scale(vshlq_r_s32(vaddq_n_s32(q, p->in2_offset), p->left_shift), p->in2_mult,
                                    p->in2_shift));
    }
}

/* The output of 4 lanes from raw = x1 +- x2 (te_binary_out). */
static inline int32x4_t lut_out(const te_add_params_t *p, int32x4_t raw)
{
    const int32x4_t s = vaddq_n_s32(lut_scale(raw, p->out_mult, p->out_shift), p->out_offset);
    return vminq_s32(vmaxq_s32(s, vdupq_n_s32(p->act_min)), vdupq_n_s32(p->act_max));
}

/* The table entries of 4 input bytes (the last load of a row predicated). */
static inline int32x4_t lut_read(const int32_t *t, const int8_t *q)
{
    return vldrwq_gather_shifted_offset_s32(t, vldrbq_u32((const uint8_t *)q));
}

static inline int32x4_t lut_read_p(const int32_t *t, const int8_t *q, mve_pred16_t pr)
{
    return vldrwq_gather_shifted_offset_z_s32(t, vldrbq_z_u32((const uint8_t *)q, pr), pr);
}

/* One row of n elements; step1 / step2 are 0 (broadcast: the same element) or 1. */
static inline void lut_row(const te_add_params_t *p, const int32_t *t1, const int32_t *t2, const int8_t *a,
                           const int8_t *b, int32_t step1, int32_t step2, int32_t n, int8_t *out, int32_t sign)
{
    const int32x4_t c1 = vdupq_n_s32(t1[(uint8_t)*a]), c2 = vdupq_n_s32(t2[(uint8_t)*b]);
    for (; n > 0; n -= 4, a += 4 * step1, b += 4 * step2, out += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)n);
        int32x4_t x1, x2;
        if (n >= 4) {
            x1 = step1 ? lut_read(t1, a) : c1;
            x2 = step2 ? lut_read(t2, b) : c2;
        } else {
            x1 = step1 ? lut_read_p(t1, a, pr) : c1;
            x2 = step2 ? lut_read_p(t2, b, pr) : c2;
        }
        vstrbq_p_s32(out, lut_out(p, sign > 0 ? vaddq_s32(x1, x2) : vsubq_s32(x1, x2)), pr);
    }
}

static void te_binary_lut(const te_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                       int8_t *scratch, int32_t sign)
{
    int32_t *t1 = (int32_t *)(void *)scratch;
    int32_t *t2 = t1 + TE_BINARY_LUT_ENTRIES;
    te_bcast_cursor_t c;
    lut_tables(p, t1, t2);
    te_bcast_begin(&p->walk, &c);
    do {
        if ((uint32_t)c.step1 <= 1u && (uint32_t)c.step2 <= 1u) {
            lut_row(p, t1, t2, in1 + c.off1, in2 + c.off2, c.step1, c.step2, c.n, out, sign);
            out += c.n;
        } else {
            out = te_binary_lut_row(p, t1, t2, in1, in2, &c, out, sign);
        }
    } while (te_bcast_next_row(&p->walk, &c));
}

TE_BINARY_LUT_ENTRY_POINTS
