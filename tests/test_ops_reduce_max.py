"""REDUCE_MAX (tinyedge/ops/reduce.py, runtime te_reduce.c) is bit-exact with TensorFlow Lite Micro.

TFLM (micro/kernels/reduce_common.cc, EvalMinMaxHelper -> reference_ops::ReduceGeneric)
takes the plain max of the raw int8 values; it refuses (at Invoke) an output whose scale
or zero point differs from the input's, and so does ``check``.

Models: Keras GlobalMaxPooling2D / GlobalMaxPooling1D (keepdims False/True)
and tf.reduce_max with negative axes, converted by TF; plus hand-built graphs
(tests/test_ops_shape.py's TinyGraph) with batches, ranks 1-6, duplicate and
negative axes, every axis reduced, extent-1 axes. Inputs: uniform int8, narrow
random ranges (so the max is not always near 127), all -128, all 127.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest

from test_ops_shape import TinyGraph, _cached_keras
from tinyedge.hostrun import HostNetwork
from tinyedge.model import Graph, read_model
from tinyedge.model.ir import Operator, Quant, Tensor
from tinyedge.ops import load_all
from tinyedge.oracle import Oracle

N_UNIFORM = 40
N_NARROW = 40

KERAS_BRANCHES: tuple[tuple[tuple[tuple[int, ...], ...], str, str], ...] = (
    (((6, 7, 5),), "L.GlobalMaxPooling2D()(x0)", "REDUCE_MAX"),
    (((4, 4, 19),), "L.GlobalMaxPooling2D(keepdims=True)(x0)", "REDUCE_MAX"),
    (((9, 6),), "L.GlobalMaxPooling1D()(x0)", "REDUCE_MAX"),
    (((5, 17),), "L.GlobalMaxPooling1D(keepdims=True)(x0)", "REDUCE_MAX"),
    (((3, 5, 4),), "L.Lambda(lambda t: tf.reduce_max(t, axis=[-1, 1], keepdims=True))(x0)", "REDUCE_MAX"),
    (((3, 5, 4),), "L.Lambda(lambda t: tf.reduce_max(t, axis=-2))(x0)", "REDUCE_MAX"),
)


def reduce_max_model() -> bytes:
    g = TinyGraph()

    def rmax(shape: Sequence[int], axes: list[int], keep: bool, q: tuple[float, int] = (0.05, 3)) -> None:
        red = {a % len(shape) for a in axes}
        out = [1 if d in red else n for d, n in enumerate(shape) if keep or d not in red]
        g.op("REDUCE_MAX", [g.input(shape, q), g.const(axes)], [out], "ReducerOptions", quant=q, KeepDims=keep)

    rmax((2, 3, 4, 5), [1, -2], False)
    rmax((2, 3, 4, 5), [2, 1], True, (0.02, -128))
    rmax((2, 3, 4, 5), [0], False)
    rmax((2, 3, 4, 5), [-1], True)
    rmax((2, 3, 4, 5), [0, 1, 2, 3], False)
    rmax((2, 3, 4, 5), [1, 1, -3], True)  # duplicates
    rmax((2, 3, 4, 5, 3), [0, 2, 4], False, (0.1, 127))
    rmax((2, 1, 3, 1, 2, 3), [1, 3, 5], True)  # rank 6, extent-1 reduced axes
    rmax((2, 1, 3, 1, 2, 3), [0, -2], False)
    rmax((11,), [0], False)
    rmax((11,), [-1], True)
    rmax((3, 7), [1], False)
    rmax((3, 7), [-2], True)
    rmax((1, 1, 1, 24), [1, 2], True)  # one value per max
    rmax((1, 1, 1, 24), [3], False)
    return g.tflite()


# ---------------------------------------------------------------------------- running and comparing


def samples(graph: Graph, seed: int) -> list[list[np.ndarray]]:
    """Uniform int8; narrow random ranges [lo, lo + w] (the max then varies and
    lands anywhere, -128 and 127 included); all -128; all 127."""
    rng = np.random.default_rng(seed)
    ins = graph.input_tensors
    out = [[rng.integers(-128, 128, t.shape, dtype=np.int8) for t in ins] for _ in range(N_UNIFORM)]
    for _ in range(N_NARROW):
        sample = []
        for t in ins:
            lo = int(rng.integers(-128, 128))
            hi = min(127, lo + int(rng.integers(0, 24)))
            sample.append(rng.integers(lo, hi, t.shape, dtype=np.int8, endpoint=True))
        out.append(sample)
    for fill in (-128, 127):
        out.append([np.full(t.shape, fill, np.int8) for t in ins])
    return out


def assert_exact(data: bytes, workdir: Path, seed: int = 0) -> int:
    """Every output of every sample equals TFLM's; returns the number of values compared."""
    graph = read_model(data, "<test>")
    assert {op.opcode for op in graph.operators} == {"REDUCE_MAX"}
    oracle = Oracle(data)
    batch = samples(graph, seed)
    got = HostNetwork(graph, workdir).run_many(batch)
    compared, bad = 0, 0
    for sample, outs in zip(batch, got, strict=True):
        for o, w in zip(outs, oracle.run(sample), strict=True):
            assert o.shape == w.shape and o.dtype == w.dtype
            compared += o.size
            bad += int(np.count_nonzero(o != w))
    assert bad == 0, f"{bad} of {compared} values differ from TFLM"
    return compared


