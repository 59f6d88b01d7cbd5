"""The library target (`--board generic-cortex-*`): the network, runtime, C API
and validation server as a library for the user's own firmware.

* it compiles and archives with arm-none-eabi-gcc (-Werror) for every core,
  leaving exactly the three port-layer functions for the user to provide;
* its C API (tinyedge.h) computes what the TFLite Micro oracle computes
  (compiled for the host);
* linked with a port layer of our own into firmware for the emulated
  mps2-an386, it validates bit-exact through `validate` in QEMU: the port layer
  API is proven end to end.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, require_tool, shared_model
from tinyedge.boards import firmware_files, load_board
from tinyedge.build import build_project
from tinyedge.codegen.project import generate_project
from tinyedge.codegen.render import render_template
from tinyedge.compiler import compile
from tinyedge.errors import TinyEdgeError
from tinyedge.model import load_model
from tinyedge.oracle import Oracle
from tinyedge.pipeline import random_samples, validate_model
from tinyedge.resources import templates_dir
from tinyedge.validate import validate_on_target

CORES = ["m0", "m3", "m4", "m7", "m33", "m55"]
PORT = ROOT / "tests" / "fixtures" / "library_port"
PORT_FUNCTIONS = {"te_port_uart_read", "te_port_uart_write", "te_port_cycles"}


def _symbols(archive: Path) -> tuple[set[str], set[str]]:
    """(defined, undefined) global symbols of an archive."""
    out = subprocess.run(["arm-none-eabi-nm", "-g", str(archive)], capture_output=True, text=True,
                         check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3:
            defined.add(parts[2])
    return defined, undefined - defined


@pytest.mark.parametrize("core", CORES)
def test_library_builds_for_every_core(core: str, tmp_path: Path) -> None:
    for tool in ("arm-none-eabi-gcc", "make"):
        require_tool(tool)
    board = f"generic-cortex-{core}"
    generate_project(compile(load_model(shared_model("kws_ref_model")), load_board(board)), tmp_path / "lib")
    built = build_project(tmp_path / "lib")
    assert built.memory is None and built.elf.name == "libtinyedge.a"
    defined, undefined = _symbols(built.elf)
    assert {"te_invoke", "te_reset", "te_input", "te_output", "te_input_bytes", "te_output_bytes",
            "te_arena_bytes", "te_server_run", "te_network_run"} <= defined
    assert "main" not in defined
    # what the user's firmware must provide: the port layer (plus the C library)
    assert PORT_FUNCTIONS <= undefined
    assert not {s for s in undefined - PORT_FUNCTIONS if s.startswith(("te_", "board_"))}
    files = {p.relative_to(tmp_path / "lib").as_posix() for p in (tmp_path / "lib").rglob("*")}
    assert {"tinyedge.h", "port/te_port.h", "CMakeLists.txt", "README.md"} <= files
    assert not any(f.startswith(("host/", "board/linker", "board/startup")) for f in files)


def test_library_c_api_on_the_host(tmp_path: Path) -> None:
    require_tool("gcc")
    graph = load_model(shared_model("kws_ref_model"))
    lib = tmp_path / "lib"
    generate_project(compile(graph, load_board("generic-cortex-m4")), lib)
    exe = tmp_path / "api_host"
    srcs = [str(p) for p in sorted((lib / "runtime").glob("*.c"))] + [
        str(lib / "network.c"), str(lib / "model_data.c"), str(lib / "tinyedge_api.c"), str(PORT / "api_host.c")]
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
                    f"-I{lib}", f"-I{lib / 'runtime'}", *srcs, "-lm", "-o", str(exe)], check=True)
    samples = random_samples(graph, 3, seed=11)
    stdin = b"".join(np.ascontiguousarray(x).tobytes() for s in samples for x in s)
    out = subprocess.run([str(exe)], input=stdin, capture_output=True, check=True).stdout
    header, body = out.split(b"\n", 1)
    arena, n_in, n_out, *sizes = map(int, header.split())
    assert arena == compile(graph, load_board("generic-cortex-m4")).arena_bytes
    assert (n_in, n_out) == (len(graph.input_tensors), len(graph.output_tensors))
    assert sizes == [t.nbytes for t in graph.input_tensors + graph.output_tensors]
    oracle = Oracle(graph.model_bytes)
    want = b""
    for sample in samples:
        oracle.reset()
        want += b"".join(r.tobytes() for r in oracle.run(sample))
    assert body == want


def _user_firmware(lib: Path, fw: Path) -> Path:
    """Firmware a user would write: startup, UART and SysTick for mps2-an386
    (tinyedge's own board files standing in for a vendor HAL), our port layer,
    linked with libtinyedge.a."""
    an386 = load_board("mps2-an386")
    ctx = {"board": an386, "model_name": "user", "model_sha256": "0" * 64, "arena_bytes": 1 << 16,
           "version": "test"}
    for src, dst in firmware_files(an386):
        if dst.startswith("board/"):
            text = render_template(src, ctx) if src.endswith(".j2") else (templates_dir() / src).read_text()
            (fw / dst).parent.mkdir(parents=True, exist_ok=True)
            (fw / dst).write_text(text)
    srcs = [str(p) for p in sorted((fw / "board").glob("*.c"))] + [str(PORT / "port_qemu.c")]
    elf = fw / "firmware.elf"
    subprocess.run(["arm-none-eabi-gcc", *an386.cpu_flags, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror",
                    f"-I{fw / 'board'}", f"-I{lib}", f"-I{lib / 'runtime'}", f"-I{lib / 'port'}", *srcs,
                    str(lib / "build" / "libtinyedge.a"), "-nostartfiles", "--specs=nano.specs",
                    "--specs=nosys.specs", "-Wl,--gc-sections", f"-T{fw / 'board' / 'linker.ld'}", "-lm",
                    "-o", str(elf)], check=True, capture_output=True)
    return elf


@pytest.mark.emulator
def test_library_with_our_port_layer_validates_in_qemu(tmp_path: Path) -> None:
    for tool in ("arm-none-eabi-gcc", "make", "qemu-system-arm"):
        require_tool(tool)
    graph = load_model(shared_model("kws_ref_model"))
    lib = tmp_path / "lib"
    generate_project(compile(graph, load_board("generic-cortex-m4")), lib)
    subprocess.run(["make", "-C", str(lib), "-j2", "EXTRA_CFLAGS=-DTE_PORT_CLOCK_HZ=25000000u"],
                   check=True, capture_output=True)
    elf = _user_firmware(lib, tmp_path / "fw")
    an386 = load_board("mps2-an386")
    report = validate_on_target(compile(graph, an386), elf, random_samples(graph, 3, seed=5), tmp_path / "r.json",
                                {}, emulator="qemu", timeout=60.0)
    assert report.device["board"] == "generic-cortex-m4" and report.device["clock_hz"] == 25_000_000
    assert report.complete and report.all_exact, [(s.index, s.mismatches) for s in report.samples]
    # the port layer's cycle counter (SysTick here, 40 instructions a tick) times the inferences
    assert all(s.instructions and s.instructions > 100_000 for s in report.samples)


def test_a_library_board_cannot_run_in_an_emulator(tmp_path: Path) -> None:
    with pytest.raises(TinyEdgeError, match="library for your own firmware"):
        validate_model(shared_model("hello_world_int8"), "generic-cortex-m4", emulator="qemu", port=None,
                       data=None, n_random=1, seed=0, report_path=tmp_path / "r.json")
