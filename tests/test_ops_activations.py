"""MUL, MAXIMUM, MINIMUM and the int8 activations (RELU, RELU6, RELU_N1_TO_1,
LEAKY_RELU, PRELU, HARD_SWISH, LOGISTIC, TANH): the generated C is bit-exact
with TensorFlow Lite Micro, on the host and in QEMU.

Expected values come only from the oracle (:func:`tinyedge.oracle.Oracle`: the
TFLM interpreter; the TFLite interpreter for the RELU_N1_TO_1 model, the one
op here TFLM has no kernel for). The models:

- Keras models converted once (cached on disk): one with a branch per unary op
  / shape (each branch its own input, so its own quantization), one with the
  RELU_N1_TO_1 branches alone (its oracle is TFLite, so it must not carry the
  other ops), one with a LOGISTIC and a TANH on 256 values, and one with
  MUL / MAXIMUM / MINIMUM branches covering flat and broadcast shapes (both
  input orders, rank 6, constant operands, a fused RELU);
- copies of them with every op's quantization patched to seeded random values,
  to reach what calibration rarely gives: real multipliers far above 1 (MUL up
  to 60, RELU's positive shifts), any zero points, negative LEAKY_RELU alphas,
  HARD_SWISH's reluish left shifts, output quantizations TFLM does not read
  (RELU6, LOGISTIC's scale, TANH), and for LOGISTIC / TANH many input scales
  including the edges of TFLM's fixed point (2^-28, powers of two, scales so
  large that every input saturates);
- every input tensor with >= 256 elements gets all 256 int8 values in every
  sample, so each unary op is checked exhaustively for each quantization.

All variants are merged side by side into one graph and compiled once.
TE_ACT_VARIANTS=N sets the number of patched copies (default 4; the LOGISTIC /
TANH model gets 15 times as many).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pytest

from conftest import require_tool
from graphtools import merge_graphs
from test_keras_matrix import matrix_cache  # noqa: F401 (a fixture)
from tinyedge.hostrun import HostNetwork
from tinyedge.model import Graph, Operator, read_model
from tinyedge.ops import load_all
from tinyedge.oracle import Oracle, SplitOracle, TflmOracle

MODEL_VERSION = 3
N_RANDOM = 5  # random samples per variant (plus all -128 and all 127)
N_VARIANTS = int(os.environ.get("TE_ACT_VARIANTS", "4"))  # patched copies of each model

# Unary branches: (kind, per-sample shape, calibration range). Sizes >= 256 get
# every int8 value in every sample.
UNARY = (
    ("relu", (16, 17), (-2.0, 3.0)), ("relu", (5,), (-1.0, 1.0)),
    ("relu6", (2, 9, 15), (-3.0, 8.0)), ("relu6", (1,), (-7.0, 2.0)),
    ("leaky_0.2", (4, 70), (-3.0, 2.0)), ("leaky_0.01", (7, 37), (-1.0, 4.0)), ("leaky_1.5", (3, 5), (-2.0, 2.0)),
    ("hard_swish", (6, 43), (-5.0, 5.0)), ("hard_swish", (2, 3, 50), (-8.0, 3.0)), ("hard_swish", (11,), (-1.0, 1.0)),
    ("sigmoid", (6, 43), (-6.0, 6.0)), ("sigmoid", (257,), (-1.0, 9.0)), ("sigmoid", (2, 2), (-3.0, 0.5)),
    ("tanh", (6, 43), (-3.0, 3.0)), ("tanh", (9, 29), (-0.5, 4.0)), ("tanh", (3,), (-1.0, 1.0)),
    ("prelu_shared12", (4, 5, 13), (-2.0, 3.0)), ("prelu_full", (16, 17), (-3.0, 1.0)),
    ("prelu_shared1", (9, 31), (-1.0, 1.0)),
)
RELU_N1 = (("relu_n1_to_1", (300,), (-1.5, 1.2)), ("relu_n1_to_1", (3, 3), (-0.5, 0.4)))
LUT = (("sigmoid", (256,), (-6.0, 6.0)), ("tanh", (256,), (-3.0, 3.0)))

# Binary branches: (kind, shape a, shape b): flat, broadcast in either input, both
# inputs broadcast, rank 6, squares, constants.
BINARY = (
    ("mul", (2, 3, 37), (2, 3, 37)), ("mul", (4, 5, 17), (1, 1, 17)), ("mul", (1, 1, 17), (4, 5, 17)),
    ("mul", (4, 5, 17), (4, 5, 1)), ("mul", (1, 5, 1), (4, 5, 40)), ("mul", (4, 1, 6), (1, 5, 1)),
    ("mul", (2, 3, 1, 4, 5), (1, 3, 2, 1, 5)), ("mul_relu", (3, 40), (3, 40)), ("mul_square", (4, 20), ()),
    ("mul_const", (5, 33), ()), ("mul_const", (5, 17), (17,)),
    ("max", (5, 17), (5, 17)), ("max", (4, 1, 17), (1, 3, 1)), ("max_const", (5, 17), ()),
    ("min", (3, 7, 16), (3, 7, 16)), ("min", (2, 3, 1, 4), (3, 5, 1)), ("min_const", (5, 17), (17,)),
)
SPECS: dict[str, Sequence[tuple[Any, ...]]] = {"unary": UNARY, "relu_n1": RELU_N1, "lut": LUT, "binary": BINARY}


# ---------------------------------------------------------------- the Keras models


def _unary_layer(kind: str, x: Any, keras: Any, seed: int) -> Any:
    L = keras.layers
    if kind == "relu":
        return L.ReLU()(x)
    if kind == "relu6":
        return L.ReLU(max_value=6.0)(x)
    if kind == "relu_n1_to_1":
        return keras.ops.clip(x, -1.0, 1.0)
    if kind.startswith("leaky_"):
        return L.LeakyReLU(negative_slope=float(kind.split("_")[1]))(x)
    if kind in ("hard_swish", "sigmoid", "tanh"):
        return L.Activation(kind)(x)
    shared = {"prelu_shared12": [1, 2], "prelu_full": None, "prelu_shared1": [1]}[kind]
    init = keras.initializers.RandomUniform(-0.6, 0.9, seed=seed)
    return L.PReLU(shared_axes=shared, alpha_initializer=init)(x)


def _binary_layer(kind: str, a: Any, b: Any, b_shape: tuple[int, ...], keras: Any, seed: int) -> Any:
    K = keras.ops
    if kind.endswith("_const"):
        rng = np.random.default_rng(seed)
        b = np.float32(rng.uniform(0.3, 1.5)) if b_shape == () else rng.uniform(-1.5, 1.5, b_shape).astype(np.float32)
    if kind == "mul_square":
        return K.multiply(a, a)
    op = {"mul": K.multiply, "max": K.maximum, "min": K.minimum}[kind.split("_")[0]]
    y = op(a, b)
    return keras.layers.ReLU()(y) if kind == "mul_relu" else y


def _build(which: str) -> tuple[Any, list[np.ndarray]]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    rng = np.random.default_rng({"unary": 7, "binary": 8, "relu_n1": 9, "lut": 10}[which])
    ins: list[Any] = []
    outs: list[Any] = []
    calib: list[np.ndarray] = []

    def new_input(shape: tuple[int, ...], lo: float, hi: float) -> Any:
        ins.append(keras.Input(shape, batch_size=1))
        calib.append(rng.uniform(lo, hi, size=(64, *shape)).astype(np.float32))
        return ins[-1]

    if which == "binary":
        for k, (kind, sa, sb) in enumerate(BINARY):
            a = new_input(sa, -float(rng.uniform(0.5, 3)), float(rng.uniform(0.5, 3)))
            b = None if kind.endswith(("_const", "_square")) else new_input(sb, -float(rng.uniform(0.5, 3)),
                                                               float(rng.uniform(0.5, 3)))
            outs.append(_binary_layer(kind, a, b, sb, keras, seed=k))
    else:
        for k, (kind, shape, (lo, hi)) in enumerate(SPECS[which]):
            outs.append(_unary_layer(kind, new_input(shape, lo, hi), keras, seed=k))
    return keras.Model(ins, outs), calib


def _model_key(which: str) -> str:
    try:
        tf_version = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        tf_version = "none"
    return hashlib.sha256(repr((MODEL_VERSION, which, SPECS[which], tf_version)).encode()).hexdigest()[:16]


def converted(which: str, cache: Path, build: Callable[[], tuple[Any, list[np.ndarray]]] | None = None,
              key: str | None = None) -> bytes:
    """The converted model ``which`` (built by ``build``, default :func:`_build`), cached on disk."""
    path = cache / f"te_act_{which}-{key or _model_key(which)}.tflite"
    if path.exists():
        return path.read_bytes()
    pytest.importorskip("tensorflow")
    from tinyedge.convert import convert_keras

    model, calib = (build or (lambda: _build(which)))()
    data = convert_keras(model, calib)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # atomic under pytest-xdist
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


# ---------------------------------------------------------------- patches of the flatbuffer


def _table(data: bytearray, op_index: int) -> Any:
    import tflite
    from flatbuffers.table import Table

    options = tflite.Model.GetRootAsModel(data, 0).Subgraphs(0).Operators(op_index).BuiltinOptions()
    return Table(options.Bytes, options.Pos)


def patch_quant(data: bytes, tensor_index: int, scale: float | None = None, zero_point: int | None = None) -> bytes:
    """``data`` with tensor ``tensor_index``'s (per-tensor) scale and/or zero point replaced in place."""
    import tflite

    buf = bytearray(data)
    q = tflite.Model.GetRootAsModel(buf, 0).Subgraphs(0).Tensors(tensor_index).Quantization()
    tab = q._tab
    if scale is not None:  # QuantizationParameters field 2: scale [float]
        struct.pack_into("<f", buf, tab.Vector(tab.Offset(8)), scale)
    if zero_point is not None:  # field 3: zero_point [long]
        struct.pack_into("<q", buf, tab.Vector(tab.Offset(10)), zero_point)
    return bytes(buf)


