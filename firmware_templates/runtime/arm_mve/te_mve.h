/*
 * te_mve.h (arm_mve) - Helium (M-profile Vector Extension) building blocks of
 * the arm_mve kernels: 16-byte copies, 4-row int8 dot products over blocked
 * weights, 4-lane requantization. Cortex-M55 only (arm_mve.h, inline asm).
 *
 * Instructions (Armv8.1-M Architecture Reference Manual, "MVE"):
 *   VMLADAVA.S8 Rda, Qn, Qm   Rda += sum of the 16 int8 products (exact in int32);
 *   WLSTP.8 / LETP            a low-overhead loop whose last iteration runs with
 *                             the lanes past n switched off (tail predication): a
 *                             predicated load reads zeros there, so a depth that
 *                             is not a multiple of 16 costs no separate tail;
 *   VQRDMULH.S32              (2ab + 2^31) >> 32 saturated: gemmlowp's
 *                             SaturatingRoundingDoublingHighMul, the same integer
 *                             (both are floor((ab + 2^30) / 2^31));
 *   VRSHL.S32 by -e           (x + 2^(e-1)) >> e computed without overflow: a
 *                             rounding shift whose ties go up. gemmlowp's
 *                             RoundingDivideByPOT breaks ties away from zero;
 *                             for x < 0 that is (x - 1 + 2^(e-1)) >> e, so
 *                             negative values first lose 1 when e > 0:
 *                             fix = (x & -e) >> 31 is -1 exactly then (the
 *                             sign bit of -e is set only when e > 0), added
 *                             with saturation (x = INT32_MIN gives the same
 *                             result either way).
 * Together with the left shift first (VSHL by a register: wraps like the
 * portable code), te_mve_requant is tflite::MultiplyByQuantizedMultiplier with
 * TFLM's double rounding (te_common.h te_mul_by_quantized_mult).
 */
#ifndef TE_MVE_H
#define TE_MVE_H

#include <arm_mve.h>
#include <stdint.h>

#include "te_blocked.h"

/* dst[0..n) = src[0..n), 16 bytes per iteration, the tail predicated. */
static inline void te_mve_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    __asm__ volatile(
        "   wlstp.8     lr, %[n], 1f\n"
        "2: vldrb.8     q0, [%[s]], #16\n"
        "   vstrb.8     q0, [%[d]], #16\n"
        "   letp        lr, 2b\n"
        "1:\n"
        : [s] "+r"(src), [d] "+r"(dst)
        : [n] "r"(n)
        : "q0", "lr", "memory");
}

/* dst[0..n) = v. */
static inline void te_mve_fill(int8_t *dst, int8_t v, int32_t n)
{
    const int8x16_t q = vdupq_n_s8(v);
    __asm__ volatile(
        "   wlstp.8     lr, %[n], 1f\n"
        "2: vstrb.8     %q[q], [%[d]], #16\n"
        "   letp        lr, 2b\n"
        "1:\n"
        : [d] "+r"(dst)
        : [n] "r"(n), [q] "w"(q)
        : "lr", "memory");
}

/* The 4 accumulators of one block of 4 weight rows (te_blocked.h layout):
 * bias[r] + sum_i x[i] * W[r][i] over n bytes. *w starts at the block and
 * ends at the next one (the chunks' post-increments walk the whole block:
 * the last, tail-predicated iteration still steps 4 x 16 bytes). */
