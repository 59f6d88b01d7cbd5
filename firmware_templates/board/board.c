/*
 * board.c - board_init, the 64-bit tick counter (SysTick) and the cycle
 * counter (DWT). Common to every Cortex-M board: the board-specific numbers
 * come from board.h, the clock tree from clock_<family>.c (board_clock_init).
 */
#include <stdint.h>

#include "board.h"

/* SysTick (Armv7-M ARM B3.3): 24-bit down counter. */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
/* Full 24 bits: one wrap interrupt per 2^24 ticks. Tests build with a
 * smaller value (EXTRA_CFLAGS=-DTE_SYSTICK_RELOAD=0xFFFF) to exercise the
 * wrap counting quickly. */
#ifndef TE_SYSTICK_RELOAD
#define TE_SYSTICK_RELOAD 0x00FFFFFFu
#endif

/* ICSR.PENDSTSET: a SysTick wrap is pending but not yet counted. */
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_ICSR_PENDSTCLR (1u << 25)

/* DWT cycle counter (Armv7-M ARM C1.8); absent on Armv6-M. */
#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)
#define DWT_LAR_KEY 0xC5ACCE55u /* CoreSight unlock (Cortex-M7) */
#define DWT_CTRL_CYCCNTENA (1u << 0)

#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || \
    defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
#define TE_HAVE_DWT 1
#else
#define TE_HAVE_DWT 0
#endif

typedef struct {
    uint32_t address;
    uint32_t clear;
    uint32_t bits;
} te_reg_write_t;

static const te_reg_write_t init_writes[] = TE_BOARD_INIT_WRITES;

static volatile uint32_t systick_wraps;

/* Each write reads the register back: after a peripheral clock is enabled
 * in RCC, ST's errata sheets (e.g. ES0182 2.1.x "Delay after an RCC
 * peripheral clock enabling") ask for a read of the enable register before
 * the peripheral is touched. */
static void apply_init_writes(void)
{
    const te_reg_write_t *w;
    for (w = init_writes; w->address != 0u; ++w) {
        volatile uint32_t *reg = (volatile uint32_t *)(uintptr_t)w->address;
        *reg = (*reg & ~w->clear) | w->bits;
        (void)*reg;
    }
}

void board_init(void)
{
#if TE_HAVE_CLOCK_INIT
    board_clock_init();
#endif
    apply_init_writes();
    board_uart_init();
    board_timer_init();
    board_cycles_init();
}

void SysTick_Handler(void)
{
    systick_wraps++;
}

void board_timer_init(void)
{
    SYST_CSR = 0u;
    SYST_RVR = TE_SYSTICK_RELOAD;
    SYST_CVR = 0u; /* any write clears the counter */
    systick_wraps = 0u;
    SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

static uint32_t irq_save(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static void irq_restore(uint32_t primask)
{
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

/* Restart the tick counter so that every timed region starts at the same
 * phase of SysTick. Under QEMU -icount a tick is several instructions (40 on
 * MPS2): started at whatever phase the UART traffic before it left, the same
 * code read one tick more in about a third of the runs. A write to SYST_CVR
 * clears the counter, which reloads from SYST_RVR on the next clock edge
 * (Armv7-M ARM B3.3.1, "SysTick Current Value Register"); QEMU starts that
 * edge's period at the write (hw/timer/armv7m_systick.c, ptimer_set_count),
 * so from the write on every count is a function of the instructions
 * executed. Waiting for the reload keeps the transient 0 out of
 * board_ticks(). Costs about one tick, before the timed region starts. */
void board_ticks_restart(void)
{
    uint32_t primask = irq_save();
    SYST_CVR = 0u;
    SCB_ICSR = SCB_ICSR_PENDSTCLR; /* a wrap pending from before is not ours */
    systick_wraps = 0u;
    while (SYST_CVR == 0u) {
    }
    irq_restore(primask);
}

uint64_t board_ticks(void)
{
    uint32_t primask = irq_save();
    uint32_t wraps = systick_wraps;
    uint32_t count = SYST_CVR;
    if (SCB_ICSR & SCB_ICSR_PENDSTSET) {
        /* Wrapped after the last interrupt was counted: re-read so that
         * count is certainly from after the wrap, and count the wrap. */
        count = SYST_CVR;
        wraps++;
    }
    irq_restore(primask);
    return (uint64_t)wraps * ((uint64_t)TE_SYSTICK_RELOAD + 1u) +
           (uint64_t)(TE_SYSTICK_RELOAD - count);
}

void board_cycles_init(void)
{
#if TE_HAVE_DWT
    DEMCR |= DEMCR_TRCENA;
    DWT_LAR = DWT_LAR_KEY;
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
#endif
}

uint32_t board_cycles(void)
{
#if TE_HAVE_DWT
    return DWT_CYCCNT;
#else
    return 0u;
#endif
}

/* Drivers that can send a block at once (DMA) replace this. */
__attribute__((weak)) void board_uart_write(const uint8_t *data, uint32_t len)
{
    uint32_t i;
    for (i = 0u; i < len; ++i) {
        board_uart_putc(data[i]);
    }
}
