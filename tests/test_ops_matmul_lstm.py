"""BATCH_MATMUL and UNIDIRECTIONAL_SEQUENCE_LSTM: the generated C, compiled for
the host, is bit-exact with TensorFlow Lite Micro.

Expected values come only from the oracle, the TFLM interpreter (PyPI
``tflite-micro``, reference kernels). Models are Keras models converted to
int8 by the TF converter, cached on disk:

- BATCH_MATMUL: ``tf.matmul`` of two activations (adj_x, adj_y, both, the
  same tensor on both sides, broadcast batch dims, an rhs whose third-last
  dim is 1, which TFLM folds into the lhs rows) and of an activation with a
  rank >= 3 constant on either side (the converter keeps those as
  BATCH_MATMUL with an asymmetric per-tensor constant; a 2-D constant becomes
  FULLY_CONNECTED), ranks 3 to 5, odd depths. A sensitivity check shows the
  inputs separate TFLM's double rounding from the two other requantization
  roundings, so exactness here pins the rounding down.
- UNIDIRECTIONAL_SEQUENCE_LSTM: Keras 3's LSTM converts to a WHILE loop (and
  its int8 calibration crashes TF 2.21), so the models use
  tinyedge.keras_lstm.FusedLSTM, a Keras layer whose TensorFlow function
  carries Keras 2's ``api_implements="lstm_..."`` attribute, which is what
  makes the converter emit the fused op for a tf.keras LSTM layer (and what
  tinyedge.convert rewrites a Keras 3 ``keras.layers.LSTM`` into). Sequence
  lengths 1..20, 3..32 units, batch-major and time-major, batch 1 and 2,
  return_sequences true and false, the cell scales the converter picks
  (2^-14 .. 2^-11), an output state whose scale differs from the hidden
  intermediate's (TFLM reads the output state's), and a cell clip that acts.
  Samples run in order through one oracle and one host process: the LSTM
  state persists across inferences in both (TFLM variable tensors). A
  kernel-level harness also compares the int8 output state and the int16
  cell state with the oracle's variable tensors after every inference, on
  every case and on models re-scaled to cell scales from 2^-30 to 2^2, powers
  of two or not (saturation, clipping, the cell's tanh input rescaled by a
  left or a right shift). TFLM's int16 sigmoid and tanh (a 256-entry table)
  are compared with the kernel's on every int16 input.
- Small cell scales from the converter itself: plain Keras LSTMs stacked (the
  second without bias) convert with cell scales 2^-16 and 2^-17 (where
  TFLite's x86 interpreter takes no tanh of the cell, and TFLM does); the
  whole generated network is exact, samples in order and each from a reset
  state (Oracle.reset()).

The emulator tier runs an LSTM and a BATCH_MATMUL model as firmware in QEMU
(Cortex-M4F, Cortex-M3, Cortex-M55) through the validation flow.
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
from tinyedge.oracle import Oracle, TflmOracle, random_inputs
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
    int16: bool = False  # the converter's 16x8 mode: int16 activations and constants, zero points 0


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

MATMUL16_CASES = (
    MatmulCase("mm16_a_bT", ((3, 4), (5, 4)), "tf.matmul(x[0], x[1], transpose_b=True)", int16=True),
    MatmulCase("mm16_aT_b", ((4, 3), (4, 5)), "tf.matmul(x[0], x[1], transpose_a=True)", int16=True),
    MatmulCase("mm16_bcast_act", ((2, 3, 4), (1, 4, 5)), "tf.matmul(x[0], x[1])", int16=True),
    MatmulCase("mm16_x_W", ((2, 3, 7),), "tf.matmul(x, W)", (2, 7, 6), int16=True),
    MatmulCase("mm16_W_xT", ((5, 4),), "tf.matmul(W, x, transpose_b=True)", (2, 3, 4), int16=True),
    MatmulCase("mm16_rank5_bcast", ((2, 1, 3, 5),), "tf.matmul(x, W)", (4, 5, 7), int16=True),
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
    builders = "".join(inspect.getsource(f) for f in (_build_lstm, _build_matmul, _build_int16_activations,
                                                      _convert_16x8))
    builders += keras_lstm
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


def _convert_16x8(model: Any, samples: Callable[[], Any]) -> bytes:
    """The TF converter's 16x8 mode (int16 activations, int8 weights), int16 I/O."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = samples
    conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    conv.inference_input_type = tf.int16
    conv.inference_output_type = tf.int16
    return bytes(conv.convert())


