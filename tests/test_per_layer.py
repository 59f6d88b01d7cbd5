"""`validate --per-layer` names the first op whose output differs from TFLM, on the device.

The firmware is built deliberately wrong at one known op: the generated
network.c of kws_ref_model gets one bias of op 4 (a CONV_2D) changed by hand,
as a bug in one kernel or one lowering would. A normal validation then fails
and says how to find the op; `--per-layer` (through the CLI, in QEMU, on the
prebuilt firmware) must name op 4, find ops 0..3 exact, and write every op's
comparison to the report.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tool, shared_model

BROKEN_OP = 4


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinyedge.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        require_tool(tool)
    work = tmp_path_factory.mktemp("perlayer")
    model = shared_model("kws_ref_model")
    proc = run_cli("generate", str(model), "--board", "mps2-an386", "-o", "fw", cwd=work)
    assert proc.returncode == 0, proc.stderr
    net_c = work / "fw" / "network.c"
    text = net_c.read_text()
    # the first channel's bias: an int32 bias array (portable kernels), or the first per-channel
    # record {bias, multiplier, shift, rounding} (te_chan_t, the dsp kernels')
    decl = (re.search(rf"static const int32_t op{BROKEN_OP}_bias\[\d+\][^=]*= \{{\s*(-?\d+)", text)
            or re.search(rf"static const te_chan_t op{BROKEN_OP}_chan\[\d+\][^=]*= \{{\s*\{{(-?\d+),", text))
    assert decl is not None, "op 4's bias not found in network.c"
    first = int(decl.group(1))
    text = text[:decl.start(1)] + str(first + 200_000) + text[decl.end(1):]
    net_c.write_text(text)
    proc = run_cli("build", "fw", cwd=work)
    assert proc.returncode == 0, proc.stderr
    return work


def test_normal_validation_fails_and_says_how_to_find_the_op(broken: Path) -> None:
    proc = run_cli("validate", str(shared_model("kws_ref_model")), "--board", "mps2-an386", "--emulator", "qemu",
                   "--random", "3", "--firmware", "fw", cwd=broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL" in proc.stdout and "Traceback" not in proc.stderr
    assert "--per-layer --sample" in proc.stderr
    report = json.loads((broken / "report.json").read_text())
    first = next(s["index"] for s in report["samples"] if not s["exact"])
    assert f"--per-layer --sample {first}" in proc.stderr
    assert report["oracle"]["name"] == "tflite-micro" and report["oracle"]["version"]
    assert report["second_opinion"]["name"] == "ai-edge-litert"
    assert report["second_opinion_summary"]["samples"] == 3


def test_per_layer_names_the_broken_op(broken: Path) -> None:
    proc = run_cli("validate", str(shared_model("kws_ref_model")), "--board", "mps2-an386", "--emulator", "qemu",
                   "--random", "3", "--firmware", "fw", "--per-layer", "--sample", "1",
                   "--report", "layers.json", cwd=broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"op {BROKEN_OP} (CONV_2D) is the first op whose output differs" in proc.stdout, proc.stdout
    report = json.loads((broken / "layers.json").read_text())
    layers = report["per_layer"]["layers"]
    assert report["per_layer"]["sample"] == 1
    assert report["per_layer"]["first_mismatch"] == {"op": BROKEN_OP, "opcode": "CONV_2D", "output": 0}
    assert [layer["op"] for layer in layers] == list(range(13))
    assert all(layer["exact"] for layer in layers[:BROKEN_OP])
    assert layers[BROKEN_OP]["mismatches"] > 0 and layers[BROKEN_OP]["max_abs_diff"] > 0
    assert report["oracle"]["name"] == "tflite-micro" and report["oracle"]["is_tflm"]


def test_per_layer_on_a_correct_build_is_exact(tmp_path: Path) -> None:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        require_tool(tool)
    proc = run_cli("validate", str(shared_model("hello_world_int8")), "--board", "mps2-an386", "--emulator", "qemu",
                   "--random", "2", "--per-layer", "--sample", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 3 op outputs of sample 1 are exact with TensorFlow Lite Micro" in proc.stdout