# ---------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def keras_model(request: pytest.FixtureRequest) -> bytes:
    return _cached_keras(request, "reduce-max", KERAS_BRANCHES)


def test_keras_global_max_pooling_bit_exact(keras_model: bytes, tmp_path: Path) -> None:
    graph = read_model(keras_model, "keras")
    ops = list(graph.operators)
    assert [op.opcode for op in ops] == ["REDUCE_MAX"] * len(KERAS_BRANCHES), "the converter rewrote something"
    assert {bool(op.options["keep_dims"]) for op in ops} == {True, False}
    assert {tuple(graph.tensor(op.inputs[0]).shape) for op in ops} >= {(1, 6, 7, 5), (1, 9, 6)}
    assert load_all()["REDUCE_MAX"].check(ops[0], graph) == []
    assert assert_exact(keras_model, tmp_path / "keras") > 0


def test_hand_built_bit_exact(tmp_path: Path) -> None:
    assert assert_exact(reduce_max_model(), tmp_path / "hand", seed=1) > 0


# ---------------------------------------------------------------------------- check()


def _graph(shape: Sequence[int], axes: Any, out_shape: Sequence[int], q_in: tuple[float, int] | None,
           q_out: tuple[float, int] | None, axis_const: bool = True, keep: bool = False) -> tuple[Operator, Graph]:
    def quant(q: tuple[float, int] | None) -> Quant | None:
        return None if q is None else Quant((q[0],), (q[1],))

    ax = np.asarray(axes, np.int32)
    tensors = [
        Tensor(0, "x", tuple(shape), "int8", quant(q_in)),
        Tensor(1, "axes", ax.shape, "int32", None, ax.tobytes() if axis_const else None),
        Tensor(2, "y", tuple(out_shape), "int8", quant(q_out)),
    ]
    op = Operator(0, "REDUCE_MAX", [0, 1], [2], {"keep_dims": keep})
    return op, Graph(tensors, [op], [0] if axis_const else [0, 1], [2], "0" * 64, "<test>")


@pytest.mark.parametrize("case, needle", [
    (((1, 4, 4, 2), [1, 2], (1, 2), (0.05, 3), (0.1, 3)), "quantization differ"),
    (((1, 4, 4, 2), [1, 2], (1, 2), (0.05, 3), (0.05, 4)), "quantization differ"),
    (((1, 4, 4, 2), [1, 2], (1, 2), (0.05, 3), None), "output is not quantized"),
    (((1, 4, 4, 2), [1, 5], (1, 2), (0.05, 3), (0.05, 3)), "axis 5 is out of range"),
    (((1, 4, 4, 2), [1, 2], (1, 4), (0.05, 3), (0.05, 3)), "output shape"),
    (((1, 2, 2, 2, 2, 2, 2), [1], (1, 2, 2, 2, 2, 2), (0.05, 3), (0.05, 3)), "rank 7"),
])
def test_check_refuses_with_a_reason(case: tuple[Any, ...], needle: str) -> None:
    op, graph = _graph(*case)
    problems = " ".join(load_all()["REDUCE_MAX"].check(op, graph))
    assert needle in problems, problems


def test_check_accepts_and_is_registered() -> None:
    spec = load_all()["REDUCE_MAX"]
    assert spec.constraints
    op, graph = _graph((1, 4, 4, 2), [-3, 2], (1, 1, 1, 2), (0.05, 3), (0.05, 3), keep=True)
    assert spec.check(op, graph) == []
    op, graph = _graph((1, 4, 4, 2), [1, 2], (1, 2), (0.05, 3), (0.05, 3), axis_const=False)
    assert "constant" in " ".join(spec.check(op, graph))
