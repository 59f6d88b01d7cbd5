/*
 * startup.c - vector table and reset handler for every Cortex-M board (C only).
 *
 * Reset: set MSPLIM on Armv8-M, enable the FPU (if the code is built for
 * one) and, on Cortex-M7 boards that ask for it, the L1 caches; copy .data
 * from flash, zero .bss and the network arena, then board_init() and main().
 * The exception numbers and the vector table layout are from the Armv7-M /
 * Armv8-M Architecture Reference Manuals (B1.5.2 / B3.30).
 */
#include <stdint.h>

#include "board.h"

extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __arena_start[], __arena_end[];
extern uint32_t __stack_top[], __stack_limit[];

int main(void);

void Reset_Handler(void);
void Default_Handler(void) __attribute__((naked));
void te_fault_dispatch(const uint32_t *frame); /* fault.c */
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SecureFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

/* One vector table slot: the initial stack pointer or a handler. */
typedef union {
    void (*handler)(void);
    void *stack;
} te_vector_t;

#define TE_NUM_VECTORS (16u + TE_NUM_IRQS)

/* Slots 7-10 and 13 are reserved; on Armv6-M, 4-6 and 12 are too. The
 * external interrupts are never enabled, so they all go to the default. */
__attribute__((section(".isr_vector"), used))
const te_vector_t te_vector_table[TE_NUM_VECTORS] = {
    [0] = { .stack = __stack_top },
    [1] = { .handler = Reset_Handler },
    [2] = { .handler = NMI_Handler },
    [3] = { .handler = HardFault_Handler },
    [4] = { .handler = MemManage_Handler },
    [5] = { .handler = BusFault_Handler },
    [6] = { .handler = UsageFault_Handler },
    [7] = { .handler = SecureFault_Handler },
    [11] = { .handler = SVC_Handler },
    [12] = { .handler = DebugMon_Handler },
    [14] = { .handler = PendSV_Handler },
    [15] = { .handler = SysTick_Handler },
    [16 ... (TE_NUM_VECTORS - 1)] = { .handler = Default_Handler },
};

/* System Control Block registers (ARMv7-M ARM B3.2.2). */
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

/* Cache control (Armv7-M ARM B3.2.2 Table B3-4, B3.2.8 CCR; B2.2.7 and
 * B3.2.3 cache maintenance; Cortex-M7 TRM r1p2 4.1 and 4.8). */
#define SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define SCB_CCR_DC (1u << 16)    /* data cache enable */
#define SCB_CCR_IC (1u << 17)    /* instruction cache enable */
#define SCB_CCSIDR (*(volatile uint32_t *)0xE000ED80u)  /* geometry of the selected cache */
#define SCB_CSSELR (*(volatile uint32_t *)0xE000ED84u)  /* 0: level 1 data cache */
#define SCB_ICIALLU (*(volatile uint32_t *)0xE000EF50u) /* invalidate all I-cache */
#define SCB_DCISW (*(volatile uint32_t *)0xE000EF60u)   /* invalidate D-cache by set/way */

static void copy_data(void)
{
    const uint32_t *src = __data_load;
    uint32_t *dst = __data_start;
    while (dst < __data_end) {
        *dst++ = *src++;
    }
}

static void zero_words(uint32_t *dst, const uint32_t *end)
{
    while (dst < end) {
        *dst++ = 0u;
    }
}

static void enable_fpu(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CP10 and CP11 full access (CPACR bits 20-23); MVE uses them too. */
    SCB_CPACR |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
}

#if TE_ENABLE_CACHES
static void barriers(void)
{
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

/* The caches hold random contents after reset: invalidate, then enable
 * (Cortex-M7 TRM 4.8.1/4.8.3). The D-cache is invalidated line by line over
 * every set and way that CCSIDR reports: CCSIDR.LineSize (bits 2:0) =
 * log2(words per line) - 2, Associativity (12:3) = ways - 1, NumSets (27:13) =
 * sets - 1; DCISW takes the way in its top bits and the set above the line
 * offset (Armv7-M ARM B2.2.7, "Cache maintenance operations by set/way"). */
static void enable_caches(void)
{
    uint32_t ccsidr, sets, ways, line_shift, way_shift, set, way;

    barriers();
    SCB_ICIALLU = 0u;
    barriers();
    SCB_CCR |= SCB_CCR_IC;
    barriers();

    SCB_CSSELR = 0u;
    barriers();
    ccsidr = SCB_CCSIDR;
    line_shift = (ccsidr & 0x7u) + 4u;            /* log2(bytes per line) */
    ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    way_shift = (ways > 1u) ? (uint32_t)__builtin_clz(ways - 1u) : 0u;
    for (set = 0u; set < sets; ++set) {
        for (way = 0u; way < ways; ++way) {
            SCB_DCISW = (way << way_shift) | (set << line_shift);
        }
    }
    barriers();
    SCB_CCR |= SCB_CCR_DC;
    barriers();
}
#endif

static void set_stack_limit(void)
{
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    /* A stack overflow into the arena faults instead of corrupting it. */
    __asm__ volatile("msr msplim, %0" ::"r"(__stack_limit));
#endif
}

/* Every exception without its own handler lands here: hand the stacked
 * frame (r0-r3, r12, lr, pc, xpsr on the main stack) to fault.c. BL, not B:
 * a 16-bit B cannot reach far on Armv6-M; te_fault_dispatch never returns. */
void Default_Handler(void)
{
    __asm__ volatile("mrs r0, msp\n\t"
                     "bl te_fault_dispatch\n\t");
}

void Reset_Handler(void)
{
    set_stack_limit();
    enable_fpu();
#if TE_ENABLE_CACHES
    enable_caches();
#endif
    copy_data();
    zero_words(__bss_start, __bss_end);
    zero_words(__arena_start, __arena_end); /* C's static te_arena starts zeroed */
#if !defined(__ARM_ARCH_6M__)
    /* Armv6-M has no VTOR; elsewhere the table need not be at 0. */
    SCB_VTOR = (uint32_t)(uintptr_t)te_vector_table;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    board_init();
    (void)main();
    for (;;) {
    }
}
