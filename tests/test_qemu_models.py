"""Firmware in QEMU (emulator tier): the validation server on mps2-an386 is
bit-exact with the TFLite oracle, end to end through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tool, shared_model

pytestmark = pytest.mark.emulator


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        require_tool(tool)


@pytest.mark.parametrize("name,n", [("hello_world_int8", 20), ("kws_ref_model", 10)])
def test_validate_in_qemu_cli(name: str, n: int, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tinyedge.cli", "validate", str(shared_model(name)), "--board", "mps2-an386",
         "--emulator", "qemu", "--random", str(n), "--report", str(report), "--project", str(tmp_path / "fw")],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = json.loads(report.read_text())
    assert rep["complete"] and rep["all_exact"]
    assert rep["summary"]["samples"] == n and rep["summary"]["exact"] == n
    assert all(s["output_hex"] == s["oracle_hex"] for s in rep["samples"])
    assert rep["summary"]["instructions_median"] > 0
    assert rep["memory"]["arena"] > 0 and rep["memory"]["flash_used"] > rep["memory"]["weights"] > 0


def test_generated_project_builds_with_make_alone(tmp_path: Path) -> None:
    """`make` in a generated project works with no tinyedge/python on PATH."""
    from tinyedge.boards import load_board
    from tinyedge.codegen.project import generate_project
    from tinyedge.compiler import compile
    from tinyedge.model import load_model

    net = compile(load_model(shared_model("hello_world_int8")), load_board("mps2-an386"))
    proj = generate_project(net, tmp_path / "fw").path
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if not (Path(d) / "tinyedge").exists() and "venv" not in d]
    env = {"PATH": os.pathsep.join(keep), "HOME": os.environ.get("HOME", "/tmp")}
    proc = subprocess.run(["make", "-C", str(proj)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (proj / "build" / "firmware.elf").exists()
    host = subprocess.run(["make", "-C", str(proj), "host"], capture_output=True, text=True, env=env)
    assert host.returncode == 0, host.stdout + host.stderr


def test_interrupted_run_resumes(tmp_path: Path) -> None:
    """A run interrupted after four of its six samples (Ctrl-C in the middle) keeps
    them in its report; resumed with the same inputs, only the other two are run."""
    from dataclasses import asdict

    from tinyedge.boards import load_board
    from tinyedge.build import build_project
    from tinyedge.codegen.project import generate_project
    from tinyedge.compiler import compile
    from tinyedge.model import load_model
    from tinyedge.pipeline import random_samples
    from tinyedge.validate import validate_on_target

    graph = load_model(shared_model("hello_world_int8"))
    board = load_board("mps2-an386")
    net = compile(graph, board)
    generate_project(net, tmp_path / "fw")
    built = build_project(tmp_path / "fw")
    samples = random_samples(graph, 6, seed=3)
    report = tmp_path / "report.json"
    ran: list[int] = []

    def progress(i: int, n: int, s: object) -> None:
        ran.append(i)

    def interrupt_after_four(i: int, n: int, s: object) -> None:
        progress(i, n, s)
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        validate_on_target(net, built.elf, samples, report, asdict(built.memory), emulator="qemu",
                           progress=interrupt_after_four)
    first = json.loads(report.read_text())
    assert ran == [0, 1, 2, 3] and len(first["samples"]) == 4 and not first["complete"]
    ran.clear()
    second = validate_on_target(net, built.elf, samples, report, asdict(built.memory),
                                emulator="qemu", resume=True, progress=progress)
    assert ran == [4, 5]  # the first four came from the report
    assert second.complete and second.all_exact and len(second.samples) == 6
    assert json.loads(report.read_text())["summary"]["exact"] == 6


@pytest.mark.parametrize("board", ["mps2-an386", "microbit"])  # FPU / soft float on a Cortex-M0
def test_float_io_keras_model_validates_in_qemu(board: str, tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    """A Keras model converted with float I/O (QUANTIZE/DEQUANTIZE at the edges),
    fed float data from a .npz, validates bit-exact through the CLI."""
    import numpy as np

    import keras_models

    model = tmp_path / "conv_float_io.tflite"
    model.write_bytes(keras_models.tflite_model("conv_float_io", request.config.cache.mkdir("tinyedge-keras")))
    rng = np.random.default_rng(11)
    x = rng.uniform(-4, 4, size=(6, *keras_models.case("conv_float_io").inputs[0])).astype(np.float32)
    x[0] = 0.0  # and exact zeros
    np.savez(tmp_path / "data.npz", x=x)
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tinyedge.cli", "validate", str(model), "--board", board, "--emulator", "qemu",
         "--data", str(tmp_path / "data.npz"), "--report", str(report), "--project", str(tmp_path / "fw")],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = json.loads(report.read_text())
    assert rep["all_exact"] and rep["summary"]["exact"] == 6
    assert rep["device"]["inputs"][0]["dtype"] == "float32"  # the device reports a float input
