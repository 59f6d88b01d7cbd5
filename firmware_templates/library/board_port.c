/*
 * board_port.c - the board functions the validation server uses, on top of
 * the port layer (port/te_port.h): UART read, UART write, cycle counter.
 */
#include <stdint.h>

#include "board.h"
#include "te_port.h"

void board_uart_putc(uint8_t c)
{
    te_port_uart_write(&c, 1u);
}

void board_uart_write(const uint8_t *data, uint32_t len)
{
    te_port_uart_write(data, len);
}

uint8_t board_uart_getc(void)
{
    return te_port_uart_read();
}

static uint32_t last_cycles;
static uint32_t cycle_wraps;

uint64_t board_ticks(void)
{
    uint32_t now = te_port_cycles();
    if (now < last_cycles) {
        cycle_wraps++;
    }
    last_cycles = now;
    return ((uint64_t)cycle_wraps << 32) | now;
}

void board_ticks_restart(void)
{
}

uint32_t board_cycles(void)
{
    return te_port_cycles();
}
