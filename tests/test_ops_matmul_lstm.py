"""BATCH_MATMUL and UNIDIRECTIONAL_SEQUENCE_LSTM: the generated C, compiled for
the host, is bit-exact with the TFLite oracle.

Expected values come only from the oracle (the TFLite interpreter with builtin
kernels, no delegate). Models are Keras models converted to int8 by the TF
converter, cached on disk:

- BATCH_MATMUL: ``tf.matmul`` of two activations (adj_x, adj_y, both, the
  same tensor on both sides, broadcast batch dims) and of an activation with a
  rank >= 3 constant on either side (the converter keeps those as
  BATCH_MATMUL with an asymmetric per-tensor constant; a 2-D constant becomes
  FULLY_CONNECTED), ranks 3 to 5, odd depths. A sensitivity check shows the
  inputs separate TFLite's double rounding from the two other requantization
  roundings, so exactness here pins the rounding down.
- UNIDIRECTIONAL_SEQUENCE_LSTM: Keras 3's LSTM converts to a WHILE loop (and
  its int8 calibration crashes TF 2.21), so the models use
  tinyedge.keras_lstm.FusedLSTM, a Keras layer whose TensorFlow function
  carries Keras 2's ``api_implements="lstm_..."`` attribute, which is what
  makes the converter emit the fused op for a tf.keras LSTM layer (and what
  tinyedge.convert rewrites a Keras 3 ``keras.layers.LSTM`` into). Sequence
  lengths 1..20, 3..32 units, batch-major and time-major, batch 1 and 2,
  return_sequences true and false, the cell scales the converter picks
  (2^-14 .. 2^-11), an output state whose scale differs
  from the hidden one, and a cell clip that acts. Samples run in order through
  one oracle and one host process: the LSTM state persists across inferences
  in both (TFLite variable tensors). A kernel-level harness also compares the
  int8 output state and the int16 cell state with the oracle's variable
  tensors after every inference, on every case and on a model re-scaled to
  cell scales from 2^-149 to 2^127 (saturation, clipping, the cell's tanh in
  Q0.15 .. Q6.9, and outside 2^-15 .. 2^-9 TFLite's output without tanh;
  below 2^-30 and above 2^1 the cell update's shift leaves 0..31, undefined
  C++ in TFLite, and only the outputs and output state are compared).
- Small cell scales from the converter itself: plain Keras LSTMs stacked (the
  second without bias) convert with cell scales 2^-16 and 2^-17, where
  TFLite's ApplyTanh does nothing; the whole generated network is exact,
  samples in order and each from a reset state (Oracle.reset()).

The emulator tier runs an LSTM and a BATCH_MATMUL model as firmware in QEMU
(Cortex-M4F, Cortex-M3) through the validation flow.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.metadata
import inspect
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from graphtools import merge_graphs
from conftest import require_tool
import keras_models as km
import tinyedge
from tinyedge.codegen.network import render_network_files, write_files
from tinyedge.compiler import compile
from tinyedge.hostrun import HostNetwork, copy_runtime
from tinyedge.model import Graph, read_model
from tinyedge.model.ir import Quant
from tinyedge.ops import load_all
from tinyedge.ops.base import LowerCtx, c_array_literal
from tinyedge.oracle import Oracle
from tinyedge.resources import templates_dir

FACTORY_VERSION = 1
CALIBRATION_SAMPLES = 48
ASYM = (-1.0, 2.5)  # calibration range: zero points are not 0


# ============================================================ model factory


@dataclass(frozen=True)
class MatmulCase:
    """``expr`` builds the output from ``x`` (input or list of inputs) with ``tf``, ``W`` (constant)."""

    name: str
    inputs: tuple[tuple[int, ...], ...]
    expr: str
    const_shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class LstmCase:
    name: str
    steps: int
    features: int
    units: int
    return_sequences: bool = True
    time_major: bool = False
    batch: int = 1
    w_scale: float = 1.0
    gate_bias: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 0.0)  # i, f, c, o (Keras: unit forget bias)
    ops: tuple[str, ...] = ("UNIDIRECTIONAL_SEQUENCE_LSTM",)
    calib: tuple[float, float] = ASYM


MATMUL_CASES = (
    MatmulCase("mm_x_xT", ((5, 7),), "tf.matmul(x, x, transpose_b=True)"),
    MatmulCase("mm_a_bT", ((3, 4), (5, 4)), "tf.matmul(x[0], x[1], transpose_b=True)"),
    MatmulCase("mm_aT_b", ((4, 3), (4, 5)), "tf.matmul(x[0], x[1], transpose_a=True)"),
    MatmulCase("mm_aT_bT", ((9, 2), (6, 9)), "tf.matmul(x[0], x[1], transpose_a=True, transpose_b=True)"),
    MatmulCase("mm_bcast_act", ((2, 3, 4), (1, 4, 5)), "tf.matmul(x[0], x[1])"),
    MatmulCase("mm_x_W", ((2, 3, 7),), "tf.matmul(x, W)", (2, 7, 6)),
    MatmulCase("mm_x_WT", ((3, 6),), "tf.matmul(x, W, transpose_b=True)", (2, 5, 6)),
    MatmulCase("mm_W_x", ((4, 5),), "tf.matmul(W, x)", (2, 3, 4)),
    MatmulCase("mm_rank5_bcast", ((2, 1, 3, 5),), "tf.matmul(x, W)", (4, 5, 7)),
)

LSTM_CASES = (
    LstmCase("lstm_t6_u8", steps=6, features=5, units=8),
    LstmCase("lstm_t12_u32", steps=12, features=10, units=32, w_scale=2.0, calib=(-3.0, 2.0)),
    LstmCase("lstm_t1_u3", steps=1, features=2, units=3),
    LstmCase("lstm_clip_t20_u5", steps=20, features=4, units=5, w_scale=0.3, gate_bias=(6.0, 8.0, 3.0, 1.0)),
    LstmCase("lstm_time_major_b2", steps=7, features=3, units=6, time_major=True, batch=2, w_scale=1.5),
    LstmCase("lstm_batch2", steps=5, features=4, units=7, batch=2, w_scale=1.2),
    LstmCase("lstm_last", steps=9, features=4, units=6, return_sequences=False,
             ops=("UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE")),
)


# the LSTM models also run as whole generated networks (compiles are slow: a few)
LSTM_NETWORK_CASES = ("lstm_t12_u32", "lstm_time_major_b2", "lstm_last")

# Plain Keras 3 LSTMs, stacked, the second without bias (tinyedge.convert rewrites them into the fused
# op; weights and calibration from tests/keras_models.py): the converter gives the second LSTM a cell
# scale below 2^-15, and with small inputs the first one too. Names seed the weights: these give
# cell scales (2^-14, 2^-16) and (2^-16, 2^-17) with TF 2.21.
STACKED_EXPR = "L.LSTM(5, use_bias=False)(L.LSTM(6, return_sequences=True)(x))"
STACKED_OPS = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE")
STACKED_CASES = (
    km.KerasCase("lstm_stacked_small_cell_a5", ((7, 4),), STACKED_EXPR, STACKED_OPS),
    km.KerasCase("lstm_stacked_small_cell_b3", ((6, 2),), STACKED_EXPR, STACKED_OPS, ranges=((-0.1, 0.1),)),
)
STACKED_CELL_SHIFTS = {"lstm_stacked_small_cell_a5": (-14, -16), "lstm_stacked_small_cell_b3": (-16, -17)}


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def _cache_key(case: Any) -> str:
    try:
        tf_version = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        tf_version = "none"
    pkg = Path(tinyedge.__file__).parent
    keras_lstm = "".join((pkg / f).read_text() for f in ("keras_lstm.py", "convert.py"))  # no TF import
    builders = inspect.getsource(_build_lstm) + inspect.getsource(_build_matmul) + keras_lstm
    if isinstance(case, km.KerasCase):  # built by tests/keras_models.py
        builders += Path(km.__file__).read_text()
    text = repr((FACTORY_VERSION, CALIBRATION_SAMPLES, tf_version, case, hashlib.sha256(builders.encode()).hexdigest()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fused_lstm_layer(units: int, time_major: bool, return_sequences: bool, name: str) -> Any:
    """tinyedge.keras_lstm.FusedLSTM: a Keras layer whose TF function is annotated like Keras 2's
    standard_lstm (api_implements="lstm_<name>"), which the TF converter replaces with
    UNIDIRECTIONAL_SEQUENCE_LSTM (cell clip 10). Kept under this name for tests/test_keras_matrix.py."""
    from tinyedge.keras_lstm import FusedLSTM

    return FusedLSTM(units, return_sequences=return_sequences, time_major=time_major, name=name)


def _convert_direct(model: Any, calib: np.ndarray) -> bytes:
    """The TF converter with tinyedge's settings, on the model's own input shape (batch not forced to 1)."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([row] for row in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return bytes(conv.convert())


