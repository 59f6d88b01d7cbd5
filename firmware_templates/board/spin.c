/*
 * spin.c - the calibration loop: exactly two instructions per pass, so that
 * ticks or cycles can be compared with a known instruction count (CALIBRATE,
 * docs/protocol.md). Shared by the firmware and the library target.
 */
#include <stdint.h>

#include "board.h"

/* GCC reads Thumb-1 inline assembly in the old "divided" syntax, Thumb-2 in
 * unified syntax: switch to unified for the loop and back afterwards. */
#if defined(__thumb2__)
#define TE_ASM_SYNTAX_RESTORE ""
#else
#define TE_ASM_SYNTAX_RESTORE ".syntax divided\n\t"
#endif

void board_spin(uint32_t iterations)
{
    if (iterations == 0u) {
        return;
    }
    /* Exactly two instructions per pass. "l": a low register, which the
     * 16-bit SUBS of Armv6-M needs. */
    __asm__ volatile(".syntax unified\n\t"
                     "1:\n\t"
                     "subs %0, %0, #1\n\t"
                     "bne 1b\n\t"
                     TE_ASM_SYNTAX_RESTORE
                     : "+l"(iterations)
                     :
                     : "cc");
}
