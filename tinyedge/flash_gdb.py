"""Flash through a GDB server (``--probe gdb://HOST:PORT`` or ``gdb:///dev/ttyACM0``).

Steps, each with the :class:`~tinyedge.gdb_rsp.RspClient`:

1. ``qSupported`` (and no-ack mode when offered). On a serial port with no
   target attached (a Black Magic Probe answers ``?`` with ``W``/``X``):
   ``monitor swdp_scan`` (then ``jtag_scan``) and ``vAttach;1``, the probe's
   documented flow.
2. The chip must be the board's: its CPUID (0xE000ED00) names the core; where
   the server sends a memory map, the image's flash segments must lie in its
   flash and the board's RAM must not be flash or ROM there.
3. Segments in the map's flash: ``vFlashErase`` of the blocks they cover,
   ``vFlashWrite``, ``vFlashDone``. Everything else (RAM, or a server with no
   map such as QEMU's gdbstub, whose "flash" is memory the debugger may write):
   ``X`` (binary) or ``M`` (hex) writes.
4. Every byte read back with ``m`` and compared.
5. Reset and run, see :func:`reset_and_run`.

What QEMU 7.2's gdbstub does (observed with ``-S -gdb ...``, no ``-kernel``,
``-monitor none``; tests/test_qemu_flash.py relies on it):

* it offers no memory map and no ``X`` (an empty reply): memory is written
  with ``M``; writes into netduinoplus2's flash (a ROM region at 0x08000000)
  and mps2's code SSRAM land and read back. Writes to unmapped addresses and
  to MMIO (e.g. VTOR) answer OK and change nothing, so only the read-back
  proves a write;
* the CPU took its reset before anything was loaded: it sits halted with
  SP = PC = 0;
* ``monitor system_reset`` (qRcmd) works without a ``-monitor``: the gdbstub
  has its own monitor. The machine resets and stays halted with SP and PC
  from the loaded vector table; the loaded image survives (QEMU restores only
  ``-kernel``/``-device loader`` images at reset, and there are none);
  unknown commands print "unknown command" and answer OK;
* ``p``/``P`` answer empty until the target description has been read;
* ``D`` (detach) lets the machine run.
"""

from __future__ import annotations

import struct

from tinyedge.boards import Board
from tinyedge.errors import TinyEdgeError
from tinyedge.flash import CPUID_ADDRESS, FlashReport, LogFn, check_core, verify_image
from tinyedge.flash_image import FlashImage, Segment, Vectors, board_memories
from tinyedge.gdb_rsp import (MemoryRegion, RspClient, RspError, SerialTransport, open_transport)

# monitor commands that reset the chip and leave it halted at its reset handler,
# tried in order until the core is found there:
#   "reset halt"    OpenOCD, pyOCD gdbserver
#   "system_reset"  QEMU (the machine stays stopped while the debugger holds it)
#   "reset"         J-Link GDB Server, st-util (both halt after a reset)
RESET_COMMANDS = ("reset halt", "system_reset", "reset")
XPSR_THUMB = 1 << 24           # xPSR.T: Cortex-M only executes Thumb code
LEGACY_XPSR_REGNUM = 25        # cpsr/xpsr in GDB's classic Arm register layout


def flash_over_gdb(image: FlashImage, vectors: Vectors, board: Board, url: str,
                   log: LogFn) -> FlashReport:
    transport = open_transport(url)
    client = RspClient(transport)
    try:
        client.connect()
        _ensure_attached(client, isinstance(transport, SerialTransport), log)
        core = _check_target(client, image, board, url)
        report = FlashReport(image.path, board.name, url, core)
        regions = client.memory_map()
        _check_memory_map(regions, image, board, url)
        report.written = program(client, image, regions or [], log)
        log("verifying (reading every byte back)")
        report.verified_bytes = verify_image(image, client.read_memory)
        report.reset = reset_and_run(client, vectors, log)
        return report
    finally:
        client.close()