def _build_lstm(c: LstmCase) -> bytes:
    import keras

    from tinyedge.convert import convert_keras

    rng = np.random.default_rng(_seed(c.name))
    # time-major: [steps, batch, features]; batch-major: [batch, steps, features]
    shape = (c.batch, c.features) if c.time_major else (c.steps, c.features)
    lead = c.steps if c.time_major else c.batch
    inp = keras.Input(shape, batch_size=lead)
    layer = _fused_lstm_layer(c.units, c.time_major, c.return_sequences, c.name)
    model = keras.Model(inp, layer(inp))
    kernel = rng.standard_normal((c.features, 4 * c.units)) * c.w_scale / np.sqrt(c.features)
    recurrent = rng.standard_normal((c.units, 4 * c.units)) * c.w_scale / np.sqrt(c.units)
    bias = np.repeat(np.array(c.gate_bias), c.units) + rng.uniform(-0.3, 0.3, 4 * c.units)
    layer.set_weights([kernel.astype(np.float32), recurrent.astype(np.float32), bias.astype(np.float32)])
    calib = rng.uniform(*c.calib, size=(CALIBRATION_SAMPLES, lead, *shape)).astype(np.float32)
    if lead == 1:  # the tinyedge path: batch fixed to 1
        return convert_keras(model, calib[:, 0])
    return _convert_direct(model, calib)


