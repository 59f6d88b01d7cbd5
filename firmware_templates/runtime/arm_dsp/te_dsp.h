/*
 * te_dsp.h - the Armv7E-M / Armv8-M DSP-extension instructions the arm_dsp
 * kernels use, as C functions (the "dsp" kernel set only; tinyedge/kernels.py).
 *
 * On a core with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4, M7, M33,
 * M55) they are the instructions, through ACLE's <arm_acle.h> or one line of
 * inline assembly. On the host (tests, `make host`) they are emulated in
 * plain C from the pseudocode of the Armv7-M Architecture Reference Manual
 * (ARM DDI 0403E, A7.7: SXTB16, SMLAD, SMLABB/SMLATT, SMMULR, SSAT;
 * accumulation wraps modulo 2^32), so every dsp kernel runs against the oracle in milliseconds;
 * the instructions themselves run in QEMU. On an Arm core without the
 * extension this header refuses to compile: the dsp set is not for it.
 */
#ifndef TE_DSP_H
#define TE_DSP_H

#include <stdint.h>
#include <string.h>

/* 4 bytes from any address as one word: one (unaligned) LDR on Armv7E-M. */
static inline int32_t te_load32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

/* bytes 0 and 2 of v, sign-extended into the two halfwords */
static inline int32_t te_sxtb16(int32_t v)
{
    return __sxtb16(v);
}

/* bytes 1 and 3 of v, sign-extended (SXTB16 with its ROR #8 operand) */
static inline int32_t te_sxtb16_ror8(int32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* acc + lo(a)*lo(b) + hi(a)*hi(b), halfwords signed */
static inline int32_t te_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

/* acc + lo(a)*lo(b) */
static inline int32_t te_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return __smlabb(a, b, acc);
}

/* (a * b + 2^31) >> 32: the high word of the product, rounded */
static inline int32_t te_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* v saturated to [-128, 127] */
static inline int32_t te_ssat8(int32_t v)
{
    return __ssat(v, 8);
}

/* acc + hi(a)*hi(b) */
static inline int32_t te_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return __smlatt(a, b, acc);
}

/* The 2x2 block of te_conv_fast: over n >= 1 groups, each two words of
 * widened input pairs x = [A(p0) A(p1) B(p0) B(p1)] and of weight pairs
 * w = [A(w0) A(w1) B(w0) B(w1)],
 *   acc[2*i + j] += SMLAD(A(pi), A(wj)) + SMLAD(B(pi), B(wj)).
 * Doubleword loads with post-increment: 4 loads and 8 SMLADs per group. */
static inline void te_mac_2x2(const int32_t *x, const int32_t *w, int32_t n, int32_t acc[4])
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t x0, x1, w0, w1;
    /* an odd group first, then two groups per pass */
#define TE_MAC_2X2_GROUP                                     \
    "ldrd %[x0], %[x1], [%[x]], #8\n\t"                      \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                      \
    "smlad %[a00], %[x0], %[w0], %[a00]\n\t"                 \
    "smlad %[a01], %[x0], %[w1], %[a01]\n\t"                 \
    "smlad %[a10], %[x1], %[w0], %[a10]\n\t"                 \
    "smlad %[a11], %[x1], %[w1], %[a11]\n\t"                 \
    "ldrd %[x0], %[x1], [%[x]], #8\n\t"                      \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                      \
    "smlad %[a00], %[x0], %[w0], %[a00]\n\t"                 \
    "smlad %[a01], %[x0], %[w1], %[a01]\n\t"                 \
    "smlad %[a10], %[x1], %[w0], %[a10]\n\t"                 \
    "smlad %[a11], %[x1], %[w1], %[a11]\n\t"
    __asm__ volatile(
        "lsrs %[n], %[n], #1\n\t" /* C: n was odd; Z: no pair of groups */
        "bcc 2f\n\t"
        TE_MAC_2X2_GROUP
        "2:\n\t"
        "beq 3f\n\t"
        "1:\n\t"
        TE_MAC_2X2_GROUP
        TE_MAC_2X2_GROUP
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "3:"
        : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [x] "+r"(x), [w] "+r"(w),
          [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1), [w0] "=&r"(w0), [w1] "=&r"(w1)
        :
        : "cc", "memory");
