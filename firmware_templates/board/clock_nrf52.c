/*
 * clock_nrf52.c - clocks of nRF52840 parts (nRF52840 Product Specification
 * v1.7). The CPU always runs at 64 MHz (5.4.1 "HFCLK controller"); flash
 * reads have no wait-state setting. Two things are set up:
 *   1. the 64 MHz crystal oscillator (HFXO): TASKS_HFCLKSTART, then wait for
 *      EVENTS_HFCLKSTARTED (5.4.1, 5.4.3 registers). Without it the UARTE's
 *      baud rate comes from the internal RC oscillator (HFINT);
 *   2. the NVMC instruction cache (4.3.10 ICACHECNF.CACHEEN).
 */
#include <stdint.h>

#include "board.h"
#include "te_reg.h"

#define CLOCK_BASE 0x40000000u
#define CLOCK_TASKS_HFCLKSTART (CLOCK_BASE + 0x000u)
#define CLOCK_EVENTS_HFCLKSTARTED (CLOCK_BASE + 0x100u)

#define NVMC_ICACHECNF 0x4001E540u
#define NVMC_ICACHECNF_CACHEEN (1u << 0)

void board_clock_init(void)
{
#if TE_CLK_HFXO
    TE_REG(CLOCK_EVENTS_HFCLKSTARTED) = 0u;
    TE_REG(CLOCK_TASKS_HFCLKSTART) = 1u;
    te_reg_wait(CLOCK_EVENTS_HFCLKSTARTED, 1u, 1u);
    TE_REG(CLOCK_EVENTS_HFCLKSTARTED) = 0u;
#endif
#if TE_CLK_ICACHE
    te_reg_modify(NVMC_ICACHECNF, 0u, NVMC_ICACHECNF_CACHEEN);
#endif
}