def _build_matmul(c: MatmulCase) -> bytes:
    import keras
    import tensorflow as tf

    from tinyedge.convert import convert_keras

    rng = np.random.default_rng(_seed(c.name))
    w = (rng.standard_normal(c.const_shape) + 0.4).astype(np.float32) if c.const_shape else None
    ins = [keras.Input(s, batch_size=1) for s in c.inputs]
    x: Any = ins[0] if len(ins) == 1 else ins
    out = keras.layers.Lambda(lambda t: eval(c.expr, {"tf": tf, "W": w}, {"x": t}))(x)
    calib = [rng.uniform(*ASYM, size=(CALIBRATION_SAMPLES, *s)).astype(np.float32) for s in c.inputs]
    return convert_keras(keras.Model(ins, out), calib[0] if len(calib) == 1 else calib)


def _cached(cache: Path, case: Any, build: Callable[[], bytes]) -> bytes:
    path = cache / f"{case.name}-{_cache_key(case)}.tflite"
    if path.exists():
        return path.read_bytes()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data = build()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # atomic under pytest-xdist
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


@pytest.fixture(scope="session")
def model_cache(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.cache.mkdir("tinyedge-matmul-lstm-models"))


@pytest.fixture(scope="session")
def models(model_cache: Path) -> dict[str, bytes]:
    out = {c.name: _cached(model_cache, c, lambda c=c: _build_matmul(c)) for c in MATMUL_CASES}
    out |= {c.name: _cached(model_cache, c, lambda c=c: _build_lstm(c)) for c in LSTM_CASES}
    # the converter's own small cell scales: TFLite's no-tanh path (tinyedge convert would raise them)
    out |= {c.name: _cached(model_cache, c, lambda c=c: km.convert_case(c, fix_lstm_cells=False))
            for c in STACKED_CASES}
    return out


# ============================================================ helpers


def random_int8(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.integers(-128, 127, size=shape, endpoint=True, dtype=np.int8)


def samples_for(g: Graph, n: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[random_int8(t.shape, rng) for t in g.input_tensors] for _ in range(n)]


def assert_exact(host: list[list[np.ndarray]], want: list[list[np.ndarray]]) -> int:
    total, bad = 0, []
    for i, (hs, ws) in enumerate(zip(host, want, strict=True)):
        for h, w in zip(hs, ws, strict=True):
            total += w.size
            if not np.array_equal(h.reshape(w.shape), w):
                d = np.abs(h.reshape(w.shape).astype(np.int32) - w.astype(np.int32))
                bad.append(f"sample {i}: {int(np.count_nonzero(d))}/{w.size} differ, max {int(d.max())}")
    assert not bad, "not bit-exact with the oracle:\n" + "\n".join(bad[:10])
    return total


def _op(g: Graph, opcode: str) -> Any:
    return next(op for op in g.operators if op.opcode == opcode)


@pytest.fixture(scope="session")
def host_networks(models: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> dict[str, HostNetwork]:
    """Compiled host networks: all BATCH_MATMUL models merged in one, and the LSTM models the
    network tests run (each compile builds the whole runtime: keep them few)."""
    base = tmp_path_factory.mktemp("networks")
    nets = {"matmul": HostNetwork(merge_graphs([read_model(models[c.name], c.name) for c in MATMUL_CASES],
                                               "merged_matmul"), base / "matmul")}
    for name in LSTM_NETWORK_CASES:
        if all(o in load_all() for o in _lstm_case(name).ops):
            nets[name] = HostNetwork(read_model(models[name], name), base / name)
    return nets


def _lstm_case(name: str) -> LstmCase:
    return next(c for c in LSTM_CASES if c.name == name)


# ============================================================ BATCH_MATMUL


@pytest.mark.parametrize("case", MATMUL_CASES, ids=lambda c: c.name)
def test_converter_emits_batch_matmul(case: MatmulCase, models: dict[str, bytes]) -> None:
    g = read_model(models[case.name], case.name)
    assert [op.opcode for op in g.operators] == ["BATCH_MATMUL"]
    op = g.operators[0]
    consts = [g.tensor(i).is_const for i in op.inputs]
    assert consts == [case.const_shape != () and case.expr.startswith("tf.matmul(W"),
                      case.const_shape != () and not case.expr.startswith("tf.matmul(W")]


def test_batch_matmul_bit_exact(models: dict[str, bytes], host_networks: dict[str, HostNetwork]) -> None:
    """Every BATCH_MATMUL case (one merged network), 40 random inputs each."""
    graphs = [read_model(models[c.name], c.name) for c in MATMUL_CASES]
    per_case = [samples_for(g, 40, _seed(c.name)) for g, c in zip(graphs, MATMUL_CASES)]
    merged = [[x for case_sample in row for x in case_sample] for row in zip(*per_case)]
    host = host_networks["matmul"].run_many(merged)
    total = 0
    for k, (c, samples) in enumerate(zip(MATMUL_CASES, per_case)):
        oracle = Oracle(models[c.name])
        want = [oracle.run(s) for s in samples]
        got = [[row[k]] for row in host]
        total += assert_exact(got, want)
    assert total >= 40 * 9 * 12


def _requantize(acc: np.ndarray, mult: int, shift: int, rounding: str) -> np.ndarray:
    """Three candidate requantizations of int64 accumulators (numpy, exact)."""
    left, right = max(shift, 0), max(-shift, 0)
    if rounding == "single":  # ruy: one rounding, ties up
        total = 31 - shift
        return (acc * mult + (1 << (total - 1))) >> total
    ab = (acc << left) * mult
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))  # SRDHM: nudge, then truncate toward zero
    hi = np.where(v >= 0, v >> 31, -((-v) >> 31))
    if rounding == "up":  # NEON vrshl: ties toward +inf
        return (hi + ((1 << right) >> 1)) >> right
    mask = (1 << right) - 1  # gemmlowp RoundingDivideByPOT: ties away from zero
    rem = hi & mask
    threshold = (mask >> 1) + (hi < 0)
    return (hi >> right) + (rem > threshold)


