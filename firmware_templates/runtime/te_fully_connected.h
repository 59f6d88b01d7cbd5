/*
 * te_fully_connected.h - int8 FULLY_CONNECTED (per-tensor or per-channel
 * weights). Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_FULLY_CONNECTED_H
#define TE_FULLY_CONNECTED_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is computed on the host (tinyedge/ops/fully_connected.py). */
typedef struct {
    int32_t batches;       /* input rows: input elements / in_depth */
    int32_t in_depth;      /* accumulation depth (filter dim 1) */
    int32_t out_depth;     /* output units (filter dim 0) */
    int32_t output_offset; /* output zero point */
    int32_t act_min;       /* fused activation clamp, in output quanta */
    int32_t act_max;
    int32_t per_channel;   /* 1: mult/shift hold out_depth entries; 0: one */
    const int32_t *mult;   /* Q31 requantization multipliers */
    const int32_t *shift;  /* exponents: > 0 left, < 0 right */
} te_fc_params_t;

/* output[b][o] = requant(bias[o] + sum_i input[b][i] * filter[o][i]).
 * filter is row-major [out_depth][in_depth] (the .tflite layout); bias (may
 * be NULL) already holds the input zero-point term
 * -input_zp * sum_i filter[o][i], folded on the host. */
void te_fully_connected_s8(const te_fc_params_t *p, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* TE_FULLY_CONNECTED_H */
