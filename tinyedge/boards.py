"""Boards: one TOML data file per board under ``boards/``, loaded into :class:`Board`.

A board is data, not a code path. Everything the firmware templates need that
is derived from the data (compiler flags, baud-rate divisors, C defines) is
computed here so that the templates only print values.

``firmware_files(board)`` lists the non-network part of a generated project:
``(template path relative to firmware_templates/, output path relative to the
project directory)``. Paths ending in ``.j2`` are Jinja templates to render
(context: ``board``, ``model_name``, ``model_sha256``, ``arena_bytes``,
``version``); every other file is copied as it is.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyedge.clocks import ClockConfig, ClockError, parse_clock
from tinyedge.errors import TinyEdgeError
from tinyedge.resources import boards_dir

DEFAULT_BOARD = "mps2-an386"

# What a board builds: a complete firmware image (startup, linker script,
# drivers, validation server), or -- the generic-cortex-* boards -- the network,
# runtime and validation server as a library for the user's own firmware.
TARGETS = ("firmware", "library")

# The counter the host reports latency from (see docs/protocol.md, RUN):
#   systick - SysTick ticks at the CPU clock; under QEMU -icount they count
#             instructions / instructions_per_tick (QEMU has no DWT cycle counter)
#   dwt     - the DWT cycle counter (real Cortex-M3 and up): cycles and microseconds
#   port    - the cycle counter of the user's port layer (library targets)
TIMERS = ("systick", "dwt", "port")

# Static RAM beside the arena and the stack: the protocol's frame buffer
# (max_payload + 46 B, docs/protocol.md) and runtime state, measured < 100 B
# beyond it; an upper bound. Used to place the arena and by inspect's fit check.
STATIC_RAM_UPPER_BYTES = 3 * 1024

# Largest protocol payload the device accepts or sends (bytes). The link costs
# the device max_payload + 46 bytes of RAM (one frame buffer, the stored
# response, state; docs/protocol.md). 1024 lets a stop-and-wait WRITE move 1019 data bytes per round
# trip: 89 % of a 921600-baud line with 1 ms USB round trips, where 256-byte
# payloads reach 68 % (docs/protocol.md, "Throughput").
DEFAULT_MAX_PAYLOAD = 1024
MIN_MAX_PAYLOAD = 128  # HELLO needs up to 126 bytes
MAX_MAX_PAYLOAD = 4096


@dataclass(frozen=True)
class CoreInfo:
    """What tinyedge needs to know about a Cortex-M core."""

    arch: str            # gcc -march spelling
    dsp: bool            # __ARM_FEATURE_DSP (SIMD32, SMLAD ...)
    mve: bool            # Helium (__ARM_FEATURE_MVE)
    fpus: tuple[str, ...]  # accepted `fpu` values besides "none"


CORES: dict[str, CoreInfo] = {
    "cortex-m0": CoreInfo("armv6-m", False, False, ()),
    "cortex-m0plus": CoreInfo("armv6-m", False, False, ()),
    "cortex-m3": CoreInfo("armv7-m", False, False, ()),
    "cortex-m4": CoreInfo("armv7e-m", True, False, ("fpv4-sp-d16",)),
    "cortex-m7": CoreInfo("armv7e-m", True, False, ("fpv5-sp-d16", "fpv5-d16")),
    "cortex-m33": CoreInfo("armv8-m.main", True, False, ("fpv5-sp-d16",)),
    # -mfpu=auto: the FPU and MVE configuration implied by -mcpu=cortex-m55.
    "cortex-m55": CoreInfo("armv8.1-m.main", True, True, ("auto",)),
}

# UART driver name -> C file firmware_templates/board/uart_<file>.c
UART_DRIVERS = {
    "cmsdk": "cmsdk",            # Arm CMSDK APB UART (MPS2/MPS3)
    "stellaris": "stellaris",    # TI Stellaris (PL011-like)
    "stm32": "stm32",            # STM32F1/F2/F4 USART (SR/DR/BRR/CR1)
    "stm32v2": "stm32v2",        # STM32F7/H7/L4 USART (ISR/RDR/TDR), BRR = clock / baud
    "stm32lpuart": "stm32v2",    # the same registers as an LPUART: BRR = 256 * clock / baud
    "nrf51": "nrf51",            # nRF51 UART (no DMA)
    "nrf52": "nrf52",            # nRF52 UARTE (EasyDMA)
}

# nRF51 BAUDRATE register values (nRF51 Series Reference Manual, UART chapter).
_NRF51_BAUD = {
    9600: 0x00275000,
    19200: 0x004EA000,
    38400: 0x009D5000,
    57600: 0x00EBF000,
    115200: 0x01D7E000,
    230400: 0x03AFB000,
    460800: 0x075F7000,
    921600: 0x0EBEDFA4,
    1000000: 0x10000000,
}

# nRF52840 UARTE BAUDRATE register values (nRF52840 PS v1.7, 6.34.10
# "BAUDRATE"; they differ from the nRF51 UART's).
_NRF52_UARTE_BAUD = {
    9600: 0x00275000,
    19200: 0x004EA000,
    38400: 0x009D0000,
    57600: 0x00EB0000,
    115200: 0x01D60000,
    230400: 0x03B00000,
    460800: 0x07400000,
    921600: 0x0F000000,
    1000000: 0x10000000,
}

FLASH_METHODS = ("none", "pyocd", "openocd", "msd-copy")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class UartConfig:
    driver: str          # one of UART_DRIVERS
    base: int            # peripheral base address
    baud: int
    clock_hz: int        # clock feeding the baud-rate generator
    tx_pin: int | None = None  # pin-muxed UARTs (nRF51) only
    rx_pin: int | None = None


@dataclass(frozen=True)
class RegWrite:
    """A read-modify-write (``*address = (*address & ~clear) | bits``) done by
    board_init before the UART is used: clock gates, I/O supplies and pin muxing
    on real silicon. ``clear`` is 0 for a plain ``|=``."""

    address: int
    bits: int
    comment: str = ""
    clear: int = 0


@dataclass(frozen=True)
class MemoryRegion:
    """One memory of the part (a linker MEMORY region)."""

    name: str
    origin: int
    size: int
    kind: str  # "flash" (read-only at run time) or "ram"
    comment: str = ""

    @property
    def end(self) -> int:
        return self.origin + self.size


@dataclass(frozen=True)
class LinkerLayout:
    """Which region each part of the image goes to (names of ``Board.regions``)."""

    code: str        # vector table, code, constants, .data load image
    data: str        # .data, .bss
    arena: str       # the network's arena
    stack: str
    stack_first: bool  # the stack at the bottom of its region (else after the arena)


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    core: str
    fpu: str                      # gcc -mfpu value, "auto", or "none"
    cpu_flags: list[str]          # gcc code-generation flags for this core
    clock_hz: int                 # CPU clock (SysTick counts at it)
    flash_origin: int
    flash_size: int
    ram_origin: int
    ram_size: int
    stack_size: int
    num_irqs: int                 # external interrupts in the vector table
    uart: UartConfig | None       # None for library targets
    qemu_machine: str | None
    qemu_args: list[str]
    renode_platform: str | None
    renode_uart: str | None
    instructions_per_tick: float | None  # under QEMU -icount shift=0
    flash_method: str
    flash_target: str | None      # pyOCD / OpenOCD target name
    init_writes: list[RegWrite] = field(default_factory=list)
    max_payload: int = DEFAULT_MAX_PAYLOAD
    vcp_usb_ids: tuple[str, ...] = ()   # USB "vid:pid" of the serial port (lower-case hex)
    path: Path | None = None      # the TOML file it came from
    target: str = "firmware"      # one of TARGETS
    timer: str = "systick"        # one of TIMERS
    caches: bool = False          # enable the L1 I- and D-caches (Cortex-M7)
    clock: ClockConfig | None = None  # the clock tree board_init sets up ([clock])
    regions: list[MemoryRegion] = field(default_factory=list)
    code_region: str = "FLASH"
    data_region: str = "RAM"
    stack_region: str = "RAM"
    arena_regions: tuple[str, ...] = ("RAM",)
    stack_first: bool = False     # stack at the bottom of its region
    part: str = ""                # the microcontroller, for docs and `tinyedge boards`

    # ---- derived facts -------------------------------------------------
    @property
    def arch(self) -> str:
        return CORES[self.core].arch

    @property
    def has_fpu(self) -> bool:
        return self.fpu != "none"

    @property
    def has_dsp(self) -> bool:
        return CORES[self.core].dsp

    @property
    def has_mve(self) -> bool:
        return CORES[self.core].mve

    @property
    def flash_end(self) -> int:
        return self.flash_origin + self.flash_size

    @property
    def ram_end(self) -> int:
        return self.ram_origin + self.ram_size

    @property
    def is_library(self) -> bool:
        return self.target == "library"

    @property
    def is_emulated(self) -> bool:
        return self.qemu_machine is not None

    def region(self, name: str) -> MemoryRegion:
        return next(r for r in self.regions if r.name == name)

    def ram_needs(self, arena_bytes: int, static_bytes: int) -> dict[str, int]:
        """Bytes each RAM region must hold for an arena of ``arena_bytes`` and
        ``static_bytes`` of .data/.bss: {region name: bytes}."""
        needs: dict[str, int] = {}
        layout = self.layout(arena_bytes)
        for name, n in ((layout.data, static_bytes), (layout.arena, arena_bytes),
                        (layout.stack, self.stack_size)):
            needs[name] = needs.get(name, 0) + n
        return needs

    def layout(self, arena_bytes: int) -> LinkerLayout:
        """Where the image goes. The arena goes to the first of ``arena_regions``
        that holds it beside whatever else that region holds (the stack, and an
        upper bound of the static data); if none does, to the last one, and the
        linker reports the overflow."""
        arena = self.arena_regions[-1]
        for name in self.arena_regions:
            used = arena_bytes
            used += self.stack_size if name == self.stack_region else 0
            used += STATIC_RAM_UPPER_BYTES if name == self.data_region else 0
            if used <= self.region(name).size:
                arena = name
                break
        return LinkerLayout(self.code_region, self.data_region, arena, self.stack_region,
                            self.stack_first)

    def c_defines(self) -> list[tuple[str, str, str]]:
        """``(name, C value, comment)`` for every board constant in board.h."""
        u = self.uart
        assert u is not None, "library targets have no board.h"
        defs: list[tuple[str, str, str]] = [
            ("TE_BOARD_NAME", _c_string(self.name), "board file name"),
            ("TE_CORE_NAME", _c_string(self.core), "gcc -mcpu"),
            ("TE_CLOCK_HZ", f"{self.clock_hz}u", "CPU clock; SysTick counts at it"),
            ("TE_NUM_IRQS", f"{self.num_irqs}u", "external interrupts in the vector table"),
            ("TE_FLASH_ORIGIN", _hex(self.flash_origin), ""),
            ("TE_FLASH_SIZE", _hex(self.flash_size), ""),
            ("TE_RAM_ORIGIN", _hex(self.ram_origin), ""),
            ("TE_RAM_SIZE", _hex(self.ram_size), ""),
            ("TE_PROTO_MAX_PAYLOAD", f"{self.max_payload}u", "largest protocol payload (bytes)"),
            ("TE_TIMER_DWT", "1u" if self.timer == "dwt" else "0u",
             "latency from the DWT cycle counter (else SysTick)"),
            ("TE_ENABLE_CACHES", "1u" if self.caches else "0u", "L1 I- and D-cache on (Cortex-M7)"),
            ("TE_HAVE_CLOCK_INIT", "1u" if self.clock else "0u",
             "board_clock_init() sets up the clock tree" if self.clock else "the reset clock is used"),
            ("TE_UART_BASE", _hex(u.base), f"{u.driver} UART"),
            ("TE_UART_BAUD", f"{u.baud}u", ""),
        ]
        defs += _uart_defines(u)
        if self.clock is not None:
            defs += self.clock.defines
        return defs


def _hex(v: int) -> str:
    return f"0x{v:08X}u"


def _c_string(s: str) -> str:
    # Board strings are validated to printable ASCII without quotes/backslashes.
    return f'"{s}"'


def _uart_defines(u: UartConfig) -> list[tuple[str, str, str]]:
    if u.driver == "cmsdk":
        # CMSDK APB UART: baud = PCLK / BAUDDIV, BAUDDIV >= 16 (Arm DDI0479).
        div = u.clock_hz // u.baud
        return [("TE_UART_BAUDDIV", f"{div}u", f"{u.clock_hz} Hz / {u.baud} baud")]
    if u.driver == "stellaris":
        # PL011-style divisor: clock / (16 * baud) = IBRD + FBRD / 64, rounded.
        div64 = (8 * u.clock_hz // u.baud + 1) // 2
        return [("TE_UART_IBRD", f"{div64 >> 6}u", "integer baud divisor"),
                ("TE_UART_FBRD", f"{div64 & 0x3F}u", "fractional baud divisor (1/64)")]
    if u.driver == "stm32":
        # USART_BRR with 16x oversampling = round(clock / baud) (RM0090 30.3.4).
        brr = (u.clock_hz + u.baud // 2) // u.baud
        return [("TE_UART_BRR", f"0x{brr:04X}u", f"{u.clock_hz} Hz / {u.baud} baud")]
    if u.driver == "stm32v2":
        # USART_BRR with 16x oversampling = round(clock / baud) (RM0385 34.5.4,
        # RM0433 48.5.7).
        brr = (u.clock_hz + u.baud // 2) // u.baud
        return [("TE_UART_BRR", f"0x{brr:05X}u", f"{u.clock_hz} Hz / {u.baud} baud"),
                ("TE_UART_LPUART", "0u", "")]
    if u.driver == "stm32lpuart":
        # LPUART_BRR = round(256 * clock / baud) (RM0432 53.4.7).
        brr = (256 * u.clock_hz + u.baud // 2) // u.baud
        return [("TE_UART_BRR", f"0x{brr:05X}u", f"256 x {u.clock_hz} Hz / {u.baud} baud"),
                ("TE_UART_LPUART", "1u", "")]
    if u.driver in ("nrf51", "nrf52"):
        table = _NRF51_BAUD if u.driver == "nrf51" else _NRF52_UARTE_BAUD
        return [("TE_UART_BAUDRATE_REG", _hex(table[u.baud]), f"{u.baud} baud"),
                ("TE_UART_TX_PIN", f"{u.tx_pin}u", ""),
                ("TE_UART_RX_PIN", f"{u.rx_pin}u", "")]
    raise AssertionError(u.driver)  # load_board validated it


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

def list_boards() -> list[str]:
    """Names of all boards shipped with tinyedge, sorted."""
    return sorted(p.stem for p in boards_dir().glob("*.toml"))


def load_board(name: str) -> Board:
    """Load ``boards/<name>.toml``, or a path to a board TOML file."""
    candidate = Path(name)
    if candidate.suffix == ".toml" and candidate.is_file():
        path = candidate
    else:
        path = boards_dir() / f"{name}.toml"
        if not _NAME_RE.match(name) or not path.is_file():
            known = ", ".join(list_boards())
            raise TinyEdgeError(f"unknown board {name!r}",
                                f"known boards: {known} (or give a path to a board .toml file)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TinyEdgeError(f"board file {path} is not valid TOML: {exc}",
                            "fix the syntax; see boards/README.md") from exc
    return _parse_board(data, path)


class _Table:
    """Typed access to one TOML table, rejecting unknown keys (typos)."""

    def __init__(self, data: dict[str, Any], where: str, path: Path) -> None:
        self.data, self.where, self.path = data, where, path
        self.used: set[str] = set()

    def _err(self, msg: str) -> TinyEdgeError:
        return TinyEdgeError(f"board file {self.path}: {self.where}{msg}",
                             "see boards/README.md for the board file format")

    def get(self, key: str, typ: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self._err(f"missing key {key!r}")
            return default
        value = self.data[key]
        if isinstance(value, bool) and typ is not bool:
            raise self._err(f"{key!r} must be {_typename(typ)}, not a boolean")
        if not isinstance(value, typ):
            raise self._err(f"{key!r} must be {_typename(typ)}, got {value!r}")
        return value

    def positive(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, int, default)
        if value is not None and value <= 0:
            raise self._err(f"{key!r} must be positive, got {value}")
        return value

    def table(self, key: str, required: bool = True) -> "_Table":
        sub = self.get(key, dict, ... if required else {})
        return _Table(sub, f"[{key}] ", self.path)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self._err(f"unknown key(s) {', '.join(unknown)}")


def _typename(typ: type | tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a table", bool: "true/false"}
    if isinstance(typ, tuple):
        return " or ".join(names.get(t, t.__name__) for t in typ)
    return names.get(typ, typ.__name__)


def _cpu_flags(core: str, fpu: str) -> list[str]:
    flags = [f"-mcpu={core}", "-mthumb"]
    if fpu == "none":
        return flags + ["-mfloat-abi=soft"]
    return flags + [f"-mfpu={fpu}", "-mfloat-abi=hard"]


def _parse_board(data: dict[str, Any], path: Path) -> Board:
    top = _Table(data, "", path)
    name = top.get("name", str)
    if name != path.stem:
        raise top._err(f"name {name!r} does not match the file name {path.stem!r}")
    if not _NAME_RE.match(name):
        raise top._err(f"name {name!r} must be lower-case letters, digits, '-' or '_'")
    description = _printable(top, "description")
    part = _printable(top, "part", "")
    core = top.get("core", str)
    if core not in CORES:
        raise top._err(f"unknown core {core!r} (known: {', '.join(CORES)})")
    fpu = top.get("fpu", str, "none")
    if fpu != "none" and fpu not in CORES[core].fpus:
        allowed = ", ".join(("none",) + CORES[core].fpus)
        raise top._err(f"fpu {fpu!r} is not valid for {core} (use one of: {allowed})")
    target = top.get("target", str, "firmware")
    if target not in TARGETS:
        raise top._err(f"target {target!r} unknown (known: {', '.join(TARGETS)})")
    if target == "library":
        return _parse_library(top, path, name, description, core, fpu)

    clock_hz = top.positive("clock_hz")
    num_irqs = top.positive("num_irqs", 32)
    if num_irqs > 496:
        raise top._err("num_irqs must be at most 496")
    timer = top.get("timer", str, "systick")
    if timer not in ("systick", "dwt"):
        raise top._err(f"timer must be 'systick' or 'dwt', got {timer!r}")
    if timer == "dwt" and CORES[core].arch == "armv6-m":
        raise top._err(f"{core} has no DWT cycle counter: use timer = 'systick'")
    caches = top.get("caches", bool, False)
    if caches and core != "cortex-m7":
        raise top._err("caches = true is for Cortex-M7 parts (L1 I- and D-cache)")

    mem = top.table("memory")
    memory = _parse_memory(mem)
    mem.finish()

    clock = None
    if "clock" in data:
        ct = top.table("clock")
        try:
            clock = parse_clock(ct.get, ct.get("family", str), clock_hz)
        except ClockError as exc:
            raise ct._err(str(exc)) from None
        ct.finish()

    uart = _parse_uart(top.table("uart"), clock_hz, clock)

    emu = top.table("emulation", required=False)
    qemu_machine = emu.get("qemu_machine", str, None)
    qemu_args = emu.get("qemu_args", list, [])
    if not all(isinstance(a, str) for a in qemu_args):
        raise emu._err("qemu_args must be a list of strings")
    ipt = emu.get("instructions_per_tick", (int, float), None)
    if ipt is not None and ipt <= 0:
        raise emu._err("instructions_per_tick must be positive")
    renode_platform = emu.get("renode_platform", str, None)
    renode_uart = emu.get("renode_uart", str, None)
    emu.finish()
    if qemu_machine and timer == "dwt":
        raise top._err("QEMU does not model the DWT cycle counter: emulated boards use "
                       "timer = 'systick'")

    flash = top.table("flash", required=False)
    flash_method = flash.get("method", str, "none")
    if flash_method not in FLASH_METHODS:
        raise flash._err(f"method {flash_method!r} unknown (known: {', '.join(FLASH_METHODS)})")
    flash_target = flash.get("target", str, None)
    flash.finish()

    vcp_usb_ids = _parse_vcp(top.table("vcp", required=False))

    proto = top.table("protocol", required=False)
    max_payload = proto.positive("max_payload", DEFAULT_MAX_PAYLOAD)
    if not MIN_MAX_PAYLOAD <= max_payload <= MAX_MAX_PAYLOAD:
        raise proto._err(f"max_payload must be in [{MIN_MAX_PAYLOAD}, {MAX_MAX_PAYLOAD}]")
    proto.finish()

    init_writes = []
    for i, item in enumerate(top.get("init", list, [])):
        if not isinstance(item, dict):
            raise top._err("[[init]] entries must be tables")
        t = _Table(item, f"[[init]] #{i + 1} ", path)
        w = RegWrite(t.get("address", int), t.get("set_bits", int), t.get("comment", str, ""),
                     t.get("clear_bits", int, 0))
        if "*/" in w.comment:
            raise t._err("comment must not contain '*/'")
        if w.address == 0 or w.address % 4:
            raise t._err(f"address 0x{w.address:X} must be a non-zero multiple of 4")
        if not 0 <= w.bits < 1 << 32 or not 0 <= w.clear < 1 << 32:
            raise t._err("set_bits and clear_bits must be 32-bit values")
        init_writes.append(w)
        t.finish()
    top.finish()

    return Board(
        name=name, description=description, core=core, fpu=fpu,
        cpu_flags=_cpu_flags(core, fpu), clock_hz=clock_hz,
        flash_origin=memory["flash_origin"], flash_size=memory["flash_size"],
        ram_origin=memory["ram_origin"], ram_size=memory["ram_size"],
        stack_size=memory["stack_size"], num_irqs=num_irqs, uart=uart,
        qemu_machine=qemu_machine, qemu_args=list(qemu_args),
        renode_platform=renode_platform, renode_uart=renode_uart,
        instructions_per_tick=float(ipt) if ipt is not None else None,
        flash_method=flash_method, flash_target=flash_target,
        init_writes=init_writes, max_payload=max_payload, vcp_usb_ids=vcp_usb_ids, path=path,
        timer=timer, caches=caches, clock=clock, regions=memory["regions"],
        code_region=memory["code"], data_region=memory["data"], stack_region=memory["stack"],
        arena_regions=memory["arena"], stack_first=memory["stack_first"], part=part,
    )


def _printable(t: _Table, key: str, default: Any = ...) -> str:
    value: str = t.get(key, str, default)
    if not value.isprintable() or '"' in value or "\\" in value:
        raise t._err(f"{key} must be printable text without quotes or backslashes")
    return value


def _parse_library(top: _Table, path: Path, name: str, description: str, core: str,
                   fpu: str) -> Board:
    """A generic-cortex-* board: a library for the user's firmware, no memory map."""
    top.finish()  # nothing but name, description, core, fpu, target
    return Board(
        name=name, description=description, core=core, fpu=fpu,
        cpu_flags=_cpu_flags(core, fpu), clock_hz=0, flash_origin=0, flash_size=0,
        ram_origin=0, ram_size=0, stack_size=0, num_irqs=0, uart=None,
        qemu_machine=None, qemu_args=[], renode_platform=None, renode_uart=None,
        instructions_per_tick=None, flash_method="none", flash_target=None, path=path,
        target="library", timer="port", regions=[], arena_regions=(),
    )