def test_batch_matmul_rounding_is_tflite_double_rounding(models: dict[str, bytes]) -> None:
    """The oracle's BATCH_MATMUL requantizes with TFLite's double rounding; single rounding
    (ruy) and round-half-up (NEON) give other bytes on these very inputs, so the exactness
    above is sensitive to the choice."""
    from tinyedge import quant

    mismatches = {"double": 0, "single": 0, "up": 0}
    for case in MATMUL_CASES:
        data = models[case.name]
        g = read_model(data, case.name)
        op = g.operators[0]
        lhs, rhs, out = (g.tensor(i) for i in (*op.inputs, op.outputs[0]))
        real = quant.f32(quant.f32(lhs.scale) * quant.f32(rhs.scale)) / float(quant.f32(out.scale))
        mult, shift = quant.quantize_multiplier(real)
        oracle = Oracle(data)
        for s in samples_for(g, 60, 1 + _seed(case.name)):
            want = oracle.run(s)[0].astype(np.int64)
            feed = dict(zip(g.inputs, s))
            a = (feed[lhs.index] if lhs.index in feed else lhs.array()).astype(np.int64) - lhs.zero_point
            b = (feed[rhs.index] if rhs.index in feed else rhs.array()).astype(np.int64) - rhs.zero_point
            a = np.swapaxes(a, -1, -2) if op.options.get("adj_x") else a
            b = np.swapaxes(b, -1, -2) if op.options.get("adj_y") else b
            acc = np.matmul(a, b)
            for r in mismatches:
                got = np.clip(_requantize(acc, mult, shift, r) + out.zero_point, -128, 127)
                mismatches[r] += int(np.count_nonzero(got.reshape(want.shape) != want))
    assert mismatches["double"] == 0
    assert mismatches["single"] > 0 and mismatches["up"] > 0, mismatches


def test_batch_matmul_lowering_relayouts_constants(models: dict[str, bytes]) -> None:
    """A constant operand is emitted depth-contiguous; the params carry the broadcast as zero strides."""
    g = read_model(models["mm_rank5_bcast"], "mm_rank5_bcast")
    op = g.operators[0]
    low = load_all()["BATCH_MATMUL"].lower(op, LowerCtx(g, op))
    p = low.params
    assert (p["b0"], p["b1"], p["b2"], p["rows"], p["cols"], p["depth"]) == (1, 2, 4, 3, 7, 5)
    assert (p["lhs_b1"], p["lhs_b2"]) == (15, 0) and (p["rhs_b1"], p["rhs_b2"]) == (0, 35)
    assert (p["rhs_depth"], p["rhs_col"]) == (1, 5)
    w = g.tensor(op.inputs[1]).array()
    (const,) = low.consts
    assert np.array_equal(const.values.reshape(4, 7, 5), np.swapaxes(w, -1, -2))


def test_batch_matmul_check_names_what_is_unsupported(models: dict[str, bytes]) -> None:
    spec = load_all()["BATCH_MATMUL"]
    g = read_model(models["mm_a_bT"], "mm_a_bT")
    assert spec.check(g.operators[0], g) == []

    g16 = copy.deepcopy(g)
    g16.tensors[g16.operators[0].inputs[0]].dtype = "int16"
    assert any("int16" in p for p in spec.check(g16.operators[0], g16))

    gpc = copy.deepcopy(g)
    t = gpc.tensors[gpc.operators[0].inputs[1]]
    t.quant = Quant((0.1, 0.2), (0, 0), 2)
    assert any("per channel" in p for p in spec.check(gpc.operators[0], gpc))

    g32 = copy.deepcopy(g)
    g32.tensors[g32.operators[0].outputs[0]].dtype = "int32"
    assert any("int32" in p for p in spec.check(g32.operators[0], g32))

    gshape = copy.deepcopy(g)
    gshape.tensors[gshape.operators[0].inputs[1]].shape = (1, 5, 3)
    assert any("depths differ" in p for p in spec.check(gshape.operators[0], gshape))


