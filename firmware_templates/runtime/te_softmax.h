/*
 * te_softmax.h - SOFTMAX over the last dimension, int8 input, int8 or int16
 * output, in TFLM's fixed point with an exp table computed on the host.
 * Plain C99, no float, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_SOFTMAX_H
#define TE_SOFTMAX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t outer; /* number of rows: product of all dimensions but the last */
    int32_t depth; /* size of the last dimension */
} te_softmax_params_t;

/* exp_table[d] (d = 0..255) is exp(-input_scale * beta * d) in Q0.31 as
 * TFLM's gemmlowp exp_on_negative_values computes it for the input
 * difference -d, or 0 where TFLM skips the difference (below diff_min);
 * 256 entries, computed on the host (tinyedge/ops/softmax.py). */
void te_softmax_s8(const te_softmax_params_t *p, const int32_t *exp_table, const int8_t *in,
                   int8_t *out);
void te_softmax_s8_s16(const te_softmax_params_t *p, const int32_t *exp_table, const int8_t *in,
                       int16_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TE_SOFTMAX_H */
