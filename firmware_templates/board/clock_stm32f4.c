/*
 * clock_stm32f4.c - clock tree of STM32F405/F407 (RM0090) and STM32F74x
 * (RM0385) parts: voltage scale 1, the main PLL, F7 over-drive, flash wait
 * states, bus prescalers, SYSCLK switch. The register values (PLLCFGR,
 * prescalers, FLASH_ACR) were computed and checked against the parts' limits
 * by tinyedge/clocks.py from the board file's [clock] table; this file only
 * sequences the writes.
 *
 * The order follows RM0090 6.2.3/5.1.3 and RM0385 5.2.3/4.1.4 ("Entering
 * Over-drive mode"):
 *   1. PWR clock on, voltage scale 1 (VOS may change only while the PLL is off)
 *   2. HSE on and ready (if it is the source)
 *   3. PLLCFGR written while the PLL is off, PLL on
 *   4. F7 above 180 MHz: ODEN, wait ODRDY; ODSWEN, wait ODSWRDY
 *   5. flash wait states (checked by reading FLASH_ACR back, RM0090 3.5.1)
 *      and AHB/APB prescalers, before the clock goes up
 *   6. wait for PLL lock, switch SYSCLK, wait until SWS confirms
 * Without a PLL (netduinoplus2) only steps 1, 5 and the switch to HSI run:
 * that path is what QEMU's netduinoplus2 machine executes in the tests.
 */
#include <stdint.h>

#include "board.h"
#include "te_reg.h"

#define RCC_BASE 0x40023800u
#define RCC_CR (RCC_BASE + 0x00u)
#define RCC_PLLCFGR (RCC_BASE + 0x04u)
#define RCC_CFGR (RCC_BASE + 0x08u)
#define RCC_APB1ENR (RCC_BASE + 0x40u)

#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
/* PLLM 5:0, PLLN 14:6, PLLP 17:16, PLLSRC 22, PLLQ 27:24; the other bits
 * are reserved and keep their reset values. */
#define RCC_PLLCFGR_FIELDS 0x0F437FFFu
#define RCC_CFGR_SW_MASK 0x3u
#define RCC_CFGR_SWS_MASK 0xCu
#define RCC_CFGR_SW_HSI 0x0u
#define RCC_CFGR_SW_HSE 0x1u
#define RCC_CFGR_SW_PLL 0x2u
#define RCC_CFGR_PRESC_MASK 0xFCF0u /* HPRE 7:4, PPRE1 12:10, PPRE2 15:13 */
#define RCC_APB1ENR_PWREN (1u << 28)

#define PWR_BASE 0x40007000u
#define PWR_CR (PWR_BASE + 0x00u)   /* PWR_CR1 on the F7 */
#define PWR_CSR (PWR_BASE + 0x04u)  /* PWR_CSR1 on the F7 */
#define PWR_CR_VOS_F4 (1u << 14)    /* RM0090 5.4.1: 1 = scale 1 */
#define PWR_CR1_VOS_F7 (3u << 14)   /* RM0385 4.4.1: 11 = scale 1 */
#define PWR_CR1_ODEN (1u << 16)
#define PWR_CR1_ODSWEN (1u << 17)
#define PWR_CSR1_ODRDY (1u << 16)
#define PWR_CSR1_ODSWRDY (1u << 17)

#define FLASH_ACR 0x40023C00u
#define FLASH_ACR_MASK 0x0000070Fu /* LATENCY 3:0, PRFTEN 8, ICEN/ARTEN 9, DCEN 10 */
#define FLASH_ACR_LATENCY_MASK 0xFu

void board_clock_init(void)
{
    uint32_t sw;

    te_reg_modify(RCC_APB1ENR, 0u, RCC_APB1ENR_PWREN);
    (void)TE_REG(RCC_APB1ENR); /* the enable takes effect before PWR is touched */
#if TE_CLK_STM32F7
    te_reg_modify(PWR_CR, PWR_CR1_VOS_F7, PWR_CR1_VOS_F7);
#else
    te_reg_modify(PWR_CR, 0u, PWR_CR_VOS_F4);
#endif

#if TE_CLK_USE_HSE
    te_stm32_hse_on(RCC_CR, TE_CLK_HSE_BYPASS);
    sw = RCC_CFGR_SW_HSE;
#else
    sw = RCC_CFGR_SW_HSI; /* HSI runs from reset (RM0090 6.2.2) */
#endif

#if TE_CLK_USE_PLL
    te_reg_modify(RCC_PLLCFGR, RCC_PLLCFGR_FIELDS, TE_CLK_PLLCFGR);
    te_reg_modify(RCC_CR, 0u, RCC_CR_PLLON);
    sw = RCC_CFGR_SW_PLL;
#endif

#if TE_CLK_OVERDRIVE
    te_reg_modify(PWR_CR, 0u, PWR_CR1_ODEN);
    te_reg_wait(PWR_CSR, PWR_CSR1_ODRDY, PWR_CSR1_ODRDY);
    te_reg_modify(PWR_CR, 0u, PWR_CR1_ODSWEN);
    te_reg_wait(PWR_CSR, PWR_CSR1_ODSWRDY, PWR_CSR1_ODSWRDY);
#endif

    te_reg_modify(FLASH_ACR, FLASH_ACR_MASK, TE_CLK_FLASH_ACR);
    te_reg_wait(FLASH_ACR, FLASH_ACR_LATENCY_MASK, TE_CLK_FLASH_ACR & FLASH_ACR_LATENCY_MASK);
    te_reg_modify(RCC_CFGR, RCC_CFGR_PRESC_MASK, TE_CLK_CFGR_PRESC);

#if TE_CLK_USE_PLL
    te_reg_wait(RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY);
#endif
    te_reg_modify(RCC_CFGR, RCC_CFGR_SW_MASK, sw);
    te_reg_wait(RCC_CFGR, RCC_CFGR_SWS_MASK, sw << 2);
}