def _ensure_attached(client: RspClient, serial: bool, log: LogFn) -> None:
    reason = client.halt_reason()
    if reason[:1] in (b"T", b"S"):
        return
    if not serial:
        raise TinyEdgeError(f"the GDB server at {client.transport.name} has no halted target "
                            f"('?' answered {reason[:20].decode('ascii', 'replace')!r})",
                            "check the server's log: it must be connected to the chip")
    said = []
    for scan in ("swdp_scan", "jtag_scan"):
        log(f"no target attached: monitor {scan}, then attach 1 (Black Magic Probe)")
        _reply, text = client.monitor(scan, timeout=30.0)
        said.append(text.strip())
        if client.request(b"vAttach;1", timeout=15.0)[:1] in (b"T", b"S"):
            return
    raise TinyEdgeError(f"the probe on {client.transport.name} found no target to attach to "
                        f"({' / '.join(s.replace(chr(10), ' ') for s in said if s) or 'no scan output'})",
                        "check the SWD/JTAG wiring and the target's power "
                        "(a Black Magic Probe can power it: monitor tpwr enable)")


def _check_target(client: RspClient, image: FlashImage, board: Board, url: str) -> str | None:
    try:
        cpuid = struct.unpack("<I", client.read_memory(CPUID_ADDRESS, 4))[0]
    except RspError:
        return None                  # some servers refuse system space: nothing to compare
    return check_core(cpuid, board, url)


def _check_memory_map(regions: list[MemoryRegion] | None, image: FlashImage, board: Board, url: str) -> None:
    """The server's memory map must agree with the board: our flash is its flash."""
    if not regions:
        return
    flash = [r for r in regions if r.kind == "flash"]
    listing = ", ".join(f"{r.kind} 0x{r.start:08x}-0x{r.end - 1:08x}" for r in regions)
    hint = (f"the probe is connected to a chip that is not {board.name}'s: connect it to the right "
            f"board, or pick the board it is connected to (`tinyedge boards`)")
    ours = [(start, end) for _n, kind, start, end in board_memories(board) if kind == "flash"]
    for seg in image.segments:
        if any(start <= seg.address < end for start, end in ours) and not _covered(seg, flash):
            raise TinyEdgeError(f"{board.name}'s flash at 0x{seg.address:08x}-0x{seg.end - 1:08x} is not "
                                f"flash on the target behind {url} (its memory map: {listing})", hint)
    ram = [(start, end) for _n, kind, start, end in board_memories(board) if kind == "ram"]
    for r in regions:
        if r.kind != "ram" and any(r.start < end and start < r.end for start, end in ram):
            raise TinyEdgeError(f"{board.name}'s RAM overlaps {r.kind} at 0x{r.start:08x}-0x{r.end - 1:08x} "
                                f"on the target behind {url} (its memory map: {listing})", hint)


def _covered(seg: Segment, flash: list[MemoryRegion]) -> bool:
    addr = seg.address
    for r in sorted(flash, key=lambda r: r.start):
        if r.start <= addr < r.end:
            addr = r.end
        if addr >= seg.end:
            return True
    return False


def _pieces(image: FlashImage, regions: list[MemoryRegion]) -> list[tuple[Segment, MemoryRegion | None]]:
    """Segments cut at region boundaries, each with its region (None: not in the map = RAM)."""
    out: list[tuple[Segment, MemoryRegion | None]] = []
    for seg in image.segments:
        cuts = {seg.address, seg.end}
        for r in regions:
            for edge in (r.start, r.end):
                if seg.address < edge < seg.end:
                    cuts.add(edge)
        edges = sorted(cuts)
        for a, b in zip(edges, edges[1:]):
            piece = Segment(a, seg.data[a - seg.address:b - seg.address])
            region = next((r for r in regions if r.start <= a < r.end), None)
            if region is not None and region.kind == "rom":
                raise TinyEdgeError(f"0x{a:08x}-0x{b - 1:08x} is read-only memory on the target "
                                    f"(the server's memory map says rom)",
                                    "this firmware does not belong at this address: rebuild it for this board")
            out.append((piece, region if region is not None and region.kind == "flash" else None))
    return out


