"""The Keras layers a user combines, in small realistic models: converted with
tinyedge.convert.convert_keras, generated and run on the host
(tinyedge.hostrun.HostNetwork), compared bit-exact with the TFLite oracle.

Every model is a :class:`keras_models.KerasCase` (the factory of
tests/keras_models.py: deterministic weights and calibration, the exact op
list of the converted graph checked, int8 everywhere, disk cache keyed by the
case). A model of several steps is one expression: a list display of
assignment expressions whose last element is the output, e.g.
``[e := L.Conv2D(8, 3)(x), L.Add()([e, e])][-1]``.

Models (and the layers -> TFLite ops each one exercises):

- ``mobilenet_v2_block``: Conv2D + BatchNormalization (folded) + ReLU6 (fused),
  an inverted residual (1x1 expand, DepthwiseConv2D, 1x1 project, Add),
  GlobalAveragePooling2D (MEAN), Dense, softmax.
- ``mobilenet_v3_block``: ZeroPadding2D (PAD), strided VALID conv + BN,
  hard_swish, SeparableConv2D (DEPTHWISE_CONV_2D + CONV_2D), a squeeze-excite
  (MEAN, Dense relu, Dense sigmoid (LOGISTIC), Reshape, Multiply (MUL,
  broadcast)), AveragePooling2D, Flatten, Dense.
- ``audio_conv1d``: Reshape of a flat feature vector, Conv1D (RESHAPE /
  CONV_2D / RESHAPE), MaxPooling1D, a strided Conv1D + BN + LeakyReLU,
  a dilated Conv1D, GlobalAveragePooling1D, Dense, softmax.
- ``unet_upsampling``: the user's U-Net: Conv2D, MaxPooling2D, UpSampling2D
  (Keras 3 lowers it to RESHAPE/TILE/RESHAPE/TILE/RESHAPE), Concatenate of the
  skip connection, Conv2D, sigmoid output.
- ``unet_resize``: the same U-Net with a nearest-neighbour Resizing layer
  (RESIZE_NEAREST_NEIGHBOR) as the up-sampler.
- ``segmentation_head``: asymmetric ZeroPadding2D, VALID conv, a nearest
  Resizing by a non-integer ratio (6x8 -> 9x13), 1x1 conv, softmax over channels.
- ``two_input_fusion``: two inputs, a 1x1 conv, Add, Multiply, PReLU,
  Concatenate, MaxPooling2D, Flatten, Dense tanh (TANH), Dense.
- ``residual_subtract``: Subtract (SUB) of a conv's output from the input.
- ``activation_zoo``: ReLU / ReLU6 / LeakyReLU / sigmoid / tanh / hard_swish
  each as its own op straight after the input (so nothing fuses them),
  concatenated (the converter requantizes the LOGISTIC/TANH branches with
  QUANTIZE int8 -> int8), a 1x1 conv, PReLU. (PReLU of the input itself, next
  to a ReLU of the same tensor, makes the converter emit a float NEG.)
- ``mlp_bn``: Dense + BatchNormalization + ReLU, Dense relu6, Dense, softmax.
- ``cnn_pools``: Conv2D relu, MaxPooling2D 3x3/s2 SAME, dilated VALID Conv2D,
  AveragePooling2D, Flatten, Dense, Reshape, softmax over a rank-3 tensor.
- ``lstm_classifier``: ``keras.layers.LSTM`` (last step: UNIDIRECTIONAL_SEQUENCE_LSTM +
  STRIDED_SLICE; tinyedge.convert rewrites Keras 3's LSTM into the fused form),
  Dense, softmax.
- ``lstm_stacked_tagger``: two stacked LSTMs returning sequences, a per-step
  Dense (FULLY_CONNECTED on a rank-3 tensor), softmax.
- ``conv1d_lstm``: Conv1D + MaxPooling1D feeding an LSTM, Dense.

Each converted graph must hold exactly the listed ops (so the test really
exercises them); each model runs on 8 random int8 inputs plus all -128, all
127 and all zero-point, in order through one oracle and one host process (the
LSTM state persists across inferences in both), and must match bit for bit;
a model with state (LSTM) also runs every sample from the initial state (a
fresh host process; the oracle's variables reset, as validation does).
No op's owner documents a bound (``tinyedge ops``: LOGISTIC and TANH are
"float table as TFLite's LUTPopulate", the LSTM states none), so every
comparison is exact.

Helpers here (model cache, host-vs-oracle run) are shared with
tests/test_properties.py and tests/test_float_io.py.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import textwrap
import zlib
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pytest

import keras_models
from keras_models import KerasCase
from tinyedge.codegen.lower import check_graph
from tinyedge.hostrun import HostNetwork
from tinyedge.model import Graph, read_model
from tinyedge.oracle import Oracle

BUILD_VERSION = 1
N_RANDOM = 8

# ============================================================ model building


def _fix_batchnorm(model: Any, seed: int) -> None:
    """Realistic BatchNormalization statistics (the factory's generic init would give a
    negative moving variance): gamma ~ 1, beta and mean small, variance in [0.3, 2]."""
    import keras

    rng = np.random.default_rng(seed + 7)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            n = gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, n).astype(np.float32),
                               rng.uniform(-0.4, 0.4, n).astype(np.float32),
                               rng.uniform(-0.3, 0.3, n).astype(np.float32),
                               rng.uniform(0.3, 2.0, n).astype(np.float32)])


def build_model(c: KerasCase) -> Any:
    """The float Keras model of a case: the factory's build, BN statistics made realistic."""
    model = keras_models.build_keras(c)
    _fix_batchnorm(model, c.seed)
    return model