#undef TE_MAC_2X2_GROUP
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* Widen n groups of 4 bytes of src (any alignment) into the words dst[0]
 * = (src[0], src[2]), dst[2] = (src[1], src[3]), the next group 4 words on
 * (one pixel's slot of te_conv_fast's interleaved patch). Returns dst after. */
static inline int32_t *te_widen_groups(int32_t *dst, const int8_t *src, int32_t n)
{
    int32_t v, b;
    __asm__ volatile(
        "cbz %[n], 2f\n\t"
        "1:\n\t"
        "ldr %[v], [%[src]], #4\n\t"
        "sxtb16 %[b], %[v], ror #8\n\t"
        "sxtb16 %[v], %[v]\n\t"
        "str %[v], [%[dst]], #8\n\t"
        "str %[b], [%[dst]], #8\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "2:"
        : [dst] "+r"(dst), [src] "+r"(src), [n] "+l"(n), [v] "=&r"(v), [b] "=&r"(b)
        :
        : "cc", "memory");
    return dst;
}

/* The 4-channel tap loop of te_dw_fast: over n >= 1 taps, 4 input bytes at
 * tab[t] + add (4 channels c..c+3, NHWC) times the widened weight words
 * w = [(w[c], w[c+2]) (w[c+1], w[c+3])] of the tap:
 *   acc[k] += x[k] * w[k], one SMLABB/SMLATT each. */
static inline void te_dw_mac4(const uintptr_t *tab, uintptr_t add, const int32_t *w, int32_t n, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t o, x, x13, w0, w1;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[o], [%[tab]], #4\n\t"
        "ldr %[x], [%[o], %[add]]\n\t"
        "ldrd %[w0], %[w1], [%[w]], #8\n\t"
        "sxtb16 %[x13], %[x], ror #8\n\t"
        "sxtb16 %[x], %[x]\n\t"
        "smlabb %[a0], %[x], %[w0], %[a0]\n\t"
        "smlatt %[a2], %[x], %[w0], %[a2]\n\t"
        "smlabb %[a1], %[x13], %[w1], %[a1]\n\t"
        "smlatt %[a3], %[x13], %[w1], %[a3]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [tab] "+r"(tab), [w] "+r"(w),
          [n] "+r"(n), [o] "=&r"(o), [x] "=&r"(x), [x13] "=&r"(x13), [w0] "=&r"(w0), [w1] "=&r"(w1)
        : [add] "r"(add)
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* The 4-unit loop of te_fc_fast: over n >= 1 groups of 4 input bytes x
 * (any alignment), widened to A = (x[d], x[d+2]), B = (x[d+1], x[d+3]), and
 * per unit k the weight words w = [A(k) B(k)]:
 *   acc[k] += SMLAD(A, A(k)) + SMLAD(B, B(k)). */
static inline void te_fc_mac4(const int8_t *x, const int32_t *w, int32_t n, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t xa, xb, w0, w1;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[xa], [%[x]], #4\n\t"
        "sxtb16 %[xb], %[xa], ror #8\n\t"
        "sxtb16 %[xa], %[xa]\n\t"
        "ldrd %[w0], %[w1], [%[w]], #8\n\t"
        "smlad %[a0], %[xa], %[w0], %[a0]\n\t"
        "smlad %[a0], %[xb], %[w1], %[a0]\n\t"
        "ldrd %[w0], %[w1], [%[w]], #8\n\t"
        "smlad %[a1], %[xa], %[w0], %[a1]\n\t"
        "smlad %[a1], %[xb], %[w1], %[a1]\n\t"
        "ldrd %[w0], %[w1], [%[w]], #8\n\t"
        "smlad %[a2], %[xa], %[w0], %[a2]\n\t"
        "smlad %[a2], %[xb], %[w1], %[a2]\n\t"
        "ldrd %[w0], %[w1], [%[w]], #8\n\t"
        "smlad %[a3], %[xa], %[w0], %[a3]\n\t"
        "smlad %[a3], %[xb], %[w1], %[a3]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w),
          [n] "+r"(n), [xa] "=&r"(xa), [xb] "=&r"(xb), [w0] "=&r"(w0), [w1] "=&r"(w1)
        :
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

#elif defined(__arm__) || defined(__thumb__)
#error "the dsp kernel set needs the DSP extension (__ARM_FEATURE_DSP): generate with --kernels portable"

#else /* the host: the instructions' pseudocode in C */

static inline int32_t te_lo16(int32_t v)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v & 0xffffu);
}