def _build_matmul(c: MatmulCase) -> bytes:
    import keras
    import tensorflow as tf

    from tinyedge.convert import convert_keras

    rng = np.random.default_rng(_seed(c.name))
    w = (rng.standard_normal(c.const_shape) + 0.4).astype(np.float32) if c.const_shape else None
    ins = [keras.Input(s, batch_size=1, name=f"in{k}") for k, s in enumerate(c.inputs)]
    x: Any = ins[0] if len(ins) == 1 else ins
    out = keras.layers.Lambda(lambda t: eval(c.expr, {"tf": tf, "W": w}, {"x": t}))(x)
    calib = [rng.uniform(*ASYM, size=(CALIBRATION_SAMPLES, *s)).astype(np.float32) for s in c.inputs]
    if c.int16:  # samples keyed by input name: the converter may order the inputs otherwise
        return _convert_16x8(keras.Model(ins, out), lambda: ({f"in{k}": a[i:i + 1] for k, a in enumerate(calib)}
                                                            for i in range(CALIBRATION_SAMPLES)))
    return convert_keras(keras.Model(ins, out), calib[0] if len(calib) == 1 else calib)


def _build_int16_activations() -> bytes:
    """int16 LOGISTIC and TANH of one [256, 256] input (the TF converter's 16x8 mode)."""
    import keras

    inp = keras.Input((256,), batch_size=256)
    model = keras.Model(inp, [keras.layers.Activation("sigmoid")(inp), keras.layers.Activation("tanh")(inp)])
    rng = np.random.default_rng(5)
    return _convert_16x8(model, lambda: ([rng.uniform(-8, 8, (256, 256)).astype(np.float32)] for _ in range(4)))


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
    out = {c.name: _cached(model_cache, c, lambda c=c: _build_matmul(c)) for c in MATMUL_CASES + MATMUL16_CASES}
    out |= {c.name: _cached(model_cache, c, lambda c=c: _build_lstm(c)) for c in LSTM_CASES}
    # the converter's own small cell scales: TFLite's no-tanh path (tinyedge convert would raise them)
    out |= {c.name: _cached(model_cache, c, lambda c=c: km.convert_case(c, fix_lstm_cells=False))
            for c in STACKED_CASES}
    return out


# ============================================================ helpers