def _parse_memory(mem: _Table) -> dict[str, Any]:
    """The [memory] table in one of two forms.

    Legacy (one flash, one RAM): flash_origin/flash_size, ram_origin/ram_size;
    .data, .bss, the arena and then the stack fill RAM in that order.

    Regions: every memory of the part as ``[[memory.region]]`` entries, and
    which region holds the code, the static data, the stack and the arena
    (a preference list: the first that holds it).
    """
    stack_size = mem.positive("stack_size", 0x2000)
    if stack_size % 8:
        raise mem._err("stack_size must be a multiple of 8")
    if "region" not in mem.data:
        flash_origin = mem.get("flash_origin", int)
        flash_size = mem.positive("flash_size")
        ram_origin = mem.get("ram_origin", int)
        ram_size = mem.positive("ram_size")
        if stack_size >= ram_size:
            raise mem._err("stack_size must be a multiple of 8 and smaller than ram_size")
        if flash_origin % 4 or ram_origin % 4:
            raise mem._err("flash_origin and ram_origin must be word aligned")
        legacy = [MemoryRegion("FLASH", flash_origin, flash_size, "flash"),
                  MemoryRegion("RAM", ram_origin, ram_size, "ram")]
        return {"flash_origin": flash_origin, "flash_size": flash_size, "ram_origin": ram_origin,
                "ram_size": ram_size, "stack_size": stack_size, "regions": legacy, "code": "FLASH",
                "data": "RAM", "stack": "RAM", "arena": ("RAM",), "stack_first": False}

    regions: list[MemoryRegion] = []
    for i, item in enumerate(mem.get("region", list)):
        if not isinstance(item, dict):
            raise mem._err("[[memory.region]] entries must be tables")
        t = _Table(item, f"[[memory.region]] #{i + 1} ", mem.path)
        r = MemoryRegion(t.get("name", str), t.get("origin", int), t.positive("size"),
                         t.get("kind", str), _printable(t, "comment", ""))
        t.finish()
        if not re.match(r"^[A-Z][A-Z0-9_]*$", r.name):
            raise t._err(f"name {r.name!r} must be upper-case letters, digits and '_'")
        if r.kind not in ("flash", "ram"):
            raise t._err(f"kind must be 'flash' or 'ram', got {r.kind!r}")
        if r.origin % 4 or r.size % 4 or r.end > 1 << 32:
            raise t._err("origin and size must be word aligned and inside the 4 GiB address space")
        for other in regions:
            if r.name == other.name:
                raise t._err(f"region {r.name} appears twice")
            if r.origin < other.end and other.origin < r.end:
                raise t._err(f"region {r.name} overlaps {other.name}")
        regions.append(r)
    by_name = {r.name: r for r in regions}

    def region_key(key: str, kind: str) -> str:
        value: str = mem.get(key, str)
        if value not in by_name or by_name[value].kind != kind:
            names = ", ".join(r.name for r in regions if r.kind == kind)
            raise mem._err(f"{key} = {value!r} must name a {kind} region (one of: {names})")
        return value

    code = region_key("code", "flash")
    data = region_key("data", "ram")
    stack = region_key("stack", "ram")
    arena_list = mem.get("arena", list)
    if not arena_list or not all(isinstance(a, str) for a in arena_list):
        raise mem._err("arena must be a non-empty list of RAM region names")
    for a in arena_list:
        if a not in by_name or by_name[a].kind != "ram":
            raise mem._err(f"arena region {a!r} is not a RAM region")
    if stack_size >= by_name[stack].size:
        raise mem._err(f"stack_size must be smaller than the {stack} region")
    used = {data, stack, *arena_list}
    return {"flash_origin": by_name[code].origin, "flash_size": by_name[code].size,
            "ram_origin": by_name[data].origin,
            "ram_size": sum(r.size for r in regions if r.name in used),
            "stack_size": stack_size, "regions": regions, "code": code, "data": data,
            "stack": stack, "arena": tuple(arena_list), "stack_first": True}


