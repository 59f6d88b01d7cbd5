"""The seam between the portable kernels and their variants (tinyedge/kernels.py).

- the set is chosen from the board's core (auto), forced with --kernels, and a
  set the core lacks is refused with a clear error;
- a project holds exactly one implementation of every kernel: resolving a set
  gives one file per name (mve: arm_mve/, then arm_dsp/, then portable), and
  every set's runtime, compiled for its core, defines exactly the functions the
  portable runtime defines, each once;
- the portable kernels carry no target code (no #ifdef forest);
- a generated project holds its set's files and says which set it is; the host
  runner builds the portable and dsp sets and refuses Helium.

That each set computes what TFLM computes is tested elsewhere: on the host for
every host variant (tests/test_models_host.py, tests/test_kernels_conv_fc.py,
conftest.HOST_KERNEL_VARIANTS), in QEMU for dsp on M4/M7/M33 and mve on M55
(tests/test_qemu_conv_fc.py, tests/test_qemu_board_models.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import require_tool, shared_model
from tinyedge import kernels as ks
from tinyedge.boards import load_board
from tinyedge.cli import main
from tinyedge.codegen.project import generate_project
from tinyedge.compiler import compile
from tinyedge.errors import TinyEdgeError
from tinyedge.hostrun import HostNetwork, copy_runtime
from tinyedge.model import load_model

# board -> the set auto must pick, from the core's features (boards.CORES: dsp, mve)
AUTO = {"mps2-an385": "portable", "microbit": "portable", "mps2-an386": "dsp", "mps2-an500": "dsp",
        "mps2-an505": "dsp", "mps3-an547": "mve", "generic-cortex-m4": "dsp", "generic-cortex-m0": "portable"}


@pytest.mark.parametrize("board_name", sorted(AUTO))
def test_auto_is_the_best_set_of_the_core(board_name: str) -> None:
    board = load_board(board_name)
    assert ks.resolve("auto", board) == AUTO[board_name]
    assert ks.resolve("portable", board) == "portable"  # every core runs the portable C
    assert compile(load_model(shared_model("hello_world_int8")), board).kernels == AUTO[board_name]


@pytest.mark.parametrize(("board_name", "kernels", "lacks"), [
    ("mps2-an385", "dsp", "DSP extension"), ("microbit", "mve", "Helium"), ("mps2-an386", "mve", "Helium"),
    ("mps2-an500", "mve", "Helium")])
def test_a_set_the_core_lacks_is_refused(board_name: str, kernels: str, lacks: str) -> None:
    with pytest.raises(TinyEdgeError) as exc:
        compile(load_model(shared_model("hello_world_int8")), load_board(board_name), kernels=kernels)
    assert lacks in exc.value.message and board_name in exc.value.message
    assert "--kernels" in exc.value.hint


def test_cli_kernels_option(tmp_path: Path) -> None:
    model = str(shared_model("hello_world_int8"))
    runner = CliRunner()
    bad = runner.invoke(main, ["generate", model, "--board", "mps2-an386", "--kernels", "mve",
                               "-o", str(tmp_path / "bad")])
    assert bad.exit_code == 1 and "Helium" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "bad").exists()  # refused before anything is written
    unknown = runner.invoke(main, ["generate", model, "--board", "mps2-an386", "--kernels", "neon",
                                   "-o", str(tmp_path / "x")])
    assert unknown.exit_code == 2 and "neon" in unknown.output
    for kernels in ("portable", "dsp"):
        ok = runner.invoke(main, ["generate", model, "--board", "mps2-an386", "--kernels", kernels,
                                  "-o", str(tmp_path / kernels)])
        assert ok.exit_code == 0, ok.output
        assert json.loads((tmp_path / kernels / "tinyedge.json").read_text())["kernels"] == kernels
    for cmd in ("generate", "validate", "run", "bench", "inspect"):
        assert "--kernels" in runner.invoke(main, [cmd, "--help"]).output, cmd


def _variant_files(sub: str) -> dict[str, Path]:
    d = ks.runtime_root() / sub
    return {p.name: p for p in d.iterdir() if p.suffix in ks.RUNTIME_SUFFIXES} if d.is_dir() else {}


@pytest.mark.parametrize("kernels", ks.KERNEL_SETS)
def test_resolution_order(kernels: str) -> None:
    """Each name once; the first directory of the set's search order that has it wins."""
    files = ks.runtime_files(kernels)
    portable = {p.name: p for p in ks.runtime_root().iterdir() if p.suffix in ks.RUNTIME_SUFFIXES}
    order = [_variant_files(sub) for sub in ks.VARIANT_DIRS[kernels]] + [portable]
    names = set().union(*order)
    assert set(files) == names
    for name, path in files.items():
        assert path == next(d[name] for d in order if name in d), name
    if kernels == "portable":
        assert all(p.parent == ks.runtime_root() for p in files.values())
    else:  # the dsp variants exist, so the dsp and mve sets take some
        assert any(ks.provider(kernels, n) != "portable" for n in files)