static inline int32x4_t te_mve_block4(const int8_t *x, const int8_t **w, int32_t n, const int32_t *bias)
{
    int32_t a0, a1, a2, a3;
    int32x4_t r;
    const int8_t *wp = *w;
    __asm__ volatile(
        "   ldrd        %[a0], %[a1], [%[b]]\n"
        "   ldrd        %[a2], %[a3], [%[b], #8]\n"
        "   wlstp.8     lr, %[n], 1f\n"
        "2: vldrb.8     q0, [%[x]], #16\n"
        "   vldrb.8     q1, [%[w]], #16\n"
        "   vmladava.s8 %[a0], q0, q1\n"
        "   vldrb.8     q2, [%[w]], #16\n"
        "   vmladava.s8 %[a1], q0, q2\n"
        "   vldrb.8     q3, [%[w]], #16\n"
        "   vmladava.s8 %[a2], q0, q3\n"
        "   vldrb.8     q1, [%[w]], #16\n"
        "   vmladava.s8 %[a3], q0, q1\n"
        "   letp        lr, 2b\n"
        "1: vmov        %q[r][2], %q[r][0], %[a0], %[a2]\n"
        "   vmov        %q[r][3], %q[r][1], %[a1], %[a3]\n"
        : [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3), [x] "+r"(x), [w] "+r"(wp),
          [r] "=w"(r)
        : [n] "r"(n), [b] "r"(bias)
        : "q0", "q1", "q2", "q3", "lr", "memory");
    *w = wp;
    return r;
}

/* MultiplyByQuantizedMultiplier (double rounding) of 4 lanes with the
 * constants of rq entry `e` (te_blocked.h), plus the output zero point,
 * clamped to [lo, hi]. */
static inline int32x4_t te_mve_requant(int32x4_t acc, const int32_t *e, int32_t out_off, int32x4_t lo,
                                       int32x4_t hi)
{
    const int32x4_t right = vldrwq_s32(e + TE_RQ4_RIGHT);
    int32x4_t x = vqrdmulhq_s32(vshlq_s32(acc, vldrwq_s32(e + TE_RQ4_LEFT)), vldrwq_s32(e + TE_RQ4_MULT));
    x = vrshlq_s32(vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, right), 31)), right);
    return vminq_s32(vmaxq_s32(vaddq_n_s32(x, out_off), lo), hi);
}

/* te_mve_requant of two pixels' 4 lanes with the same constants (loaded once). */
static inline void te_mve_requant2(int32x4_t *a0, int32x4_t *a1, const int32_t *e, int32_t out_off, int32x4_t lo,
                                   int32x4_t hi)
{
    const int32x4_t mult = vldrwq_s32(e + TE_RQ4_MULT), left = vldrwq_s32(e + TE_RQ4_LEFT);
    const int32x4_t right = vldrwq_s32(e + TE_RQ4_RIGHT);
    int32x4_t x0 = vqrdmulhq_s32(vshlq_s32(*a0, left), mult);
    int32x4_t x1 = vqrdmulhq_s32(vshlq_s32(*a1, left), mult);
    x0 = vrshlq_s32(vqaddq_s32(x0, vshrq_n_s32(vandq_s32(x0, right), 31)), right);
    x1 = vrshlq_s32(vqaddq_s32(x1, vshrq_n_s32(vandq_s32(x1, right), 31)), right);
    *a0 = vminq_s32(vmaxq_s32(vaddq_n_s32(x0, out_off), lo), hi);
    *a1 = vminq_s32(vmaxq_s32(vaddq_n_s32(x1, out_off), lo), hi);
}

/* out[o] = requant(bias[o] + x . W[o]) for o < n_out: one pass over x per
 * block of 4 rows. */
static inline void te_mve_gemv(const int8_t *x, int32_t depth, const int8_t *w, const int32_t *rq,
                               int32_t n_out, int8_t *out, int32_t out_off, int32x4_t lo, int32x4_t hi)
{
    int32_t o = 0;
    for (; o + TE_BLOCK_ROWS <= n_out; o += TE_BLOCK_ROWS, rq += TE_RQ4_WORDS, out += TE_BLOCK_ROWS) {
        const int32x4_t acc = te_mve_block4(x, &w, depth, rq + TE_RQ4_BIAS);
        vstrbq_s32(out, te_mve_requant(acc, rq, out_off, lo, hi));
    }
    if (o < n_out) {
        const int32x4_t acc = te_mve_block4(x, &w, depth, rq + TE_RQ4_BIAS);
        vstrbq_p_s32(out, te_mve_requant(acc, rq, out_off, lo, hi), vctp32q((uint32_t)(n_out - o)));
    }
}

#endif /* TE_MVE_H */
