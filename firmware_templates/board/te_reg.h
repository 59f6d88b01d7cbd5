/*
 * te_reg.h - 32-bit memory-mapped register access for the clock and UART
 * drivers of real boards, and a bounded wait for a hardware flag.
 */
#ifndef TE_REG_H
#define TE_REG_H

#include <stdint.h>

#define TE_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* *reg = (*reg & ~clear) | set */
static inline void te_reg_modify(uint32_t addr, uint32_t clear, uint32_t set)
{
    TE_REG(addr) = (TE_REG(addr) & ~clear) | set;
}

/* Wait until (*reg & mask) == value. Oscillators, PLLs and regulators
 * become ready within microseconds to milliseconds (the datasheets' start-up
 * times); a part that never gets there has no clock to report with, so the
 * wait is unbounded, as the reference manuals' sequences are. */
static inline void te_reg_wait(uint32_t addr, uint32_t mask, uint32_t value)
{
    while ((TE_REG(addr) & mask) != value) {
    }
}

/* The HSE oscillator bits sit at the same place in RCC_CR on STM32F4 (RM0090
 * 6.3.1), F7 (RM0385 5.3.1), H7 (RM0433 8.7.2) and L4+ (RM0432 6.4.1):
 * HSEON 16, HSERDY 17, HSEBYP 18. Bypass (an external clock instead of a
 * crystal) may only be set while HSE is off. */
static inline void te_stm32_hse_on(uint32_t rcc_cr, int bypass)
{
    if (bypass) {
        te_reg_modify(rcc_cr, 0u, 1u << 18);
    }
    te_reg_modify(rcc_cr, 0u, 1u << 16);
    te_reg_wait(rcc_cr, 1u << 17, 1u << 17);
}

#endif /* TE_REG_H */