def random_int8(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.integers(-128, 127, size=shape, endpoint=True, dtype=np.int8)


def samples_for(g: Graph, n: int, seed: int) -> list[list[np.ndarray]]:
    """Uniform over each input's whole integer range (int8 or int16)."""
    rng = np.random.default_rng(seed)
    return [[random_inputs([{"shape": t.shape, "dtype": np.dtype(t.dtype)}], rng)[0] for t in g.input_tensors]
            for _ in range(n)]


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
    """Compiled host networks: the int8 and the int16 BATCH_MATMUL models merged in one each, and the LSTM models the
    network tests run (each compile builds the whole runtime: keep them few)."""
    base = tmp_path_factory.mktemp("networks")
    nets = {key: HostNetwork(merge_graphs([read_model(models[c.name], c.name) for c in cases], f"merged_{key}"),
                             base / key)
            for key, cases in (("matmul", MATMUL_CASES), ("matmul16", MATMUL16_CASES))}
    for name in LSTM_NETWORK_CASES:
        if all(o in load_all() for o in _lstm_case(name).ops):
            nets[name] = HostNetwork(read_model(models[name], name), base / name)
    return nets


def _lstm_case(name: str) -> LstmCase:
    return next(c for c in LSTM_CASES if c.name == name)


# ============================================================ BATCH_MATMUL


@pytest.mark.parametrize("case", MATMUL_CASES + MATMUL16_CASES, ids=lambda c: c.name)
def test_converter_emits_batch_matmul(case: MatmulCase, models: dict[str, bytes]) -> None:
    g = read_model(models[case.name], case.name)
    assert [op.opcode for op in g.operators] == ["BATCH_MATMUL"]
    op = g.operators[0]
    consts = [g.tensor(i).is_const for i in op.inputs]
    assert consts == [case.const_shape != () and case.expr.startswith("tf.matmul(W"),
                      case.const_shape != () and not case.expr.startswith("tf.matmul(W")]
    dtype = "int16" if case.int16 else "int8"
    assert [g.tensor(i).dtype for i in (*op.inputs, *op.outputs)] == [dtype] * 3
    assert load_all()["BATCH_MATMUL"].check(op, g) == []


@pytest.mark.parametrize("key, cases", [("matmul", MATMUL_CASES), ("matmul16", MATMUL16_CASES)], ids=["int8", "int16"])
def test_batch_matmul_bit_exact(key: str, cases: tuple[MatmulCase, ...], models: dict[str, bytes],
                                host_networks: dict[str, HostNetwork]) -> None:
    """Every BATCH_MATMUL case (one merged network per type), 40 random inputs each."""
    graphs = [read_model(models[c.name], c.name) for c in cases]
    per_case = [samples_for(g, 40, _seed(c.name)) for g, c in zip(graphs, cases)]
    merged = [[x for case_sample in row for x in case_sample] for row in zip(*per_case)]
    host = host_networks[key].run_many(merged)
    total = 0
    for k, (c, samples) in enumerate(zip(cases, per_case)):
        oracle = Oracle(models[c.name])
        want = [oracle.run(s) for s in samples]
        got = [[row[k]] for row in host]
        total += assert_exact(got, want)
    assert total >= 40 * len(cases) * 12


def _requantize(acc: np.ndarray, mult: int, shift: int, rounding: str) -> np.ndarray:
    """Candidate requantizations of int64 accumulators (numpy, exact)."""
    left, right = max(shift, 0), max(-shift, 0)
    if rounding == "single":  # ruy: one rounding, ties up
        total = 31 - shift
        return (acc * mult + (1 << (total - 1))) >> total
    if rounding == "q15":  # the int64 MultiplyByQuantizedMultiplier: Q15 multiplier, one rounding
        reduced = (mult + (1 << 15)) >> 16 if mult < 0x7FFF0000 else 0x7FFF
        return (acc * reduced + (1 << (14 - shift))) >> (15 - shift)
    ab = (acc << left) * mult
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))  # SRDHM: nudge, then truncate toward zero
    hi = np.where(v >= 0, v >> 31, -((-v) >> 31))
    if rounding == "up":  # NEON vrshl: ties toward +inf
        return (hi + ((1 << right) >> 1)) >> right
    mask = (1 << right) - 1  # gemmlowp RoundingDivideByPOT: ties away from zero
    rem = hi & mask
    threshold = (mask >> 1) + (hi < 0)
    return (hi >> right) + (rem > threshold)


@pytest.mark.parametrize("cases, tflm, others", [(MATMUL_CASES, "double", ("single", "up", "q15")),
                                                 (MATMUL16_CASES, "q15", ("double", "single"))],
                         ids=["int8", "int16"])
def test_batch_matmul_rounding_is_tflms(cases: tuple[MatmulCase, ...], tflm: str, others: tuple[str, ...],
                                        models: dict[str, bytes]) -> None:
    """TFLM's BATCH_MATMUL (reference_ops::BatchMatMul) requantizes int8 with the int32
    MultiplyByQuantizedMultiplier's double rounding, int16 with the int64 one (the multiplier
    rounded to Q15, then one rounding); the other candidates (single rounding as
    TFLITE_SINGLE_ROUNDING and ruy do, round-half-up as NEON does, ...) give other bytes on these
    very inputs, so the exactness above is sensitive to the choice."""
    from tinyedge import quant

    mismatches = dict.fromkeys((tflm, *others), 0)
    for case in cases:
        data = models[case.name]
        g = read_model(data, case.name)
        op = g.operators[0]
        lhs, rhs, out = (g.tensor(i) for i in (*op.inputs, op.outputs[0]))
        real = quant.f32(quant.f32(lhs.scale) * quant.f32(rhs.scale)) / float(quant.f32(out.scale))
        mult, shift = quant.quantize_multiplier(real)
        info = np.iinfo(np.dtype(out.dtype))
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
                got = np.clip(_requantize(acc, mult, shift, r) + out.zero_point, info.min, info.max)
                mismatches[r] += int(np.count_nonzero(got.reshape(want.shape) != want))
    assert mismatches[tflm] == 0, mismatches
    assert all(mismatches[r] > 0 for r in others), mismatches


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


