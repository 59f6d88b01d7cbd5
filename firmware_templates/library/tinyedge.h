/*
 * tinyedge.h - the C API of a tinyedge network built as a library.
 *
 *     #include "tinyedge.h"
 *
 *     memcpy(te_input(0), my_input, te_input_bytes(0));  // int8/uint8/float, as the model says
 *     te_invoke();
 *     const int8_t *scores = (const int8_t *)te_output(0);
 *
 * Everything is static: no allocation, no init call. The arena
 * (TE_ARENA_BYTES, in network.h) holds every activation; inputs and outputs
 * live in it, so te_input()/te_output() pointers stay valid but their
 * contents only mean something before/after te_invoke(). Not reentrant: one
 * inference at a time.
 */
#ifndef TINYEDGE_H
#define TINYEDGE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {  /* C++ firmware (Arduino ...) links against C names */
#endif

#include "network.h"

/* Run one inference on the bytes in the input tensors. */
void te_invoke(void);

/* Back to the initial state (stateful ops such as an LSTM); a no-op for
 * stateless networks. te_invoke() does not call it. */
void te_reset(void);

/* Input/output tensors: their bytes (NULL / 0 for an index out of range) and
 * their description (shape, dtype, quantization; te_types.h). */
void *te_input(uint32_t index);
uint32_t te_input_bytes(uint32_t index);
const void *te_output(uint32_t index);
uint32_t te_output_bytes(uint32_t index);
const te_tensor_info_t *te_input_info(uint32_t index);
const te_tensor_info_t *te_output_info(uint32_t index);

/* Bytes of the static activation arena (= TE_ARENA_BYTES). */
uint32_t te_arena_bytes(void);

/* The validation server over the port layer (port/te_port.h): answers
 * `tinyedge validate --port ...` forever. Call it from main() or a thread of
 * its own once the UART and the cycle counter are set up. */
void te_server_run(void) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* TINYEDGE_H */