def convert_case(c: KerasCase) -> bytes:
    from tinyedge.convert import convert_keras

    return convert_keras(build_model(c), keras_models.calibration_data(c), io="float" if c.io == "float" else "int8")


def _build_key() -> str:
    """The model-building code of this file, in the cache key (the factory's key has the rest)."""
    src = "".join(inspect.getsource(f) for f in (_fix_batchnorm, build_model, convert_case))
    return hashlib.sha256(f"{BUILD_VERSION}{src}".encode()).hexdigest()[:8]


def tflite_for(c: KerasCase, cache_dir: Path, check: Callable[[KerasCase, bytes], None] | None = None) -> bytes:
    """The case's .tflite bytes, from ``cache_dir`` when built there before (re-checked when read).

    ``check`` (default: the factory's ``check_tflite``, the exact op list and int8 everywhere)
    must pass on a fresh conversion; its AssertionError names what the converter made instead."""
    check = check or keras_models.check_tflite
    path = Path(cache_dir) / f"{c.name}-{c.key()}-{_build_key()}.tflite"
    if path.exists():
        data = path.read_bytes()
        try:
            check(c, data)
            return data
        except Exception:  # stale or corrupt: rebuild
            pass
    data = convert_case(c)
    check(c, data)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # atomic under pytest-xdist
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


# ============================================================ running and comparing


def extreme_and_random_samples(g: Graph, n_random: int, seed: int) -> list[list[np.ndarray]]:
    """All -128, all 127, all zero-point (per input), then mixed extremes for 2+ inputs, then random."""
    rng = np.random.default_rng(seed)
    ins = g.input_tensors
    assert all(t.dtype == "int8" for t in ins), [t.dtype for t in ins]
    out = [[np.full(t.shape, -128, np.int8) for t in ins], [np.full(t.shape, 127, np.int8) for t in ins],
           [np.full(t.shape, t.quant.zero_point[0] if t.quant else 0, np.int8) for t in ins]]
    if len(ins) > 1:
        out.append([np.full(t.shape, -128 if k % 2 else 127, np.int8) for k, t in enumerate(ins)])
    out += [[rng.integers(-128, 127, size=t.shape, endpoint=True, dtype=np.int8) for t in ins]
            for _ in range(n_random)]
    return out


def require_generable(g: Graph, what: str) -> None:
    """Fail (never skip) naming every op / option tinyedge cannot generate."""
    problems = check_graph(g)
    if problems:
        pytest.fail(f"{what}: tinyedge cannot generate this graph: " + "; ".join(str(p) for p in problems),
                    pytrace=False)


def oracle_outputs(data: bytes, g: Graph, samples: Sequence[Sequence[np.ndarray]],
                   reset_each: bool = False) -> list[list[np.ndarray]]:
    """The oracle's outputs, samples run in order through one interpreter (state such as the
    LSTM's carried from sample to sample unless ``reset_each``); inputs and outputs in the
    model's order (``g.inputs`` / ``g.outputs``), as every oracle takes and gives them."""
    oracle = Oracle(data)
    assert [tuple(d["shape"]) for d in oracle.input_details] == [tuple(t.shape) for t in g.input_tensors]
    res = []
    for s in samples:
        if reset_each:
            oracle.reset()
        res.append(oracle.run(list(s)))
    return res


