"""int8 ADD and SUB on the emulated cores (emulator tier): te_add_fast_s8 with real instructions.

The host tier (tests/test_kernels_misc.py, tests/test_ops_sub.py) checks te_add_fast.h's portable
code and its dsp requantization with emulated intrinsics; the Helium variant
(runtime/arm_mve/te_add_fast.c: gathers from the two tables, 4 elements per pass and a predicated
tail, broadcast rows read once) only runs on an M55. Here the int8 ADD family of test_kernels_misc
(every broadcast pattern, rank 6, constant operands, rows of 1-100 elements around the group sizes)
and the int8 SUB family of test_ops_sub (scalars either side, extreme scale ratios, saturating
outputs) run in one network per board, in QEMU over the validation protocol, compared byte for byte
with the TFLM interpreter on inputs uniform over int8 plus all -128 and all 127.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import require_tool
from test_kernels_misc import _family_ops, _samples, build_ops
from test_ops_sub import sub_ops
from tinyedge.boards import load_board
from tinyedge.build import build_project
from tinyedge.codegen.project import generate_project
from tinyedge.compiler import compile
from tinyedge.model import read_model
from tinyedge.oracle import Oracle
from tinyedge.validate import link_settings, open_target

pytestmark = pytest.mark.emulator

CASES = [("mps3-an547", "mve"), ("mps2-an386", "dsp")]


def _model() -> bytes:
    subs = [op for op in sub_ops(np.random.default_rng(4242)) if op.inputs[0].dtype == "int8"]
    return build_ops(_family_ops("ADD") + subs)


@pytest.mark.parametrize(("board_name", "kernels"), CASES)
def test_add_sub_families_on_board(board_name: str, kernels: str, tmp_path: Path) -> None:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        require_tool(tool)
    model = _model()
    graph = read_model(model, "add-sub-families")
    board = load_board(board_name)
    net = compile(graph, board, kernels=kernels)
    calls = [lo.lowered.call for lo in net.ops]
    assert sum(c.startswith("te_add_fast_s8(") for c in calls) >= 80, calls
    generate_project(net, tmp_path / "fw")
    built = build_project(tmp_path / "fw")
    oracle = Oracle(model)
    outs = graph.output_tensors
    failures = []
    checked = 0
    samples = _samples(graph, np.random.default_rng(77), n=3)
    with open_target(board, built.elf, "qemu", None, link_settings(net, "qemu", 120.0, None)) as (client, _):
        for k, sample in enumerate(samples):
            result = client.infer([np.ascontiguousarray(x).tobytes() for x in sample])
            want = oracle.run(sample)
            for j, (data, t, w) in enumerate(zip(result.outputs, outs, want, strict=True)):
                got = np.frombuffer(data, dtype=np.int8).reshape(t.shape)
                checked += got.size
                if not (got == w).all():
                    failures.append(f"sample {k}, output {j} ({t.shape}): {int((got != w).sum())} differ")
    assert not failures, f"{board_name} ({kernels}):\n" + "\n".join(failures)
    assert checked > 20_000
