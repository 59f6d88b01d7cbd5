/*
 * te_port_stm32cube.c - the tinyedge port layer (port/te_port.h) for an
 * STM32CubeIDE project on the NUCLEO-F746ZG: the three functions the
 * validation server needs, on top of the STM32 HAL and the CMSIS core
 * registers. Copy it to Core/Src/ (see README.md next to this file).
 *
 * huart3 is the USART3 handle CubeMX generates for the board's ST-LINK
 * virtual COM port (PD8/PD9, 115200 8N1).
 */
#include <stdint.h>

#include "main.h"      /* the HAL, the device header (DWT, CoreDebug) */
#include "te_port.h"

extern UART_HandleTypeDef huart3;

uint8_t te_port_uart_read(void)
{
    uint8_t byte = 0;
    while (HAL_UART_Receive(&huart3, &byte, 1, HAL_MAX_DELAY) != HAL_OK) {
        /* a framing or noise error drops the byte; the host retries the frame */
    }
    return byte;
}

void te_port_uart_write(const uint8_t *data, uint32_t len)
{
    while (len > 0u) {
        uint16_t n = (len > 0xFFFFu) ? 0xFFFFu : (uint16_t)len;
        HAL_UART_Transmit(&huart3, (uint8_t *)data, n, HAL_MAX_DELAY);
        data += n;
        len -= n;
    }
}

uint32_t te_port_cycles(void)
{
    /* The DWT cycle counter (Armv7-M ARM C1.8): trace on, unlock (Cortex-M7),
     * count. Done on first use so that the port stays three functions. */
    if ((DWT->CTRL & DWT_CTRL_CYCCNTENA_Msk) == 0u) {
        CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
        DWT->LAR = 0xC5ACCE55u;
        DWT->CYCCNT = 0u;
        DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
    }
    return DWT->CYCCNT;
}