def patch_dtype(data: bytes, tensor_index: int, dtype: int) -> bytes:
    """``data`` with tensor ``tensor_index``'s type (a TensorType value) replaced (field present)."""
    import tflite

    buf = bytearray(data)
    tab = tflite.Model.GetRootAsModel(buf, 0).Subgraphs(0).Tensors(tensor_index)._tab
    off = tab.Offset(6)  # Tensor field 1: type (byte)
    assert off, "type absent from the tensor table"
    buf[tab.Pos + off] = dtype
    return bytes(buf)


def patch_option_float(data: bytes, op_index: int, value: float) -> bytes:
    """``data`` with op ``op_index``'s first builtin option (a float: LeakyReluOptions.alpha,
    SoftmaxOptions.beta) replaced; the field must be present."""
    buf = bytearray(data)
    tab = _table(buf, op_index)
    off = tab.Offset(4)
    assert off, "option field 0 absent from the options table"
    struct.pack_into("<f", buf, tab.Pos + off, value)
    return bytes(buf)


def patch_fused_activation(data: bytes, op_index: int, act: int) -> bytes:
    """``data`` with MUL op ``op_index``'s fused activation replaced (the field must be present)."""
    buf = bytearray(data)
    tab = _table(buf, op_index)
    off = tab.Offset(4)  # MulOptions field 0: fused_activation_function (byte)
    assert off, "fused_activation_function absent from the options table"
    buf[tab.Pos + off] = act
    return bytes(buf)


def loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def random_zp(rng: np.random.Generator) -> int:
    return int(rng.integers(-128, 127, endpoint=True))


# LOGISTIC / TANH input scales at the edges of TFLM's fixed point: the smallest
# Prepare accepts (left shift 0), powers of two (exact multipliers), a scale whose
# radius is 1, scales where every input saturates (radius 0).
EDGE_LUT_SCALES = (2.0**-28, 2.0**-28 * 1.5, 2.0**-20, 2.0**-12, 2.0**-7, 2.0**-4, 0.5, 1.0, 3.0, 15.0, 16.0,
                   2.0**10, 2.0**34)


def _patch_op(data: bytes, g: Graph, op: Operator, rng: np.random.Generator, variant: int) -> bytes:
    """Random (but legal for TFLM) quantization for one op's tensors."""
    x, y = op.inputs[0], op.outputs[0]
    s_in = loguniform(rng, 1e-3, 1.0)
    if op.opcode in ("MAXIMUM", "MINIMUM"):  # raw compare: only the values matter
        return data
    if op.opcode == "MUL":
        s1, s2 = g.tensor(op.inputs[0]).scale, g.tensor(op.inputs[1]).scale
        real = loguniform(rng, 2e-3, 60.0)  # real multipliers from 1/500 up to 60
        if op.options.get("fused_activation_function", 0):  # RELU -> RELU / RELU_N1_TO_1 / RELU6 in turn
            data = patch_fused_activation(data, op.index, 1 + variant % 3)
        data = patch_quant(data, op.inputs[0], zero_point=random_zp(rng))
        data = patch_quant(data, op.inputs[1], zero_point=random_zp(rng))
        return patch_quant(data, y, scale=s1 * s2 / real, zero_point=random_zp(rng))
    if op.opcode in ("LOGISTIC", "TANH"):
        edges = EDGE_LUT_SCALES
        s_in = edges[variant] if variant < len(edges) else loguniform(rng, 2.0**-16, 64.0)
        data = patch_quant(data, x, scale=s_in, zero_point=random_zp(rng))
        # TFLM reads LOGISTIC's output zero point (it must be -128) and nothing else of the output
        zp_out = -128 if op.opcode == "LOGISTIC" else random_zp(rng)
        return patch_quant(data, y, scale=loguniform(rng, 1e-3, 1.0), zero_point=zp_out)
    data = patch_quant(data, x, scale=s_in, zero_point=random_zp(rng))
    if op.opcode == "HARD_SWISH":  # TFLM requires input_scale / 128 < output_scale
        return patch_quant(data, y, scale=s_in * loguniform(rng, 1 / 110, 8.0), zero_point=random_zp(rng))
    if op.opcode == "LEAKY_RELU":  # any alpha, negative ones too (Keras allows only >= 0)
        data = patch_option_float(data, op.index, float(rng.uniform(-1.0, 2.0)))
    if op.opcode == "PRELU":
        data = patch_quant(data, op.inputs[1], scale=loguniform(rng, 1e-3, 0.05), zero_point=random_zp(rng))
    return patch_quant(data, y, scale=s_in * loguniform(rng, 1 / 64, 64.0), zero_point=random_zp(rng))


