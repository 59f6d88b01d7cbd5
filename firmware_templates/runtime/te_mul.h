/*
 * te_mul.h - int8 MUL with broadcast and fused activation.
 * Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_MUL_H
#define TE_MUL_H

#include <stdint.h>

#include "te_broadcast.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is computed on the host (tinyedge/ops/mul.py). */
typedef struct {
    int32_t in1_offset;  /* -input1 zero point */
    int32_t in2_offset;  /* -input2 zero point */
    int32_t out_offset;  /* output zero point */
    int32_t out_mult;    /* Q31 multiplier of s1 * s2 / s_out (double math, as TFLM's MUL Prepare) */
    int32_t out_shift;   /* TFLite exponent: > 0 left shift */
    int32_t act_min, act_max; /* fused activation range, output units */
    te_bcast_t walk;     /* the output as rows (one row of `size` elements without broadcast) */
} te_mul_params_t;

void te_mul_s8(const te_mul_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TE_MUL_H */
