/*
 * clock_stm32h7.c - clock tree of STM32H742/H743/H750 parts (RM0433): LDO
 * supply, voltage scale 1, PLL1, flash wait states, the domain prescalers and
 * the system clock switch. The register values were computed and checked by
 * tinyedge/clocks.py from the board file's [clock] table.
 *
 * Order (RM0433):
 *   1. supply configuration: LDO on, SCUEN cleared (6.4.1, 6.8.4 PWR_CR3;
 *      the write is accepted once per power-on); wait ACTVOSRDY (PWR_CSR1)
 *   2. voltage scale 1 (6.6.2, 6.8.6 PWR_D3CR.VOS = 11), wait VOSRDY
 *   3. HSE on and ready, if it is the PLL source
 *   4. PLL1 configured while off (8.7.11-8.7.13), on, wait PLL1RDY
 *   5. flash wait states + WRHIGHFREQ for the new AXI clock (4.3.8, Table
 *      17), read back before the clock goes up
 *   6. D1CPRE/HPRE and the APB prescalers (8.7.8-8.7.10)
 *   7. switch sys_ck to PLL1 (RCC_CFGR.SW = 011), wait SWS
 * The NUCLEO-H743ZI2's STM32H743 has no SMPS: the LDO is its only regulator.
 */
#include <stdint.h>

#include "board.h"
#include "te_reg.h"

#define PWR_BASE 0x58024800u
#define PWR_CSR1 (PWR_BASE + 0x04u)
#define PWR_CR3 (PWR_BASE + 0x0Cu)
#define PWR_D3CR (PWR_BASE + 0x18u)
#define PWR_CR3_BYPASS (1u << 0)
#define PWR_CR3_LDOEN (1u << 1)
#define PWR_CR3_SCUEN (1u << 2)
#define PWR_CSR1_ACTVOSRDY (1u << 13)
#define PWR_D3CR_VOSRDY (1u << 13)
#define PWR_D3CR_VOS_MASK (3u << 14)
#define PWR_D3CR_VOS_SCALE1 (3u << 14)

#define RCC_BASE 0x58024400u
#define RCC_CR (RCC_BASE + 0x00u)
#define RCC_CFGR (RCC_BASE + 0x10u)
#define RCC_D1CFGR (RCC_BASE + 0x18u)
#define RCC_D2CFGR (RCC_BASE + 0x1Cu)
#define RCC_D3CFGR (RCC_BASE + 0x20u)
#define RCC_PLLCKSELR (RCC_BASE + 0x28u)
#define RCC_PLLCFGR (RCC_BASE + 0x2Cu)
#define RCC_PLL1DIVR (RCC_BASE + 0x30u)

#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CFGR_SW_MASK 0x7u
#define RCC_CFGR_SWS_MASK (0x7u << 3)
#define RCC_CFGR_SW_PLL1 0x3u
#define RCC_PLLCKSELR_MASK 0x3F3u  /* PLLSRC 1:0, DIVM1 9:4 */
#define RCC_PLLCFGR_MASK 0x7000Fu  /* PLL1FRACEN 0, PLL1VCOSEL 1, PLL1RGE 3:2, DIVP1EN..DIVR1EN 18:16 */
#define RCC_D1CFGR_MASK 0xF7Fu     /* D1CPRE 11:8, D1PPRE 6:4, HPRE 3:0 */
#define RCC_D2CFGR_MASK 0x770u     /* D2PPRE2 10:8, D2PPRE1 6:4 */
#define RCC_D3CFGR_MASK 0x070u     /* D3PPRE 6:4 */

#define FLASH_ACR 0x52002000u
#define FLASH_ACR_MASK 0x3Fu       /* LATENCY 3:0, WRHIGHFREQ 5:4 */

void board_clock_init(void)
{
    te_reg_modify(PWR_CR3, PWR_CR3_SCUEN | PWR_CR3_LDOEN | PWR_CR3_BYPASS, PWR_CR3_LDOEN);
    te_reg_wait(PWR_CSR1, PWR_CSR1_ACTVOSRDY, PWR_CSR1_ACTVOSRDY);
    te_reg_modify(PWR_D3CR, PWR_D3CR_VOS_MASK, PWR_D3CR_VOS_SCALE1);
    te_reg_wait(PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY);

#if TE_CLK_USE_HSE
    te_stm32_hse_on(RCC_CR, TE_CLK_HSE_BYPASS);
#endif

    te_reg_modify(RCC_PLLCKSELR, RCC_PLLCKSELR_MASK, TE_CLK_PLLCKSELR);
    te_reg_modify(RCC_PLLCFGR, RCC_PLLCFGR_MASK, TE_CLK_PLLCFGR);
    TE_REG(RCC_PLL1DIVR) = TE_CLK_PLL1DIVR;
    te_reg_modify(RCC_CR, 0u, RCC_CR_PLL1ON);
    te_reg_wait(RCC_CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY);

    te_reg_modify(FLASH_ACR, FLASH_ACR_MASK, TE_CLK_FLASH_ACR);
    te_reg_wait(FLASH_ACR, FLASH_ACR_MASK, TE_CLK_FLASH_ACR);

    te_reg_modify(RCC_D1CFGR, RCC_D1CFGR_MASK, TE_CLK_D1CFGR);
    te_reg_modify(RCC_D2CFGR, RCC_D2CFGR_MASK, TE_CLK_D2CFGR);
    te_reg_modify(RCC_D3CFGR, RCC_D3CFGR_MASK, TE_CLK_D3CFGR);

    te_reg_modify(RCC_CFGR, RCC_CFGR_SW_MASK, RCC_CFGR_SW_PLL1);
    te_reg_wait(RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SW_PLL1 << 3);
}
