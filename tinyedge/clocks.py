"""Clock trees of real boards: the ``[clock]`` table of a board file.

A board file states the clock tree as the reference manual names it (source
oscillator, PLL dividers, bus prescalers, flash wait states, voltage scaling).
This module checks it against the part's limits (the reference manual and
datasheet tables cited per family below), computes the resulting frequencies
(which must equal the board's ``clock_hz``) and packs the register values the
C driver ``firmware_templates/board/clock_<driver>.c`` writes. The C drivers
only sequence the writes; every number is computed and checked here.

Families:

* ``stm32f4`` - STM32F405/F407 (RM0090 6.3 "RCC registers", 3.5 "Flash
  interface"; limits from DS8626 / RM0090 6.2.3).
* ``stm32f7`` - STM32F74x/F75x (RM0385 5.3 "RCC registers", 3.3.2 "Read
  access latency", 4.1.4 "Voltage regulator: over-drive"). Same RCC layout as
  the F4, so the same C driver (clock_stm32f4.c) with over-drive added.
* ``stm32h7`` - STM32H742/H743/H750 (RM0433 8.7 "RCC registers", 6.8 "PWR
  registers", 4.3.8 "FLASH read latency").
* ``stm32l4`` - STM32L4+ (L4R5/L4S5...) (RM0432 6.4 "RCC registers", 5.1.8
  "Dynamic voltage scaling management", 3.3.3 "Read access latency").
* ``nrf52`` - nRF52840 (nRF52840 Product Specification v1.7, 5.4 "CLOCK",
  4.3 "NVMC"): the CPU always runs at 64 MHz; the crystal (HFXO) is started
  for an accurate UART baud rate, the flash cache enabled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

MHZ = 1_000_000

CLOCK_DRIVERS = {"stm32f4": "stm32f4", "stm32f7": "stm32f4", "stm32h7": "stm32h7",
                 "stm32l4": "stm32l4", "nrf52": "nrf52"}

# AHB prescaler field (HPRE) and APB prescaler field (PPRE) encodings, the
# same on F4 (RM0090 6.3.3), F7 (RM0385 5.3.3), L4+ (RM0432 6.4.3) and, for
# the 4-bit D1CPRE/HPRE and 3-bit DxPPRE fields, H7 (RM0433 8.7.8-8.7.10).
_HPRE = {1: 0b0000, 2: 0b1000, 4: 0b1001, 8: 0b1010, 16: 0b1011, 64: 0b1100, 128: 0b1101,
         256: 0b1110, 512: 0b1111}
_PPRE = {1: 0b000, 2: 0b100, 4: 0b101, 8: 0b110, 16: 0b111}


class ClockError(ValueError):
    """A clock table that does not describe a valid clock tree (message says why)."""


@dataclass(frozen=True)
class ClockConfig:
    family: str
    sysclk_hz: int                       # CPU clock that results
    buses: dict[str, int]                # bus name -> Hz (ahb, apb1, apb2, ...)
    defines: list[tuple[str, str, str]]  # (name, C value, comment) for board.h
    summary: str                         # one line for docs and `tinyedge boards`
    flash_wait_states: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def driver(self) -> str:
        return CLOCK_DRIVERS[self.family]


Getter = Callable[..., Any]


def _hex(v: int) -> str:
    return f"0x{v:08X}u"


def _div(table: dict[int, int], value: int, what: str) -> int:
    if value not in table:
        raise ClockError(f"{what} must be one of {', '.join(map(str, table))}, got {value}")
    return table[value]


def _check_range(value: float, lo: float, hi: float, what: str) -> None:
    if not lo <= value <= hi:
        raise ClockError(f"{what} is {value / MHZ:g} MHz, must be within "
                         f"{lo / MHZ:g}..{hi / MHZ:g} MHz")


def _check_max(buses: dict[str, int], limits: dict[str, int], ref: str) -> None:
    for bus, hz in buses.items():
        if bus in limits and hz > limits[bus]:
            raise ClockError(f"{bus} clock {hz / MHZ:g} MHz exceeds its {limits[bus] / MHZ:g} MHz "
                             f"maximum ({ref})")


def _exact(num: int, den: int, what: str) -> int:
    if num % den:
        raise ClockError(f"{what} is not a whole number of Hz ({num}/{den})")
    return num // den


def _source(get: Getter, hsi_hz: int) -> tuple[str, int, bool]:
    """(source, its frequency, HSE bypass) from source / hse_hz / hse_bypass."""
    source = get("source", str, "hsi")
    if source not in ("hsi", "hse"):
        raise ClockError(f"source must be 'hsi' or 'hse', got {source!r}")
    hse_hz = get("hse_hz", int, None)
    hse_bypass = get("hse_bypass", bool, False)
    if source == "hse" and not hse_hz:
        raise ClockError("source 'hse' needs hse_hz")
    return source, (hse_hz if source == "hse" else hsi_hz), hse_bypass


def parse_clock(get: Getter, family: str, clock_hz: int) -> ClockConfig:
    """Check and encode a ``[clock]`` table. ``get(key, type, default)`` reads it."""
    parsers = {"stm32f4": _stm32f4, "stm32f7": _stm32f4, "stm32h7": _stm32h7,
               "stm32l4": _stm32l4, "nrf52": _nrf52}
    if family not in parsers:
        raise ClockError(f"family {family!r} unknown (known: {', '.join(parsers)})")
    cfg = parsers[family](get, family, clock_hz)
    if cfg.sysclk_hz != clock_hz:
        raise ClockError(f"the clock tree gives a {cfg.sysclk_hz / MHZ:g} MHz CPU clock, "
                         f"clock_hz says {clock_hz / MHZ:g} MHz")
    return cfg


# ---------------------------------------------------------------------------
# STM32F4 / STM32F7
# ---------------------------------------------------------------------------

# family -> (HSI Hz, max SYSCLK, max APB1, max APB2, VCO input range, VCO output
# range, MHz per flash wait state at 2.7-3.6 V, reference)
_F4_LIMITS = {
    # RM0090 6.2.3 (PLL: VCO input 1-2 MHz, output 100-432 MHz), DS8626 6.3.1
    # (168 MHz, APB1 42 MHz, APB2 84 MHz), RM0090 3.5.1 Table 10 (30 MHz per
    # wait state at 2.7-3.6 V).
    "stm32f4": (16 * MHZ, 168 * MHZ, 42 * MHZ, 84 * MHZ, (1 * MHZ, 2 * MHZ),
                (100 * MHZ, 432 * MHZ), 30 * MHZ, "RM0090"),
    # RM0385 5.2.3 (VCO input 0.95-2.1 MHz, output 100-432 MHz), DS10916 6.3.1
    # (216 MHz with over-drive, 180 MHz without; APB1 54 MHz, APB2 108 MHz),
    # RM0385 3.3.2 Table 5 (30 MHz per wait state at 2.7-3.6 V).
    "stm32f7": (16 * MHZ, 216 * MHZ, 54 * MHZ, 108 * MHZ, (950_000, 2_100_000),
                (100 * MHZ, 432 * MHZ), 30 * MHZ, "RM0385"),
}


def _stm32f4(get: Getter, family: str, clock_hz: int) -> ClockConfig:
    hsi, max_sys, max_apb1, max_apb2, vco_in_range, vco_out_range, ws_step, ref = _F4_LIMITS[family]
    source, src_hz, hse_bypass = _source(get, hsi)
    pll_m = get("pll_m", int, None)
    use_pll = pll_m is not None
    overdrive = get("overdrive", bool, False)
    if overdrive and family != "stm32f7":
        raise ClockError("overdrive exists on the STM32F7 only")
    notes: list[str] = []
    pllcfgr = 0
    if use_pll:
        pll_n, pll_p, pll_q = get("pll_n", int), get("pll_p", int), get("pll_q", int)
        if not 2 <= pll_m <= 63 or not 50 <= pll_n <= 432 or not 2 <= pll_q <= 15:
            raise ClockError("pll_m must be 2..63, pll_n 50..432, pll_q 2..15 "
                             f"({ref} RCC_PLLCFGR)")
        p_bits = _div({2: 0, 4: 1, 6: 2, 8: 3}, pll_p, "pll_p")
        vco_in = src_hz / pll_m
        _check_range(vco_in, *vco_in_range, "the PLL input (source / pll_m)")
        vco_out = vco_in * pll_n
        _check_range(vco_out, *vco_out_range, "the PLL VCO output")
        sysclk = _exact(src_hz * pll_n, pll_m * pll_p, "SYSCLK")
        # RCC_PLLCFGR: PLLM 5:0, PLLN 14:6, PLLP 17:16, PLLSRC 22, PLLQ 27:24.
        pllcfgr = (pll_m | pll_n << 6 | p_bits << 16 | (1 << 22 if source == "hse" else 0)
                   | pll_q << 24)
        notes.append(f"PLL: {src_hz / MHZ:g} MHz {source.upper()} / M {pll_m} x N {pll_n} = "
                     f"{vco_out / MHZ:g} MHz VCO, / P {pll_p} = {sysclk / MHZ:g} MHz")
    else:
        sysclk = src_hz
    ahb_div, apb1_div, apb2_div = get("ahb_div", int, 1), get("apb1_div", int, 1), get("apb2_div", int, 1)
    cfgr = (_div(_HPRE, ahb_div, "ahb_div") << 4 | _div(_PPRE, apb1_div, "apb1_div") << 10
            | _div(_PPRE, apb2_div, "apb2_div") << 13)
    hclk = _exact(sysclk, ahb_div, "HCLK")
    buses = {"ahb": hclk, "apb1": _exact(hclk, apb1_div, "PCLK1"), "apb2": _exact(hclk, apb2_div, "PCLK2")}
    limit = max_sys if family == "stm32f4" or overdrive else 180 * MHZ
    _check_max({"SYSCLK": sysclk, "apb1": buses["apb1"], "apb2": buses["apb2"]},
               {"SYSCLK": limit, "apb1": max_apb1, "apb2": max_apb2}, ref)
    latency = get("flash_latency", int)
    need = math.ceil(hclk / ws_step) - 1
    if latency < need or latency > (7 if family == "stm32f4" else 15):
        raise ClockError(f"flash_latency {latency} is too small for HCLK {hclk / MHZ:g} MHz: "
                         f"{ref} asks for at least {need} wait states at 2.7-3.6 V")
    if family == "stm32f4":
        # FLASH_ACR: LATENCY 2:0, PRFTEN 8, ICEN 9, DCEN 10 (RM0090 3.9.1).
        acr = latency | 1 << 8 | 1 << 9 | 1 << 10
        acr_note = "prefetch, instruction and data caches on"
    else:
        # FLASH_ACR: LATENCY 3:0, PRFTEN 8, ARTEN 9 (RM0385 3.7.1).
        acr = latency | 1 << 8 | 1 << 9
        acr_note = "prefetch and ART accelerator on"
    defines = [
        ("TE_CLK_USE_HSE", "1u" if source == "hse" else "0u", "SYSCLK/PLL source: HSE (1) or HSI (0)"),
        ("TE_CLK_HSE_BYPASS", "1u" if hse_bypass else "0u", "HSE is an external clock, not a crystal"),
        ("TE_CLK_USE_PLL", "1u" if use_pll else "0u", "SYSCLK from the main PLL"),
        ("TE_CLK_PLLCFGR", _hex(pllcfgr), "RCC_PLLCFGR: M, N, P, source, Q"),
        ("TE_CLK_CFGR_PRESC", _hex(cfgr), f"RCC_CFGR: AHB /{ahb_div}, APB1 /{apb1_div}, APB2 /{apb2_div}"),
        ("TE_CLK_FLASH_ACR", _hex(acr), f"FLASH_ACR: {latency} wait states, {acr_note}"),
        ("TE_CLK_OVERDRIVE", "1u" if overdrive else "0u", "STM32F7 over-drive (above 180 MHz)"),
        ("TE_CLK_STM32F7", "1u" if family == "stm32f7" else "0u", "PWR_CR1 layout of the F7"),
    ]
    extra = ", over-drive" if overdrive else ""
    summary = (f"{sysclk / MHZ:g} MHz from {'the PLL on ' if use_pll else ''}{source.upper()}; "
               f"AHB {hclk / MHZ:g}, APB1 {buses['apb1'] / MHZ:g}, APB2 {buses['apb2'] / MHZ:g} MHz; "
               f"{latency} flash wait states, voltage scale 1{extra}")
    return ClockConfig(family, sysclk, buses, defines, summary, latency, notes)


# ---------------------------------------------------------------------------
# STM32H7
# ---------------------------------------------------------------------------

# RM0433 4.3.8 Table 17, VOS1: (max AXI/HCLK Hz, LATENCY, WRHIGHFREQ).
_H7_FLASH_VOS1 = [(70 * MHZ, 0, 0), (140 * MHZ, 1, 1), (185 * MHZ, 2, 1), (210 * MHZ, 2, 2),
                  (225 * MHZ, 3, 2)]


def _stm32h7(get: Getter, family: str, clock_hz: int) -> ClockConfig:
    hsi = 64 * MHZ  # RM0433 8.5.2: HSI 64 MHz, HSIDIV /1 at reset
    source, src_hz, hse_bypass = _source(get, hsi)
    vos = get("voltage_scale", int, 1)
    if vos != 1:
        raise ClockError("voltage_scale must be 1 (VOS1: up to 400 MHz; RM0433 6.6.2)")
    m, n, p = get("pll_m", int), get("pll_n", int), get("pll_p", int)
    q, r = get("pll_q", int, 2), get("pll_r", int, 2)
    if not 1 <= m <= 63 or not 4 <= n <= 512 or not (p == 1 or (p % 2 == 0 and 2 <= p <= 128)):
        raise ClockError("pll_m must be 1..63, pll_n 4..512, pll_p 1 or even 2..128 (RM0433 8.7.12-8.7.13)")
    ref_in = src_hz / m
    # PLL1RGE: reference input range (RM0433 8.7.12).
    if 1 * MHZ <= ref_in < 2 * MHZ:
        rge = 0
    elif ref_in < 4 * MHZ:
        rge = 1
    elif ref_in < 8 * MHZ:
        rge = 2
    elif ref_in <= 16 * MHZ:
        rge = 3
    else:
        raise ClockError(f"the PLL1 reference (source / pll_m) is {ref_in / MHZ:g} MHz, must be 1..16 MHz")
    vco = ref_in * n
    _check_range(vco, 192 * MHZ, 836 * MHZ, "the PLL1 wide-range VCO (VCOSEL = 0)")
    sysclk = _exact(src_hz * n, m * p, "sys_ck")
    d1cpre, hpre = get("d1cpre_div", int, 1), get("hpre_div", int, 2)
    d1ppre, d2ppre1, d2ppre2, d3ppre = (get(k, int, 2) for k in
                                        ("d1ppre_div", "d2ppre1_div", "d2ppre2_div", "d3ppre_div"))
    cpu = _exact(sysclk, d1cpre, "CPU clock")
    hclk = _exact(cpu, hpre, "HCLK")
    buses = {"ahb": hclk, "apb3": _exact(hclk, d1ppre, "PCLK3"), "apb1": _exact(hclk, d2ppre1, "PCLK1"),
             "apb2": _exact(hclk, d2ppre2, "PCLK2"), "apb4": _exact(hclk, d3ppre, "PCLK4")}
    # DS12110 Table 23 (VOS1): CPU 400 MHz, AXI/AHB 200 MHz, APB 100 MHz.
    _check_max({"CPU": cpu, **buses}, {"CPU": 400 * MHZ, "ahb": 200 * MHZ, "apb1": 100 * MHZ,
                                      "apb2": 100 * MHZ, "apb3": 100 * MHZ, "apb4": 100 * MHZ},
               "DS12110, VOS1")
    latency = get("flash_latency", int)
    row = next((row for row in _H7_FLASH_VOS1 if hclk <= row[0]), None)
    if row is None or latency < row[1]:
        raise ClockError(f"flash_latency {latency} is too small for a {hclk / MHZ:g} MHz AXI clock "
                         f"at VOS1 (RM0433 Table 17)")
    wrhighfreq = row[2]
    pllckselr = (2 if source == "hse" else 0) | m << 4          # PLLSRC 1:0, DIVM1 9:4
    pllcfgr = rge << 2 | 1 << 16                                  # PLL1RGE 3:2, DIVP1EN 16; VCOSEL 0 (wide)
    divr = (n - 1) | (p - 1) << 9 | (q - 1) << 16 | (r - 1) << 24  # PLL1DIVR
    d1cfgr = _div(_HPRE, d1cpre, "d1cpre_div") << 8 | _div(_PPRE, d1ppre, "d1ppre_div") << 4 \
        | _div(_HPRE, hpre, "hpre_div")
    d2cfgr = _div(_PPRE, d2ppre2, "d2ppre2_div") << 8 | _div(_PPRE, d2ppre1, "d2ppre1_div") << 4
    d3cfgr = _div(_PPRE, d3ppre, "d3ppre_div") << 4
    acr = latency | wrhighfreq << 4
    defines = [
        ("TE_CLK_USE_HSE", "1u" if source == "hse" else "0u", "PLL source: HSE (1) or HSI 64 MHz (0)"),
        ("TE_CLK_HSE_BYPASS", "1u" if hse_bypass else "0u", "HSE is an external clock, not a crystal"),
        ("TE_CLK_PLLCKSELR", _hex(pllckselr), f"RCC_PLLCKSELR: source, DIVM1 = {m}"),
        ("TE_CLK_PLLCFGR", _hex(pllcfgr), f"RCC_PLLCFGR: PLL1 input range {rge}, wide VCO, DIVP1 on"),
        ("TE_CLK_PLL1DIVR", _hex(divr), f"RCC_PLL1DIVR: N {n}, P {p}, Q {q}, R {r}"),
        ("TE_CLK_D1CFGR", _hex(d1cfgr), f"RCC_D1CFGR: D1CPRE /{d1cpre}, HPRE /{hpre}, D1PPRE /{d1ppre}"),
        ("TE_CLK_D2CFGR", _hex(d2cfgr), f"RCC_D2CFGR: D2PPRE1 /{d2ppre1}, D2PPRE2 /{d2ppre2}"),
        ("TE_CLK_D3CFGR", _hex(d3cfgr), f"RCC_D3CFGR: D3PPRE /{d3ppre}"),
        ("TE_CLK_FLASH_ACR", _hex(acr), f"FLASH_ACR: {latency} wait states, WRHIGHFREQ {wrhighfreq}"),
    ]
    notes = [f"PLL1: {src_hz / MHZ:g} MHz {source.upper()} / M {m} = {ref_in / MHZ:g} MHz x N {n} = "
             f"{vco / MHZ:g} MHz VCO, / P {p} = {sysclk / MHZ:g} MHz"]
    summary = (f"{cpu / MHZ:g} MHz from PLL1 on {source.upper()}, VOS1, LDO supply; AXI/AHB "
               f"{hclk / MHZ:g} MHz, APB1-4 {buses['apb1'] / MHZ:g} MHz; {latency} flash wait states")
    return ClockConfig(family, cpu, buses, defines, summary, latency, notes)


# ---------------------------------------------------------------------------
# STM32L4+
# ---------------------------------------------------------------------------

def _stm32l4(get: Getter, family: str, clock_hz: int) -> ClockConfig:
    hsi = 16 * MHZ  # HSI16 (RM0432 6.2.2)
    source, src_hz, hse_bypass = _source(get, hsi)
    m, n, r = get("pll_m", int), get("pll_n", int), get("pll_r", int)
    if not 1 <= m <= 16 or not 8 <= n <= 127:
        raise ClockError("pll_m must be 1..16, pll_n 8..127 (RM0432 6.4.4)")
    r_bits = _div({2: 0, 4: 1, 6: 2, 8: 3}, r, "pll_r")
    vco_in = src_hz / m
    _check_range(vco_in, 2_660_000, 16 * MHZ, "the PLL input (source / pll_m)")
    vco = vco_in * n
    _check_range(vco, 64 * MHZ, 344 * MHZ, "the PLL VCO output")
    sysclk = _exact(src_hz * n, m * r, "SYSCLK")
    boost = get("boost", bool, False)
    # DS12023 / RM0432 5.1.8: Range 1 boost up to 120 MHz, normal up to 80 MHz.
    ahb_div, apb1_div, apb2_div = get("ahb_div", int, 1), get("apb1_div", int, 1), get("apb2_div", int, 1)
    hclk = _exact(sysclk, ahb_div, "HCLK")
    buses = {"ahb": hclk, "apb1": _exact(hclk, apb1_div, "PCLK1"), "apb2": _exact(hclk, apb2_div, "PCLK2")}
    _check_max({"SYSCLK": sysclk, **buses},
               {"SYSCLK": (120 if boost else 80) * MHZ, "apb1": 120 * MHZ, "apb2": 120 * MHZ},
               "RM0432 5.1.8, Range 1 " + ("boost" if boost else "normal"))
    latency = get("flash_latency", int)
    # RM0432 3.3.3 Table 12: Range 1 boost 20 MHz per wait state, normal 16 MHz.
    need = math.ceil(hclk / ((20 if boost else 16) * MHZ)) - 1
    if latency < need or latency > 15:
        raise ClockError(f"flash_latency {latency} is too small for HCLK {hclk / MHZ:g} MHz: "
                         f"RM0432 Table 12 asks for at least {need}")
    # RCC_PLLCFGR: PLLSRC 1:0 (2 HSI16, 3 HSE), PLLM 7:4 (M-1), PLLN 14:8,
    # PLLREN 24, PLLR 26:25.
    pllcfgr = (3 if source == "hse" else 2) | (m - 1) << 4 | n << 8 | 1 << 24 | r_bits << 25
    cfgr = (_div(_HPRE, ahb_div, "ahb_div") << 4 | _div(_PPRE, apb1_div, "apb1_div") << 8
            | _div(_PPRE, apb2_div, "apb2_div") << 11)
    acr = latency | 1 << 8 | 1 << 9 | 1 << 10  # LATENCY 3:0, PRFTEN 8, ICEN 9, DCEN 10
    defines = [
        ("TE_CLK_USE_HSE", "1u" if source == "hse" else "0u", "PLL source: HSE (1) or HSI16 (0)"),
        ("TE_CLK_HSE_BYPASS", "1u" if hse_bypass else "0u", "HSE is an external clock, not a crystal"),
        ("TE_CLK_PLLCFGR", _hex(pllcfgr), f"RCC_PLLCFGR: source, M {m}, N {n}, R {r} enabled"),
        ("TE_CLK_CFGR_PRESC", _hex(cfgr), f"RCC_CFGR: AHB /{ahb_div}, APB1 /{apb1_div}, APB2 /{apb2_div}"),
        ("TE_CLK_FLASH_ACR", _hex(acr), f"FLASH_ACR: {latency} wait states, prefetch and caches on"),
        ("TE_CLK_BOOST", "1u" if boost else "0u", "Range 1 boost mode (above 80 MHz)"),
    ]
    notes = [f"PLL: {src_hz / MHZ:g} MHz {source.upper()} / M {m} x N {n} = {vco / MHZ:g} MHz VCO, "
             f"/ R {r} = {sysclk / MHZ:g} MHz"]
    summary = (f"{sysclk / MHZ:g} MHz from the PLL on {'HSE' if source == 'hse' else 'HSI16'}, "
               f"Range 1 {'boost' if boost else 'normal'}; APB1/APB2 {buses['apb1'] / MHZ:g} MHz; "
               f"{latency} flash wait states")
    return ClockConfig(family, sysclk, buses, defines, summary, latency, notes)


# ---------------------------------------------------------------------------
# nRF52
# ---------------------------------------------------------------------------

def _nrf52(get: Getter, family: str, clock_hz: int) -> ClockConfig:
    hfxo = get("hfxo", bool, True)
    icache = get("icache", bool, True)
    defines = [
        ("TE_CLK_HFXO", "1u" if hfxo else "0u", "start the 32 MHz crystal (HFXO)"),
        ("TE_CLK_ICACHE", "1u" if icache else "0u", "NVMC instruction cache on"),
    ]
    summary = ("64 MHz (fixed); " + ("HFXO crystal started" if hfxo else "internal HFINT oscillator")
               + ("; flash cache on" if icache else "") + "; no flash wait-state setting exists")
    # PS 5.4: HCLK64M is always 64 MHz; the peripherals run on PCLK16M.
    return ClockConfig(family, 64 * MHZ, {"ahb": 64 * MHZ, "pclk16m": 16 * MHZ}, defines, summary)
