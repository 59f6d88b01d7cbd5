/*
 * te_reduce.c - int8 MEAN and REDUCE_MAX (see te_reduce.h).
 *
 * What TensorFlow Lite Micro computes (micro/kernels/reduce_common.cc):
 *   - MEAN, int8, every axis set, rank and keep_dims: EvalIntegerMean ->
 *     reference_ops::QuantizedMeanOrSum (kernels/internal/reference/reduce.h):
 *     the raw int8 values summed in int32 per output, then
 *     MultiplyByQuantizedMultiplier(sum - input_zp * N, mult', shift') +
 *     output_zp, clamped, where the host folded 1/N into the multiplier of
 *     input_scale / output_scale as TFLM does (mult' = (mult << s) / N,
 *     shift' = shift - s, s = min(floor(log2 N), 32, 31 + shift)). TFLM has
 *     no separate 4-D H,W path for int8, so neither do we.
 *   - REDUCE_MAX, int8: EvalMinMaxHelper -> reference_ops::ReduceGeneric:
 *     each output starts at -128 and takes the max of the raw int8 values
 *     over the reduced axes; no requantization (TFLM refuses an output whose
 *     scale or zero point differs from the input's, and so does the host).
 * The sums and maxima do not depend on the order the input is read in, so
 * both walk it in memory order over merged dimensions.
 */
#include "te_reduce.h"

#include "te_common.h"

/* The walk MEAN and REDUCE_MAX share: the input is read row by row (its
 * innermost dimension) in memory order; after each row, step the output offset
 * *o along dims[0..rank-2] like an odometer (out_strides are 0 on reduced
 * axes). Returns 0 once every row has been visited. */
static int te_reduce_next_row(int32_t rank, const int32_t *dims, const int32_t *out_strides,
                              int32_t *idx, int32_t *o)
{
    int32_t d;
    for (d = rank - 2; d >= 0; --d) {
        *o += out_strides[d];
        if (++idx[d] < dims[d]) {
            return 1;
        }
        *o -= out_strides[d] * dims[d];
        idx[d] = 0;
    }
    return 0;
}

static void te_mean_accumulate(const te_mean_params_t *p, const int8_t *in, int32_t *acc)
{
    const int32_t last = p->rank - 1;
    const int32_t n = p->dims[last];
    const int32_t inner_kept = p->out_strides[last] != 0; /* last dim kept: stride 1 */
    int32_t idx[TE_REDUCE_MAX_DIMS] = {0, 0, 0, 0, 0, 0};
    int32_t o = 0;
    int32_t i;
    for (;;) {
        if (inner_kept) {
            int32_t *a = acc + o;
            for (i = 0; i < n; ++i) {
                a[i] += in[i];
            }
        } else {
            int32_t s = 0;
            for (i = 0; i < n; ++i) {
                s += in[i];
            }
            acc[o] += s;
        }
        in += n;
        if (!te_reduce_next_row(p->rank, p->dims, p->out_strides, idx, &o)) {
            return;
        }
    }
}

void te_mean_s8(const te_mean_params_t *p, const int8_t *in, int8_t *out, int32_t *acc)
{
    int32_t o;
    for (o = 0; o < p->out_size; ++o) {
        acc[o] = 0;
    }
    te_mean_accumulate(p, in, acc);
    for (o = 0; o < p->out_size; ++o) {
        const int32_t v = te_mul_by_quantized_mult(acc[o] - p->sub, p->mult, p->shift);
        out[o] = te_sat_s8(v + p->add);
    }
}

void te_reduce_max_s8(const te_reduce_max_params_t *p, const int8_t *in, int8_t *out)
{
    const int32_t last = p->rank - 1;
    const int32_t n = p->dims[last];
    const int32_t inner_kept = p->out_strides[last] != 0; /* last dim kept: stride 1 */
    int32_t idx[TE_REDUCE_MAX_DIMS] = {0, 0, 0, 0, 0, 0};
    int32_t o = 0;
    int32_t i;
    for (i = 0; i < p->out_size; ++i) {
        out[i] = INT8_MIN;
    }
    for (;;) {
        if (inner_kept) {
            int8_t *q = out + o;
            for (i = 0; i < n; ++i) {
                if (in[i] > q[i]) {
                    q[i] = in[i];
                }
            }
        } else {
            int8_t m = out[o];
            for (i = 0; i < n; ++i) {
                if (in[i] > m) {
                    m = in[i];
                }
            }
            out[o] = m;
        }
        in += n;
        if (!te_reduce_next_row(p->rank, p->dims, p->out_strides, idx, &o)) {
            return;
        }
    }
}
