"""What `tinyedge flash` writes: the loadable bytes of a firmware ELF.

An ELF executable says what goes where in its program headers (ELF
specification, "Program Header"): every ``PT_LOAD`` entry with a non-zero
file size is ``p_filesz`` bytes from offset ``p_offset`` of the file, to be
placed at the *physical* address ``p_paddr``. For our firmware that is the
vector table, code and constants in flash, and the initial values of
``.data`` (whose run-time address, ``p_vaddr``, is in RAM but whose load
address is in flash: the start-up code copies it). ``.bss``, the arena and the
stack have no file bytes (``p_filesz == 0``) and are not written.

Before a probe is touched, :func:`check_image` checks that every segment lies
inside a memory of the board and that the vector table sits at the flash
origin with a plausible initial stack pointer and reset handler.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from tinyedge.boards import Board
from tinyedge.errors import TinyEdgeError

PT_LOAD = 1
EM_ARM = 40


@dataclass(frozen=True)
class Segment:
    address: int   # physical (load) address
    data: bytes

    @property
    def end(self) -> int:
        return self.address + len(self.data)


@dataclass(frozen=True)
class FlashImage:
    path: Path
    segments: list[Segment]   # sorted by address, non-overlapping

    @property
    def size(self) -> int:
        return sum(len(s.data) for s in self.segments)

    def read(self, address: int, length: int) -> bytes | None:
        """``length`` image bytes from ``address``, or None if not all in one segment."""
        for s in self.segments:
            if s.address <= address and address + length <= s.end:
                off = address - s.address
                return s.data[off:off + length]
        return None


@dataclass(frozen=True)
class Vectors:
    """The first two words of the vector table (Armv7-M ARM B1.5.3)."""

    initial_sp: int
    reset: int     # address of the reset handler, bit 0 set (Thumb)

    @property
    def reset_pc(self) -> int:
        return self.reset & ~1


def load_image(target: str | Path) -> FlashImage:
    """The loadable segments of an ELF file, or of a project directory's build/firmware.elf."""
    path = Path(target)
    if path.is_dir():
        from tinyedge.build import find_elf

        path = find_elf(path)
    if not path.is_file():
        raise TinyEdgeError(f"{path} not found",
                            "give a firmware .elf or a project directory built with `tinyedge build`")
    data = path.read_bytes()
    return FlashImage(path, read_segments(data, path.name))


def read_segments(data: bytes, name: str = "ELF") -> list[Segment]:
    """PT_LOAD segments with file bytes, by physical address (32-bit little-endian Arm ELF)."""
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise TinyEdgeError(f"{name} is not a 32-bit little-endian ELF file",
                            "give the firmware.elf that the build produced")
    (e_machine,) = struct.unpack_from("<H", data, 18)
    if e_machine != EM_ARM:
        raise TinyEdgeError(f"{name} is not an Arm executable (e_machine {e_machine})",
                            "give the firmware built with arm-none-eabi-gcc")
    (e_phoff,) = struct.unpack_from("<I", data, 0x1C)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 0x2A)
    if e_phnum == 0 or e_phoff + e_phnum * e_phentsize > len(data):
        raise TinyEdgeError(f"{name} has no program headers", "give a linked executable, not an object file")
    segments = []
    for i in range(e_phnum):
        p_type, p_offset, _vaddr, p_paddr, p_filesz = struct.unpack_from(
            "<5I", data, e_phoff + i * e_phentsize)
        if p_type != PT_LOAD or p_filesz == 0:
            continue
        if p_offset + p_filesz > len(data):
            raise TinyEdgeError(f"{name} is truncated (segment {i} ends past the file)",
                                "rebuild the firmware")
        segments.append(Segment(p_paddr, data[p_offset:p_offset + p_filesz]))
    segments.sort(key=lambda s: s.address)
    for a, b in zip(segments, segments[1:]):
        if b.address < a.end:
            raise TinyEdgeError(f"{name}: segments at 0x{a.address:08x} and 0x{b.address:08x} overlap",
                                "check the linker script")
    if not segments:
        raise TinyEdgeError(f"{name} has nothing to load", "rebuild the firmware")
    return segments


def board_memories(board: Board) -> list[tuple[str, str, int, int]]:
    """(name, kind "flash"/"ram", start, end) of the memories of ``board``.

    A board that lists its memories one by one (``regions``: TCM, CCM, AXI SRAM
    beside flash and SRAM) gives them all; otherwise its flash and RAM.
    """
    regions = getattr(board, "regions", None) or []
    if regions:
        return [(r.name, r.kind, r.origin, r.end) for r in regions]
    return [("flash", "flash", board.flash_origin, board.flash_end),
            ("RAM", "ram", board.ram_origin, board.ram_end)]


def check_image(image: FlashImage, board: Board) -> Vectors:
    """Every segment inside one of the board's memories; the vector table at the flash origin.

    Returns the initial stack pointer and reset handler the image's vector table holds.
    """
    memories = board_memories(board)
    for s in image.segments:
        if not any(start <= s.address and s.end <= end for _n, _k, start, end in memories):
            where = ", ".join(f"{n} 0x{start:08x}-0x{end - 1:08x}" for n, _k, start, end in memories)
            raise TinyEdgeError(
                f"{image.path.name}: segment 0x{s.address:08x}-0x{s.end - 1:08x} ({len(s.data)} B) "
                f"is outside the memories of {board.name} ({where})",
                f"this firmware was not built for {board.name}: rebuild it with --board {board.name}")
    head = image.read(board.flash_origin, 8)
    if head is None:
        raise TinyEdgeError(f"{image.path.name} has no vector table at {board.name}'s flash origin "
                            f"0x{board.flash_origin:08x}",
                            f"this firmware was not built for {board.name}: rebuild it with --board {board.name}")
    sp, reset = struct.unpack("<II", head)
    vec = Vectors(sp, reset)
    rams = [(start, end) for _n, kind, start, end in memories if kind == "ram"]
    if not any(start < sp <= end for start, end in rams) or sp % 8:
        raise TinyEdgeError(f"{image.path.name}: initial stack pointer 0x{sp:08x} is not the top of a stack "
                            f"in {board.name}'s RAM", "rebuild the firmware for this board")
    if not reset & 1 or image.read(vec.reset_pc, 2) is None:
        raise TinyEdgeError(f"{image.path.name}: reset vector 0x{reset:08x} is not Thumb code in the image",
                            "rebuild the firmware for this board")
    return vec
