/*
 * clock_stm32l4.c - clock tree of STM32L4+ parts (L4R5/L4R7/L4R9/L4S...,
 * RM0432): HSI16 (or HSE) -> PLL -> SYSCLK, Range 1 boost mode above 80 MHz,
 * flash wait states and bus prescalers. The register values were computed
 * and checked by tinyedge/clocks.py from the board file's [clock] table.
 *
 * Order (RM0432 5.1.8 "Dynamic voltage scaling management", Range 1 normal
 * to Range 1 boost, and 6.2.5 "PLL"):
 *   1. PWR clock on; voltage Range 1 (PWR_CR1.VOS = 01), wait VOSF = 0
 *   2. HSI16 (or HSE) on and ready
 *   3. PLLCFGR written while the PLL is off, PLL on, wait PLLRDY
 *   4. boost: AHB prescaler to /2 before the higher frequency; clear
 *      PWR_CR5.R1MODE
 *   5. flash wait states for the target frequency (RM0432 3.3.3, read back)
 *   6. switch SYSCLK to the PLL, wait SWS
 *   7. boost: wait at least 1 us, then the AHB/APB prescalers of the board
 */
#include <stdint.h>

#include "board.h"
#include "te_reg.h"

#define RCC_BASE 0x40021000u
#define RCC_CR (RCC_BASE + 0x00u)
#define RCC_CFGR (RCC_BASE + 0x08u)
#define RCC_PLLCFGR (RCC_BASE + 0x0Cu)
#define RCC_APB1ENR1 (RCC_BASE + 0x58u)

#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_MASK 0x3u
#define RCC_CFGR_SWS_MASK 0xCu
#define RCC_CFGR_SW_PLL 0x3u
#define RCC_CFGR_HPRE_MASK 0xF0u
#define RCC_CFGR_HPRE_DIV2 0x80u
#define RCC_CFGR_PRESC_MASK 0x3FF0u /* HPRE 7:4, PPRE1 10:8, PPRE2 13:11 */
/* PLLSRC 1:0, PLLM 7:4, PLLN 14:8, PLLREN 24, PLLR 26:25 */
#define RCC_PLLCFGR_FIELDS 0x07007FF3u
#define RCC_APB1ENR1_PWREN (1u << 28)

#define PWR_BASE 0x40007000u
#define PWR_CR1 (PWR_BASE + 0x00u)
#define PWR_SR2 (PWR_BASE + 0x14u)
#define PWR_CR5 (PWR_BASE + 0x80u)
#define PWR_CR1_VOS_MASK (3u << 9)
#define PWR_CR1_VOS_RANGE1 (1u << 9)
#define PWR_SR2_VOSF (1u << 10)
#define PWR_CR5_R1MODE (1u << 8)   /* 1: Range 1 normal, 0: Range 1 boost */

#define FLASH_ACR 0x40022000u
#define FLASH_ACR_MASK 0x70Fu       /* LATENCY 3:0, PRFTEN 8, ICEN 9, DCEN 10 */
#define FLASH_ACR_LATENCY_MASK 0xFu

void board_clock_init(void)
{
    te_reg_modify(RCC_APB1ENR1, 0u, RCC_APB1ENR1_PWREN);
    (void)TE_REG(RCC_APB1ENR1);
    te_reg_modify(PWR_CR1, PWR_CR1_VOS_MASK, PWR_CR1_VOS_RANGE1);
    te_reg_wait(PWR_SR2, PWR_SR2_VOSF, 0u);

#if TE_CLK_USE_HSE
    te_stm32_hse_on(RCC_CR, TE_CLK_HSE_BYPASS);
#else
    te_reg_modify(RCC_CR, 0u, RCC_CR_HSION);
    te_reg_wait(RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);
#endif

    te_reg_modify(RCC_PLLCFGR, RCC_PLLCFGR_FIELDS, TE_CLK_PLLCFGR);
    te_reg_modify(RCC_CR, 0u, RCC_CR_PLLON);
    te_reg_wait(RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY);

#if TE_CLK_BOOST
    te_reg_modify(RCC_CFGR, RCC_CFGR_HPRE_MASK, RCC_CFGR_HPRE_DIV2);
    te_reg_modify(PWR_CR5, PWR_CR5_R1MODE, 0u);
#endif
    te_reg_modify(FLASH_ACR, FLASH_ACR_MASK, TE_CLK_FLASH_ACR);
    te_reg_wait(FLASH_ACR, FLASH_ACR_LATENCY_MASK, TE_CLK_FLASH_ACR & FLASH_ACR_LATENCY_MASK);

    te_reg_modify(RCC_CFGR, RCC_CFGR_SW_MASK, RCC_CFGR_SW_PLL);
    te_reg_wait(RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SW_PLL << 2);
#if TE_CLK_BOOST
    /* >= 1 us: 2 x 256 instructions take at least 4 us at 120 MHz / 2. */
    board_spin(256u);
#endif
    te_reg_modify(RCC_CFGR, RCC_CFGR_PRESC_MASK, TE_CLK_CFGR_PRESC);
}
