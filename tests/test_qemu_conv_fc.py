"""FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D on the emulated cores (emulator tier).

The host tier (tests/test_kernels_conv_fc.py) checks the kernels' portable C and
their DSP code paths with emulated intrinsics; here the real instructions run:
every single-op and patched model of that file -- awkward shapes, 4-unit and
4-channel tails, per-tensor weights, multipliers above 1, the RELU6 /
RELU_N1_TO_1 clamps, and inputs crafted so that a tie-up shift or a single
rounding would give another integer than TFLM's double rounding -- merged into
one network, built for each board, run in QEMU over the validation protocol,
and compared byte for byte with the TFLM interpreter.

Boards and kernel sets (tinyedge/kernels.py): Cortex-M3 (mps2-an385, no DSP
extension: the portable C), the dsp set (arm_dsp/, SMLAD/SXTB16) on M4F
(mps2-an386), M7 (mps2-an500) and M33 (mps2-an505), the mve set (arm_mve/,
then arm_dsp/) on M55 (mps3-an547).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import require_tool
from test_kernels_conv_fc import model_cache, single_op_models, single_op_suite  # noqa: F401 (fixtures)
from tinyedge.boards import load_board
from tinyedge.build import build_project
from tinyedge.codegen.project import generate_project
from tinyedge.compiler import compile
from tinyedge.model.ir import DTYPES
from tinyedge.validate import link_settings, open_target

pytestmark = pytest.mark.emulator

# (the portable set forced on the M4F is the M3's C compiled for another core: the bench
# measures it, exact, and the host tier checks that C; the suite's time goes to the sets)
CASES = [("mps2-an385", "portable"), ("mps2-an386", "dsp"), ("mps2-an500", "dsp"), ("mps2-an505", "dsp"),
         ("mps3-an547", "mve")]


@pytest.mark.parametrize(("board_name", "kernels"), CASES)
def test_single_op_suite_on_board(board_name: str, kernels: str, single_op_models: dict[str, bytes],  # noqa: F811
                                  tmp_path: Path) -> None:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        require_tool(tool)
    suite = single_op_suite(single_op_models, crafted=True)
    graph = suite.merged()
    board = load_board(board_name)
    net = compile(graph, board, kernels=kernels)
    generate_project(net, tmp_path / "fw")
    built = build_project(tmp_path / "fw")
    outs = graph.output_tensors
    got: list[list[np.ndarray]] = []
    with open_target(board, built.elf, "qemu", None, link_settings(net, "qemu", 120.0, None)) as (client, _):
        for sample in suite.batched():
            result = client.infer([np.ascontiguousarray(x).tobytes() for x in sample])
            got.append([np.frombuffer(data, dtype=next(nt for n, nt in DTYPES.values() if n == t.dtype))
                        .reshape(t.shape) for data, t in zip(result.outputs, outs, strict=True)])
    failures = []
    checked = 0
    for name, r in suite.compare(got).items():
        try:
            checked += r.assert_exact()
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    assert not failures, f"{board_name} ({kernels}):\n" + "\n".join(failures)
    assert checked > 10_000
