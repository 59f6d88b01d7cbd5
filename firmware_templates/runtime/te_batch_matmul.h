/*
 * te_batch_matmul.h - int8 and int16 BATCH_MATMUL (x @ y with broadcast
 * batch dimensions, optional adjoint/transpose of either operand), as
 * TensorFlow Lite Micro computes it.
 * Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_BATCH_MATMUL_H
#define TE_BATCH_MATMUL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is computed on the host (tinyedge/ops/batch_matmul.py).
 *
 * The output is [b0][b1][b2][rows][cols] (leading batch dims of size 1 when
 * the model's rank is lower). Element (i, j) of output batch (i0, i1, i2) is
 *   sum_k (lhs[i0*lhs_b0 + i1*lhs_b1 + i2*lhs_b2 + i*lhs_row + k*lhs_depth] + lhs_offset)
 *       * (rhs[i0*rhs_b0 + i1*rhs_b1 + i2*rhs_b2 + k*rhs_depth + j*rhs_col] + rhs_offset)
 * requantized. Strides are in elements; a batch stride of 0 broadcasts that
 * operand along the dimension. Transposes (adj_x / adj_y) and any host-side
 * re-layout of a constant operand are expressed through the strides. */
typedef struct {
    int32_t b0, b1, b2;              /* output batch dims */
    int32_t rows, cols, depth;       /* output rows, output cols, accumulation depth */
    int32_t lhs_b0, lhs_b1, lhs_b2;  /* lhs batch strides (0: broadcast) */
    int32_t lhs_row, lhs_depth;      /* lhs strides along output row and depth */
    int32_t rhs_b0, rhs_b1, rhs_b2;  /* rhs batch strides (0: broadcast) */
    int32_t rhs_depth, rhs_col;      /* rhs strides along depth and output col */
    int32_t lhs_offset;              /* -lhs zero point (int8 only: int16 zero points are 0) */
    int32_t rhs_offset;              /* -rhs zero point (int8 only) */
    int32_t output_offset;           /* output zero point (int8 only) */
    int32_t mult;                    /* Q31 requantization multiplier */
    int32_t shift;                   /* exponent: > 0 left, < 0 right */
    int32_t act_min, act_max;        /* output clamp (the output type's range: no fused activation) */
} te_batch_matmul_params_t;

void te_batch_matmul_s8(const te_batch_matmul_params_t *p, const int8_t *lhs, const int8_t *rhs,
                        int8_t *output);
void te_batch_matmul_s16(const te_batch_matmul_params_t *p, const int16_t *lhs, const int16_t *rhs,
                         int16_t *output);

#ifdef __cplusplus
}
#endif

#endif /* TE_BATCH_MATMUL_H */