static inline int32_t te_hi16(int32_t v)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v >> 16);
}

static inline int32_t te_sxtb16(int32_t v)
{
    const uint32_t lo = (uint32_t)(int32_t)(int8_t)(uint8_t)((uint32_t)v & 0xffu) & 0xffffu;
    const uint32_t hi = (uint32_t)(int32_t)(int8_t)(uint8_t)(((uint32_t)v >> 16) & 0xffu) & 0xffffu;
    return (int32_t)(lo | (hi << 16));
}

static inline int32_t te_sxtb16_ror8(int32_t v)
{
    return te_sxtb16((int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24)));
}

static inline int32_t te_smlad(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_lo16(a) * te_lo16(b)) +
                     (uint32_t)(te_hi16(a) * te_hi16(b)));
}

static inline int32_t te_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_lo16(a) * te_lo16(b)));
}

static inline int32_t te_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_hi16(a) * te_hi16(b)));
}

static inline int32_t te_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32);
}

static inline int32_t te_ssat8(int32_t v)
{
    return v < -128 ? -128 : (v > 127 ? 127 : v);
}

static inline void te_dw_mac4(const uintptr_t *tab, uintptr_t add, const int32_t *w, int32_t n, int32_t acc[4])
{
    int32_t t;
    for (t = 0; t < n; ++t, w += 2) {
        const int32_t v = te_load32((const void *)(tab[t] + add));
        const int32_t x02 = te_sxtb16(v), x13 = te_sxtb16_ror8(v);
        acc[0] = te_smlabb(x02, w[0], acc[0]);
        acc[2] = te_smlatt(x02, w[0], acc[2]);
        acc[1] = te_smlabb(x13, w[1], acc[1]);
        acc[3] = te_smlatt(x13, w[1], acc[3]);
    }
}

static inline int32_t *te_widen_groups(int32_t *dst, const int8_t *src, int32_t n)
{
    int32_t g;
    for (g = 0; g < n; ++g, src += 4, dst += 4) {
        const int32_t v = te_load32(src);
        dst[0] = te_sxtb16(v);
        dst[2] = te_sxtb16_ror8(v);
    }
    return dst;
}

static inline void te_fc_mac4(const int8_t *x, const int32_t *w, int32_t n, int32_t acc[4])
{
    int32_t g, k;
    for (g = 0; g < n; ++g, x += 4) {
        const int32_t v = te_load32(x);
        const int32_t xa = te_sxtb16(v), xb = te_sxtb16_ror8(v);
        for (k = 0; k < 4; ++k, w += 2) {
            acc[k] = te_smlad(xb, w[1], te_smlad(xa, w[0], acc[k]));
        }
    }
}

static inline void te_mac_2x2(const int32_t *x, const int32_t *w, int32_t n, int32_t acc[4])
{
    int32_t g;
    for (g = 0; g < n; ++g, x += 4, w += 4) {
        acc[0] = te_smlad(x[2], w[2], te_smlad(x[0], w[0], acc[0]));
        acc[1] = te_smlad(x[2], w[3], te_smlad(x[0], w[1], acc[1]));
        acc[2] = te_smlad(x[3], w[2], te_smlad(x[1], w[0], acc[2]));
        acc[3] = te_smlad(x[3], w[3], te_smlad(x[1], w[1], acc[3]));
    }
}

#endif

#endif /* TE_DSP_H */