def diff_report(host: list[list[np.ndarray]], want: list[list[np.ndarray]], labels: Sequence[str]) -> list[str]:
    """Human-readable differences (exact comparison; floats compared by bit pattern)."""
    bad = []
    for label, hs, ws in zip(labels, host, want, strict=True):
        for k, (h, w) in enumerate(zip(hs, ws, strict=True)):
            h = h.reshape(w.shape)
            if w.dtype.kind == "f":
                same = h.view(np.uint32) == w.view(np.uint32)
                d = np.abs(h.astype(np.float64) - w.astype(np.float64))
            else:
                same = h == w
                d = np.abs(h.astype(np.int64) - w.astype(np.int64))
            if not same.all():
                first = tuple(int(v) for v in np.argwhere(~same)[0])
                bad.append(f"{label}, output {k}: {int((~same).sum())}/{w.size} differ, max |diff| "
                           f"{d.max():g}; first at {first}: host {h[first]!r} oracle {w[first]!r}")
    return bad


def run_host_vs_oracle(data: bytes, name: str, workdir: Path, n_random: int = N_RANDOM,
                       samples: Sequence[Sequence[np.ndarray]] | None = None) -> int:
    """Generate, compile, run on the host; assert bit-exact with the oracle. Returns values compared."""
    g = read_model(data, name)
    require_generable(g, name)
    if samples is None:
        samples = extreme_and_random_samples(g, n_random, zlib.crc32(name.encode()))
        labels = ["all -128", "all 127", "all zero-point"] + (["mixed extremes"] if len(g.inputs) > 1 else [])
    else:
        labels = []
    labels = labels + [f"sample {i}" for i in range(len(labels), len(samples))]
    net = HostNetwork(g, workdir)
    host = net.run_many(samples)  # one process: state carried across samples, as in the oracle
    want = oracle_outputs(data, g, samples)
    bad = diff_report(host, want, labels)
    if any(t.is_variable for t in g.tensors):  # and every sample from the initial state
        fresh = [net.run(s) for s in samples]  # a new host process each
        bad += [f"{b} (from the initial state)"
                for b in diff_report(fresh, oracle_outputs(data, g, samples, reset_each=True), labels)]
    assert not bad, f"{name}: not bit-exact with the oracle:\n" + "\n".join(bad[:12])
    return sum(w.size for row in want for w in row)


# ============================================================ fixtures (imported by the other matrix files)


@pytest.fixture(scope="session")
def matrix_cache(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.cache.mkdir("tinyedge-keras-matrix"))


# ============================================================ the models


def _m(name: str, shape: Any, expr: str, ops: str, **kw: Any) -> KerasCase:
    """A matrix case; ``ops``: the converted graph's exact op list, space separated."""
    shapes = shape if isinstance(shape[0], tuple) else (shape,)
    return KerasCase(name, shapes, textwrap.dedent(expr).strip(), tuple(ops.split()), **kw)


