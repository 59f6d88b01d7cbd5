/*
 * te_minmax.h - int8 MAXIMUM and MINIMUM with broadcast.
 * Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_MINMAX_H
#define TE_MINMAX_H

#include <stdint.h>

#include "te_broadcast.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Computed on the host (tinyedge/ops/minmax.py). */
typedef struct {
    te_bcast_t walk; /* the output as rows (one row of `size` elements without broadcast) */
} te_minmax_params_t;

/* out = max(in1, in2) / min(in1, in2) on the raw int8 values. */
void te_maximum_s8(const te_minmax_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void te_minimum_s8(const te_minmax_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TE_MINMAX_H */
