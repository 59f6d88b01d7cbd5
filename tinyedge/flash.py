"""`tinyedge flash`: program a board, read it back, then reset it and let it run.

    report = flash_firmware("fw", load_board("netduinoplus2"), probe="gdb://127.0.0.1:3333")

Two ways to reach a chip, chosen by ``probe``:

* ``gdb://HOST:PORT`` or ``gdb:///dev/ttyACM0``: any GDB remote-protocol
  server (OpenOCD, pyOCD gdbserver, J-Link GDB Server, st-util, a Black Magic
  Probe, QEMU's gdbstub), through our own client (:mod:`tinyedge.flash_gdb`).
* otherwise pyOCD's Python API (:mod:`tinyedge.flash_pyocd`): CMSIS-DAP,
  ST-LINK and J-Link probes, ``probe`` being a probe's unique ID (or a part
  of it) when several are attached; the target is the board file's
  ``[flash] target``.

Both first check the image against the board (:func:`check_image`) before
any probe is touched, check that the chip behind the probe is the board's
core, and after programming read every byte back: a difference is an error
that names its address.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tinyedge.boards import Board
from tinyedge.errors import TinyEdgeError
from tinyedge.flash_image import FlashImage, check_image, load_image

LogFn = Callable[[str], None]

# CPUID base register (Armv7-M ARM B3.2.3, Armv8-M ARM D1.2.40): bits [31:24]
# implementer (0x41 = Arm), [15:4] part number. Part numbers from each core's
# Technical Reference Manual ("CPUID Base Register").
CPUID_ADDRESS = 0xE000ED00
CORE_PARTNO = {
    0xC20: "cortex-m0",
    0xC60: "cortex-m0plus",
    0xC23: "cortex-m3",
    0xC24: "cortex-m4",
    0xC27: "cortex-m7",
    0xD20: "cortex-m23",
    0xD21: "cortex-m33",
    0xD22: "cortex-m55",
    0xD23: "cortex-m85",
}
VERIFY_CHUNK = 0x4000


@dataclass
class FlashReport:
    image: Path
    board: str
    probe: str                 # what was used: "gdb://..." or "pyocd:<unique id> (<description>)"
    core: str | None           # the core the probe found (from CPUID), if it could read it
    written: list[tuple[int, int, str]] = field(default_factory=list)  # (address, bytes, how)
    verified_bytes: int = 0
    reset: str = ""            # how the target was reset and started
    seconds: float = 0.0

    @property
    def total_bytes(self) -> int:
        return sum(n for _a, n, _h in self.written)


def flash_firmware(target: str | Path, board: Board, probe: str | None = None,
                   log: LogFn | None = None) -> FlashReport:
    """Program ``target`` (an ELF, or a project directory) into ``board`` and start it."""
    say = log or (lambda _m: None)
    start = time.monotonic()
    from tinyedge.build import check_firmware

    image = load_image(target)
    check_firmware(image.path, None, "", board.name, None)   # the board its project was built for
    vectors = check_image(image, board)      # before any probe is touched
    say(f"{image.path}: {len(image.segments)} segment(s), {image.size:,} bytes, "
        f"reset handler 0x{vectors.reset_pc:08x}, initial SP 0x{vectors.initial_sp:08x}")
    if probe is not None and probe.startswith("gdb:"):
        from tinyedge.flash_gdb import flash_over_gdb

        report = flash_over_gdb(image, vectors, board, probe, say)
    else:
        from tinyedge.flash_pyocd import flash_with_pyocd

        report = flash_with_pyocd(image, board, probe, say)
    report.seconds = time.monotonic() - start
    return report


def check_core(cpuid: int, board: Board, probe: str) -> str | None:
    """The core CPUID names; a TinyEdgeError if it is not the board's core."""
    partno = (cpuid >> 4) & 0xFFF
    core = CORE_PARTNO.get(partno) if cpuid >> 24 == 0x41 else None
    if core is None:
        return None                  # not an Arm core we know: nothing to compare
    if core != board.core:
        raise TinyEdgeError(
            f"the chip behind {probe} is a {_core_name(core)} (CPUID 0x{cpuid:08x}), but board "
            f"{board.name} has a {_core_name(board.core)}: the probe is connected to another board",
            "connect the probe to the right board, or pick the board that is connected (`tinyedge boards`)")
    return core


def _core_name(core: str) -> str:
    return core.replace("cortex-m", "Cortex-M").replace("plus", "+")


def verify_image(image: FlashImage, read: Callable[[int, int], bytes]) -> int:
    """Read every segment back and compare; return the bytes verified.

    A difference raises a TinyEdgeError naming the first address that differs.
    """
    total = 0
    for seg in image.segments:
        for off in range(0, len(seg.data), VERIFY_CHUNK):
            want = seg.data[off:off + VERIFY_CHUNK]
            got = read(seg.address + off, len(want))
            if got != want:
                i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
                addr = seg.address + off + i
                differ = sum(a != b for a, b in zip(got, want)) + abs(len(want) - len(got))
                read_byte = f"0x{got[i]:02x}" if i < len(got) else "nothing"
                raise TinyEdgeError(
                    f"verify failed at 0x{addr:08x}: read {read_byte}, the image has 0x{want[i]:02x} "
                    f"({differ} of {len(want)} bytes differ in 0x{seg.address + off:08x}"
                    f"-0x{seg.address + off + len(want) - 1:08x})",
                    "the memory did not take the image: is the flash write-protected, or the "
                    "region not writable on this chip? Run `tinyedge flash` again; if it persists, "
                    "erase the chip with the vendor's tool")
            total += len(want)
    return total
