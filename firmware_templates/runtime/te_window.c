/*
 * te_window.c - im2col for one output pixel (te_window.h).
 */
#include "te_window.h"

#include <stddef.h>
#include <string.h>

void te_window_patch(const te_window_t *w, const int8_t *image, int32_t oy, int32_t ox, int8_t pad,
                     int8_t *patch)
{
    const size_t in_c = (size_t)w->in_c;
    const int32_t taps = w->k_h * w->k_w;
    int32_t t;
    for (t = 0; t < taps; ++t, patch += in_c) {
        const int32_t pixel = te_window_tap(w, oy, ox, t);
        if (pixel < 0) {
            memset(patch, pad, in_c);
        } else {
            memcpy(patch, image + (size_t)pixel * in_c, in_c);
        }
    }
}