# ============================================================ UNIDIRECTIONAL_SEQUENCE_LSTM


@pytest.mark.parametrize("case", LSTM_CASES, ids=lambda c: c.name)
def test_converter_emits_integer_lstm(case: LstmCase, models: dict[str, bytes]) -> None:
    g = read_model(models[case.name], case.name)
    assert tuple(op.opcode for op in g.operators) == case.ops
    op = _op(g, "UNIDIRECTIONAL_SEQUENCE_LSTM")
    assert bool(op.options["time_major"]) == case.time_major
    assert g.tensor(op.inputs[19]).dtype == "int16"
    assert load_all()["UNIDIRECTIONAL_SEQUENCE_LSTM"].check(op, g) == []


@pytest.mark.parametrize("name", LSTM_NETWORK_CASES)
def test_lstm_network_bit_exact(name: str, models: dict[str, bytes], host_networks: dict[str, HostNetwork]) -> None:
    """Whole generated network on the host vs the oracle, 10 inferences in order (the state
    carries over). Every case's kernel is also checked below, state included."""
    missing = [o for o in _lstm_case(name).ops if o not in load_all()]
    assert not missing, f"{', '.join(missing)} has no lowering"
    g = host_networks[name].graph
    samples = samples_for(g, 10, _seed(name))
    oracle = Oracle(models[name])
    assert_exact(host_networks[name].run_many(samples), [oracle.run(s) for s in samples])


def test_lstm_state_persists_across_inferences(models: dict[str, bytes],
                                               host_networks: dict[str, HostNetwork]) -> None:
    """Like TFLite's variable tensors: the same input three times gives different outputs, in the
    oracle and in the generated code alike (each run_many is a fresh process: fresh state)."""
    name = LSTM_NETWORK_CASES[0]
    net = host_networks[name]
    (x,) = samples_for(net.graph, 1, 7)
    oracle = Oracle(models[name])
    want = [oracle.run(s) for s in (x, x, x)]
    assert not np.array_equal(want[0][0], want[1][0])
    assert_exact(net.run_many([x, x, x]), want)
    assert_exact(net.run_many([x]), want[:1])


# ---- kernel-level harness: te_lstm_s8 with observable state


def _c_value(v: object) -> str:
    return str(int(v)) if isinstance(v, (int, np.integer)) else str(v)


def _harness_source(g: Graph, op: Any) -> tuple[str, int, int, int]:
    low = load_all()["UNIDIRECTIONAL_SEQUENCE_LSTM"].lower(op, LowerCtx(g, op))
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    h, c = g.tensor(op.inputs[18]), g.tensor(op.inputs[19])
    lines = ["#include <stdio.h>", "#include <stdint.h>", '#include "te_lstm.h"']
    for k in low.consts:
        lines.append(f"static const {k.ctype} {k.name}[{k.values.size}] = {{ {c_array_literal(k.values)} }};")
    fields = ",\n".join(f"    .{k} = {_c_value(v)}" for k, v in low.params.items())
    lines.append(f"static const te_lstm_params_t P = {{\n{fields}\n}};")
    lines.append(f"""
int main(void)
{{
    static int8_t in[{x.size}], out[{y.size}];
    static int8_t h[{h.size}];
    static int16_t c[{c.size}], scratch[{low.scratch_bytes // 2}];
    int i;
    for (i = 0; i < {h.size}; ++i) h[i] = {h.zero_point};
    while (fread(in, 1, sizeof in, stdin) == sizeof in) {{
        te_lstm_s8(&P, in, out, h, c, scratch);
        fwrite(out, 1, sizeof out, stdout);
        fwrite(h, 1, sizeof h, stdout);
        fwrite(c, 1, sizeof c, stdout);
    }}
    return 0;
}}""")
    return "\n".join(lines) + "\n", y.size, h.size, c.size


