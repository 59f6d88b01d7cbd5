/*
 * uart_nrf52.c - nRF52840 UARTE (UART with EasyDMA), polled.
 * Registers (nRF52840 Product Specification v1.7, 6.34 "UARTE"):
 *   tasks STARTRX +0x000, STOPRX +0x004, STARTTX +0x008, STOPTX +0x00C;
 *   events ENDRX +0x110, ENDTX +0x120, ERROR +0x124; ERRORSRC +0x480;
 *   ENABLE +0x500 (8 = UARTE); PSEL.TXD +0x50C, PSEL.RXD +0x514;
 *   BAUDRATE +0x524; RXD.PTR +0x534, RXD.MAXCNT +0x538; TXD.PTR +0x544,
 *   TXD.MAXCNT +0x548; CONFIG +0x56C (0: no flow control, no parity, 1 stop).
 *
 * EasyDMA reads and writes RAM only (6.34.1): both buffers are static RAM.
 * Reception runs one byte at a time: after ENDRX the byte is taken and
 * STARTRX re-armed at once; bytes that arrive in between wait in the
 * receiver's FIFO and are moved to the buffer by the next STARTRX (6.34.3
 * "Reception"). The host sends one frame and waits for the answer, so the
 * FIFO never fills while the firmware computes. Transmission sends up to
 * sizeof(tx_buf) bytes per DMA transfer.
 * The TX pin is an output driven high and the RX pin a connected input
 * before the UARTE is enabled ([[init]] writes in the board file, 6.34.9
 * "Pin configuration").
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "te_reg.h"

#define UARTE_STARTRX (TE_UART_BASE + 0x000u)
#define UARTE_STARTTX (TE_UART_BASE + 0x008u)
#define UARTE_ENDRX (TE_UART_BASE + 0x110u)
#define UARTE_ENDTX (TE_UART_BASE + 0x120u)
#define UARTE_ERROR (TE_UART_BASE + 0x124u)
#define UARTE_ERRORSRC (TE_UART_BASE + 0x480u)
#define UARTE_ENABLE (TE_UART_BASE + 0x500u)
#define UARTE_PSEL_TXD (TE_UART_BASE + 0x50Cu)
#define UARTE_PSEL_RXD (TE_UART_BASE + 0x514u)
#define UARTE_BAUDRATE (TE_UART_BASE + 0x524u)
#define UARTE_RXD_PTR (TE_UART_BASE + 0x534u)
#define UARTE_RXD_MAXCNT (TE_UART_BASE + 0x538u)
#define UARTE_TXD_PTR (TE_UART_BASE + 0x544u)
#define UARTE_TXD_MAXCNT (TE_UART_BASE + 0x548u)
#define UARTE_CONFIG (TE_UART_BASE + 0x56Cu)

#define ENABLE_UARTE 8u

static uint8_t rx_byte;
static uint8_t tx_buf[64];

void board_uart_init(void)
{
    TE_REG(UARTE_ENABLE) = 0u;
    TE_REG(UARTE_PSEL_TXD) = TE_UART_TX_PIN; /* port 0, CONNECT (bit 31) = 0 */
    TE_REG(UARTE_PSEL_RXD) = TE_UART_RX_PIN;
    TE_REG(UARTE_BAUDRATE) = TE_UART_BAUDRATE_REG;
    TE_REG(UARTE_CONFIG) = 0u;
    TE_REG(UARTE_ENABLE) = ENABLE_UARTE;
    TE_REG(UARTE_ENDRX) = 0u;
    TE_REG(UARTE_RXD_PTR) = (uint32_t)(uintptr_t)&rx_byte;
    TE_REG(UARTE_RXD_MAXCNT) = 1u;
    TE_REG(UARTE_STARTRX) = 1u;
}

void board_uart_write(const uint8_t *data, uint32_t len)
{
    while (len > 0u) {
        uint32_t n = (len < sizeof(tx_buf)) ? len : (uint32_t)sizeof(tx_buf);
        memcpy(tx_buf, data, n);
        TE_REG(UARTE_ENDTX) = 0u;
        TE_REG(UARTE_TXD_PTR) = (uint32_t)(uintptr_t)tx_buf;
        TE_REG(UARTE_TXD_MAXCNT) = n;
        TE_REG(UARTE_STARTTX) = 1u;
        te_reg_wait(UARTE_ENDTX, 1u, 1u);
        data += n;
        len -= n;
    }
}

void board_uart_putc(uint8_t c)
{
    board_uart_write(&c, 1u);
}

uint8_t board_uart_getc(void)
{
    uint8_t c;
    while (TE_REG(UARTE_ENDRX) == 0u) {
        if (TE_REG(UARTE_ERROR) != 0u) {
            TE_REG(UARTE_ERROR) = 0u;
            TE_REG(UARTE_ERRORSRC) = TE_REG(UARTE_ERRORSRC); /* write 1 to clear */
        }
    }
    TE_REG(UARTE_ENDRX) = 0u;
    c = rx_byte;
    TE_REG(UARTE_STARTRX) = 1u;
    return c;
}
