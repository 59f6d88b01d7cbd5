"""Build a generated project with make + arm-none-eabi-gcc and report memory.

The report reads the linked ELF: code (text), read-only data (rodata, which
holds the weights), initialised data, zero-initialised data (bss, which holds
the arena) and the stack, and checks them against the board's memories.

A failed build names the compiler's (or linker's) first real diagnostic,
``file:line:col: error: ...``, and keeps make's whole output in
``build/make.log``. Building runs under the project's lock
(:mod:`tinyedge.lock`), and ``make`` stops with tinyedge (:mod:`tinyedge.procs`).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from tinyedge import procs
from tinyedge.elf import SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHT_NOBITS, ElfFile
from tinyedge.errors import TinyEdgeError
from tinyedge.infiles import check_regular
from tinyedge.outputs import write_atomic

MANIFEST = "tinyedge.json"
MAKE_LOG = "build/make.log"

# gcc/clang: "file:line[:col]: [fatal ]error: message" (-Werror turns warnings into these too)
_COMPILER_ERROR = re.compile(r"^([^\s:][^:]*:\d+(?::\d+)?: (?:fatal )?error: .*)$")
# GNU ld prefixes its own lines with its path: ".../bin/ld: "
_LD_PREFIX = re.compile(r"^\S*?(?:^|/)ld(?:\.bfd|\.gold)?: ")
_LINK_PROBLEMS = ("undefined reference to", "multiple definition of", "overflowed by", "will not fit in region",
                  "cannot find ")
_MAKE_ERROR = re.compile(r"^make(?:\[\d+\])?: \*\*\* (.*)$")
# the compiler driver's own: "arm-none-eabi-gcc: fatal error: Killed signal terminated program cc1"
_DRIVER_ERROR = re.compile(r"^\S*(?:gcc|g\+\+|cc|clang|as|cpp)(?:-[\d.]+)?: (?:fatal )?error: .*$")


def first_diagnostic(log: str) -> str:
    """The first line of a build log that says what broke: a compiler error
    (``file:line:col: error: ...``), else the linker's (an undefined or doubly
    defined symbol, a full region, its own "error:" lines), else a line that
    starts with "error:" (the generated Makefile's toolchain check) or the
    compiler driver's own error (a compiler killed, a missing file), else
    make's own complaint, else the last line."""
    lines = [ln.rstrip() for ln in log.splitlines() if ln.strip()]
    for ln in lines:
        m = _COMPILER_ERROR.match(ln)
        if m:
            return m.group(1)
    linker = [_LD_PREFIX.sub("", ln) for ln in lines if "collect2" not in ln]
    for ln in linker:
        if any(problem in ln for problem in _LINK_PROBLEMS):
            return ln
    for ln in lines:
        if _LD_PREFIX.match(ln) and "error" in ln.lower():
            return re.sub(r"^error: ", "", _LD_PREFIX.sub("", ln))
    for ln in lines:
        if ln.lower().startswith("error:") or _DRIVER_ERROR.match(ln):
            return ln
    for ln in lines:
        m = _MAKE_ERROR.match(ln)
        if m and not re.fullmatch(r"\[.*\] Error \d+|Waiting for unfinished jobs\.*", m.group(1)):
            return m.group(1)
    rest = [ln for ln in lines if not re.match(r"make(\[\d+\])?: (Entering|Leaving) directory", ln)]
    return rest[-1] if rest else "(no output)"


@dataclass
class MemoryReport:
    text: int  # code (incl. vector table)
    rodata: int  # constants, incl. weights
    weights: int  # of rodata: the network's constant arrays (op*_ symbols)
    data: int  # initialised RAM (its image also takes flash)
    bss: int  # zero-initialised RAM, incl. the arena (excl. a separate stack section)
    arena: int  # of bss: the activation arena
    stack: int  # reserved stack
    flash_used: int
    ram_used: int
    flash_size: int
    ram_size: int
    # of data + bss beside the arena: what the network and its runtime own (state of
    # stateful ops, tables in RAM, library data they pull in), and what the
    # validation server and the board support own (see static_ram_owners)
    static_runtime: int = 0
    static_server: int = 0
    static_board: int = 0

    def rows(self) -> list[tuple[str, int, str]]:
        return [
            ("text (code)", self.text, "flash"),
            ("rodata (incl. weights)", self.rodata, "flash"),
            ("  of which weights", self.weights, ""),
            ("data", self.data, "flash+RAM"),
            ("bss (incl. arena)", self.bss, "RAM"),
            ("  of which arena", self.arena, ""),
            ("  of which the network's other data", self.static_runtime, ""),
            ("  of which the validation server's", self.static_server, ""),
            ("stack", self.stack, "RAM"),
        ]


# Source files of the firmware that are not the network: the validation server
# (app/) and the board support (board/, or the library's port glue). Static RAM
# of any other file -- network.c, model_data.c, runtime/*.c, the C library --
# and every global variable belongs to the network and its runtime.
SERVER_SOURCES = frozenset({"main.c", "te_server.c", "te_protocol.c"})
BOARD_SOURCES = frozenset({"board.c", "startup.c", "fault.c", "spin.c", "board_port.c"})
BOARD_PREFIXES = ("uart_", "clock_")


def static_ram_owners(elf: ElfFile) -> dict[str, int]:
    """Bytes of RAM variables (.data and .bss, the arena and the stack apart) by owner:
    ``runtime`` (the network and its kernels), ``server`` (the validation server's
    I/O buffers) and ``board`` (board support: the tick counter's wrap count)."""
    sections = {s.name: s for s in elf.sections}
    parts = {"runtime": 0, "server": 0, "board": 0}
    for obj in elf.objects():
        sec = sections.get(obj.section)
        if (sec is None or not sec.flags & SHF_WRITE or not sec.flags & SHF_ALLOC or obj.name == "te_arena"
                or "stack" in obj.section or "arena" in obj.section):
            continue
        if obj.file in SERVER_SOURCES:
            parts["server"] += obj.size
        elif obj.file in BOARD_SOURCES or (obj.file or "").startswith(BOARD_PREFIXES):
            parts["board"] += obj.size
        else:
            parts["runtime"] += obj.size
    return parts


def memory_report(elf_path: Path, flash_size: int, ram_size: int) -> MemoryReport:
    elf = ElfFile(elf_path)
    text = rodata = data = bss = stack = 0
    for s in elf.sections:
        if not s.flags & SHF_ALLOC or s.size == 0:
            continue
        name = s.name.lower()
        if "stack" in name:
            stack += s.size
        elif s.type == SHT_NOBITS:
            bss += s.size
        elif s.flags & SHF_EXECINSTR:
            text += s.size
        elif s.flags & SHF_WRITE:
            data += s.size
        else:
            rodata += s.size
    syms = elf.symbols()
    arena = syms["te_arena"].size if "te_arena" in syms else 0
    weights = sum(sym.size for name, sym in syms.items() if re.match(r"op\d+_", name))
    if stack == 0:
        for key in ("__te_stack_size", "__stack_size__", "_stack_size", "__STACK_SIZE"):
            if key in syms:
                stack = syms[key].value
                break
    owners = static_ram_owners(elf)
    return MemoryReport(
        text=text, rodata=rodata, weights=weights, data=data, bss=bss, arena=arena, stack=stack,
        flash_used=text + rodata + data, ram_used=data + bss + stack,
        flash_size=flash_size, ram_size=ram_size,
        static_runtime=owners["runtime"], static_server=owners["server"], static_board=owners["board"],
    )


def check_fits(rep: MemoryReport, board_name: str) -> None:
    if rep.flash_used > rep.flash_size:
        raise TinyEdgeError(
            f"firmware needs {rep.flash_used} B of flash, {board_name} has {rep.flash_size} B "
            f"(over by {rep.flash_used - rep.flash_size} B)",
            "pick a board with more flash or a smaller model",
        )
    if rep.ram_used > rep.ram_size:
        raise TinyEdgeError(
            f"firmware needs {rep.ram_used} B of RAM (arena {rep.arena} B), {board_name} has "
            f"{rep.ram_size} B (over by {rep.ram_used - rep.ram_size} B)",
            "pick a board with more RAM or a smaller model",
        )


def read_manifest(project: Path) -> dict:
    """The project's manifest; a missing, damaged or hand-broken one is refused."""
    path = project / MANIFEST
    if not path.exists():
        raise TinyEdgeError(f"{project} is not a tinyedge project (no {MANIFEST})",
                            "create one with `tinyedge generate MODEL --board B -o DIR`")
    check_regular(path, "manifest", f"generate the project again (`tinyedge generate MODEL --board B -o {project}`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TinyEdgeError(f"{path} cannot be read as a tinyedge manifest: {getattr(exc, 'strerror', None) or exc}",
                            f"generate the project again (`tinyedge generate MODEL --board B -o {project}`)") from None
    if not isinstance(manifest, dict) or not all(isinstance(manifest.get(k), str)
                                                 for k in ("board", "model_sha256")):
        raise TinyEdgeError(f"{path} is not a tinyedge manifest (no board or model_sha256)",
                            f"generate the project again (`tinyedge generate MODEL --board B -o {project}`)")
    return manifest


def _check_firmware_model(elf: ElfFile, model_sha256: str, model_name: str) -> None:
    syms = elf.symbols()
    theirs = elf.read(syms["te_model_sha256"].value, 32) if "te_model_sha256" in syms else None
    if theirs is not None and theirs.hex() != model_sha256:
        raw = elf.read(syms["te_model_name"].value, syms["te_model_name"].size) if "te_model_name" in syms else None
        name = raw.split(b"\0")[0].decode(errors="replace") if raw else ""
        label = f"'{name}'" if name else "another model"
        raise TinyEdgeError(f"--firmware {elf.path} was built for {label} (SHA-256 {theirs.hex()[:12]}...), "
                            f"not '{model_name}' (SHA-256 {model_sha256[:12]}...)",
                            "give the firmware built for this model, or leave out --firmware to build it")


def check_firmware(elf_path: Path, model_sha256: str | None, model_name: str, board: str,
                   kernels: str | None) -> str | None:
    """Before an emulator starts or a board is flashed: is this prebuilt firmware
    (``--firmware``) the one asked for? Its ELF holds the model's SHA-256 and name
    (``te_model_sha256``, ``te_model_name``); the manifest of the project it was
    built in, when it sits in one (DIR/build/firmware.elf), names its board and
    kernel set. ``model_sha256``/``kernels``: the model and the set asked for, or
    None: not checked. (The device's HELLO is checked again once it runs.)
    Returns the firmware's kernel set, or None when no manifest says it."""
    if model_sha256 is not None:
        _check_firmware_model(ElfFile(elf_path), model_sha256, model_name)
    project = elf_path.parent.parent
    if elf_path.parent.name != "build" or not (project / MANIFEST).is_file():
        return None
    manifest = read_manifest(project)
    if manifest["board"] != board:
        raise TinyEdgeError(f"firmware {elf_path} was built for {manifest['board']} (its project {project} "
                            f"says so), not for {board}",
                            f"give --board {manifest['board']}, or build the firmware for {board}")
    built = manifest.get("kernels")
    if kernels is not None and isinstance(built, str) and built != kernels:
        raise TinyEdgeError(f"--firmware {elf_path} was built with the {built} kernels, not --kernels {kernels}",
                            f"leave out --kernels (the firmware is validated as built), or give --kernels {built}")
    return built if isinstance(built, str) else None


def find_elf(project: Path) -> Path:
    for cand in (project / "build" / "firmware.elf", project / "firmware.elf"):
        if cand.exists():
            return cand
    raise TinyEdgeError(f"no firmware.elf in {project}", f"run `tinyedge build {project}`")


@dataclass
class BuildResult:
    elf: Path              # the firmware, or for a library target the archive
    memory: MemoryReport | None  # None for a library: the memory map is the user's firmware's
    log: str


def run_make(project: Path, jobs: int = 2) -> str:
    if shutil.which("make") is None:
        raise TinyEdgeError("`make` not found", "sudo apt-get install make")
    if shutil.which("arm-none-eabi-gcc") is None:
        raise TinyEdgeError("arm-none-eabi-gcc not found",
                            "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")
    # stderr into stdout: the log keeps each diagnostic beside the command that printed it.
    # SIGTERM as the parent-death signal: make then deletes the targets it was writing.
    proc = procs.run(["make", "-C", str(project), f"-j{jobs}"], stdout=procs.PIPE, stderr=procs.STDOUT,
                     text=True, death_signal=signal.SIGTERM)
    log = proc.stdout or ""
    (project / "build").mkdir(exist_ok=True)
    write_atomic(project / MAKE_LOG, log, "the build log", durable=False)
    if proc.returncode != 0:
        over = re.search(r"region [`']?(\w+)'? overflowed by (\d+) bytes", log)
        if over:
            raise TinyEdgeError(
                f"firmware does not fit: {over.group(1)} overflowed by {over.group(2)} bytes",
                "pick a board with more memory or a smaller model (`tinyedge inspect MODEL --board B`)",
            )
        raise TinyEdgeError(f"build failed in {project}: {first_diagnostic(log)}",
                            f"make's whole output is in {project / MAKE_LOG}")
    return log


def build_project(project: str | Path, log: Callable[[str], None] | None = None) -> BuildResult:
    from tinyedge.boards import load_board
    from tinyedge.lock import project_lock

    project = Path(project)
    manifest = read_manifest(project)
    board = load_board(manifest["board"])
    with project_lock(project, log=log):
        make_log = run_make(project)
        if board.is_library:
            archive = project / "build" / "libtinyedge.a"
            if not archive.exists():
                raise TinyEdgeError(f"make did not produce {archive}",
                                    f"make's whole output is in {project / MAKE_LOG}")
            return BuildResult(elf=archive, memory=None, log=make_log)
        elf = find_elf(project)
        rep = memory_report(elf, board.flash_size, board.ram_size)
        write_atomic(project / "build" / "memory.json", json.dumps(asdict(rep), indent=2) + "\n",
                     "the memory report", durable=False)
    check_fits(rep, board.name)
    return BuildResult(elf=elf, memory=rep, log=make_log)
