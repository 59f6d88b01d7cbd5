"""Every shared model on every emulated board (emulator tier).

For each (board, model): `inspect`'s fit check decides. A model that fits is
validated in QEMU, bit-exact with the oracle (TensorFlow Lite Micro) on random
inputs. A model
that does not fit is not skipped: the test asserts the reason inspect gives
(weights vs flash, arena + stack vs RAM) and that the build really fails on
memory, so the fit check is proven, not assumed.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from conftest import MODEL_NAMES, require_tool, shared_model
from tinyedge.analysis import inspect_network
from tinyedge.boards import list_boards, load_board
from tinyedge.build import build_project
from tinyedge.codegen.project import generate_project
from tinyedge.compiler import compile
from tinyedge.errors import TinyEdgeError
from tinyedge.model import load_model
from tinyedge.pipeline import random_samples
from tinyedge.validate import validate_on_target

pytestmark = pytest.mark.emulator

# samples per model: enough to exercise data-dependent paths, bounded for CI time
SAMPLES = {"hello_world_int8": 10, "ad01_int8": 4, "kws_ref_model": 3, "pretrainedResnet_quant": 2,
           "vww_96_int8": 2}
BOARDS = [b for b in list_boards() if load_board(b).qemu_machine]  # real boards: test_real_boards.py


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        require_tool(tool)


@pytest.mark.parametrize("board_name", BOARDS)
@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_model_on_board(model_name: str, board_name: str, tmp_path: Path) -> None:
    board = load_board(board_name)
    graph = load_model(shared_model(model_name))
    net = compile(graph, board)
    fit = inspect_network(net).fit
    assert fit is not None
    generate_project(net, tmp_path / "fw")

    if fit.verdict == "does not fit":
        with pytest.raises(TinyEdgeError) as exc:
            build_project(tmp_path / "fw")
        msg = exc.value.message
        assert "fit" in msg or "needs" in msg, msg
        kind = "flash" if fit.reason.startswith("flash") else "RAM"
        assert kind.lower() in msg.lower() or ("FLASH" if kind == "flash" else "RAM") in msg, (fit.reason, msg)
        return

    try:
        built = build_project(tmp_path / "fw")
    except TinyEdgeError as exc:
        # only a "may not fit" verdict may end in a memory error, never a "fits"
        assert fit.verdict == "may not fit", f"inspect said {fit.verdict}, build failed: {exc.message}"
        assert "fit" in exc.message or "needs" in exc.message, exc.message
        return

    samples = random_samples(graph, SAMPLES[model_name], seed=7)
    report = validate_on_target(net, built.elf, samples, tmp_path / "report.json",
                                asdict(built.memory), emulator="qemu", timeout=120.0)
    bad = [(s.index, s.mismatches, s.max_abs_diff) for s in report.samples if not s.exact]
    assert report.complete and not bad, f"{model_name} on {board_name}: (sample, values off, max diff) {bad}"
    assert all(s.instructions and s.instructions > 0 for s in report.samples)