def variants(data: bytes, n: int, seed: int,
             patch: Callable[[bytes, Graph, Operator, np.random.Generator, int], bytes] = _patch_op) -> list[bytes]:
    """``data`` and ``n`` copies with every op's quantization patched (seeded)."""
    g = read_model(data)
    out = [data]
    for v in range(n):
        rng = np.random.default_rng(seed * 1000 + v)
        patched = data
        for op in g.operators:
            patched = patch(patched, g, op, rng, v)
        out.append(patched)
    return out


# ---------------------------------------------------------------- running


def sample(g: Graph, rng: np.random.Generator, fill: int | None) -> list[np.ndarray]:
    """One array per graph input, in order: all 256 int8 values shuffled when it has room."""
    out = []
    for t in g.input_tensors:
        if fill is not None:
            x = np.full(t.size, fill)
        elif t.size >= 256:
            x = rng.permutation(np.resize(np.arange(-128, 128), t.size))
        else:
            x = rng.integers(-128, 127, size=t.size, endpoint=True)
        out.append(x.astype(np.int8).reshape(t.shape))
    return out


def samples_for(g: Graph, rng: np.random.Generator, n_random: int = N_RANDOM) -> list[list[np.ndarray]]:
    return [sample(g, rng, None) for _ in range(n_random)] + [sample(g, rng, fill) for fill in (-128, 127)]


def _labels(g: Graph) -> dict[int, str]:
    """Output tensor index -> 'op N OPCODE' of the op producing it."""
    return {op.outputs[0]: f"op {op.index} {op.opcode}" for op in g.operators}