MATRIX: tuple[KerasCase, ...] = (
    _m("mobilenet_v2_block", (16, 16, 3), """
        [
            s := L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(8, 3, strides=2, padding='same', use_bias=False)(x))),
            e := L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(24, 1, use_bias=False)(s))),
            d := L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding='same', use_bias=False)(e))),
            p := L.BatchNormalization()(L.Conv2D(8, 1, use_bias=False)(d)),
            r := L.Add()([s, p]),
            L.Softmax()(L.Dense(5)(L.GlobalAveragePooling2D()(r))),
        ][-1]""", "CONV_2D CONV_2D DEPTHWISE_CONV_2D CONV_2D ADD MEAN FULLY_CONNECTED SOFTMAX"),
    _m("mobilenet_v3_block", (12, 12, 4), """
        [
            h := L.Activation('hard_swish')(L.BatchNormalization()(
                L.Conv2D(8, 3, strides=2, padding='valid', use_bias=False)(L.ZeroPadding2D(1)(x)))),
            d := L.SeparableConv2D(8, 3, padding='same')(h),
            se := L.Reshape((1, 1, 8))(L.Dense(8, activation='sigmoid')(
                L.Dense(4, activation='relu')(L.GlobalAveragePooling2D()(d)))),
            m := L.Multiply()([d, se]),
            L.Dense(3)(L.Flatten()(L.AveragePooling2D(2)(m))),
        ][-1]""", "PAD CONV_2D HARD_SWISH DEPTHWISE_CONV_2D CONV_2D MEAN FULLY_CONNECTED FULLY_CONNECTED LOGISTIC "
                  "MUL AVERAGE_POOL_2D RESHAPE FULLY_CONNECTED"),
    _m("audio_conv1d", (490,), """
        [
            f := L.Reshape((49, 10))(x),
            a := L.MaxPooling1D(2)(L.Conv1D(8, 3, padding='same', activation='relu')(f)),
            b := L.LeakyReLU(negative_slope=0.1)(L.BatchNormalization()(
                L.Conv1D(12, 5, strides=2, padding='valid', use_bias=False)(a))),
            c := L.Conv1D(12, 3, dilation_rate=2, padding='same', activation='relu')(b),
            L.Softmax()(L.Dense(6)(L.GlobalAveragePooling1D()(c))),
        ][-1]""", "RESHAPE CONV_2D MAX_POOL_2D CONV_2D RESHAPE LEAKY_RELU RESHAPE CONV_2D RESHAPE MEAN "
                  "FULLY_CONNECTED SOFTMAX"),
    _m("unet_upsampling", (16, 16, 3), """
        [
            e1 := L.Conv2D(8, 3, padding='same', activation='relu')(x),
            b := L.Conv2D(16, 3, padding='same', activation='relu')(L.MaxPooling2D(2)(e1)),
            u := L.UpSampling2D(2)(b),
            c := L.Conv2D(8, 3, padding='same', activation='relu')(L.Concatenate()([u, e1])),
            L.Conv2D(1, 1, activation='sigmoid')(c),
        ][-1]""", "CONV_2D MAX_POOL_2D CONV_2D RESHAPE TILE RESHAPE TILE RESHAPE CONCATENATION CONV_2D CONV_2D "
                  "LOGISTIC"),
    _m("unet_resize", (16, 16, 3), """
        [
            e1 := L.Conv2D(8, 3, padding='same', activation='relu')(x),
            b := L.Conv2D(16, 3, padding='same', activation='relu')(L.MaxPooling2D(2)(e1)),
            u := L.Resizing(16, 16, interpolation='nearest')(b),
            c := L.Conv2D(8, 3, padding='same', activation='relu')(L.Concatenate()([u, e1])),
            L.Conv2D(1, 1, activation='sigmoid')(c),
        ][-1]""", "CONV_2D MAX_POOL_2D CONV_2D RESIZE_NEAREST_NEIGHBOR CONCATENATION CONV_2D CONV_2D LOGISTIC"),
    _m("segmentation_head", (5, 7, 3), """
        [
            a := L.Conv2D(6, 3, padding='valid', activation='relu')(L.ZeroPadding2D(((1, 2), (0, 3)))(x)),
            L.Softmax()(L.Conv2D(2, 1)(L.Resizing(9, 13, interpolation='nearest')(a))),
        ][-1]""", "PAD CONV_2D RESIZE_NEAREST_NEIGHBOR CONV_2D SOFTMAX"),
    _m("two_input_fusion", ((8, 8, 4), (8, 8, 4)), """
        [
            a := L.Conv2D(4, 1)(x[0]),
            s := L.Add()([a, x[1]]),
            m := L.Multiply()([s, x[1]]),
            p := L.PReLU(shared_axes=[1, 2])(m),
            c := L.Concatenate()([p, x[0]]),
            L.Dense(2)(L.Dense(8, activation='tanh')(L.Flatten()(L.MaxPooling2D(2)(c)))),
        ][-1]""", "CONV_2D ADD MUL PRELU CONCATENATION MAX_POOL_2D RESHAPE FULLY_CONNECTED TANH FULLY_CONNECTED",
       ranges=((-1.0, 2.0), (-3.0, 1.0))),
    _m("residual_subtract", (8, 8, 4), """
        [
            n := L.Conv2D(4, 3, padding='same')(x),
            L.Conv2D(6, 1)(L.Subtract()([x, n])),
        ][-1]""", "CONV_2D SUB CONV_2D"),
    # Each activation straight on the input (nothing to fuse into). Not PReLU: next to a
    # ReLU of the same tensor the converter splits PReLU and leaves a float NEG.
    _m("activation_zoo", (6, 6, 4), """
        L.PReLU(shared_axes=[1, 2])(L.Conv2D(5, 1)(L.Concatenate()([
            L.ReLU()(x), L.ReLU(6.0)(x), L.LeakyReLU(negative_slope=0.2)(x),
            L.Activation('sigmoid')(x), L.Activation('tanh')(x), L.Activation('hard_swish')(x),
        ])))""", "LOGISTIC QUANTIZE TANH QUANTIZE HARD_SWISH LEAKY_RELU RELU RELU6 CONCATENATION CONV_2D PRELU",
       ranges=((-7.0, 8.0),)),
    _m("mlp_bn", (32,), """
        [
            a := L.ReLU()(L.BatchNormalization()(L.Dense(24, use_bias=False)(x))),
            b := L.Dense(16, activation='relu6')(a),
            L.Softmax()(L.Dense(8)(b)),
        ][-1]""", "FULLY_CONNECTED FULLY_CONNECTED FULLY_CONNECTED SOFTMAX"),
    _m("cnn_pools", (16, 16, 3), """
        [
            a := L.MaxPooling2D(3, strides=2, padding='same')(L.Conv2D(8, 3, padding='same', activation='relu')(x)),
            b := L.AveragePooling2D(2)(L.Conv2D(8, 3, dilation_rate=2, padding='valid')(a)),
            f := L.Dense(12)(L.Flatten()(b)),
            L.Softmax()(L.Reshape((3, 4))(f)),
        ][-1]""", "CONV_2D MAX_POOL_2D CONV_2D AVERAGE_POOL_2D RESHAPE FULLY_CONNECTED RESHAPE SOFTMAX"),
    _m("lstm_classifier", (12, 8), "L.Softmax()(L.Dense(4)(L.LSTM(16)(x)))",
       "UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE FULLY_CONNECTED SOFTMAX"),
    _m("lstm_stacked_tagger", (9, 5), """
        L.Softmax()(L.Dense(5)(L.LSTM(8, return_sequences=True)(L.LSTM(10, return_sequences=True)(x))))""",
       "UNIDIRECTIONAL_SEQUENCE_LSTM UNIDIRECTIONAL_SEQUENCE_LSTM FULLY_CONNECTED SOFTMAX"),
    _m("conv1d_lstm", (40, 4), """
        L.Dense(2)(L.LSTM(6)(L.MaxPooling1D(2)(L.Conv1D(8, 3, padding='same', activation='relu')(x))))""",
       "RESHAPE CONV_2D MAX_POOL_2D RESHAPE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE FULLY_CONNECTED"),
)
_BY_NAME = {c.name: c for c in MATRIX}
assert len(_BY_NAME) == len(MATRIX)

