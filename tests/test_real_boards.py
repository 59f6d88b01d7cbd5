"""Real boards: the firmware of every shared model builds for each (-Werror), and
each ELF passes the memory-map checks against the part's datasheet memories
(tests/data/parts.toml, written independently of boards/*.toml):

* the vector table sits where the part boots from, and has a slot for every
  interrupt the part has;
* its initial stack pointer lies inside (or at the top of) a RAM of the part,
  its reset vector is a Thumb address inside flash, pointing at Reset_Handler;
* every allocated section lies inside a memory the part has, of the right kind
  (code and constants in flash, writable data in RAM), and the initial values
  of .data are loaded into flash.

No board is attached here: QEMU models none of these parts. Builds are shared
between boards with the same CPU flags (the runtime, network.c and model_data.c
compile to the same objects), so only the board files are compiled again.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import MODEL_NAMES, ROOT, require_tool, shared_model
from tinyedge.analysis import inspect_network
from tinyedge.boards import firmware_files, list_boards, load_board
from tinyedge.build import build_project
from tinyedge.codegen.project import generate_project
from tinyedge.compiler import compile
from tinyedge.elf import SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHT_NOBITS, ElfFile
from tinyedge.model import load_model

PARTS = tomllib.loads((ROOT / "tests" / "data" / "parts.toml").read_text())
REAL_BOARDS = sorted(PARTS)
PT_LOAD = 1


def test_every_real_board_has_part_data() -> None:
    real = [b for b in list_boards() if not load_board(b).is_emulated and not load_board(b).is_library]
    assert real == REAL_BOARDS


# ---------------------------------------------------------------- ELF reading

@dataclass(frozen=True)
class Segment:
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    data: bytes


def load_segments(path: Path) -> list[Segment]:
    """PT_LOAD program headers (ELF32 little-endian), read here, not with tinyedge.elf."""
    raw = path.read_bytes()
    phoff, = struct.unpack_from("<I", raw, 0x1C)
    phentsize, phnum = struct.unpack_from("<HH", raw, 0x2A)
    segs = []
    for i in range(phnum):
        p_type, off, vaddr, paddr, filesz, memsz, _flags, _align = struct.unpack_from(
            "<8I", raw, phoff + i * phentsize)
        if p_type == PT_LOAD and memsz:
            segs.append(Segment(vaddr, paddr, filesz, memsz, raw[off:off + filesz]))
    return segs


def merged(regions: list[list]) -> list[tuple[int, int]]:
    """[origin, end) spans, touching regions merged (SRAM1 + SRAM2 ...)."""
    spans = sorted((o, o + s) for _, o, s in regions)
    out: list[list[int]] = []
    for lo, hi in spans:
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def inside(lo: int, hi: int, spans: list[tuple[int, int]]) -> bool:
    return any(s <= lo and hi <= e for s, e in spans)


def check_memory_map(board_name: str, elf_path: Path) -> None:
    part = PARTS[board_name]
    flash, ram = merged(part["flash"]), merged(part["ram"])
    elf = ElfFile(elf_path)
    syms = elf.symbols()
    sections = {s.name: s for s in elf.sections}

    # the vector table, at the boot address, one slot per exception and IRQ
    vt = sections[".isr_vector"]
    assert vt.addr == part["boot"], f"vector table at 0x{vt.addr:08x}, {part['part']} boots from 0x{part['boot']:08x}"
    assert vt.size == 4 * (16 + part["irqs"]), f"{vt.size // 4 - 16} IRQ slots, the part has {part['irqs']}"
    seg = next(s for s in load_segments(elf_path) if s.paddr <= vt.addr < s.paddr + s.filesz)
    sp, reset = struct.unpack_from("<II", seg.data, vt.addr - seg.paddr)
    assert sp % 8 == 0 and any(s < sp <= e for s, e in ram), f"initial SP 0x{sp:08x} is not in RAM"
    assert reset & 1, "reset vector must be a Thumb address"
    assert inside(reset & ~1, (reset & ~1) + 2, flash), f"reset vector 0x{reset:08x} is not in flash"
    assert reset & ~1 == syms["Reset_Handler"].value & ~1

    # every allocated section in a memory the part has, of the right kind
    for s in elf.sections:
        if not s.flags & SHF_ALLOC or s.size == 0:
            continue
        writable = bool(s.flags & SHF_WRITE) or s.type == SHT_NOBITS
        where = ram if writable else flash
        assert inside(s.addr, s.addr + s.size, where), \
            f"{s.name} at 0x{s.addr:08x}+{s.size} is outside the {'RAM' if writable else 'flash'} of {part['part']}"
        if s.flags & SHF_EXECINSTR:
            assert inside(s.addr, s.addr + s.size, flash)
    # initialised data: its load image is in flash
    for seg in load_segments(elf_path):
        if seg.filesz:
            assert inside(seg.paddr, seg.paddr + seg.filesz, flash), f"load image at 0x{seg.paddr:08x}"
    assert inside(syms["__stack_limit"].value, syms["__stack_top"].value, ram)


# ---------------------------------------------------------------- builds

_BUILT: dict[tuple[str, ...], Path] = {}   # (cpu flags..., model) -> a project built with them


def build_for(board_name: str, model_name: str, workdir: Path) -> Path:
    """Generate and build; reuse another board's objects for what does not depend
    on the board (runtime, network, model data) when the CPU flags are the same."""
    board = load_board(board_name)
    project = workdir / f"{model_name}-{board_name}"
    generate_project(compile(load_model(shared_model(model_name)), board), project)
    key = (*board.cpu_flags, model_name)
    donor = _BUILT.get(key)
    if donor is not None:
        for src in (donor / "build" / "obj").rglob("*"):
            rel = src.relative_to(donor / "build" / "obj")
            if src.is_file() and rel.parts[0] not in ("board", "app"):
                dst = project / "build" / "obj" / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                os.utime(dst)  # newer than the freshly generated (identical) sources
    built = build_project(project)
    assert built.memory is not None
    _BUILT.setdefault(key, project)
    return built.elf


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("arm-none-eabi-gcc", "make"):
        require_tool(tool)
    return tmp_path_factory.mktemp("real_boards")


@pytest.mark.parametrize("board_name", REAL_BOARDS)
def test_shared_models_build_and_fit_the_part(board_name: str, workdir: Path) -> None:
    board = load_board(board_name)
    for model_name in MODEL_NAMES:
        fit = inspect_network(compile(load_model(shared_model(model_name)), board)).fit
        assert fit is not None and fit.verdict == "fits", (model_name, fit)
        elf = build_for(board_name, model_name, workdir)
        check_memory_map(board_name, elf)
        # the arena went where the board file's placement says it goes
        syms = ElfFile(elf).symbols()
        arena = syms["te_arena"]
        region = board.region(board.layout(arena.size).arena)
        assert region.origin <= arena.value and arena.value + arena.size <= region.end, (model_name, region)


def test_memory_map_check_catches_a_wrong_region(workdir: Path, tmp_path: Path) -> None:
    """The check fails when a board file claims memory the part lacks: a copy of
    the F407 board whose CCM is said to be at 0x10010000 (nothing is there)."""
    text = (ROOT / "boards" / "stm32f4-discovery.toml").read_text()
    text = text.replace('name = "stm32f4-discovery"', 'name = "f407-bad"').replace(
        "origin = 0x1000_0000", "origin = 0x1001_0000")
    bad = tmp_path / "f407-bad.toml"
    bad.write_text(text)
    project = tmp_path / "fw"
    generate_project(compile(load_model(shared_model("hello_world_int8")), load_board(str(bad))), project)
    subprocess.run(["make", "-C", str(project), "-j2"], capture_output=True, check=True)
    elf = project / "build" / "firmware.elf"
    with pytest.raises(AssertionError, match="not in RAM|outside the RAM"):
        check_memory_map("stm32f4-discovery", elf)


def test_netduinoplus2_runs_the_f407_clock_and_usart_drivers() -> None:
    """The STM32F4 code path of the F407 board is the one QEMU exercises on
    netduinoplus2 (tests/test_qemu_boards.py runs that firmware)."""
    f407 = {dst for _, dst in firmware_files(load_board("stm32f4-discovery"))}
    netduino = {dst for _, dst in firmware_files(load_board("netduinoplus2"))}
    for shared in ("board/clock_stm32f4.c", "board/uart_stm32.c"):
        assert shared in f407 and shared in netduino


def test_cortex_m7_cache_enable_runs_in_qemu(tmp_path: Path) -> None:
    """startup.c's I/D-cache enable (invalidate by set/way over the geometry
    CCSIDR reports) runs on QEMU's Cortex-M7 (mps2-an500 with caches = true);
    the firmware then answers and computes as without caches."""
    import random
    import sys

    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        require_tool(tool)
    sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "fake_net"))
    from make_project import build, expected_outputs, make_project

    from tinyedge.device import DeviceClient
    from tinyedge.emulator import QemuInstance

    text = (ROOT / "boards" / "mps2-an500.toml").read_text()
    text = text.replace('name = "mps2-an500"', 'name = "an500-cached"').replace(
        'fpu = "fpv5-d16"', 'fpu = "fpv5-d16"\ncaches = true')
    path = tmp_path / "an500-cached.toml"
    path.write_text(text)
    board = load_board(str(path))
    assert board.caches
    proj = make_project(board, tmp_path / "fw")
    build(proj)
    # the cache code is in the image: stores to ICIALLU (0xE000E000 + 0xF50) and DCISW (+ 0xF60)
    disasm = subprocess.run(["arm-none-eabi-objdump", "-d", str(proj / "build" / "firmware.elf")],
                            capture_output=True, text=True, check=True).stdout
    assert "@ 0xf50" in disasm and "@ 0xf60" in disasm
    rng = random.Random(7)
    with QemuInstance(board, proj / "build" / "firmware.elf") as qemu, \
            DeviceClient(qemu.url, timeout=5) as client:
        assert client.hello().board == "an500-cached"
        image, bias = rng.randbytes(400), rng.randbytes(3)
        assert client.infer([image, bias]).outputs == expected_outputs(image, bias)


@pytest.mark.parametrize("board_name,source", [
    # the same trees from an 8 MHz external clock (the ST-LINK's MCO, bypass) or crystal
    ("stm32f4-discovery", 'source = "hse"\nhse_hz = 8_000_000\npll_m = 8\n'),
    ("nucleo-f746zg", 'source = "hse"\nhse_hz = 8_000_000\nhse_bypass = true\npll_m = 4\n'),
    ("nucleo-h743zi2", 'source = "hse"\nhse_hz = 8_000_000\nhse_bypass = true\npll_m = 1\npll_n = 100\n'),
    ("nucleo-l4r5zi", 'source = "hse"\nhse_hz = 8_000_000\nhse_bypass = true\npll_m = 1\n'),
])
def test_hse_clock_paths_compile(board_name: str, source: str, tmp_path: Path) -> None:
    """The shipped boards start from HSI; the drivers' HSE path compiles too
    (-Werror) and gives the same clock_hz."""
    import re
    import sys

    require_tool("arm-none-eabi-gcc")
    sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "fake_net"))
    from make_project import build, make_project

    text = (ROOT / "boards" / f"{board_name}.toml").read_text().replace(
        f'name = "{board_name}"', 'name = "hse-variant"')
    keys = dict(re.findall(r"^(\w+) = (.*)$", source, re.M))
    for key in keys:
        text = re.sub(rf"^{key} = .*\n", "", text, flags=re.M)
    text = text.replace("[clock]\n", "[clock]\n" + source)
    path = tmp_path / "hse-variant.toml"
    path.write_text(text)
    board = load_board(str(path))
    assert board.clock is not None and board.clock.sysclk_hz == board.clock_hz
    assert ("TE_CLK_USE_HSE", "1u") in [(n, v) for n, v, _ in board.c_defines()]
    build(make_project(board, tmp_path / "fw"))
