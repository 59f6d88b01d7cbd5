/*
 * te_port.h - the port layer: what the tinyedge library needs from your
 * firmware to run the validation server (`tinyedge validate --port`).
 *
 * Write these three functions for your platform (one .c file), build them
 * into your firmware with the library, and call te_server_run() (tinyedge.h)
 * once your UART and cycle counter are set up. The examples/ directory of
 * tinyedge has a worked port for STM32CubeIDE (HAL UART + DWT).
 */
#ifndef TE_PORT_H
#define TE_PORT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {  /* C++ firmware (Arduino ...) links against C names */
#endif

/* The frequency te_port_cycles() counts at, in Hz, so that the host can turn
 * cycles into microseconds. Define it on the compiler command line
 * (-DTE_PORT_CLOCK_HZ=216000000u); 0 means unknown: cycles only. */
#ifndef TE_PORT_CLOCK_HZ
#define TE_PORT_CLOCK_HZ 0u
#endif

/* Block until one byte has arrived on the UART the host talks to, return it.
 * 8 data bits, no parity, 1 stop bit, at the baud rate `tinyedge validate
 * --baud` uses (115200 by default). Bytes must not be lost while the server
 * is between two calls: a UART with a FIFO or an interrupt-driven ring buffer
 * is right; the host sends one frame and waits for the answer. */
uint8_t te_port_uart_read(void);

/* Send len bytes on the same UART; return when they are queued or sent. */
void te_port_uart_write(const uint8_t *data, uint32_t len);

/* A free-running 32-bit cycle counter, e.g. the DWT CYCCNT on Cortex-M3 and
 * up (DEMCR.TRCENA = 1, DWT_CTRL.CYCCNTENA = 1), counting at TE_PORT_CLOCK_HZ.
 * Return 0 if there is none: validation still works, without timing. */
uint32_t te_port_cycles(void);

#ifdef __cplusplus
}
#endif

#endif /* TE_PORT_H */
