/*
 * te_types.h - types shared by the tinyedge runtime, the generated network
 * and the application. Plain C99; compiles for the host and for Cortex-M.
 */
#ifndef TE_TYPES_H
#define TE_TYPES_H

#include <stdint.h>

/* Element types: the values are TFLite's TensorType enum, so the host and the
 * device describe tensors with the same numbers. */
enum {
    TE_DTYPE_FLOAT32 = 0,
    TE_DTYPE_INT32 = 2,
    TE_DTYPE_UINT8 = 3,
    TE_DTYPE_INT16 = 7,
    TE_DTYPE_INT8 = 9
};

#define TE_MAX_RANK 6

/* One network input or output, as the application and the protocol see it. */
typedef struct {
    const char *name;
    void *data;               /* in the arena */
    uint32_t bytes;
    uint8_t dtype;            /* TE_DTYPE_* */
    uint8_t rank;
    int32_t dims[TE_MAX_RANK];
    float scale;              /* 0 when not quantized */
    int32_t zero_point;
} te_tensor_info_t;

/* One operator output, for the per-layer comparison (protocol READ_OP):
 * where op `op`'s output number `output` lives while the network runs. */
typedef struct {
    uint16_t op;
    uint8_t output;
    const void *data;         /* in the arena (valid until a later op reuses it) */
    uint32_t bytes;
} te_op_output_t;

#endif /* TE_TYPES_H */