def test_batch_matmul_check_names_what_tflm_refuses(models: dict[str, bytes]) -> None:
    spec = load_all()["BATCH_MATMUL"]
    g = read_model(models["mm_a_bT"], "mm_a_bT")
    assert spec.check(g.operators[0], g) == []

    def problems(k: int, **changes: Any) -> list[str]:  # k: input index, or -1 for the output
        g2 = copy.deepcopy(g)
        op = g2.operators[0]
        t = g2.tensors[op.outputs[0] if k < 0 else op.inputs[k]]
        for key, v in changes.items():
            setattr(t, key, v)
        return spec.check(op, g2)

    assert any("int16" in p and "one type" in p for p in problems(0, dtype="int16"))  # hybrid types
    assert any("int32 output" in p for p in problems(-1, dtype="int32"))
    assert any("float" in p for p in problems(0, dtype="float32"))
    assert any("per channel" in p for p in problems(1, quant=Quant((0.1, 0.2), (0, 0), 2)))
    assert any("depths differ" in p for p in problems(1, shape=(1, 5, 3)))
    assert any("ranks 2..5" in p for p in problems(0, shape=(1, 1, 1, 1, 3, 4)))
    assert any("2^30" in p for p in problems(-1, quant=Quant((1e-14,), (0,), 0)))

    g16 = read_model(models["mm16_a_bT"], "mm16_a_bT")
    assert spec.check(g16.operators[0], g16) == []
    t = g16.tensors[g16.operators[0].inputs[1]]
    t.quant = Quant((t.scale,), (3,), 0)
    assert any("zero point 3; TFLM requires 0" in p for p in spec.check(g16.operators[0], g16))


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
    """The TFLM interpreter keeping every tensor (its GetTensor): the LSTM's output and its two
    variable tensors after each inference, samples in order."""
    oracle = TflmOracle(data, preserve_all_tensors=True)
    rows = []
    for s in samples:
        oracle.run([s])
        rows.append(tuple(np.array(oracle._interp.GetTensor(i, 0)["tensor_data"], copy=True)
                          for i in (op.outputs[0], op.inputs[18], op.inputs[19])))
    return rows


def check_lstm_kernel(data: bytes, name: str, workdir: Path, n: int, seed: int) -> np.ndarray:
    """te_lstm_s8 alone on ``n`` inferences in order: output, int8 output state and int16 cell
    state after every inference equal TFLM's (its variable tensors). Returns the cell states,
    [n, cells]."""
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
        assert np.array_equal(out, w_out.reshape(-1)), f"{name} inference {i}: output differs"
        assert np.array_equal(h, w_h.reshape(-1)), f"{name} inference {i}: output state differs"
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


# (cell scale exponent, factor): the ends of the range tinyedge accepts (-30: the cell update's
# multiplier shifts left by 1; 2: the tanh's input multiplier 3 << 14), the converter's small scales
# (-17, -16) and TFLite's no-tanh ones (-8), the tanh input rescaled by a right shift (-15, -13) or by
# none or a left shift (-12, -10, -9, 1), and scales that are no power of two: TFLM rounds their log2 for
# the tanh (-10 * 1.0006 -> 2^-10, -15 * 0.7 -> 2^-16) and uses the true scale for the products and
# the clip (-12 * 1.3).
CELL_SCALES = [(-30, 1.0), (-17, 1.0), (-16, 1.0), (-15, 1.0), (-15, 0.7), (-13, 1.0), (-12, 1.3),
               (-10, 1.0), (-10, 1.0006), (-9, 1.0), (-8, 1.0), (1, 1.0), (2, 1.0)]


