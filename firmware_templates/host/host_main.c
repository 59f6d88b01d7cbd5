/*
 * host_main.c - runs the generated network on the host (x86-64, gcc), so a
 * network can be checked against TensorFlow Lite Micro in milliseconds, without
 * a board or an emulator. Part of every generated project: `make host`.
 *
 * Protocol on stdin/stdout, binary, repeated until end of input: read the
 * bytes of every input tensor (in order, concatenated), run one inference,
 * write the bytes of every output tensor (in order, concatenated).
 */
#include <stdio.h>
#include <stdlib.h>

#include "network.h"

static size_t read_all(void *dst, size_t n)
{
    return fread(dst, 1, n, stdin);
}

int main(void)
{
    long samples = 0;
    for (;;) {
        int i;
        for (i = 0; i < TE_NUM_INPUTS; ++i) {
            size_t got = read_all(te_network_inputs[i].data, te_network_inputs[i].bytes);
            if (got != te_network_inputs[i].bytes) {
                if (i == 0 && got == 0 && feof(stdin)) {
                    return 0; /* clean end of input */
                }
                fprintf(stderr, "network_host: short input at sample %ld, tensor %d\n", samples, i);
                return 2;
            }
        }
        te_network_run();
        for (i = 0; i < TE_NUM_OUTPUTS; ++i) {
            if (fwrite(te_network_outputs[i].data, 1, te_network_outputs[i].bytes, stdout)
                != te_network_outputs[i].bytes) {
                fprintf(stderr, "network_host: write failed\n");
                return 3;
            }
        }
        ++samples;
    }
}
