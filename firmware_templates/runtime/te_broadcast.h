/*
 * te_broadcast.h - the walk of an elementwise binary op with broadcast over
 * its output (MUL, MAXIMUM / MINIMUM, PRELU).
 *
 * TFLM's reference kernels for these ops (BroadcastBinaryOpSimple in
 * kernels/internal/reference/broadcast_loop.h, behind BroadcastMul6DSlow,
 * MaximumMinimumBroadcastSlow and BroadcastPrelu4DSlow) apply the same
 * integer recipe to every output element, so the order of the walk cannot
 * change a result. The host (tinyedge/ops/common.py, bcast_walk) drops
 * extent-1 dimensions and merges adjacent ones where both inputs stay
 * contiguous, so the innermost row is as long as the broadcast allows; a
 * kernel walks the output as rows of dims[5] elements:
 *
 *     te_bcast_cursor_t c;
 *     te_bcast_begin(w, &c);
 *     do {
 *         for (i = 0; i < c.n; ++i)
 *             *out++ = f(in1[c.off1 + i * c.step1], in2[c.off2 + i * c.step2]);
 *     } while (te_bcast_next_row(w, &c));
 *
 * Header-only, plain C99; compiles for the host and for Cortex-M.
 */
#ifndef TE_BROADCAST_H
#define TE_BROADCAST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TE_BCAST_DIMS 6

typedef struct {
    int32_t dims[TE_BCAST_DIMS];     /* output extents, outermost first, left-padded with 1 */
    int32_t strides1[TE_BCAST_DIMS]; /* element strides of input 1 along the output, 0 where broadcast */
    int32_t strides2[TE_BCAST_DIMS]; /* the same for input 2 */
} te_bcast_t;

/* Where the walk is: the index of the current row in dims[0..4], the offsets
 * of its first element in the two inputs, and the row itself: n elements,
 * step1 / step2 apart in the inputs. */
typedef struct {
    int32_t index[TE_BCAST_DIMS - 1];
    int32_t off1, off2;
    int32_t n, step1, step2;
} te_bcast_cursor_t;

static inline void te_bcast_begin(const te_bcast_t *w, te_bcast_cursor_t *c)
{
    int32_t d;
    for (d = 0; d < TE_BCAST_DIMS - 1; ++d) {
        c->index[d] = 0;
    }
    c->off1 = 0;
    c->off2 = 0;
    c->n = w->dims[TE_BCAST_DIMS - 1];
    c->step1 = w->strides1[TE_BCAST_DIMS - 1];
    c->step2 = w->strides2[TE_BCAST_DIMS - 1];
}

/* Advance to the next row (an odometer over dims[0..4]); 0 after the last. */
static inline int te_bcast_next_row(const te_bcast_t *w, te_bcast_cursor_t *c)
{
    int32_t d;
    for (d = TE_BCAST_DIMS - 2; d >= 0; --d) {
        c->off1 += w->strides1[d];
        c->off2 += w->strides2[d];
        if (++c->index[d] < w->dims[d]) {
            return 1;
        }
        c->off1 -= w->strides1[d] * w->dims[d];
        c->off2 -= w->strides2[d] * w->dims[d];
        c->index[d] = 0;
    }
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* TE_BROADCAST_H */
