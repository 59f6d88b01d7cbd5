/*
 * te_elementwise.h - int8 and int16 elementwise binary ops with broadcast (ADD, SUB).
 * Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_ELEMENTWISE_H
#define TE_ELEMENTWISE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TE_BCAST_MAX_DIMS 6

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
    /* The walk of the output: TE_BCAST_MAX_DIMS nested loops (outermost first,
     * unused ones of extent 1), the innermost one a row of out_dims[5]
     * elements; each input's element stride per loop, 0 where it is broadcast.
     * Same shapes: one row of all the elements. */
    int32_t out_dims[TE_BCAST_MAX_DIMS];
    int32_t in1_strides[TE_BCAST_MAX_DIMS];
    int32_t in2_strides[TE_BCAST_MAX_DIMS];
} te_add_params_t;

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