@pytest.mark.parametrize("cell_shift, factor", CELL_SCALES, ids=lambda v: str(v))
def test_lstm_kernel_every_cell_scale(cell_shift: int, factor: float, models: dict[str, bytes],
                                      tmp_path: Path) -> None:
    """The converter picks cell scales 2^-17..2^-11 (the float model clips the cell at 10); TFLM runs
    any positive scale. Re-scale a model's cell state and compare output, output state and cell state
    with TFLM: saturated cells at 2^-15, an active clip at 2^-10 and 2^-9 (on the model whose cells
    reach the clip), the rounded log2 of scales that are no power of two."""
    from tinyedge.ops import lstm

    name = "lstm_t6_u8" if cell_shift < -11 else "lstm_clip_t20_u5"  # small / large cells
    g = read_model(models[name], name)
    op = g.operators[0]
    scale = float(np.float32(2.0 ** cell_shift * factor))
    data = with_tensor_scale(models[name], op.inputs[19], scale)
    patched = read_model(data, name)
    cell = patched.tensor(op.inputs[19])
    power = cell_shift if factor > 0.75 else cell_shift - 1  # log2 rounded to the nearest integer
    assert cell.scale == scale and lstm.cell_power(cell.scale) == power
    pop = patched.operators[0]
    assert load_all()["UNIDIRECTIONAL_SEQUENCE_LSTM"].check(pop, patched) == []
    params = load_all()["UNIDIRECTIONAL_SEQUENCE_LSTM"].lower(pop, LowerCtx(patched, pop)).params
    # lstm_internal::Tanh: a left shift 12 + p becomes the multiplier 3 << (12 + p), else a right shift
    assert (params["tanh_mult"], params["tanh_shift"]) == ((3 << (12 + power), 0) if power >= -12
                                                           else (3, -12 - power))
    cells = check_lstm_kernel(data, f"{name}_cell{cell_shift}", tmp_path, 12, 11).astype(np.int32)
    clip = lstm.quantized_cell_clip(pop, cell)
    if (cell_shift, factor) == (-15, 1.0):
        assert np.abs(cells).max() >= 32767, "cells should saturate at 2^-15"
    if cell_shift in (-10, -9):
        assert clip < 32767 and np.count_nonzero(np.abs(cells) == clip) > 0, "the clip should act"
    if factor == 1.0006:  # the clip comes from the true scale, not from 2^cell_shift (and acts, above)
        exact = dataclasses.replace(cell, quant=Quant((2.0 ** cell_shift,), (0,), 0))
        assert clip == 10233 != lstm.quantized_cell_clip(pop, exact)


def test_lstm_cell_reaches_the_output_at_every_scale(models: dict[str, bytes]) -> None:
    """TFLM takes the tanh of the cell at every cell scale (TFLite's x86 interpreter does not below
    2^-15 or above 2^-9, where its outputs stop depending on the cell): the oracle's outputs differ
    from one scale to the next, on both sides of that range. (At the ends of what tinyedge takes,
    2^-30 and 2^2, this model's cell saturates or stays 0 and both give the zero point.)"""
    name = "lstm_t6_u8"
    g = read_model(models[name], name)
    cell_index = g.operators[0].inputs[19]
    samples = samples_for(g, 6, 4)

    def outputs(shift: int) -> np.ndarray:
        oracle = Oracle(with_tensor_scale(models[name], cell_index, 2.0 ** shift))
        return np.array([oracle.run(s)[0] for s in samples])

    shifts = (-22, -17, -16, -15, -12, -9, -8, -4, 0)
    runs = [outputs(k) for k in shifts]
    same = [(a, b) for i, a in enumerate(shifts) for j, b in enumerate(shifts)
            if i < j and np.array_equal(runs[i], runs[j])]
    assert not same, same


