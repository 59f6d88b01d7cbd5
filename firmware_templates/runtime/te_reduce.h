/*
 * te_reduce.h - int8 MEAN and REDUCE_MAX over constant axes.
 * Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_REDUCE_H
#define TE_REDUCE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TE_REDUCE_MAX_DIMS 6

/* Every field is computed on the host (tinyedge/ops/reduce.py).
 *
 * The input is walked in memory order over its (merged) dimensions; an int32
 * accumulator per output element sums the raw int8 values of its reduced
 * cells. out_strides[k] is the output element stride of input dimension k
 * (0 for a reduced dimension). Then, per output element o:
 *     v = requant(acc[o] - sub, mult, shift) + add, clamped to int8,
 * where requant is tflite::MultiplyByQuantizedMultiplier (double rounding,
 * ties of the final shift away from zero), the same for every output. */
typedef struct {
    int32_t rank;                          /* 1..TE_REDUCE_MAX_DIMS */
    int32_t dims[TE_REDUCE_MAX_DIMS];      /* merged input extents, outermost first */
    int32_t out_strides[TE_REDUCE_MAX_DIMS];
    int32_t out_size;                      /* number of output elements (accumulators) */
    int32_t sub;                           /* subtracted from each sum before requantizing */
    int32_t mult, shift;                   /* requantization multiplier (Q31) and exponent */
    int32_t add;                           /* added after requantizing */
} te_mean_params_t;

/* acc: scratch of out_size int32 accumulators (4-byte aligned). */
void te_mean_s8(const te_mean_params_t *p, const int8_t *in, int8_t *out, int32_t *acc);

/* REDUCE_MAX: every field is computed on the host (tinyedge/ops/reduce.py),
 * the same way as te_mean_params_t's: the input is walked in memory order over
 * its (merged) dimensions, out_strides[k] is the output element stride of
 * input dimension k (0 for a reduced one). Each output element is the max of
 * the raw int8 values of its reduced cells (no requantization: input and
 * output share one quantization). */
typedef struct {
    int32_t rank;                          /* 1..TE_REDUCE_MAX_DIMS */
    int32_t dims[TE_REDUCE_MAX_DIMS];      /* merged input extents, outermost first */
    int32_t out_strides[TE_REDUCE_MAX_DIMS];
    int32_t out_size;                      /* number of output elements */
} te_reduce_max_params_t;

/* out must not overlap in. */
void te_reduce_max_s8(const te_reduce_max_params_t *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TE_REDUCE_H */
