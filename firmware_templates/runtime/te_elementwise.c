/*
 * te_elementwise.c - int8 ADD and SUB with broadcast.
 *
 * What TensorFlow Lite Micro computes (micro/kernels/add.cc ->
 * reference_integer_ops::Add / BroadcastAdd4DSlow, whose per-element function
 * is AddFunc in kernels/internal/reference/integer_ops/add.h; micro/kernels/
 * sub.cc -> reference_ops::Sub / BroadcastQuantSubSlow in
 * kernels/internal/reference/sub.h). Every element, wherever it sits and
 * whatever the broadcast, takes the same steps:
 *
 *   x1  = MultiplyByQuantizedMultiplierSmallerThanOneExp(
 *             (q1 + in1_offset) << left_shift, in1_mult, in1_shift)
 *   x2  = likewise for input 2
 *   raw = x1 + x2        (ADD)      or      x1 - x2        (SUB)
 *   out = clamp(MultiplyByQuantizedMultiplierSmallerThanOneExp(raw, out_mult,
 *               out_shift) + out_offset, act_min, act_max)
 *
 * (SRDHM, then RoundingDivideByPOT with ties away from zero: te_common.h.)
 * SUB is a true subtraction, not ADD with input 2's multiplier negated: SRDHM
 * rounds ties upward, so the two differ at ties.
 *
 * Since no element depends on its position, the walk order is free; the host
 * merges adjacent dimensions so the inner rows are as long as the broadcast
 * allows (one row of every element when the shapes are equal). Overflow: the
 * offsets are in [-255, 255], so (q + offset) << 20 fits in int32.
 */
#include "te_elementwise.h"

#include "te_common.h"

/* One rescaled input: (q + offset) << left_shift, times mult * 2^shift. */
static int32_t te_binary_scaled_in(int32_t q, int32_t offset, int32_t left_shift, int32_t mult,
                                   int32_t shift)
{
    const int32_t shifted = (int32_t)((uint32_t)(q + offset) << left_shift);
    return te_mul_by_quantized_mult_smaller_than_one(shifted, mult, shift);
}

/* The output stage: raw sum or difference to the clamped int8 result. */
static int8_t te_binary_out(const te_add_params_t *p, int32_t raw)
{
    const int32_t s = te_mul_by_quantized_mult_smaller_than_one(raw, p->out_mult, p->out_shift)
                      + p->out_offset;
    return (int8_t)te_clamp_s32(s, p->act_min, p->act_max);
}

/* One output row: n elements, input strides sa / sb (0 = broadcast). */
typedef void (*te_binary_row_fn)(const te_add_params_t *p, int32_t n, const int8_t *a, int32_t sa,
                                 const int8_t *b, int32_t sb, int8_t *out);

static void te_add_row(const te_add_params_t *p, int32_t n, const int8_t *a, int32_t sa,
                       const int8_t *b, int32_t sb, int8_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t x1 = te_binary_scaled_in(a[i * sa], p->in1_offset, p->left_shift,
                                               p->in1_mult, p->in1_shift);
        const int32_t x2 = te_binary_scaled_in(b[i * sb], p->in2_offset, p->left_shift,
                                               p->in2_mult, p->in2_shift);
        out[i] = te_binary_out(p, x1 + x2);
    }
}

static void te_sub_row(const te_add_params_t *p, int32_t n, const int8_t *a, int32_t sa,
                       const int8_t *b, int32_t sb, int8_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t x1 = te_binary_scaled_in(a[i * sa], p->in1_offset, p->left_shift,
                                               p->in1_mult, p->in1_shift);
        const int32_t x2 = te_binary_scaled_in(b[i * sb], p->in2_offset, p->left_shift,
                                               p->in2_mult, p->in2_shift);
        out[i] = te_binary_out(p, x1 - x2);
    }
}

/* The output in order, as rows of out_dims[5] elements (TFLM's
 * BroadcastBinaryOpSimple walks the output in the same order). */
static void te_binary_walk(const te_add_params_t *p, const int8_t *in1, const int8_t *in2,
                           int8_t *out, te_binary_row_fn row)
{
    const int32_t *d = p->out_dims;
    const int32_t *s1 = p->in1_strides;
    const int32_t *s2 = p->in2_strides;
    int32_t i0, i1, i2, i3, i4;
    for (i0 = 0; i0 < d[0]; ++i0)
    for (i1 = 0; i1 < d[1]; ++i1)
    for (i2 = 0; i2 < d[2]; ++i2)
    for (i3 = 0; i3 < d[3]; ++i3)
    for (i4 = 0; i4 < d[4]; ++i4) {
        const int32_t o1 = i0 * s1[0] + i1 * s1[1] + i2 * s1[2] + i3 * s1[3] + i4 * s1[4];
        const int32_t o2 = i0 * s2[0] + i1 * s2[1] + i2 * s2[2] + i3 * s2[3] + i4 * s2[4];
        row(p, d[5], in1 + o1, s1[5], in2 + o2, s2[5], out);
        out += d[5];
    }
}

void te_add_s8(const te_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    te_binary_walk(p, in1, in2, out, te_add_row);
}

void te_sub_s8(const te_sub_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    te_binary_walk(p, in1, in2, out, te_sub_row);
}