def test_variants_live_only_in_the_known_directories() -> None:
    subdirs = {p.name for p in ks.runtime_root().iterdir() if p.is_dir()}
    assert subdirs <= {d for dirs in ks.VARIANT_DIRS.values() for d in dirs}, subdirs


def test_portable_kernels_carry_no_target_code() -> None:
    """The portable files are the readable reference: no intrinsics, no #ifdef per core."""
    pattern = re.compile(r"__ARM_FEATURE|arm_acle|arm_mve\.h|__asm__|TE_USE_DSP|__thumb|__arm__")
    for p in sorted(ks.runtime_root().iterdir()):
        if p.suffix in ks.RUNTIME_SUFFIXES:
            hits = pattern.findall(p.read_text())
            assert not hits, f"{p.name}: {hits}"


# the core each set is compiled for in the definition check
SET_CORES = {"portable": "mps2-an385", "dsp": "mps2-an386", "mve": "mps3-an547"}


def _defined_functions(kernels: str, tmp_path: Path) -> list[str]:
    """Every global function the set's runtime defines, compiled for its core, one entry per definition."""
    copy_runtime(tmp_path / kernels, kernels)
    runtime = tmp_path / kernels / "runtime"
    flags = load_board(SET_CORES[kernels]).cpu_flags
    sources = sorted(str(p) for p in runtime.glob("*.c"))
    subprocess.run(["arm-none-eabi-gcc", *flags, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-ffunction-sections", "-c", *sources], cwd=runtime, check=True)
    nm = subprocess.run(["arm-none-eabi-nm", "--defined-only", "-g", *sorted(str(p) for p in runtime.glob("*.o"))],
                        capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[-1] for line in nm.splitlines() if re.match(r"^[0-9a-f]+ T ", line))


def test_every_set_defines_each_kernel_once(tmp_path: Path) -> None:
    require_tool("arm-none-eabi-gcc")
    portable = _defined_functions("portable", tmp_path)
    assert len(portable) == len(set(portable)) and "te_conv2d_s8" in portable
    for kernels in ("dsp", "mve"):
        defined = _defined_functions(kernels, tmp_path)
        assert defined == portable, (kernels, set(defined) ^ set(portable))


@pytest.mark.parametrize("kernels", ["portable", "dsp"])
def test_project_holds_its_set(kernels: str, tmp_path: Path) -> None:
    graph = load_model(shared_model("kws_ref_model"))
    net = compile(graph, load_board("mps2-an386"), kernels=kernels)
    proj = generate_project(net, tmp_path / "fw").path
    runtime = proj / "runtime"
    want = ks.runtime_files(kernels)
    assert sorted(p.name for p in runtime.iterdir()) == sorted(want)
    for name, src in want.items():
        assert (runtime / name).read_bytes() == src.read_bytes(), name
    assert f"Kernel set: {kernels}" in (proj / "network.c").read_text()
    # regenerating with another set leaves no file of the first behind
    generate_project(compile(graph, load_board("mps2-an386"), kernels="portable"), proj)
    assert sorted(p.name for p in runtime.iterdir()) == sorted(ks.runtime_files("portable"))


def test_make_host_builds_the_dsp_set(tmp_path: Path) -> None:
    """A dsp project's `make host` runs the arm_dsp kernels on the build machine (emulated intrinsics)."""
    require_tool("make")
    graph = load_model(shared_model("hello_world_int8"))
    proj = generate_project(compile(graph, load_board("mps2-an386"), kernels="dsp"), tmp_path / "fw").path
    proc = subprocess.run(["make", "-C", str(proj), "host"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (proj / "build" / "host" / "network_host").exists()


def test_host_runner_refuses_helium(tmp_path: Path) -> None:
    graph = load_model(shared_model("hello_world_int8"))
    with pytest.raises(TinyEdgeError, match="mve kernels do not run on the host"):
        HostNetwork(graph, tmp_path, kernels="mve")
    net = compile(graph, load_board("mps2-an386"))
    with pytest.raises(ValueError, match="lowered for the dsp kernels"):
        HostNetwork(net, tmp_path, kernels="portable")