# Fused activations the converter must have folded into the op (BN folded, ReLU fused): model ->
# {op position: fused_activation_function}; checked so the folding really is what runs.
FUSED = {
    "mobilenet_v2_block": {0: "RELU6", 1: "RELU6", 2: "RELU6", 3: "NONE", 4: "NONE"},
    "audio_conv1d": {1: "RELU", 3: "NONE", 7: "RELU"},
    "mlp_bn": {0: "RELU", 1: "RELU6", 2: "NONE"},
    "cnn_pools": {0: "RELU", 2: "NONE"},
    "unet_resize": {0: "RELU", 2: "RELU", 5: "RELU", 6: "NONE"},
}

# What the matrix as a whole must exercise (layer -> op): a guard against a model silently
# losing an op when the converter changes.
REQUIRED_OPS = {
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "ADD", "SUB",
    "MUL", "CONCATENATION", "PAD", "RESHAPE", "RESIZE_NEAREST_NEIGHBOR", "RELU", "RELU6", "LEAKY_RELU", "PRELU",
    "LOGISTIC", "TANH", "HARD_SWISH", "SOFTMAX", "QUANTIZE", "UNIDIRECTIONAL_SEQUENCE_LSTM",
}


def test_matrix_covers_the_layers() -> None:
    covered = {op for c in MATRIX for op in c.ops}
    assert REQUIRED_OPS <= covered, sorted(REQUIRED_OPS - covered)


@pytest.mark.parametrize("name", list(_BY_NAME))
def test_model_bit_exact(name: str, matrix_cache: Path, tmp_path: Path) -> None:
    """Converted graph = the intended ops (and fused activations); host == oracle on every sample."""
    from tinyedge.ops.base import activation_name

    c = _BY_NAME[name]
    data = tflite_for(c, matrix_cache)  # asserts the exact op list and int8 everywhere
    g = read_model(data, name)
    for pos, act in FUSED.get(name, {}).items():
        op = g.operators[pos]
        assert activation_name(op) == act, f"{name}: op {pos} {op.opcode} fused {activation_name(op)}, want {act}"
    n = run_host_vs_oracle(data, name, tmp_path / "net")
    assert n >= (N_RANDOM + 3) * sum(t.size for t in g.output_tensors)