@pytest.mark.parametrize("case", STACKED_CASES, ids=lambda c: c.name)
def test_converter_writes_small_cell_scales(case: km.KerasCase, models: dict[str, bytes]) -> None:
    """Plain stacked Keras LSTMs get cell scales below 2^-15 from the converter; tinyedge takes them."""
    from tinyedge.ops import lstm

    g = read_model(models[case.name], case.name)
    spec = load_all()["UNIDIRECTIONAL_SEQUENCE_LSTM"]
    ops = [op for op in g.operators if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert tuple(lstm.cell_power(g.tensor(op.inputs[19]).scale) for op in ops) == STACKED_CELL_SHIFTS[case.name]
    assert all(spec.check(op, g) == [] for op in ops)


def test_stacked_small_cell_network_bit_exact(models: dict[str, bytes], tmp_path: Path) -> None:
    """Both stacked models in one generated network (one compile) against TFLM: 30 samples in
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
        shifts.add(lstm.cell_power(cell.scale))
        if 0 <= lstm.quantized_cell_clip(op, cell) < 32767:
            clipping.append(c.name)
    assert len(shifts) >= 3, shifts
    assert "lstm_clip_t20_u5" in clipping


def test_lstm_hidden_quantization_is_the_output_states(models: dict[str, bytes]) -> None:
    """TFLM reads the hidden state's scale and zero point from the output state tensor, not from
    the op's fifth intermediate (TFLite does): a case where the two differ, exact above, and a
    model without intermediates, which TFLM runs and tinyedge takes."""
    scales = {}
    for c in LSTM_CASES:
        g = read_model(models[c.name], c.name)
        op = _op(g, "UNIDIRECTIONAL_SEQUENCE_LSTM")
        scales[c.name] = (g.tensor(op.inputs[18]).quant, g.tensor(op.intermediates[4]).quant)
    assert any(h != hidden for h, hidden in scales.values()), scales
    g = read_model(models["lstm_t6_u8"], "lstm_t6_u8")
    g.operators[0].intermediates = []
    assert load_all()["UNIDIRECTIONAL_SEQUENCE_LSTM"].check(g.operators[0], g) == []


def test_lstm_check_names_what_tflm_refuses(models: dict[str, bytes]) -> None:
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

    def refused(problems: list[str], *words: str) -> bool:
        return any(all(w in p for w in words) for p in problems)

    assert refused(patched({9: some_vector, 10: some_vector, 11: some_vector}), "peephole", "TFLM")
    assert refused(patched({16: op.inputs[1]}), "projection", "TFLM")
    assert refused(patched({21: some_vector}), "layer normalization", "TFLM")
    assert refused(patched({1: -1, 5: -1, 12: -1}), "CIFG", "TFLM")
    assert refused(patched({13: -1}), "missing", "biases")  # TFLM requires every bias
    assert refused(patched({}, diagonal_recurrent_tensors=True), "diagonal")
    assert refused(patched({}, fused_activation_function=0), "not TANH")

    g20 = copy.deepcopy(g)
    g20.operators[0].inputs = g20.operators[0].inputs[:20]  # the older 20-input form
    assert refused(spec.check(g20.operators[0], g20), "20 inputs", "TFLM requires 24")

    def with_tensor(k: int, **changes: Any) -> list[str]:
        g2 = copy.deepcopy(g)
        t = g2.tensors[g2.operators[0].inputs[k]]
        for key, v in changes.items():
            setattr(t, key, v)
        return spec.check(g2.operators[0], g2)

    assert refused(with_tensor(0, dtype="float32"), "float")
    assert refused(with_tensor(19, dtype="int8"), "8x8_16")
    assert refused(with_tensor(18, is_variable=False), "variable")
    w = g.tensor(op.inputs[2])
    assert refused(with_tensor(2, quant=Quant((w.scale, w.scale * 2) + (w.scale,) * 6, (0,) * 8, 0)), "per channel")
    assert refused(with_tensor(2, quant=Quant((w.scale,), (3,), 0)), "symmetric")
    assert refused(with_tensor(2, quant=Quant((-w.scale,), (0,), 0)), "must be positive")
    assert refused(with_tensor(18, quant=Quant((1e-12,), (0,), 0)), "output state scale", "overflow")

    # the cell scale: any positive scale runs in TFLM (its log2 is rounded), within the range where
    # its int32 arithmetic does not overflow; a log2 within 2^-12 of a half integer is refused
    for scale in (2.0 ** -30, 2.0 ** -16, 3e-5, 2.0 ** -10 * 1.0008, 2.0 ** -12 * 1.41, 2.0 ** 2):
        assert with_tensor(19, quant=Quant((scale,), (0,), 0)) == [], scale
    for scale, words in ((2.0 ** -31, "outside 2^-30..2^2"), (2.0 ** 3, "outside"), (2.0 ** 127, "outside"),
                         (2.0 ** -149, "outside"), (0.0, "not positive"), (-2.0 ** -15, "not positive"),
                         (2.0 ** -11.5, "half integer"), (2.0 ** -11.5 * 1.0001, "half integer")):
        assert refused(with_tensor(19, quant=Quant((scale,), (0,), 0)), words), scale


# ---- TFLM's int16 sigmoid and tanh: every input


# input scale -> (tanh mult, tanh shift) TFLM's int16 TANH then applies: 2^-12 and 2^-11 are its "power
# of two" cases (3 << left shift, as the LSTM's gate tanh and its cell tanh at 2^-11), 2^-15 its general
# case with the multiplier 24576 = 3 << 13 and a shift of 16, the same as the LSTM's (3, 3) at 2^-15
TANH_INPUT_SCALES = {2.0 ** -12: (3, 0), 2.0 ** -11: (6, 0), 2.0 ** -15: (3, 3)}


def test_lstm_int16_sigmoid_and_tanh_are_tflms(model_cache: Path, tmp_path: Path) -> None:
    """te_lstm_sigmoid16 / te_lstm_tanh16 (TFLM's 256-entry table, interpolated) on all 65536
    int16 inputs against TFLM's own int16 LOGISTIC (input 2^-12, the LSTM's gates) and TANH
    (the LSTM's gate tanh and two cell-tanh rescalings)."""
    data = _cached(model_cache, MatmulCase("int16_sigmoid_tanh", ((256, 256),), "sigmoid, tanh"),
                   _build_int16_activations)
    g = read_model(data, "int16_sigmoid_tanh")
    assert sorted(op.opcode for op in g.operators) == ["LOGISTIC", "TANH"]
    x = np.arange(-32768, 32768, dtype=np.int16).reshape(256, 256)
    calls = "\n".join(f"        s[n++] = te_lstm_tanh16((int16_t)v, {m}, {sh});"
                      for m, sh in TANH_INPUT_SCALES.values())
    (tmp_path / "act.c").write_text(f"""#include <stdio.h>
#include "te_lstm.h"
int main(void)
{{
    static int16_t s[65536 * {1 + len(TANH_INPUT_SCALES)}];
    long n = 0;
    int v;
    for (v = -32768; v < 32768; ++v) s[n++] = te_lstm_sigmoid16((int16_t)v);
    for (v = -32768; v < 32768; ++v) {{
{calls}
    }}
    return fwrite(s, sizeof s[0], (size_t)n, stdout) == (size_t)n ? 0 : 1;
}}
""")
    runtime = templates_dir() / "runtime"
    subprocess.run(["cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{runtime}", "act.c",
                    str(runtime / "te_lstm.c"), "-o", "act"], cwd=tmp_path, check=True)
    got = np.frombuffer(subprocess.run([str(tmp_path / "act")], capture_output=True, check=True).stdout, np.int16)
    sigmoid, tanhs = got[:65536], got[65536:].reshape(65536, len(TANH_INPUT_SCALES)).T
    op_out = {op.opcode: g.outputs.index(op.outputs[0]) for op in g.operators}
    assert all(g.tensor(i).scale == 2.0 ** -15 for i in g.outputs)
    for k, scale in enumerate(TANH_INPUT_SCALES):
        want = Oracle(with_tensor_scale(data, g.inputs[0], scale)).run([x])
        assert np.array_equal(tanhs[k], want[op_out["TANH"]].reshape(-1)), scale
        if scale == 2.0 ** -12:
            assert np.array_equal(sigmoid, want[op_out["LOGISTIC"]].reshape(-1))
    # the sweep reaches both ends: sigmoid(-8) ~ 11 / 32768, tanh's saturated table end
    assert sigmoid.min() < 16 and sigmoid.max() > 32752 and tanhs.min() == -32767 and tanhs.max() == 32767


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
    # the generated network.c of an LSTM and two BATCH_MATMUL models (static state blocks, params with arrays)
    for name in ("lstm_t6_u8", "mm_rank5_bcast", "mm16_rank5_bcast"):
        work = tmp_path / name
        write_files(work, render_network_files(compile(read_model(models[name], name)), name))
        copy_runtime(work)
        proc = subprocess.run([*cc, *flags, "-Iruntime", "-I.", "-c", "network.c", "-o", "network.o"],
                              cwd=work, capture_output=True, text=True)
        assert proc.returncode == 0, f"{target} {name} network.c:\n{proc.stderr}"


# ============================================================ emulator: firmware in QEMU


@pytest.mark.emulator
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385", "mps3-an547"])  # Cortex-M4F, M3, M55
def test_lstm_and_matmul_on_device(board: str, models: dict[str, bytes], tmp_path: Path) -> None:
    """The firmware (validation server in QEMU) gives TFLM's bytes for an LSTM model (every sample
    from the initial state: te_network_reset() on the device, reset() in TFLM), an int8 and an
    int16 BATCH_MATMUL."""
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        require_tool(tool)
    from tinyedge.pipeline import validate_model

    for name, n in (("lstm_t12_u32", 6), ("mm_rank5_bcast", 4), ("mm16_bcast_act", 4)):
        model = tmp_path / f"{name}.tflite"
        model.write_bytes(models[name])
        report = validate_model(model, board, emulator="qemu", port=None, data=None, n_random=n, seed=3,
                                report_path=tmp_path / f"{name}.json", project=tmp_path / f"fw_{name}")
        assert report.complete and len(report.samples) == n
        assert report.all_exact, [s for s in report.samples if not s.exact][:1]
