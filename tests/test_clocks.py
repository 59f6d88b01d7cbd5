"""The [clock] tables and the register values packed from them.

Expected register values are packed by hand here from the reference manuals'
field layouts (cited per case), not by tinyedge's code; the limits the parser
must enforce come from the same manuals' tables.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyedge.boards import load_board
from tinyedge.errors import TinyEdgeError
from tinyedge.validate import latency_cycles


def defines(board: str) -> dict[str, str]:
    return {n: v for n, v, _ in load_board(board).c_defines()}


def test_stm32f407_168mhz() -> None:
    b = load_board("stm32f4-discovery")
    assert b.clock is not None and b.clock.sysclk_hz == 168_000_000
    d = defines("stm32f4-discovery")
    # RM0090 6.3.2 RCC_PLLCFGR: PLLM=16 (5:0) | PLLN=336 << 6 | PLLP=/2 -> 00 << 16 |
    # PLLSRC=HSI (bit 22 = 0) | PLLQ=7 << 24
    assert d["TE_CLK_PLLCFGR"] == f"0x{16 | 336 << 6 | 7 << 24:08X}u" == "0x07005410u"
    # RM0090 6.3.3 RCC_CFGR: HPRE /1 = 0000, PPRE1 /4 = 101 (12:10), PPRE2 /2 = 100 (15:13)
    assert d["TE_CLK_CFGR_PRESC"] == f"0x{0b101 << 10 | 0b100 << 13:08X}u"
    # RM0090 3.9.1 FLASH_ACR: 5 wait states (Table 10: 150 < HCLK <= 168 MHz at 2.7-3.6 V),
    # PRFTEN 8, ICEN 9, DCEN 10
    assert d["TE_CLK_FLASH_ACR"] == "0x00000705u"
    assert b.clock.buses["apb1"] == 42_000_000
    assert d["TE_UART_BRR"] == "0x016Du"          # USART2 on APB1: 42e6 / 115200 = 364.6 -> 365


def test_stm32f746_216mhz_overdrive() -> None:
    d = defines("nucleo-f746zg")
    # RM0385 5.3.2: PLLM 8, PLLN 216 << 6, PLLP /2, HSI, PLLQ 9 << 24
    assert d["TE_CLK_PLLCFGR"] == f"0x{8 | 216 << 6 | 9 << 24:08X}u"
    # RM0385 Table 5: 210 < HCLK <= 216 MHz -> 7 wait states; PRFTEN 8, ARTEN 9
    assert d["TE_CLK_FLASH_ACR"] == "0x00000307u"
    assert d["TE_CLK_OVERDRIVE"] == "1u" and d["TE_CLK_STM32F7"] == "1u"
    assert d["TE_UART_BRR"] == "0x001D5u"         # USART3 on APB1 54 MHz: 468.75 -> 469
    assert d["TE_ENABLE_CACHES"] == "1u" and d["TE_TIMER_DWT"] == "1u"


def test_stm32h743_400mhz() -> None:
    d = defines("nucleo-h743zi2")
    assert d["TE_CLK_PLLCKSELR"] == f"0x{4 << 4:08X}u"                # RM0433 8.7.11: HSI, DIVM1 = 4
    assert d["TE_CLK_PLLCFGR"] == f"0x{0b11 << 2 | 1 << 16:08X}u"     # 8.7.12: 8-16 MHz input, DIVP1EN
    # 8.7.13 RCC_PLL1DIVR: DIVN1 = N-1, DIVP1 = P-1 << 9, DIVQ1 = Q-1 << 16, DIVR1 = R-1 << 24
    assert d["TE_CLK_PLL1DIVR"] == f"0x{49 | 1 << 9 | 3 << 16 | 1 << 24:08X}u"
    # 8.7.8 RCC_D1CFGR: D1CPRE /1, D1PPRE /2 = 100 << 4, HPRE /2 = 1000
    assert d["TE_CLK_D1CFGR"] == f"0x{0b100 << 4 | 0b1000:08X}u"
    # 4.3.8 Table 17, VOS1, 185 < AXI <= 210 MHz: 2 wait states, WRHIGHFREQ = 2
    assert d["TE_CLK_FLASH_ACR"] == f"0x{2 | 2 << 4:08X}u"
    assert d["TE_UART_BRR"] == "0x00364u"         # 100e6 / 115200 = 868.06 -> 868


def test_stm32l4r5_120mhz_boost_and_lpuart() -> None:
    d = defines("nucleo-l4r5zi")
    # RM0432 6.4.4 RCC_PLLCFGR: PLLSRC HSI16 = 10, PLLM = M-1 << 4, PLLN << 8, PLLREN 24, PLLR /2 = 00
    assert d["TE_CLK_PLLCFGR"] == f"0x{0b10 | 1 << 4 | 30 << 8 | 1 << 24:08X}u"
    assert d["TE_CLK_BOOST"] == "1u"
    assert d["TE_CLK_FLASH_ACR"] == "0x00000705u"  # Table 12, Range 1 boost, 100-120 MHz: 5 WS
    # RM0432 53.4.7: LPUART BRR = 256 x 120e6 / 115200 = 266666.7 -> 266667
    assert d["TE_UART_BRR"] == f"0x{266667:05X}u" and d["TE_UART_LPUART"] == "1u"


def test_nrf52840_uarte_baudrate() -> None:
    d = defines("nrf52840-dk")
    assert d["TE_UART_BAUDRATE_REG"] == "0x01D60000u"   # PS 6.34.10: UARTE 115200 (UART: 0x01D7E000)
    assert (d["TE_UART_TX_PIN"], d["TE_UART_RX_PIN"]) == ("6u", "8u")
    assert d["TE_CLK_HFXO"] == "1u" and d["TE_TIMER_DWT"] == "1u"


def test_netduinoplus2_clock_is_unchanged() -> None:
    b = load_board("netduinoplus2")
    assert b.clock is not None and b.clock.sysclk_hz == 16_000_000 and b.timer == "systick"
    d = defines("netduinoplus2")
    assert d["TE_CLK_USE_PLL"] == "0u" and d["TE_UART_BRR"] == "0x008Bu"


BASE = """
name = "{name}"
description = "test"
core = "cortex-m4"
fpu = "fpv4-sp-d16"
clock_hz = {clock_hz}
timer = "dwt"
[memory]
code = "FLASH"
data = "SRAM"
stack = "SRAM"
arena = ["SRAM"]
stack_size = 0x400
[[memory.region]]
name = "FLASH"
origin = 0x0800_0000
size = 0x0010_0000
kind = "flash"
[[memory.region]]
name = "SRAM"
origin = 0x2000_0000
size = 0x0002_0000
kind = "ram"
[clock]
{clock}
[uart]
driver = "stm32"
base = 0x4000_4400
bus = "apb1"
"""

F4 = """family = "stm32f4"
source = "hsi"
pll_m = 16
pll_n = 336
pll_p = 2
pll_q = 7
apb1_div = 4
apb2_div = 2
flash_latency = 5"""


def _board(tmp_path: Path, clock: str, clock_hz: int = 168_000_000, extra: str = "") -> object:
    path = tmp_path / "myboard.toml"
    path.write_text(BASE.format(name="myboard", clock_hz=clock_hz, clock=clock) + extra)
    return load_board(str(path))


def test_a_good_f4_table_loads(tmp_path: Path) -> None:
    b = _board(tmp_path, F4)
    assert b.uart.clock_hz == 42_000_000  # type: ignore[attr-defined]


@pytest.mark.parametrize("change,clock_hz,message", [
    (("flash_latency = 5", "flash_latency = 4"), 168_000_000, "too small"),          # RM0090 Table 10
    (("apb1_div = 4", "apb1_div = 2"), 168_000_000, "apb1 clock 84 MHz exceeds"),    # APB1 <= 42 MHz
    (("pll_m = 16", "pll_m = 8"), 168_000_000, "VCO output"),                       # 672 > 432 MHz
    (("pll_m = 16", "pll_m = 4"), 168_000_000, "PLL input"),                         # 1..2 MHz
    (("pll_p = 2", "pll_p = 3"), 168_000_000, "pll_p must be one of"),
    (("pll_n = 336", "pll_n = 300"), 168_000_000, "clock_hz says"),                # 150 MHz != 168
    (("flash_latency = 5", "flash_latency = 5\noverdrive = true"), 168_000_000, "F7 only"),
    (("flash_latency = 5", "flash_latency = 5\npll_x = 1"), 168_000_000, "unknown key.*pll_x"),
    (('family = "stm32f4"', 'family = "stm32f9"'), 168_000_000, "family 'stm32f9' unknown"),
])
def test_bad_clock_tables_are_user_errors(tmp_path: Path, change: tuple[str, str], clock_hz: int,
                                          message: str) -> None:
    with pytest.raises(TinyEdgeError, match=message) as err:
        _board(tmp_path, F4.replace(*change), clock_hz)
    assert "[clock]" in err.value.message and "boards/README.md" in err.value.hint


@pytest.mark.parametrize("extra,message", [
    ('\n[[init]]\naddress = 0x4002_3830\nset_bits = 1\nclear_bit = 2\n', "unknown key.*clear_bit"),
    ('\n[[init]]\naddress = 0x4002_3831\nset_bits = 1\n', "multiple of 4"),
])
def test_bad_init_writes(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(TinyEdgeError, match=message):
        _board(tmp_path, F4, extra=extra)


@pytest.mark.parametrize("change,message", [
    (('arena = ["SRAM"]', 'arena = ["CCM"]'), "arena region 'CCM'"),
    (('stack = "SRAM"', 'stack = "FLASH"'), "must name a ram region"),
    (('size = 0x0002_0000', 'size = 0x0002_0000\nspeed = 1'), "unknown key.*speed"),
    (('origin = 0x2000_0000', 'origin = 0x080F_0000'), "overlaps FLASH"),
    (('timer = "dwt"', 'timer = "rtc"'), "timer must be"),
    (('timer = "dwt"', 'timer = "dwt"\ncaches = true'), "Cortex-M7"),
    (('bus = "apb1"', 'bus = "apb9"'), "not a bus of the clock tree"),
])
def test_bad_memory_and_board_keys(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "myboard.toml"
    path.write_text(BASE.format(name="myboard", clock_hz=168_000_000, clock=F4).replace(*change))
    with pytest.raises(TinyEdgeError, match=message):
        load_board(str(path))


def test_arena_goes_to_the_first_region_that_holds_it() -> None:
    from tinyedge.boards import STATIC_RAM_UPPER_BYTES as static

    b = load_board("nucleo-f746zg")
    dtcm = b.region("DTCM").size                       # 64 KiB, shared with a 16 KiB stack
    assert b.layout(16 * 1024).arena == "DTCM"
    assert b.layout(dtcm - b.stack_size - static).arena == "DTCM"
    assert b.layout(dtcm - b.stack_size - static + 1).arena == "SRAM"
    assert b.layout(10 << 20).arena == "SRAM"          # fits nowhere: the last, the linker reports it


def test_library_boards() -> None:
    for core in ("m0", "m3", "m4", "m7", "m33", "m55"):
        b = load_board(f"generic-cortex-{core}")
        assert b.is_library and b.timer == "port" and b.uart is None and not b.regions
    assert load_board("generic-cortex-m0").cpu_flags[-1] == "-mfloat-abi=soft"
    assert load_board("generic-cortex-m4").cpu_flags == load_board("mps2-an386").cpu_flags


def test_cycles_from_a_run_answer() -> None:
    # dwt: CYCCNT is 32 bits; SysTick (64-bit, same clock) says how often it wrapped
    assert latency_cycles("dwt", ticks=123_456, cycles=123_400) == 123_400
    assert latency_cycles("dwt", ticks=2**32 + 5_000, cycles=4_990) == 2**32 + 4_990
    assert latency_cycles("dwt", ticks=3 * 2**32 + 7, cycles=2**32 - 3) == 3 * 2**32 - 3
    assert latency_cycles("port", ticks=2**33, cycles=0) == 2**33
    assert latency_cycles("systick", ticks=1000, cycles=0) is None


def test_cli_prints_cycles_and_microseconds_for_cycle_counter_boards() -> None:
    from tinyedge.cli import _latency

    assert _latency(None, 6_541_212, 6_541_212 * 1e6 / 120e6, 6_541_230) == "6,541,212 cycles = 54,510.1 µs"
    assert _latency(None, 1000, None, 1000) == "1,000 cycles"            # library without a clock
    assert _latency(4_000, None, None, 100) == "4,000 instructions"       # emulated: SysTick x icount
