/*
 * te_activations.h - int8 activations: RELU and RELU_N1_TO_1 (requantize and
 * clamp), RELU6 (clamp), LEAKY_RELU, PRELU, HARD_SWISH, and 256-entry table
 * lookups (LOGISTIC, TANH).
 * Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_ACTIVATIONS_H
#define TE_ACTIVATIONS_H

#include <stdint.h>

#include "te_broadcast.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every field below is computed on the host (tinyedge/ops/activations.py). */

/* RELU, RELU_N1_TO_1: requantize from the input to the output scale, then
 * clamp to the activation's range in output units. */
typedef struct {
    int32_t size;
    int32_t in_zp, out_zp;
    int32_t mult, shift;       /* input_scale / output_scale, Q31 + TFLite exponent */
    int32_t act_min, act_max;  /* quantized bounds of the activation, within int8 */
} te_relu_params_t;

void te_relu_s8(const te_relu_params_t *p, const int8_t *in, int8_t *out);

/* RELU6 (TFLM): the raw input values clamped to [lo, hi], no requantization. */
typedef struct {
    int32_t size;
    int32_t lo, hi; /* the input's quantized 0 and 6 */
} te_clamp_params_t;

void te_clamp_s8(const te_clamp_params_t *p, const int8_t *in, int8_t *out);

/* LEAKY_RELU: x >= zp -> identity multiplier, x < zp -> alpha multiplier. */
typedef struct {
    int32_t size;
    int32_t in_zp, out_zp;
    int32_t identity_mult, identity_shift; /* input_scale / output_scale */
    int32_t alpha_mult, alpha_shift;       /* |input_scale * alpha / output_scale| */
    int32_t alpha_negative;                /* 1 when alpha < 0: the scaled value is negated */
} te_leaky_relu_params_t;

void te_leaky_relu_s8(const te_leaky_relu_params_t *p, const int8_t *in, int8_t *out);

/* PRELU: alpha is an int8 tensor broadcast to the input. */
typedef struct {
    int32_t in_offset;    /* -input zero point */
    int32_t alpha_offset; /* -alpha zero point */
    int32_t out_offset;   /* output zero point */
    int32_t mult1, shift1; /* input_scale / output_scale */
    int32_t mult2, shift2; /* input_scale * alpha_scale / output_scale */
    te_bcast_t walk;       /* the output as rows: input 1 is the input, input 2 alpha */
} te_prelu_params_t;

void te_prelu_s8(const te_prelu_params_t *p, const int8_t *in, const int8_t *alpha, int8_t *out);

/* HARD_SWISH: TFLite's 16-bit fixed-point formulation (HardSwishParams). */
typedef struct {
    int32_t size;
    int32_t in_zp, out_zp;
    int32_t output_mult_fp16; /* int16 fixed-point multiplier, hires input -> output scale */
    int32_t output_exp;       /* its exponent, <= 0 */
    int32_t reluish_mult_fp16; /* int16 fixed-point multiplier, hires input -> 3/32768 scale */
    int32_t reluish_exp;       /* its exponent */
} te_hard_swish_params_t;

void te_hard_swish_s8(const te_hard_swish_params_t *p, const int8_t *in, int8_t *out);

/* 256-entry lookup: out = table[in + 128] (LOGISTIC, TANH). */
typedef struct {
    int32_t size;
} te_lookup_params_t;

void te_lookup_s8(const te_lookup_params_t *p, const int8_t *table, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TE_ACTIVATIONS_H */
