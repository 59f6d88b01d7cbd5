/*
 * tinyedge_api.c - the C API of tinyedge.h over the generated network.
 */
#include <stddef.h>
#include <stdint.h>

#include "tinyedge.h"

void te_invoke(void)
{
    te_network_run();
}

void te_reset(void)
{
    te_network_reset();
}

const te_tensor_info_t *te_input_info(uint32_t index)
{
    return (index < (uint32_t)TE_NUM_INPUTS) ? &te_network_inputs[index] : NULL;
}

const te_tensor_info_t *te_output_info(uint32_t index)
{
    return (index < (uint32_t)TE_NUM_OUTPUTS) ? &te_network_outputs[index] : NULL;
}

void *te_input(uint32_t index)
{
    const te_tensor_info_t *t = te_input_info(index);
    return (t != NULL) ? t->data : NULL;
}

uint32_t te_input_bytes(uint32_t index)
{
    const te_tensor_info_t *t = te_input_info(index);
    return (t != NULL) ? t->bytes : 0u;
}

const void *te_output(uint32_t index)
{
    const te_tensor_info_t *t = te_output_info(index);
    return (t != NULL) ? t->data : NULL;
}

uint32_t te_output_bytes(uint32_t index)
{
    const te_tensor_info_t *t = te_output_info(index);
    return (t != NULL) ? t->bytes : 0u;
}

uint32_t te_arena_bytes(void)
{
    return (uint32_t)TE_ARENA_BYTES;
}
