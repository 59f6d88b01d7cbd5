/*
 * te_elementwise.h - int8 and int16 elementwise binary ops with broadcast (ADD, SUB).
 * Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_ELEMENTWISE_H
#define TE_ELEMENTWISE_H

#include <stdint.h>

#include "te_broadcast.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is computed on the host (tinyedge/ops/elementwise.py). */
typedef struct {
    /* Quantization (TFLM CalculateOpDataAdd / CalculateOpDataSub). */
    int32_t in1_offset;  /* -input1 zero point */
    int32_t in2_offset;  /* -input2 zero point */
    int32_t out_offset;  /* output zero point */
    int32_t left_shift;  /* 20 for int8, 15 for int16 */
    int32_t in1_mult, in1_shift;  /* Q31 multiplier, shift <= 0 */
    int32_t in2_mult, in2_shift;
    int32_t out_mult, out_shift;
    int32_t act_min, act_max;
    te_bcast_t walk;     /* the output as rows (one row of every element for equal shapes) */
} te_add_params_t;

/* ADD / SUB: out may be in1 or in2 when that input has the output's shape (the
 * planner may run the op in place): element i of both inputs is read before
 * element i of out is written. */
void te_add_s8(const te_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void te_add_s16(const te_add_params_t *p, const int16_t *in1, const int16_t *in2, int16_t *out);

/* SUB takes the same parameter block (TFLM derives the same numbers); the
 * kernel subtracts the rescaled inputs instead of adding them. */
typedef te_add_params_t te_sub_params_t;

void te_sub_s8(const te_sub_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void te_sub_s16(const te_sub_params_t *p, const int16_t *in1, const int16_t *in2, int16_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TE_ELEMENTWISE_H */