def run_against_oracle(models: list[tuple[str, bytes]], workdir: Path, seed: int) -> tuple[int, list[str]]:
    """Merge the models into one host network; every output of every sample vs each model's oracle.

    Returns (values compared, mismatch descriptions)."""
    graphs = [read_model(data, name) for name, data in models]
    host = HostNetwork(merge_graphs(graphs), workdir)
    oracles = [Oracle(data) for _, data in models]
    rng = np.random.default_rng(seed)
    per_model = [samples_for(g, rng) for g in graphs]
    got = host.run_many([[x for s in per_model for x in s[k]] for k in range(len(per_model[0]))])
    compared = 0
    bad: list[str] = []
    for k, outs in enumerate(got):
        pos = 0
        for (name, _), g, o, s in zip(models, graphs, oracles, per_model):
            want = o.run(s[k])
            labels = _labels(g)
            for t, w in zip(g.outputs, want, strict=True):
                h = outs[pos].reshape(w.shape)
                pos += 1
                compared += w.size
                if not np.array_equal(w, h):
                    d = np.abs(w.astype(int) - h.astype(int))
                    bad.append(f"{name} sample {k} {labels[t]}: {int(np.count_nonzero(d))}/{w.size} differ, "
                               f"max {int(d.max())}")
    return compared, bad


def validate_in_qemu(data: bytes, name: str, board_name: str, workdir: Path, seed: int) -> None:
    """Generate, build and run ``data`` as firmware in QEMU on ``board_name``: every output of
    every sample (all 256 int8 values per input of >= 256 elements) must equal the oracle's."""
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        require_tool(tool)
    from dataclasses import asdict

    from tinyedge.boards import load_board
    from tinyedge.build import build_project
    from tinyedge.codegen.project import generate_project
    from tinyedge.compiler import compile
    from tinyedge.validate import validate_on_target

    g = read_model(data, name)
    net = compile(g, load_board(board_name))
    generate_project(net, workdir / "fw")
    built = build_project(workdir / "fw")
    samples = samples_for(g, np.random.default_rng(seed), n_random=2)
    report = validate_on_target(net, built.elf, samples, workdir / "report.json",
                                asdict(built.memory), emulator="qemu")
    assert report.complete and len(report.samples) == len(samples), name
    assert report.all_exact, f"{name} on {board_name}: {[s for s in report.samples if not s.exact][:1]}"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def base_models(request: pytest.FixtureRequest) -> dict[str, bytes]:
    cache = Path(request.config.cache.mkdir("tinyedge-keras-models"))
    return {which: converted(which, cache) for which in SPECS}


# ---------------------------------------------------------------- tests


def test_models_hold_the_ops_meant(base_models: dict[str, bytes]) -> None:
    """The converter kept every branch as the op it was meant to be; the oracle of each
    model is the one meant (TFLM, except for RELU_N1_TO_1)."""
    want = {"relu": "RELU", "relu6": "RELU6", "relu_n1_to_1": "RELU_N1_TO_1", "hard_swish": "HARD_SWISH",
            "sigmoid": "LOGISTIC", "tanh": "TANH"}
    for which in ("unary", "relu_n1", "lut"):
        g = read_model(base_models[which])
        expected = sorted(want.get(k, "LEAKY_RELU" if k.startswith("leaky") else "PRELU") for k, _, _ in SPECS[which])
        assert sorted(op.opcode for op in g.operators) == expected, which
    binary = read_model(base_models["binary"])
    assert {op.opcode for op in binary.operators} == {"MUL", "MAXIMUM", "MINIMUM"}
    assert len(binary.operators) == len(BINARY)
    shapes = [(binary.tensor(op.inputs[0]).shape, binary.tensor(op.inputs[1]).shape) for op in binary.operators]
    assert any(a == b for a, b in shapes) and any(a != b for a, b in shapes)
    assert max(len(binary.tensor(op.outputs[0]).shape) for op in binary.operators) == 6
    assert any(op.options.get("fused_activation_function") == 1 for op in binary.operators)
    assert any(binary.tensor(i).is_const for op in binary.operators for i in op.inputs)
    assert isinstance(Oracle(base_models["unary"]), TflmOracle)
    assert isinstance(Oracle(base_models["binary"]), TflmOracle)
    assert isinstance(Oracle(base_models["relu_n1"]), SplitOracle)  # TFLite computes the RELU_N1_TO_1s


