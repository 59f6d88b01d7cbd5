"""Just enough ELF32 (little-endian) reading for memory reports.

Section sizes by kind and symbol sizes, from the linked firmware. Written
against the ELF specification; no external tools needed.
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tinyedge.errors import TinyEdgeError
from tinyedge.infiles import check_regular

SHT_SYMTAB = 2
SHT_NOBITS = 8
STT_OBJECT = 1
STT_FILE = 4
STB_LOCAL = 0
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    addr: int
    size: int


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int


@dataclass(frozen=True)
class DataObject:
    """A variable (STT_OBJECT symbol) and where it comes from."""

    name: str
    file: str | None  # source file of a local (static) symbol, from the STT_FILE before it; None: global
    section: str
    addr: int
    size: int


class ElfFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise TinyEdgeError(f"ELF file not found: {self.path}", "run `tinyedge build DIR` first")
        check_regular(self.path, "firmware", "give the firmware.elf the build produced")
        data = self.path.read_bytes()
        if data[:4] != b"\x7fELF" or data[4:6] != b"\x01\x01":
            raise TinyEdgeError(f"{self.path} is not a 32-bit little-endian ELF file",
                                "point at the firmware.elf the build produced")
        self._data = data
        with self._damaged():
            (e_shoff,) = struct.unpack_from("<I", data, 0x20)
            e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x2E)
            raw = [struct.unpack_from("<IIIIIIIIII", data, e_shoff + i * e_shentsize) for i in range(e_shnum)]
            strtab_off = raw[e_shstrndx][4]
            self.sections = [
                Section(self._cstr(strtab_off + r[0]), r[1], r[2], r[3], r[5]) for r in raw
            ]
        self._raw = raw

    @contextlib.contextmanager
    def _damaged(self) -> Iterator[None]:
        """A truncated or damaged file (offsets past its end, a zero entry size)
        is the user's file, not a bug: one error line."""
        try:
            yield
        except (struct.error, IndexError, ValueError, ZeroDivisionError):
            raise TinyEdgeError(f"{self.path} is a damaged or truncated ELF file ({len(self._data):,} bytes)",
                                "build the firmware again (`tinyedge build DIR`) and give its "
                                "build/firmware.elf") from None

    def _cstr(self, off: int) -> str:
        end = self._data.index(b"\0", off)
        return self._data[off:end].decode(errors="replace")

    def _symtab(self) -> Iterator[tuple[str, int, int, int, int, str | None]]:
        """(name, value, size, info, section index, source file) of every symbol. The
        linker keeps each input file's local symbols together after an STT_FILE
        symbol naming the file (ELF specification, "Symbol Table"); globals come
        after all of them (their file is None)."""
        for r in self._raw:
            if r[1] != SHT_SYMTAB:
                continue
            off, size, link, entsize = r[4], r[5], r[6], r[9]
            str_off = self._raw[link][4]
            current: str | None = None
            for i in range(size // entsize):
                name_off, value, sym_size, info, _other, shndx = struct.unpack_from(
                    "<IIIBBH", self._data, off + i * entsize)
                name = self._cstr(str_off + name_off) if name_off else ""
                if info & 0xF == STT_FILE:
                    current = name
                yield name, value, sym_size, info, shndx, current if info >> 4 == STB_LOCAL else None

    def objects(self) -> list[DataObject]:
        """Every variable (STT_OBJECT) with its section and, for a static one, its source file."""
        with self._damaged():
            return [DataObject(name, file, self.sections[shndx].name, value, size)
                    for name, value, size, info, shndx, file in self._symtab()
                    if info & 0xF == STT_OBJECT and 0 < shndx < len(self.sections)]

    def read(self, addr: int, size: int) -> bytes | None:
        """The ``size`` bytes at ``addr`` as the file holds them (a section with
        contents that covers them), or None."""
        for sec, r in zip(self.sections, self._raw):
            if sec.flags & SHF_ALLOC and sec.type != SHT_NOBITS and sec.addr <= addr \
                    and addr + size <= sec.addr + sec.size:
                data = self._data[r[4] + addr - sec.addr:r[4] + addr - sec.addr + size]
                return data if len(data) == size else None
        return None

    def symbols(self) -> dict[str, Symbol]:
        with self._damaged():
            return {name: Symbol(name, value, size) for name, value, size, _info, _shndx, _file in self._symtab()
                    if name}
