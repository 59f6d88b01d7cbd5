/*
 * te_mul.c - int8 MUL: y = clamp(zp_out + MBQM((x1 - zp1) * (x2 - zp2)), act).
 *
 * Where the arithmetic comes from: TensorFlow Lite Micro's MUL
 * (micro/kernels/mul_common.cc, EvalMulQuantizedReference), which runs
 * reference_integer_ops::MulElementwise when the shapes match and
 * BroadcastMul6DSlow otherwise; both compute, for every output element,
 *     out_offset + MultiplyByQuantizedMultiplier((in1_offset + x1) * (in2_offset + x2))
 * in int32, clamped to the fused activation range. The product of two
 * offset int8 values fits in 17 bits; the sum with the zero point wraps in
 * 32 bits as TFLM's int32 arithmetic does in practice (only reachable with a
 * real multiplier near 2^30). MultiplyByQuantizedMultiplier is the
 * double-rounding one (te_mul_by_quantized_mult). Every element takes the
 * same recipe, so one strided walk (te_broadcast.h) serves all shapes. Our
 * own code, written from that behaviour.
 */
#include "te_mul.h"

#include "te_common.h"

static inline int32_t te_mul_add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

void te_mul_s8(const te_mul_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    te_bcast_cursor_t c;
    te_bcast_begin(&p->walk, &c);
    do {
        int32_t i;
        for (i = 0; i < c.n; ++i) {
            const int32_t x1 = p->in1_offset + in1[c.off1 + i * c.step1];
            const int32_t x2 = p->in2_offset + in2[c.off2 + i * c.step2];
            const int32_t prod = x1 * x2;
            const int32_t v =
                te_mul_add_wrap(p->out_offset, te_mul_by_quantized_mult(prod, p->out_mult, p->out_shift));
            *out++ = (int8_t)te_clamp_s32(v, p->act_min, p->act_max);
        }
    } while (te_bcast_next_row(&p->walk, &c));
}