def test_unary_ops_bit_exact(base_models: dict[str, bytes], tmp_path: Path) -> None:
    """RELU, RELU6, LEAKY_RELU, PRELU, HARD_SWISH, LOGISTIC, TANH vs TFLM:
    converted and patched quantizations, exhaustive over the int8 inputs."""
    models = [(f"unary v{v}", d) for v, d in enumerate(variants(base_models["unary"], N_VARIANTS, seed=11))]
    compared, bad = run_against_oracle(models, tmp_path, seed=5)
    assert not bad, "not bit-exact with TFLM:\n" + "\n".join(bad[:40])
    assert compared > 50_000


def test_logistic_tanh_exhaustive_over_many_scales(base_models: dict[str, bytes], tmp_path: Path) -> None:
    """LOGISTIC and TANH vs TFLM's fixed point: all 256 inputs, for 15 x TE_ACT_VARIANTS
    input scales / zero points each (the edges of EDGE_LUT_SCALES among them) and output
    quantizations TFLM does not read."""
    n = 15 * N_VARIANTS
    models = [(f"lut v{v}", d) for v, d in enumerate(variants(base_models["lut"], n, seed=13))]
    scales = {read_model(d).tensor(op.inputs[0]).scale for _, d in models for op in read_model(d).operators}
    assert {float(np.float32(s)) for s in EDGE_LUT_SCALES} <= scales or n < len(EDGE_LUT_SCALES)
    compared, bad = run_against_oracle(models, tmp_path, seed=7)
    assert not bad, "not bit-exact with TFLM:\n" + "\n".join(bad[:40])
    assert compared == (n + 1) * 2 * 256 * (N_RANDOM + 2)


def test_relu_n1_to_1_follows_tflite(base_models: dict[str, bytes], tmp_path: Path) -> None:
    """RELU_N1_TO_1, which TFLM has no kernel for, vs the TFLite interpreter."""
    models = [(f"relu_n1 v{v}", d) for v, d in enumerate(variants(base_models["relu_n1"], N_VARIANTS, seed=14))]
    compared, bad = run_against_oracle(models, tmp_path, seed=8)
    assert not bad, "not bit-exact with the TFLite interpreter:\n" + "\n".join(bad[:40])
    assert compared > 2_000


def test_binary_ops_bit_exact(base_models: dict[str, bytes], tmp_path: Path) -> None:
    """MUL (flat and broadcast, multipliers up to 60, every fused activation), MAXIMUM,
    MINIMUM vs TFLM."""
    models = [(f"binary v{v}", d) for v, d in enumerate(variants(base_models["binary"], N_VARIANTS, seed=12))]
    compared, bad = run_against_oracle(models, tmp_path, seed=6)
    assert not bad, "not bit-exact with TFLM:\n" + "\n".join(bad[:40])
    assert compared > 20_000


_TRANSCENDENTALS = {"math": ("exp", "expm1", "log", "log2", "log10", "log1p", "pow", "tanh", "sinh", "cosh"),
                    "numpy": ("exp", "expm1", "exp2", "log", "log2", "log10", "log1p", "power", "tanh")}


