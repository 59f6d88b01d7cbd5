"""The default --timeout: from the model's size and the target's speed (tinyedge/timeouts.py),
and the figures the README quotes."""

from __future__ import annotations

import json
import math

import pytest

from conftest import ROOT, shared_model
from tinyedge.boards import load_board
from tinyedge.compiler import compile
from tinyedge.errors import TinyEdgeError
from tinyedge.model import load_model
from tinyedge.timeouts import default_timeout, inference_bound
from tinyedge.validate import link_settings


def _by_hand(name: str) -> tuple[int, int, int]:
    """MACs (from inspect), values read and written by ops (activations), ops."""
    graph = load_model(shared_model(name))
    net = compile(graph, load_board("mps2-an386"))
    values = 0
    for op in graph.operators:
        for t in list(op.inputs) + list(op.outputs):
            if t >= 0 and graph.tensors[t].data is None:
                values += math.prod(graph.tensors[t].shape)
    return net.total_macs, values, len(graph.operators)


@pytest.mark.parametrize("name,board_s,qemu_s", [
    ("hello_world_int8", 10.0, 10.0),     # tiny: the 10 s floor
    ("vww_96_int8", 24.0, 30.0),          # the README's example
])
def test_default_timeout_follows_the_documented_formula(name: str, board_s: float, qemu_s: float) -> None:
    macs, values, ops = _by_hand(name)
    instructions = 32 * macs + 64 * values + 10_000 * ops
    net = compile(load_model(shared_model(name)), load_board("mps2-an386"))
    on_board, in_qemu = inference_bound(net, None), inference_bound(net, "qemu")
    assert on_board.instructions == in_qemu.instructions == instructions
    assert on_board.seconds == pytest.approx(instructions / 25e6)
    assert in_qemu.seconds == pytest.approx(instructions / 20e6)
    assert default_timeout(on_board) == max(10.0, math.ceil(2 * instructions / 25e6 + 2)) == board_s
    assert default_timeout(in_qemu) == max(10.0, math.ceil(2 * instructions / 20e6 + 2)) == qemu_s


def test_bound_is_far_above_what_the_kernels_take() -> None:
    """The bound holds with a wide margin for every model, board and kernel set measured in
    benchmarks/results.json (the portable kernels are the slowest), so a default timeout
    never cuts a healthy inference short."""
    rows = json.loads((ROOT / "benchmarks" / "results.json").read_text())["results"]
    assert {r["kernels"] for r in rows} >= {"portable", "dsp", "mve"}
    for r in rows:
        net = compile(load_model(shared_model(r["model"])), load_board(r["board"]))
        assert inference_bound(net, "qemu").instructions > 4 * r["instructions"], r["model"]


def test_timeout_given_wins_and_is_checked() -> None:
    net = compile(load_model(shared_model("vww_96_int8")), load_board("mps2-an386"))
    low = link_settings(net, "qemu", 5.0, None)
    assert (low.timeout, low.timeout_source, low.run_time) == (5.0, "--timeout", 5.0)
    default = link_settings(net, None, None, 921600)
    assert default.timeout == 24.0 and default.baud == 921600 and "default" in default.timeout_source
    assert link_settings(net, None, None, None).baud == 115200        # the board file's
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(TinyEdgeError, match="--timeout must be positive"):
            link_settings(net, None, bad, None)
