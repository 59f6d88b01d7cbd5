/*
 * te_dsp.h - the Armv7E-M / Armv8-M DSP-extension instructions the arm_dsp
 * kernels use, as C functions (the "dsp" kernel set only; tinyedge/kernels.py).
 *
 * On a core with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4, M7, M33,
 * M55) they are the instructions, through ACLE's <arm_acle.h> or one line of
 * inline assembly. On the host (tests, `make host`) they are emulated in
 * plain C from the pseudocode of the Armv7-M Architecture Reference Manual
 * (ARM DDI 0403E, A7.7: SXTB16, SMLAD, SMLABB/SMLATT; accumulation wraps
 * modulo 2^32), so every dsp kernel runs against the oracle in milliseconds;
 * the instructions themselves run in QEMU. On an Arm core without the
 * extension this header refuses to compile: the dsp set is not for it.
 */
#ifndef TE_DSP_H
#define TE_DSP_H

#include <stdint.h>
#include <string.h>

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

/* acc + hi(a)*hi(b) */
static inline int32_t te_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return __smlatt(a, b, acc);
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
#endif

/* 4 bytes from any address as one word: one (unaligned) LDR on Armv7E-M. */
static inline int32_t te_load32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#endif /* TE_DSP_H */