_USB_ID_RE = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")


def _parse_vcp(t: _Table) -> tuple[str, ...]:
    """[vcp] usb_ids: the USB "VID:PID"s the board's serial port enumerates with."""
    ids = t.get("usb_ids", list, [])
    t.finish()
    if t.data and not ids:
        raise t._err("usb_ids must list at least one \"vid:pid\"")
    if not all(isinstance(i, str) and _USB_ID_RE.match(i) for i in ids):
        raise t._err(f"usb_ids must be \"vid:pid\" strings of 4 hex digits each, got {ids!r}")
    out = tuple(i.lower() for i in ids)
    if len(set(out)) != len(out):
        raise t._err("usb_ids lists an ID twice")
    return out


def _parse_uart(t: _Table, cpu_clock_hz: int, clock: ClockConfig | None) -> UartConfig:
    driver = t.get("driver", str)
    if driver not in UART_DRIVERS:
        raise t._err(f"driver {driver!r} unknown (known: {', '.join(UART_DRIVERS)})")
    base = t.get("base", int)
    baud = t.positive("baud", 115200)
    bus = t.get("bus", str, None)
    clock_hz = t.positive("clock_hz", None)
    if bus is not None:
        if clock is None or bus not in clock.buses:
            known = ", ".join(clock.buses) if clock else "none: the board has no [clock] table"
            raise t._err(f"bus {bus!r} is not a bus of the clock tree (buses: {known})")
        if clock_hz is not None and clock_hz != clock.buses[bus]:
            raise t._err(f"clock_hz {clock_hz} differs from the {bus} clock "
                         f"{clock.buses[bus]} the clock tree gives")
        clock_hz = clock.buses[bus]
    if clock_hz is None:
        clock_hz = cpu_clock_hz
    tx_pin = t.get("tx_pin", int, None)
    rx_pin = t.get("rx_pin", int, None)
    t.finish()
    if driver == "cmsdk" and clock_hz // baud < 16:
        raise t._err(f"baud {baud} too high for a {clock_hz} Hz CMSDK UART (BAUDDIV >= 16)")
    if driver in ("stm32", "stm32v2") and not 16 <= (clock_hz + baud // 2) // baud <= 0xFFFF:
        raise t._err(f"baud {baud} cannot be made from a {clock_hz} Hz USART clock "
                     "(BRR 16..0xFFFF with 16x oversampling)")
    if driver == "stm32lpuart":
        # RM0432 53.4.7: BRR >= 0x300, < 2^20; the clock within 3..4096 x baud.
        brr = (256 * clock_hz + baud // 2) // baud
        if not 0x300 <= brr < 1 << 20 or not 3 * baud <= clock_hz <= 4096 * baud:
            raise t._err(f"baud {baud} cannot be made from a {clock_hz} Hz LPUART clock")
    if driver in ("nrf51", "nrf52"):
        table = _NRF51_BAUD if driver == "nrf51" else _NRF52_UARTE_BAUD
        if baud not in table:
            raise t._err(f"baud {baud} not supported by the {driver} UART "
                         f"(one of {', '.join(map(str, table))})")
        if tx_pin is None or rx_pin is None:
            raise t._err(f"the {driver} driver needs tx_pin and rx_pin")
    return UartConfig(driver, base, baud, clock_hz, tx_pin, rx_pin)


# ---------------------------------------------------------------------------
# Project files
# ---------------------------------------------------------------------------

def firmware_files(board: Board) -> list[tuple[str, str]]:
    """(template path under firmware_templates/, output path in the project) for the
    non-network part of a project: board support, app, Makefile, CMakeLists.txt --
    or, for a library target, the C API, the port layer and the library's build files.

    ``.j2`` templates are rendered; other files are copied unchanged.
    """
    if board.is_library:
        return [
            ("library/board.h.j2", "board/board.h"),
            ("library/board_port.c", "board/board_port.c"),
            ("board/spin.c", "board/spin.c"),
            ("app/main.c.j2", "app/te_server.c"),
            ("app/te_protocol.c", "app/te_protocol.c"),
            ("app/te_protocol.h", "app/te_protocol.h"),
            ("library/tinyedge.h", "tinyedge.h"),
            ("library/tinyedge_api.c", "tinyedge_api.c"),
            ("library/te_port.h", "port/te_port.h"),
            ("library/Makefile.j2", "Makefile"),
            ("library/CMakeLists.txt.j2", "CMakeLists.txt"),
            ("library/README.md.j2", "README.md"),
        ]
    assert board.uart is not None
    uart = UART_DRIVERS[board.uart.driver]
    files = [
        ("board/board.h.j2", "board/board.h"),
        ("board/linker.ld.j2", "board/linker.ld"),
        ("board/startup.c", "board/startup.c"),
        ("board/board.c", "board/board.c"),
        ("board/spin.c", "board/spin.c"),
        ("board/fault.c", "board/fault.c"),
        ("board/te_reg.h", "board/te_reg.h"),
        (f"board/uart_{uart}.c", f"board/uart_{uart}.c"),
    ]
    if board.clock is not None:
        clk = f"board/clock_{board.clock.driver}.c"
        files.append((clk, clk))
    return files + [
        ("app/main.c.j2", "app/main.c"),
        ("app/te_protocol.c", "app/te_protocol.c"),
        ("app/te_protocol.h", "app/te_protocol.h"),
        ("project/Makefile.j2", "Makefile"),
        ("project/CMakeLists.txt.j2", "CMakeLists.txt"),
    ]