def erase_ranges(pieces: list[tuple[Segment, MemoryRegion]]) -> list[tuple[int, int]]:
    """(start, end) of the flash blocks the pieces touch, merged where they meet."""
    blocks: list[tuple[int, int]] = []
    for seg, r in pieces:
        bs = r.blocksize
        start = r.start + (seg.address - r.start) // bs * bs
        end = min(r.end, r.start + -(-(seg.end - r.start) // bs) * bs)
        blocks.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(blocks):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def program(client: RspClient, image: FlashImage, regions: list[MemoryRegion],
            log: LogFn) -> list[tuple[int, int, str]]:
    """Write the image: flash pieces through vFlash*, the rest with X/M."""
    pieces = _pieces(image, regions)
    flash = [(seg, r) for seg, r in pieces if r is not None]
    written: list[tuple[int, int, str]] = []
    if flash:
        for start, end in erase_ranges(flash):
            log(f"erasing flash 0x{start:08x}-0x{end - 1:08x}")
            client.flash_erase(start, end - start)
        for seg, _r in flash:
            log(f"programming flash 0x{seg.address:08x} ({len(seg.data):,} B)")
            client.flash_write(seg.address, seg.data)
            written.append((seg.address, len(seg.data), "flash"))
        client.flash_done()
    for seg, r in pieces:
        if r is None:
            log(f"writing memory 0x{seg.address:08x} ({len(seg.data):,} B)")
            client.write_memory(seg.address, seg.data)
            written.append((seg.address, len(seg.data), "memory"))
    return sorted(written)


def reset_and_run(client: RspClient, vectors: Vectors, log: LogFn) -> str:
    """Reset the chip so it starts from the new vector table, then detach (it runs).

    A reset is proven, not assumed: after each attempt the core must be halted
    with SP and PC from the image's vector table. In order:

    1. the monitor commands in RESET_COMMANDS;
    2. ``vRun`` (extended-remote servers that restart the program, e.g. a
       Black Magic Probe);
    3. no reset at all: SP, PC and xPSR.T written from the vector table, so
       the firmware starts at its reset handler without a chip reset (the
       peripherals keep their state: say so).
    """
    def at_reset() -> bool:
        try:
            regs = client.core_registers()
        except RspError:
            return False
        return regs[13] == vectors.initial_sp and regs[15] == vectors.reset_pc

    for command in RESET_COMMANDS:
        reply, _text = client.monitor(command)
        if reply == b"":
            break                         # the server has no monitor commands
        if at_reset():
            log(f"reset (monitor {command}); starting the firmware")
            client.detach()
            return f"monitor {command}"
    if client.request(b"vRun;", timeout=15.0)[:1] in (b"T", b"S") and at_reset():
        log("reset (vRun); starting the firmware")
        client.detach()
        return "vRun"
    try:
        numbers = client.register_numbers()
    except RspError:
        numbers = {}
    writes = ((numbers.get("sp", 13), vectors.initial_sp), (numbers.get("pc", 15), vectors.reset_pc),
              (numbers.get("xpsr", LEGACY_XPSR_REGNUM), XPSR_THUMB))
    if not all(client.write_register(n, v) for n, v in writes) or not at_reset():
        raise TinyEdgeError(f"the GDB server at {client.transport.name} can neither reset the chip nor "
                            "set its registers: the firmware is programmed and verified but not started",
                            "press the board's reset button")
    log("the server has no reset command: starting at the reset handler without a chip reset")
    client.detach()
    return "SP/PC from the vector table (no chip reset)"