def test_tables_use_no_host_math_library(base_models: dict[str, bytes], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Lowering LOGISTIC / TANH calls no transcendental function of the host (math, numpy, a
    C library through ctypes): the tables are integer arithmetic, the same on every host."""
    import ctypes

    from tinyedge.compiler import compile

    graphs = [read_model(data) for data in variants(base_models["lut"], 2, seed=15)]

    def forbidden(*_: Any, **__: Any) -> Any:
        raise AssertionError("a host math library function was called")

    for module, names in _TRANSCENDENTALS.items():
        for name in names:
            monkeypatch.setattr(f"{module}.{name}", forbidden)
    monkeypatch.setattr(ctypes, "CDLL", forbidden)
    for g in graphs:
        lowered = compile(g).ops
        assert {lo.op.opcode for lo in lowered} == {"LOGISTIC", "TANH"}


MY_OPS = {"MUL", "MAXIMUM", "MINIMUM", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "PRELU", "HARD_SWISH",
          "LOGISTIC", "TANH", "SOFTMAX"}


def test_layers_of_reference_models_bit_exact(matrix_cache: Path, tmp_path: Path) -> None:
    """Every layer of these ops (SOFTMAX too) in the shared reference models and the Keras matrix
    models, alone, fed TFLM's own input tensors for that layer (the TFLM interpreter with all
    tensors preserved), gives TFLM's output tensor: whatever other ops compute before them."""
    from tflite_micro.python.tflite_micro import runtime

    from conftest import MODEL_NAMES, shared_model
    from test_keras_matrix import MATRIX, tflite_for

    models = [(n, shared_model(n).read_bytes()) for n in MODEL_NAMES]
    models += [(c.name, tflite_for(c, matrix_cache)) for c in MATRIX]
    rng = np.random.default_rng(17)
    subgraphs: list[Graph] = []
    feeds: list[list[np.ndarray]] = [[] for _ in range(4)]
    want: list[list[np.ndarray]] = [[] for _ in range(4)]
    where: list[str] = []
    for name, data in models:
        g = read_model(data, name)
        layers = [op for op in g.operators if op.opcode in MY_OPS]
        if not layers or "TILE" in {op.opcode for op in g.operators}:  # TFLM cannot load a model with TILE
            continue
        ins = [[i for i in op.inputs if i >= 0 and not g.tensor(i).is_const] for op in layers]
        subgraphs += [replace(g, operators=[replace(op, index=0)], inputs=i, outputs=[op.outputs[0]])
                      for op, i in zip(layers, ins)]
        where += [f"{name} op {op.index} {op.opcode}" for op in layers]
        interp = runtime.Interpreter.from_bytes(data, arena_size=max(len(data) * 10, 16 << 20),
                                                intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
        for k in range(4):
            for j, t in enumerate(g.input_tensors):
                interp.set_input(rng.integers(-128, 128, t.shape, dtype=np.int8), j)
            interp.invoke()
            feeds[k] += [interp.GetTensor(i, 0)["tensor_data"] for i_s in ins for i in i_s]
            want[k] += [interp.GetTensor(op.outputs[0], 0)["tensor_data"] for op in layers]
    assert {w.split()[-1] for w in where} >= {"SOFTMAX", "LOGISTIC", "TANH", "HARD_SWISH", "MUL", "PRELU"}
    got = HostNetwork(merge_graphs(subgraphs), tmp_path).run_many(feeds)
    bad = [f"{label}, sample {k}: {int(np.count_nonzero(o.reshape(w.shape) != w))} values differ"
           for k in range(4) for label, o, w in zip(where, got[k], want[k], strict=True)
           if not np.array_equal(o.reshape(w.shape), w)]
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------- check() refusals


def _graph_with(data: bytes, opcode: str, change: Callable[[Graph, Operator], Graph]) -> tuple[Graph, Operator]:
    g = read_model(data)
    op = next(o for o in g.operators if o.opcode == opcode)
    g2 = change(g, op)
    return g2, next(o for o in g2.operators if o.index == op.index)


def set_tensor(g: Graph, index: int, **kw: Any) -> Graph:
    tensors = list(g.tensors)
    tensors[index] = replace(tensors[index], **kw)
    return replace(g, tensors=tensors)


def set_quant(g: Graph, index: int, scale: float | None = None, zero_point: int | None = None) -> Graph:
    q = g.tensor(index).quant
    assert q is not None
    q = replace(q, scale=q.scale if scale is None else (scale,),
                zero_point=q.zero_point if zero_point is None else (zero_point,))
    return set_tensor(g, index, quant=q)


def problems_of(data: bytes, opcode: str, change: Callable[[Graph, Operator], Graph]) -> str:
    g, op = _graph_with(data, opcode, change)
    return " | ".join(load_all()[opcode].check(op, g))


def test_check_names_what_is_unsupported(base_models: dict[str, bytes]) -> None:
    registry = load_all()
    unary, binary = base_models["unary"], base_models["binary"]

    # every op of the test models is accepted as converted
    for data in base_models.values():
        g = read_model(data)
        for op in g.operators:
            assert registry[op.opcode].check(op, g) == [], op.opcode

    p = problems_of(binary, "MUL", lambda g, op: set_tensor(g, op.inputs[0], dtype="int16"))
    assert "input 1 dtype int16" in p
    p = problems_of(binary, "MUL", lambda g, op: replace(g, operators=[
        replace(o, options={"fused_activation_function": 4}) if o.index == op.index else o for o in g.operators]))
    assert "fused activation TANH" in p
    p = problems_of(binary, "MUL", lambda g, op: set_tensor(set_tensor(set_tensor(
        g, op.inputs[0], shape=(1,) * 7), op.inputs[1], shape=(1,) * 7), op.outputs[0], shape=(1,) * 7))
    assert "MUL: rank 7 not supported (max 6)" in p
    p = problems_of(binary, "MUL", lambda g, op: set_quant(replace(g, operators=[
        replace(o, options={"fused_activation_function": 3}) if o.index == op.index else o for o in g.operators]),
        op.outputs[0], scale=1e-9))
    assert "too small for RELU6" in p
    p = problems_of(binary, "MAXIMUM", lambda g, op: set_tensor(g, op.inputs[1], shape=(3, 2)))
    assert "do not broadcast" in p
    p = problems_of(unary, "LOGISTIC", lambda g, op: set_quant(g, op.outputs[0], zero_point=0))
    assert "output zero point must be -128" in p
    p = problems_of(unary, "LOGISTIC", lambda g, op: set_quant(g, op.inputs[0], scale=2.0**-29))
    assert "outside [2^-28, 2^35)" in p
    p = problems_of(unary, "TANH", lambda g, op: set_quant(g, op.inputs[0], scale=2.0**36))
    assert "outside [2^-28, 2^35)" in p
    p = problems_of(unary, "RELU6", lambda g, op: set_quant(g, op.inputs[0], scale=2e-9))
    assert "RELU6: input scale" in p
    p = problems_of(unary, "HARD_SWISH", lambda g, op: set_quant(g, op.outputs[0],
                                                                  scale=g.tensor(op.inputs[0]).scale / 200))
    assert "HARD_SWISH" in p
    p = problems_of(unary, "PRELU", lambda g, op: set_tensor(g, op.inputs[1], quant=replace(
        g.tensor(op.inputs[1]).quant, scale=(0.1, 0.2), zero_point=(0, 0))))
    assert "alpha is quantized per channel" in p
    p = problems_of(unary, "PRELU", lambda g, op: set_tensor(set_tensor(g, op.inputs[0], shape=(1, 2, 2, 2, 2, 2, 13)),
                                                             op.outputs[0], shape=(1, 2, 2, 2, 2, 2, 13)))
    assert "PRELU: rank 7 not supported (max 6)" in p
    p = problems_of(unary, "TANH", lambda g, op: set_tensor(g, op.inputs[0], dtype="uint8"))
    assert "input dtype uint8" in p
    # the edges TFLM accepts are accepted
    assert problems_of(unary, "LOGISTIC", lambda g, op: set_quant(g, op.inputs[0], scale=2.0**-28)) == ""
    assert problems_of(unary, "TANH", lambda g, op: set_quant(g, op.inputs[0], scale=2.0**34)) == ""


# ---------------------------------------------------------------- emulator


@pytest.mark.emulator
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385", "mps3-an547"])  # Cortex-M4F, M3, M55
def test_ops_on_device(board: str, base_models: dict[str, bytes], tmp_path: Path) -> None:
    """One patched copy of each model (unary and MUL/MIN/MAX vs TFLM, RELU_N1_TO_1 vs the TFLite
    interpreter) as firmware in QEMU: the oracle's bytes on every sample."""
    for which, seed in (("unary", 11), ("binary", 12), ("relu_n1", 14)):
        data = variants(base_models[which], 1, seed=seed)[1]
        validate_in_qemu(data, f"{which} v1", board, tmp_path / which, seed=seed)
