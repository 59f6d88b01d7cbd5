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

from tinyedge.errors import TinyEdgeError
from tinyedge.resources import boards_dir

DEFAULT_BOARD = "mps2-an386"

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

# One C driver per UART peripheral family: firmware_templates/board/uart_<driver>.c
UART_DRIVERS = ("cmsdk", "stellaris", "stm32", "nrf51")

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
    """A read-modify-write (``*address |= bits``) done by board_init before the UART
    is used: clock gates and pin muxing on real silicon."""

    address: int
    bits: int
    comment: str = ""


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
    uart: UartConfig
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

    def c_defines(self) -> list[tuple[str, str, str]]:
        """``(name, C value, comment)`` for every board constant in board.h."""
        u = self.uart
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
            ("TE_UART_BASE", _hex(u.base), f"{u.driver} UART"),
            ("TE_UART_BAUD", f"{u.baud}u", ""),
        ]
        defs += _uart_defines(u)
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
    if u.driver == "nrf51":
        return [("TE_UART_BAUDRATE_REG", _hex(_NRF51_BAUD[u.baud]), f"{u.baud} baud"),
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
    description = top.get("description", str)
    if not description.isprintable() or '"' in description or "\\" in description:
        raise top._err("description must be printable text without quotes or backslashes")
    core = top.get("core", str)
    if core not in CORES:
        raise top._err(f"unknown core {core!r} (known: {', '.join(CORES)})")
    fpu = top.get("fpu", str, "none")
    if fpu != "none" and fpu not in CORES[core].fpus:
        allowed = ", ".join(("none",) + CORES[core].fpus)
        raise top._err(f"fpu {fpu!r} is not valid for {core} (use one of: {allowed})")
    clock_hz = top.positive("clock_hz")
    num_irqs = top.positive("num_irqs", 32)
    if num_irqs > 496:
        raise top._err("num_irqs must be at most 496")

    mem = top.table("memory")
    flash_origin = mem.get("flash_origin", int)
    flash_size = mem.positive("flash_size")
    ram_origin = mem.get("ram_origin", int)
    ram_size = mem.positive("ram_size")
    stack_size = mem.positive("stack_size", 0x2000)
    if stack_size % 8 or stack_size >= ram_size:
        raise mem._err("stack_size must be a multiple of 8 and smaller than ram_size")
    if flash_origin % 4 or ram_origin % 4:
        raise mem._err("flash_origin and ram_origin must be word aligned")
    mem.finish()

    uart = _parse_uart(top.table("uart"), clock_hz)

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
        init_writes.append(RegWrite(t.get("address", int), t.get("set_bits", int),
                                    t.get("comment", str, "")))
        if "*/" in init_writes[-1].comment:
            raise t._err("comment must not contain '*/'")
        t.finish()
    top.finish()

    return Board(
        name=name, description=description, core=core, fpu=fpu,
        cpu_flags=_cpu_flags(core, fpu), clock_hz=clock_hz,
        flash_origin=flash_origin, flash_size=flash_size,
        ram_origin=ram_origin, ram_size=ram_size, stack_size=stack_size,
        num_irqs=num_irqs, uart=uart,
        qemu_machine=qemu_machine, qemu_args=list(qemu_args),
        renode_platform=renode_platform, renode_uart=renode_uart,
        instructions_per_tick=float(ipt) if ipt is not None else None,
        flash_method=flash_method, flash_target=flash_target,
        init_writes=init_writes, max_payload=max_payload, vcp_usb_ids=vcp_usb_ids, path=path,
    )


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


def _parse_uart(t: _Table, cpu_clock_hz: int) -> UartConfig:
    driver = t.get("driver", str)
    if driver not in UART_DRIVERS:
        raise t._err(f"driver {driver!r} unknown (known: {', '.join(UART_DRIVERS)})")
    base = t.get("base", int)
    baud = t.positive("baud", 115200)
    clock_hz = t.positive("clock_hz", cpu_clock_hz)
    tx_pin = t.get("tx_pin", int, None)
    rx_pin = t.get("rx_pin", int, None)
    t.finish()
    if driver == "cmsdk" and clock_hz // baud < 16:
        raise t._err(f"baud {baud} too high for a {clock_hz} Hz CMSDK UART (BAUDDIV >= 16)")
    if driver == "nrf51":
        if baud not in _NRF51_BAUD:
            raise t._err(f"baud {baud} not supported by the nRF51 UART "
                         f"(one of {', '.join(map(str, _NRF51_BAUD))})")
        if tx_pin is None or rx_pin is None:
            raise t._err("the nrf51 driver needs tx_pin and rx_pin")
    return UartConfig(driver, base, baud, clock_hz, tx_pin, rx_pin)


# ---------------------------------------------------------------------------
# Project files
# ---------------------------------------------------------------------------

def firmware_files(board: Board) -> list[tuple[str, str]]:
    """(template path under firmware_templates/, output path in the project) for the
    non-network part of a project: board support, app, Makefile, CMakeLists.txt.

    ``.j2`` templates are rendered; other files are copied unchanged.
    """
    return [
        ("board/board.h.j2", "board/board.h"),
        ("board/linker.ld.j2", "board/linker.ld"),
        ("board/startup.c", "board/startup.c"),
        ("board/board.c", "board/board.c"),
        ("board/fault.c", "board/fault.c"),
        (f"board/uart_{board.uart.driver}.c", f"board/uart_{board.uart.driver}.c"),
        ("app/main.c.j2", "app/main.c"),
        ("app/te_protocol.c", "app/te_protocol.c"),
        ("app/te_protocol.h", "app/te_protocol.h"),
        ("project/Makefile.j2", "Makefile"),
        ("project/CMakeLists.txt.j2", "CMakeLists.txt"),
    ]