def _lstm_states_from_oracle(data: bytes, op: Any, samples: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    oracle = Oracle(data)
    interp = oracle._interp  # the variable tensors are readable between invocations
    lstm_out = op.outputs[0]
    rows = []
    for s in samples:
        oracle.run([s])
        rows.append((interp.get_tensor(lstm_out).copy() if lstm_out in (d["index"] for d in oracle.output_details)
                     else None, interp.get_tensor(op.inputs[18]).copy(), interp.get_tensor(op.inputs[19]).copy()))
    return rows


def check_lstm_kernel(data: bytes, name: str, workdir: Path, n: int, seed: int,
                      compare_cell: bool = True) -> np.ndarray:
    """te_lstm_s8 alone on ``n`` inferences in order: output, int8 output state and int16 cell
    state after every inference equal the oracle's (its variable tensors). Returns the cell
    states, [n, cells]. ``compare_cell=False``: where TFLite's cell update is undefined C++ (see
    test_lstm_kernel_every_cell_scale), the cell state is not compared."""
    g = read_model(data, name)
    op = _op(g, "UNIDIRECTIONAL_SEQUENCE_LSTM")
    src, n_out, n_h, n_c = _harness_source(g, op)
    runtime = templates_dir() / "runtime"
    (workdir / "harness.c").write_text(src)
    exe = workdir / "harness"
    subprocess.run(["cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{runtime}", "harness.c",
                    str(runtime / "te_lstm.c"), "-o", str(exe)], cwd=workdir, check=True)
    rng = np.random.default_rng(seed)
    xs = [random_int8(g.tensor(op.inputs[0]).shape, rng) for _ in range(n)]
    proc = subprocess.run([str(exe)], input=b"".join(x.tobytes() for x in xs), capture_output=True, check=True)
    step = n_out + n_h + 2 * n_c
    assert len(proc.stdout) == step * n
    cells = []
    for i, (w_out, w_h, w_c) in enumerate(_lstm_states_from_oracle(data, op, xs)):
        chunk = proc.stdout[i * step:(i + 1) * step]
        out = np.frombuffer(chunk[:n_out], np.int8)
        h = np.frombuffer(chunk[n_out:n_out + n_h], np.int8)
        c = np.frombuffer(chunk[n_out + n_h:], np.int16)
        if w_out is not None:
            assert np.array_equal(out, w_out.reshape(-1)), f"{name} inference {i}: output differs"
        assert np.array_equal(h, w_h.reshape(-1)), f"{name} inference {i}: output state differs"
        if compare_cell:
            assert np.array_equal(c, w_c.reshape(-1)), f"{name} inference {i}: cell state {c} vs {w_c.reshape(-1)}"
        cells.append(c)
    return np.array(cells)


@pytest.mark.parametrize("case", LSTM_CASES, ids=lambda c: c.name)
def test_lstm_kernel_state_bit_exact(case: LstmCase, models: dict[str, bytes], tmp_path: Path) -> None:
    """Every LSTM case, 12 inferences: output, output state and cell state exact."""
    g = read_model(models[case.name], case.name)
    n_c = g.tensor(_op(g, "UNIDIRECTIONAL_SEQUENCE_LSTM").inputs[19]).size
    assert check_lstm_kernel(models[case.name], case.name, tmp_path, 12, _seed(case.name) + 2).shape == (12, n_c)


def with_tensor_scale(data: bytes, tensor_index: int, scale: float) -> bytes:
    """``data`` with the (first) quantization scale of a tensor overwritten in place."""
    import struct

    import tflite

    buf = bytearray(data)
    q = tflite.Model.GetRootAsModel(buf, 0).Subgraphs(0).Tensors(tensor_index).Quantization()
    field_offset = q._tab.Offset(8)  # QuantizationParameters.scale (field 2, after min and max)
    assert field_offset, "tensor has no scale vector"
    struct.pack_into("<f", buf, q._tab.Vector(field_offset), scale)
    return bytes(buf)


# (cell scale exponent, factor): the tanh's Q formats at the ends (-15, -9), TFLite's no-tanh output on
# either side (-30, -17, -16, -8, 1), the cell update's shift 30 + k outside 0..31 (-149, -31, 2, 127),
# and a scale 0.06 % off 2^-10, which TFLite's CheckedLog2 takes for 2^-10 (the clip uses the true scale)
CELL_SCALES = [(-149, 1.0), (-31, 1.0), (-30, 1.0), (-17, 1.0), (-16, 1.0), (-15, 1.0), (-13, 1.0),
               (-10, 1.0), (-10, 1.0006), (-9, 1.0), (-8, 1.0), (1, 1.0), (2, 1.0), (127, 1.0)]


@pytest.mark.parametrize("cell_shift, factor", CELL_SCALES, ids=lambda v: str(v))
def test_lstm_kernel_every_cell_scale(cell_shift: int, factor: float, models: dict[str, bytes],
                                      tmp_path: Path) -> None:
    """The converter picks cell scales 2^-17..2^-11 (the float model clips the cell at 10); TFLite
    runs any power of two. Re-scale a model's cell state and compare output, output state and cell
    state with the oracle: saturated cells at 2^-15, an active clip at 2^-10 and 2^-9 (on the model
    whose cells reach the clip), no tanh outside 2^-15..2^-9. Below 2^-30 and above 2^1 the cell
    update's shift by 30 + k is undefined C++ and the oracle's cell state depends on how its loop
    was compiled (vector lanes differ from scalar ones); the cell does not reach the outputs there,
    which stay exact, and is not compared."""
    from tinyedge.ops import lstm

    name = "lstm_t6_u8" if cell_shift < -11 else "lstm_clip_t20_u5"  # small / large cells
    g = read_model(models[name], name)
    op = g.operators[0]
    data = with_tensor_scale(models[name], op.inputs[19], 2.0 ** cell_shift * factor)
    patched = read_model(data, name)
    cell = patched.tensor(op.inputs[19])
    assert cell.scale == np.float32(2.0 ** cell_shift * factor) and lstm._cell_shift(cell) == cell_shift
    pop = patched.operators[0]
    params = load_all()["UNIDIRECTIONAL_SEQUENCE_LSTM"].lower(pop, LowerCtx(patched, pop)).params
    assert params["cell_tanh_int_bits"] == (15 + cell_shift if -15 <= cell_shift <= -9 else -1)
    cells = check_lstm_kernel(data, f"{name}_cell{cell_shift}", tmp_path, 12, 11,
                              compare_cell=-30 <= cell_shift <= 1).astype(np.int32)
    clip = lstm._cell_clip(pop, cell)
    if cell_shift == -15:
        assert np.abs(cells).max() >= 32767, "cells should saturate at 2^-15"
    if cell_shift in (-10, -9):
        assert clip < 32767 and np.count_nonzero(np.abs(cells) == clip) > 0, "the clip should act"
    if factor != 1.0:  # the clip comes from the true scale, not from 2^cell_shift (and acts, above)
        assert clip == 10233 != lstm._cell_clip(pop, dataclasses.replace(cell, quant=Quant((2.0 ** cell_shift,),
                                                                                           (0,), 0)))


def test_lstm_oracle_takes_no_tanh_outside_its_range(models: dict[str, bytes]) -> None:
    """What the kernel reproduces: outside cell scales 2^-15..2^-9 TFLite's ApplyTanh does nothing and
    the output is o * i, so the oracle's outputs no longer depend on the cell scale (nor the cell);
    inside, they do."""
    name = "lstm_t6_u8"
    g = read_model(models[name], name)
    cell_index = g.operators[0].inputs[19]
    samples = samples_for(g, 6, 4)

    def outputs(shift: int) -> np.ndarray:
        oracle = Oracle(with_tensor_scale(models[name], cell_index, 2.0 ** shift))
        return np.array([oracle.run(s)[0] for s in samples])

    outside = [outputs(k) for k in (-40, -16, -8, 3)]
    assert all(np.array_equal(outside[0], o) for o in outside[1:])
    inside = [outputs(k) for k in (-15, -12, -9)]
    assert not any(np.array_equal(outside[0], o) for o in inside)
    assert not np.array_equal(inside[0], inside[1])


@pytest.mark.parametrize("case", STACKED_CASES, ids=lambda c: c.name)
def test_converter_writes_small_cell_scales(case: km.KerasCase, models: dict[str, bytes]) -> None:
    """Plain stacked Keras LSTMs get cell scales below 2^-15 from the converter; tinyedge takes them."""
    from tinyedge.ops import lstm

    g = read_model(models[case.name], case.name)
    spec = load_all()["UNIDIRECTIONAL_SEQUENCE_LSTM"]
    ops = [op for op in g.operators if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert tuple(lstm._cell_shift(g.tensor(op.inputs[19])) for op in ops) == STACKED_CELL_SHIFTS[case.name]
    assert all(spec.check(op, g) == [] for op in ops)


def test_stacked_small_cell_network_bit_exact(models: dict[str, bytes], tmp_path: Path) -> None:
    """Both stacked models in one generated network (one compile) against the oracle: 30 samples in
    order (the LSTM state carries over in both), then 4 samples each from the initial state (a fresh
    host process; Oracle.reset())."""
    graphs = [read_model(models[c.name], c.name) for c in STACKED_CASES]
    net = HostNetwork(merge_graphs(graphs, "stacked_small_cells"), tmp_path / "net")
    per_case = [samples_for(g, 30, _seed(c.name)) for g, c in zip(graphs, STACKED_CASES)]
    merged = [[x for sample in row for x in sample] for row in zip(*per_case)]
    oracles = [Oracle(models[c.name]) for c in STACKED_CASES]
    host = net.run_many(merged)
    total = 0
    for k, (oracle, samples) in enumerate(zip(oracles, per_case)):
        total += assert_exact([[row[k]] for row in host], [oracle.run(s) for s in samples])
    for row in merged[:4]:
        got = net.run(row)
        for k, (oracle, samples) in enumerate(zip(oracles, per_case)):
            oracle.reset()
            total += assert_exact([[got[k]]], [oracle.run(row[k:k + 1])])
    assert total == 34 * 2 * 5


def test_lstm_cases_cover_cell_scales_and_clip(models: dict[str, bytes]) -> None:
    """The cases reach several cell-state scales, and one clips its cell state for real."""
    from tinyedge.ops import lstm

    shifts, clipping = set(), []
    for c in LSTM_CASES:
        g = read_model(models[c.name], c.name)
        op = _op(g, "UNIDIRECTIONAL_SEQUENCE_LSTM")
        cell = g.tensor(op.inputs[19])
        shift = lstm._cell_shift(cell)
        shifts.add(shift)
        if 0 < lstm._cell_clip(op, cell) < 32767:
            clipping.append(c.name)
    assert len(shifts) >= 3, shifts
    assert "lstm_clip_t20_u5" in clipping


def test_lstm_check_names_missing_features(models: dict[str, bytes]) -> None:
    spec = load_all()["UNIDIRECTIONAL_SEQUENCE_LSTM"]
    g = read_model(models["lstm_t6_u8"], "lstm_t6_u8")
    op = g.operators[0]
    assert spec.check(op, g) == []
    some_vector = op.inputs[13]  # any tensor will do: the check must refuse on presence

    def patched(changes: dict[int, int], **opts: Any) -> list[str]:
        g2 = copy.deepcopy(g)
        o = g2.operators[0]
        for k, v in changes.items():
            o.inputs[k] = v
        o.options.update(opts)
        return spec.check(o, g2)

    assert any("peephole" in p for p in patched({9: some_vector, 10: some_vector, 11: some_vector}))
    assert any("projection" in p for p in patched({16: op.inputs[1]}))
    assert any("layer normalization" in p for p in patched({21: some_vector}))
    assert any("CIFG" in p for p in patched({1: -1, 5: -1, 12: -1}))
    assert any("diagonal" in p for p in patched({}, diagonal_recurrent_tensors=True))

    gf = copy.deepcopy(g)
    gf.tensors[gf.operators[0].inputs[0]].dtype = "float32"
    assert any("float" in p for p in spec.check(gf.operators[0], gf))

    gc = copy.deepcopy(g)
    cell = gc.tensors[gc.operators[0].inputs[19]]
    for scale in (2.0 ** -149, 2.0 ** -40, 2.0 ** -16, 2.0 ** 5, 2.0 ** 127, 2.0 ** -10 * 1.0006):
        cell.quant = Quant((scale,), (0,), 0)  # every power of two (CheckedLog2's tolerance: 1e-3 in log2)
        assert spec.check(gc.operators[0], gc) == [], scale
    for scale in (3e-5, 2.0 ** -10 * 1.0008, 0.0, -2.0 ** -15):  # TFLite's Prepare fails: constant outputs
        cell.quant = Quant((scale,), (0,), 0)
        assert any("not a power of two (2^k)" in p for p in spec.check(gc.operators[0], gc)), scale

    g8 = copy.deepcopy(g)
    g8.tensors[g8.operators[0].inputs[19]].dtype = "int8"
    assert any("8x8_16" in p for p in spec.check(g8.operators[0], g8))

    gi = copy.deepcopy(g)
    gi.tensors[gi.operators[0].inputs[18]].is_variable = False  # state given as a plain tensor
    assert any("variable" in p for p in spec.check(gi.operators[0], gi))


# ============================================================ the C compiles cleanly everywhere

KERNELS = ("te_batch_matmul.c", "te_lstm.c")
TARGETS = {
    "host": ["gcc"],
    "cortex-m4f": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m0": ["arm-none-eabi-gcc", "-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft"],
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kernels_and_generated_code_compile_warning_free(target: str, models: dict[str, bytes],
                                                         tmp_path: Path) -> None:
    cc = TARGETS[target]
    require_tool(cc[0])
    runtime = templates_dir() / "runtime"
    flags = ["-std=c99", "-pedantic", "-O2", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wdouble-promotion"]
    for src in KERNELS:
        obj = tmp_path / (src + ".o")
        proc = subprocess.run([*cc, *flags, "-c", str(runtime / src), "-o", str(obj)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{target} {src}:\n{proc.stderr}"
        nm = shutil.which("arm-none-eabi-nm" if cc[0].startswith("arm") else "nm")
        if nm and target != "host":
            syms = subprocess.run([nm, str(obj)], capture_output=True, text=True).stdout
            assert "__aeabi_f" not in syms and "__aeabi_d" not in syms, f"{target} {src} uses float"
    # the generated network.c of an LSTM and a BATCH_MATMUL model (static state blocks, params with arrays)
    for name in ("lstm_t6_u8", "mm_rank5_bcast"):
        work = tmp_path / name
        write_files(work, render_network_files(compile(read_model(models[name], name)), name))
        copy_runtime(work)
        proc = subprocess.run([*cc, *flags, "-Iruntime", "-I.", "-c", "network.c", "-o", "network.o"],
                              cwd=work, capture_output=True, text=True)
        assert proc.returncode == 0, f"{target} {name} network.c:\n{proc.stderr}"


# ============================================================ emulator: firmware in QEMU


@pytest.mark.emulator
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385"])  # Cortex-M4F, Cortex-M3
def test_lstm_and_matmul_on_device(board: str, models: dict[str, bytes], tmp_path: Path) -> None:
    """The firmware (validation server in QEMU) gives the oracle's bytes for an LSTM model,
    samples in order (the state persists on the device as in the oracle), and a BATCH_MATMUL."""
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        require_tool(tool)
    from tinyedge.pipeline import validate_model

    for name, n in (("lstm_t12_u32", 6), ("mm_rank5_bcast", 4)):
        model = tmp_path / f"{name}.tflite"
        model.write_bytes(models[name])
        report = validate_model(model, board, emulator="qemu", port=None, data=None, n_random=n, seed=3,
                                report_path=tmp_path / f"{name}.json", project=tmp_path / f"fw_{name}")
        assert report.complete and len(report.samples) == n
        assert report.all_exact, [s for s in report.samples if not s.exact][:1]
