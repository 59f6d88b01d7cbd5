/*
 * uart_stm32v2.c - the USART of STM32F7/H7/L4 parts and the LPUART of
 * STM32L4+ parts, polled (the same registers: RM0385 34.8 "USART registers",
 * RM0433 48.7, RM0432 52.8 and 53.7 "LPUART registers"):
 *   CR1 +0x00 (bit0 UE, bit2 RE, bit3 TE), CR2 +0x04, CR3 +0x08 (bit12
 *   OVRDIS), BRR +0x0C, ISR +0x1C (bit1 FE, bit2 NE, bit3 ORE, bit5 RXNE,
 *   bit7 TXE), ICR +0x20 (write 1 to clear FE/NE/ORE), RDR +0x24, TDR +0x28.
 * 8N1, 16x oversampling; BRR = clock / baud for a USART, 256 x clock / baud
 * for an LPUART (computed in tinyedge/boards.py). Overrun detection is off
 * (CR3.OVRDIS): a byte lost to an overrun shows as a CRC error that the
 * protocol retries, and reception never stalls on a pending ORE flag.
 * Clock gates and pin muxing are [[init]] register writes in the board file.
 */
#include <stdint.h>

#include "board.h"
#include "te_reg.h"

#define USART_CR1 (TE_UART_BASE + 0x00u)
#define USART_CR2 (TE_UART_BASE + 0x04u)
#define USART_CR3 (TE_UART_BASE + 0x08u)
#define USART_BRR (TE_UART_BASE + 0x0Cu)
#define USART_ISR (TE_UART_BASE + 0x1Cu)
#define USART_ICR (TE_UART_BASE + 0x20u)
#define USART_RDR (TE_UART_BASE + 0x24u)
#define USART_TDR (TE_UART_BASE + 0x28u)

#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR3_OVRDIS (1u << 12)
#define ISR_FE (1u << 1)
#define ISR_NE (1u << 2)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)
#define ISR_ERRORS (ISR_FE | ISR_NE | ISR_ORE)

void board_uart_init(void)
{
    TE_REG(USART_CR1) = 0u; /* UE = 0: BRR and CR2/CR3 are writable */
    TE_REG(USART_CR2) = 0u;
    TE_REG(USART_CR3) = CR3_OVRDIS;
    TE_REG(USART_BRR) = TE_UART_BRR;
    TE_REG(USART_ICR) = ISR_ERRORS;
    TE_REG(USART_CR1) = CR1_UE | CR1_TE | CR1_RE;
}

void board_uart_putc(uint8_t c)
{
    while ((TE_REG(USART_ISR) & ISR_TXE) == 0u) {
    }
    TE_REG(USART_TDR) = c;
}

uint8_t board_uart_getc(void)
{
    uint32_t isr;
    while (((isr = TE_REG(USART_ISR)) & ISR_RXNE) == 0u) {
        if (isr & ISR_ERRORS) {
            TE_REG(USART_ICR) = isr & ISR_ERRORS; /* framing/noise: drop, go on */
        }
    }
    return (uint8_t)TE_REG(USART_RDR);
}
