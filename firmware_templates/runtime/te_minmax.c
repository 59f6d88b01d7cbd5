/*
 * te_minmax.c - int8 MAXIMUM / MINIMUM.
 *
 * Where the arithmetic comes from: TensorFlow Lite Micro's
 * micro/kernels/maximum_minimum.cc runs reference_ops::
 * MaximumMinimumBroadcastSlow, which compares the raw quantized values
 * (MaximumOp: el1 > el2 ? el1 : el2, MinimumOp: el1 < el2 ? el1 : el2) with
 * no requantization: the quantization of the inputs and the output is never
 * read (the converter gives all three the same one). Each output element is
 * that comparison of the two broadcast input elements, so the walk of
 * te_broadcast.h gives the same bytes. Our own code.
 */
#include "te_minmax.h"

static int8_t te_max8(int8_t a, int8_t b)
{
    return a > b ? a : b;
}

static int8_t te_min8(int8_t a, int8_t b)
{
    return a < b ? a : b;
}

static void te_minmax_run(const te_minmax_params_t *p, const int8_t *in1, const int8_t *in2,
                          int8_t *out, int8_t (*op)(int8_t, int8_t))
{
    te_bcast_cursor_t c;
    te_bcast_begin(&p->walk, &c);
    do {
        int32_t i;
        for (i = 0; i < c.n; ++i) {
            *out++ = op(in1[c.off1 + i * c.step1], in2[c.off2 + i * c.step2]);
        }
    } while (te_bcast_next_row(&p->walk, &c));
}

void te_maximum_s8(const te_minmax_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    te_minmax_run(p, in1, in2, out, te_max8);
}

void te_minimum_s8(const te_minmax_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    te_minmax_run(p, in1, in2, out, te_min8);
}
