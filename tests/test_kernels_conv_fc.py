"""FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D: generated C, compiled for the
host, is bit-exact with the TFLite oracle (host-C tier).

Expected values come only from the oracle (the TFLite interpreter with builtin
kernels, no delegate). Three sources of models:

- every layer of these ops in the shared reference models, each checked in
  isolation: it is fed the oracle's own input tensor for that layer (read with
  ``experimental_preserve_all_tensors``) and compared with the oracle's output
  tensor for that layer;
- small Keras models with awkward shapes (tests/keras_models.py plus the
  extra cases below: single output pixel, depth < 8, channel counts that are
  not multiples of 8, channel multiplier 3, per-tensor weights, ...);
- models patched to reach what the converter rarely emits: a real multiplier
  above 1 (positive shift) and the RELU_N1_TO_1 / RELU6 clamps.

Every host build is made twice: the portable C, and the kernels' DSP code
paths (``-DTE_EMULATE_DSP``: te_common.h emulates SXTB16/SMLAD/SMLABB/SMLATT),
so the Cortex-M4/M7/M33/M55 paths are checked on every awkward shape here;
the instructions themselves run in the emulator tier (QEMU).

To keep the suite fast, the single-op and patched models are merged into one
graph (ops renumbered, tensors re-indexed) and compiled once per variant; so
are all the reference models' layers.
"""

from __future__ import annotations

import copy
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from flatbuffers.table import Table

import keras_models
from graphtools import merge_graphs
from conftest import MODEL_NAMES, require_tool, shared_model
from keras_models import KerasCase
from tinyedge import quant
from tinyedge.codegen.lower import check_graph, require_supported
from tinyedge.errors import TinyEdgeError
from tinyedge.hostrun import HostNetwork
from tinyedge.model import Graph, Operator, Tensor, load_model, read_model
from tinyedge.ops import load_all
from tinyedge.resources import templates_dir

OUR_OPS = {"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"}
N_SAMPLES = 8

# ---------------------------------------------------------------- model sources

EXTRA_CASES: tuple[KerasCase, ...] = (
    # FULLY_CONNECTED: NONE activation with many negative outputs (tie breaking),
    # depth < 8 and units < 4 (the oracle's GEMM path, not its GEMV path), rows > 1.
    KerasCase("te_dense_wide", ((64,),), "L.Dense(40)(x)", ("FULLY_CONNECTED",)),
    KerasCase("te_dense_tiny", ((5,),), "L.Dense(3)(x)", ("FULLY_CONNECTED",)),
    KerasCase("te_dense_rows3", ((3, 24),), "L.Dense(19)(x)", ("FULLY_CONNECTED",)),
    KerasCase("te_dense_relu6", ((12,),), "L.Dense(9, activation='relu6')(x)", ("FULLY_CONNECTED",)),
    # CONV_2D: a single output pixel (GEMV path), in_c = 1, stride 3 / non-square.
    KerasCase("te_conv_out1x1", ((4, 4, 6),), "L.Conv2D(12, 4)(x)", ("CONV_2D",)),
    KerasCase("te_conv_c1_5x1", ((12, 7, 1),), "L.Conv2D(4, (5, 1), strides=(2, 1), padding='same')(x)",
              ("CONV_2D",)),
    KerasCase("te_conv_s3_valid", ((11, 10, 2),), "L.Conv2D(5, (3, 2), strides=(3, 2))(x)", ("CONV_2D",)),
    # DEPTHWISE_CONV_2D: channels not a multiple of 8 (the oracle rounds the
    # last out_c % 8 channels differently), multiplier 3, 5x5 stride 2.
    KerasCase("te_dw_21ch", ((9, 10, 21),), "L.DepthwiseConv2D(3, padding='same')(x)",
              ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_m3_s2", ((9, 10, 5),), "L.DepthwiseConv2D(3, strides=2, depth_multiplier=3, padding='same')(x)",
              ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_5x5_s2", ((11, 9, 10),), "L.DepthwiseConv2D(5, strides=2)(x)", ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_nobias_16", ((6, 7, 16),), "L.DepthwiseConv2D(3, padding='same', use_bias=False)(x)",
              ("DEPTHWISE_CONV_2D",)),
)

# Per-tensor weights (the converter's per-channel quantization disabled).
PER_TENSOR_CASES: tuple[KerasCase, ...] = (
    KerasCase("te_pt_dense", ((48,),), "L.Dense(20)(x)", ("FULLY_CONNECTED",)),
    KerasCase("te_pt_conv", ((9, 11, 5),), "L.Conv2D(13, 3, padding='same')(x)", ("CONV_2D",)),
    KerasCase("te_pt_dw", ((9, 10, 21),), "L.DepthwiseConv2D(3, padding='same')(x)", ("DEPTHWISE_CONV_2D",)),
    # deep and bias-free: the multiplier test below crafts inputs that hit chosen accumulators
    KerasCase("te_pt_dense_deep_a", ((2048,),), "L.Dense(8, use_bias=False)(x)", ("FULLY_CONNECTED",)),
)


def _factory_cases() -> list[str]:
    """tests/keras_models.py cases made only of our ops (others' kernels are tested elsewhere)."""
    return [c.name for c in keras_models.CASES if set(c.ops) <= OUR_OPS and c.io == "int8"]


def _cached(cache: Path, c: KerasCase, tag: str, build: Callable[[], bytes]) -> bytes:
    path = cache / f"{c.name}-{tag}-{c.key()}.tflite"
    if path.exists():
        return path.read_bytes()
    data = build()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # atomic under pytest-xdist
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


def _convert_per_tensor(c: KerasCase) -> bytes:
    """Like tinyedge.convert, but with the converter's per-channel weights switched off."""
    import keras
    import tensorflow as tf

    model = keras_models.build_keras(c)
    (calib,) = keras_models.calibration_data(c)
    inp = keras.Input(c.inputs[0], batch_size=1)
    wrapped = keras.Model(inp, model(inp))

    def representative() -> Any:
        for row in calib:
            yield [row[None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(wrapped)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    conv._experimental_disable_per_channel = True
    conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    data = conv.convert()
    g = read_model(data, c.name)
    assert tuple(op.opcode for op in g.operators) == c.ops
    return data


# ---------------------------------------------------------------- flatbuffer patches


def with_fused_activation(data: bytes, op_index: int, act: int) -> bytes:
    """``data`` with op ``op_index``'s fused_activation_function set to ``act`` (field must be present)."""
    import tflite

    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(buf, 0)
    op = model.Subgraphs(0).Operators(op_index)
    code = model.OperatorCodes(op.OpcodeIndex())
    opcode = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    slot = {tflite.BuiltinOperator.CONV_2D: 3, tflite.BuiltinOperator.DEPTHWISE_CONV_2D: 4,
            tflite.BuiltinOperator.FULLY_CONNECTED: 0}[opcode]
    table = op.BuiltinOptions()
    tab = Table(table.Bytes, table.Pos)
    off = tab.Offset(4 + 2 * slot)
    assert off, "fused_activation_function absent (default NONE): start from a model with an activation"
    buf[tab.Pos + off] = act
    return bytes(buf)


def with_output_scale(data: bytes, factor: float) -> bytes:
    """``data`` with the (single) model output's scale multiplied by ``factor``."""
    import tflite

    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(buf, 0)
    sg = model.Subgraphs(0)
    q = sg.Tensors(sg.Outputs(0)).Quantization()
    tab = q._tab
    off = tab.Offset(8)  # QuantizationParameters field 2: scale (vector of float)
    pos = tab.Vector(off)
    (old,) = struct.unpack_from("<f", buf, pos)
    struct.pack_into("<f", buf, pos, np.float32(old * factor))
    return bytes(buf)


# ---------------------------------------------------------------- graph surgery


def isolate_ops(graph: Graph, ops: list[Operator]) -> Graph:
    """A graph computing just ``ops``, each from its own graph input (a copy of its
    activation input), with every op output a graph output."""
    tensors = list(graph.tensors)
    new_ops: list[Operator] = []
    inputs: list[int] = []
    for op in ops:
        src = graph.tensor(op.inputs[0])
        fresh = replace(src, index=len(tensors), name=f"{src.name}@in{op.index}")
        tensors.append(fresh)
        inputs.append(fresh.index)
        new_ops.append(replace(op, index=len(new_ops), inputs=[fresh.index, *op.inputs[1:]]))
    return replace(graph, tensors=tensors, operators=new_ops, inputs=inputs,
                   outputs=[op.outputs[0] for op in ops])


# ---------------------------------------------------------------- the oracle


def _interpreter(data: bytes) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=data, num_threads=1,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    return it


class LayerOracle:
    """The oracle on one model, keeping every intermediate tensor readable."""

    def __init__(self, data: bytes) -> None:
        self.it = _interpreter(data)

    def run(self, inputs: list[np.ndarray], wanted: list[int]) -> list[np.ndarray]:
        """Run on ``inputs``; return the tensors ``wanted`` (any tensor index of the graph)."""
        for det, x in zip(self.it.get_input_details(), inputs, strict=True):
            self.it.set_tensor(det["index"], x.reshape(det["shape"]))
        self.it.invoke()
        return [self.it.get_tensor(i).copy() for i in wanted]


def random_int8(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Uniform over the int8 range."""
    return rng.integers(-128, 127, size=shape, endpoint=True, dtype=np.int8)


def assert_exact(got: list[np.ndarray], want: list[np.ndarray], labels: list[str]) -> int:
    bad = []
    total = 0
    for g, w, label in zip(got, want, labels, strict=True):
        g = g.reshape(w.shape)
        total += w.size
        if not np.array_equal(g, w):
            d = np.abs(g.astype(np.int32) - w.astype(np.int32))
            bad.append(f"{label}: {int(np.count_nonzero(d))}/{w.size} differ, max {int(d.max())}")
    assert not bad, "not bit-exact with the oracle:\n" + "\n".join(bad)
    return total


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def model_cache(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.cache.mkdir("tinyedge-keras-models"))


@pytest.fixture(scope="session")
def single_op_models(model_cache: Path) -> dict[str, bytes]:
    """name -> .tflite bytes of every single-op model this file tests."""
    out: dict[str, bytes] = {}
    for name in _factory_cases():
        out[name] = keras_models.tflite_model(name, model_cache)
    for c in EXTRA_CASES:
        out[c.name] = _cached(model_cache, c, "pc", lambda c=c: keras_models.convert_case(c))
    for c in PER_TENSOR_CASES:
        out[c.name] = _cached(model_cache, c, "pt", lambda c=c: _convert_per_tensor(c))
    return out


# ---------------------------------------------------------------- single-op models


def _uniform_inputs(name: str, g: Graph, rng: np.random.Generator) -> list[list[np.ndarray]]:
    samples = [[random_int8(t.shape, rng) for t in g.input_tensors] for _ in range(N_SAMPLES)]
    for fill in (-128, 127):  # the extremes of the input range
        samples.append([np.full(t.shape, fill, np.int8) for t in g.input_tensors])
    return samples


def _near_zero_point_inputs(name: str, g: Graph, rng: np.random.Generator) -> list[list[np.ndarray]]:
    """Sparse inputs at the zero point +-2 (unsaturated outputs even with a multiplier > 1), and uniform ones."""
    def sparse(t: Tensor) -> np.ndarray:
        delta = rng.integers(-2, 2, size=t.shape, endpoint=True) * (rng.random(t.shape) < 0.15)
        return np.clip(t.zero_point + delta, -128, 127).astype(np.int8)

    near = [[sparse(t) for t in g.input_tensors] for _ in range(N_SAMPLES)]
    return near + _uniform_inputs(name, g, rng)


def _reals(g: Graph, op: Operator) -> list[float]:
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    assert w.quant is not None
    fn = quant.fc_effective_scales if op.opcode == "FULLY_CONNECTED" else quant.conv_effective_scales
    return fn(x.scale, w.quant.scale, y.scale, len(w.quant.scale))


def _patched_models(models: dict[str, bytes]) -> dict[str, bytes]:
    """Options the converter rarely emits, patched into converted models."""
    out = {}
    for name in ("dense_relu", "conv_relu", "dw_valid_relu"):
        out[f"{name}->relu_n1_to_1"] = with_fused_activation(models[name], 0, 2)
        out[f"{name}->relu6"] = with_fused_activation(models[name], 0, 3)
    # real multipliers above 1 (positive shifts): shrink the output scale until
    # the largest channel multiplier is ~3 (bias-free models, so that inputs
    # near the zero point give unsaturated outputs)
    for name in ("dense_nobias", "conv_nobias", "te_dw_nobias_16"):
        g = read_model(models[name], name)
        factor = max(_reals(g, g.operators[0])) / 3.0
        out[f"{name}->multiplier>1"] = with_output_scale(models[name], factor)
    return out


@dataclass
class Results:
    """Host and oracle outputs of one model, sample by sample."""

    host: list[np.ndarray]
    oracle: list[np.ndarray]
    labels: list[str]

    def assert_exact(self) -> int:
        return assert_exact(self.host, self.oracle, self.labels)


def host_cc(variant: str, workdir: Path) -> str:
    """The host compiler for a kernel variant: "portable", or "dsp-emulated" (the
    kernels' __ARM_FEATURE_DSP code paths, with te_common.h's emulated intrinsics)."""
    if variant == "portable":
        return "cc"
    wrapper = workdir / "cc-dsp-emulated"
    wrapper.write_text('#!/bin/sh\nexec cc -DTE_EMULATE_DSP "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture(scope="session", params=["portable", "dsp-emulated"])
def bench(request: pytest.FixtureRequest, single_op_models: dict[str, bytes],
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Results]:
    """Every single-op model and every patched model, merged into one host network
    (one compile per kernel variant), run on its inputs; the oracle run on the same inputs."""
    from tinyedge.oracle import Oracle

    patched = _patched_models(single_op_models)
    named = sorted(single_op_models.items()) + sorted(patched.items())
    graphs = [read_model(data, name) for name, data in named]
    workdir = tmp_path_factory.mktemp(f"bench-{request.param}")
    host = HostNetwork(merge_graphs(graphs), workdir, cc=host_cc(request.param, workdir))
    rng = np.random.default_rng(20240611)
    per_model = [(_near_zero_point_inputs if name in patched else _uniform_inputs)(name, g, rng)
                 for (name, _), g in zip(named, graphs)]
    n = max(len(s) for s in per_model)
    got = host.run_many([[x for s in per_model for x in s[k % len(s)]] for k in range(n)])
    results: dict[str, Results] = {}
    pos = 0
    for (name, data), g, samples in zip(named, graphs, per_model):
        oracle = Oracle(data)
        r = Results([], [], [])
        for k, sample in enumerate(samples):
            r.oracle += oracle.run(sample)
            r.host += got[k][pos:pos + len(g.outputs)]
            r.labels += [f"{name} sample {k} output {j}" for j in range(len(g.outputs))]
        pos += len(g.outputs)
        results[name] = r
    return results


@pytest.mark.parametrize("opcode", sorted(OUR_OPS))
def test_single_op_models_bit_exact(opcode: str, single_op_models: dict[str, bytes],
                                    bench: dict[str, Results]) -> None:
    names = [n for n, data in single_op_models.items()
             if {op.opcode for op in read_model(data, n).operators} == {opcode}]
    assert len(names) >= 6, names
    failures = []
    checked = 0
    for name in sorted(names):
        try:
            checked += bench[name].assert_exact()
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)
    assert checked > 1000


def test_patched_options_bit_exact(single_op_models: dict[str, bytes], bench: dict[str, Results]) -> None:
    patched = _patched_models(single_op_models)
    # the patches do what they claim: positive shifts and the two clamps appear
    shifts: list[int] = []
    acts = set()
    for name, data in patched.items():
        g = read_model(data, name)
        (op,) = g.operators
        shifts += [quant.quantize_multiplier(r)[1] for r in _reals(g, op)]
        acts.add(int(op.options["fused_activation_function"]))
    assert max(shifts) > 0 and {2, 3} <= acts
    failures = []
    for name in sorted(patched):
        try:
            bench[name].assert_exact()
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)


def _craft(w: np.ndarray, zp: int, target: int, rng: np.random.Generator) -> np.ndarray | None:
    """An int8 input x with sum((x - zp) * w) == target, by greedy coordinate moves."""
    x = rng.integers(-128, 127, size=w.size, endpoint=True).astype(np.int64)
    nonzero = np.flatnonzero(w)
    for _ in range(20_000):
        d = target - int((x - zp) @ w)
        if d == 0:
            return x.astype(np.int8)
        small = nonzero[np.abs(w[nonzero]) <= abs(d)]
        i = int(rng.choice(small if small.size else nonzero))
        step = d // int(w[i]) if small.size else int(np.sign(d) * np.sign(w[i]))
        x[i] = int(np.clip(x[i] + step, -128, 127))
    return None


def test_fc_per_tensor_multiplier_is_the_float_product(single_op_models: dict[str, bytes], tmp_path: Path) -> None:
    """Per-tensor FULLY_CONNECTED derives its multiplier from float32(s_in * s_w) / s_out
    (TFLite's GetQuantizedConvolutionMultipler), not from the double product. The two differ in
    the Q31 mantissa's last bits, which shows only for rare accumulators: craft inputs that hit
    them and compare with the oracle."""
    from tinyedge.oracle import Oracle

    data = single_op_models["te_pt_dense_deep_a"]
    g = read_model(data, "te_pt_dense_deep_a")
    (op,) = g.operators
    x_t, w_t, y_t = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    assert w_t.quant is not None and not w_t.quant.per_channel
    as_float = quant.quantize_multiplier(float(np.float32(x_t.scale) * np.float32(w_t.quant.scale[0])) / y_t.scale)
    as_double = quant.quantize_multiplier(x_t.scale * w_t.quant.scale[0] / y_t.scale)
    assert as_float != as_double, "the case no longer separates the two derivations"
    rq = quant.mul_by_quantized_multiplier_round_up
    real = as_float[0] * 2.0 ** (as_float[1] - 31)
    span = np.arange(-int(250 / real), int(250 / real))
    near_half = span[np.abs((span * real) % 1 - 0.5) < 1e-3]
    telling = [int(a) for a in near_half if rq(int(a), *as_float) != rq(int(a), *as_double)]
    assert telling, "no accumulator separates the two derivations"
    w = w_t.array().astype(np.int64)
    rng = np.random.default_rng(3)
    host = HostNetwork(g, tmp_path)
    oracle = Oracle(data)
    samples, units = [], []
    for target in telling[:6]:
        j = int(rng.integers(0, w.shape[0]))
        x = _craft(w[j], x_t.zero_point, target, rng)
        if x is not None:
            samples.append([x.reshape(x_t.shape)])
            units.append(j)
    assert len(samples) >= 3
    got = host.run_many(samples)
    for s, out, j in zip(samples, got, units):
        want = oracle.run(s)[0]
        assert np.array_equal(out[0], want), f"unit {j}: host {out[0].reshape(-1)[j]} oracle {want.reshape(-1)[j]}"


# ---------------------------------------------------------------- shared models, layer by layer


@pytest.mark.parametrize("variant", ["portable", "dsp-emulated"])
def test_shared_model_layers_bit_exact(variant: str, tmp_path: Path) -> None:
    """Every FC / CONV / DEPTHWISE layer of every reference model, in isolation, fed the
    oracle's own input tensor for that layer; all layers of all models in one host build."""
    graphs = {name: load_model(shared_model(name)) for name in MODEL_NAMES}
    layers = {name: [op for op in g.operators if op.opcode in OUR_OPS] for name, g in graphs.items()}
    assert all(layers.values()), {n: len(v) for n, v in layers.items()}
    host = HostNetwork(merge_graphs([isolate_ops(graphs[n], layers[n]) for n in MODEL_NAMES]), tmp_path,
                       cc=host_cc(variant, tmp_path))
    oracles = {name: LayerOracle(g.model_bytes) for name, g in graphs.items()}
    rng = np.random.default_rng(7)
    total = 0
    for k in range(N_SAMPLES):
        feed: list[np.ndarray] = []
        want: list[np.ndarray] = []
        labels: list[str] = []
        for name in MODEL_NAMES:
            g, ops = graphs[name], layers[name]
            x = [np.full(t.shape, -128, np.int8) if k == 0 else random_int8(t.shape, rng)
                 for t in g.input_tensors]
            tensors = oracles[name].run(x, [op.inputs[0] for op in ops] + [op.outputs[0] for op in ops])
            feed += tensors[:len(ops)]
            want += tensors[len(ops):]
            labels += [f"{name} op {op.index} {op.opcode} sample {k}" for op in ops]
        total += assert_exact(host.run(feed), want, labels)
    assert total > 100_000


# ---------------------------------------------------------------- check(): unsupported options


def _kws() -> Graph:
    return load_model(shared_model("kws_ref_model"))


def _first(graph: Graph, opcode: str) -> Operator:
    return next(op for op in graph.operators if op.opcode == opcode)


def _problems(graph: Graph, op: Operator) -> list[str]:
    return load_all()[op.opcode].check(op, graph)


@pytest.mark.parametrize("opcode", sorted(OUR_OPS))
def test_check_accepts_reference_layers(opcode: str) -> None:
    for name in MODEL_NAMES:
        g = load_model(shared_model(name))
        for op in g.operators:
            if op.opcode == opcode:
                assert _problems(g, op) == [], f"{name} op {op.index}"


@pytest.mark.parametrize("opcode", sorted(OUR_OPS))
def test_check_names_an_unsupported_activation(opcode: str) -> None:
    g = copy.deepcopy(_kws())
    op = _first(g, opcode)
    op.options["fused_activation_function"] = 4  # TANH
    problems = _problems(g, op)
    assert any("TANH" in p and "fused_activation_function" in p for p in problems), problems


@pytest.mark.parametrize("opcode", sorted(OUR_OPS))
def test_check_names_non_int8_tensors(opcode: str) -> None:
    g = copy.deepcopy(_kws())
    op = _first(g, opcode)
    i = op.inputs[0]
    g.tensors[i] = replace(g.tensors[i], dtype="int16")
    assert any("input dtype int16 is not supported" in p for p in _problems(g, op))
    g = copy.deepcopy(_kws())
    op = _first(g, opcode)
    w = op.inputs[1]
    g.tensors[w] = replace(g.tensors[w], dtype="uint8")
    assert any("filter is uint8" in p for p in _problems(g, op))
    g = copy.deepcopy(_kws())
    op = _first(g, opcode)
    b = op.inputs[2]
    g.tensors[b] = replace(g.tensors[b], dtype="int64")
    assert any("bias is int64" in p for p in _problems(g, op))


def test_check_names_asymmetric_weights_and_bad_options() -> None:
    g = copy.deepcopy(_kws())
    op = _first(g, "CONV_2D")
    w = g.tensors[op.inputs[1]]
    assert w.quant is not None
    g.tensors[w.index] = replace(w, quant=replace(w.quant, zero_point=(3,) * len(w.quant.scale)))
    assert any("zero point" in p for p in _problems(g, op))

    g = copy.deepcopy(_kws())
    op = _first(g, "CONV_2D")
    op.options["padding"] = 7
    assert any("padding 7" in p for p in _problems(g, op))

    g = copy.deepcopy(_kws())
    op = _first(g, "FULLY_CONNECTED")
    op.options["weights_format"] = 1
    assert any("weights_format" in p for p in _problems(g, op))

    g = copy.deepcopy(_kws())
    op = _first(g, "DEPTHWISE_CONV_2D")
    op.options["depth_multiplier"] = 5
    assert any("depth_multiplier 5" in p for p in _problems(g, op))

    g = copy.deepcopy(_kws())
    op = _first(g, "CONV_2D")
    op.options["stride_h"] = 3  # the output shape no longer matches
    assert any("output shape" in p for p in _problems(g, op))


def test_unsupported_option_is_a_clear_error() -> None:
    g = copy.deepcopy(_kws())
    op = _first(g, "DEPTHWISE_CONV_2D")
    op.options["fused_activation_function"] = 5  # SIGN_BIT
    assert any("SIGN_BIT" in str(p) for p in check_graph(g))
    with pytest.raises(TinyEdgeError) as err:
        require_supported(g)
    assert "DEPTHWISE_CONV_2D" in err.value.message and "SIGN_BIT" in err.value.message


# ---------------------------------------------------------------- host-side arithmetic


def test_quantize_multiplier_matches_tflite_definition() -> None:
    # QuantizeMultiplier: frexp, round the Q31 mantissa half away from zero,
    # renormalize 2^31, flush below 2^-32, saturate above 2^30 (spec values).
    assert quant.quantize_multiplier(0.0) == (0, 0)
    assert quant.quantize_multiplier(1.0) == (1 << 30, 1)
    assert quant.quantize_multiplier(0.5) == (1 << 30, 0)
    assert quant.quantize_multiplier(0.75) == (3 << 29, 0)
    assert quant.quantize_multiplier(2.0 ** -20) == (1 << 30, -19)
    assert quant.quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)  # mantissa rounds up to 2^31
    assert quant.quantize_multiplier(2.0 ** -40) == (0, 0)  # shift < -31: flushed to zero
    assert quant.quantize_multiplier(2.0 ** 40) == ((1 << 31) - 1, 30)  # saturated
    m, s = quant.quantize_multiplier(0.1)
    assert (m, s) == (1717986918, -3)  # round(0.8 * 2^31) = 1717986918.4 -> ...18
    for real in np.random.default_rng(0).uniform(1e-6, 4.0, 200):
        m, s = quant.quantize_multiplier(float(real))
        assert (1 << 30) <= m < (1 << 31)
        assert abs(m * 2.0 ** (s - 31) - real) <= 2.0 ** (s - 32)


def test_activation_range() -> None:
    assert quant.activation_range("NONE", 0.1, 5) == (-128, 127)
    assert quant.activation_range("RELU", 0.1, 5) == (5, 127)
    assert quant.activation_range("RELU6", 0.1, -128) == (-128, -68)
    assert quant.activation_range("RELU_N1_TO_1", 0.05, 0) == (-20, 20)
    assert quant.activation_range("RELU6", 0.01, 0) == (0, 127)


# ---------------------------------------------------------------- the C compiles cleanly everywhere

KERNEL_SOURCES = ("te_fully_connected.c", "te_conv.c", "te_depthwise.c")
TARGETS = {
    "host": ["gcc"],
    "cortex-m4f": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m3": ["arm-none-eabi-gcc", "-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"],
    "cortex-m0": ["arm-none-eabi-gcc", "-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft"],
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kernels_compile_warning_free(target: str, tmp_path: Path) -> None:
    cc = TARGETS[target]
    require_tool(cc[0])
    runtime = templates_dir() / "runtime"
    for src in KERNEL_SOURCES:
        proc = subprocess.run([*cc, "-std=c99", "-pedantic", "-O2", "-Wall", "-Wextra", "-Werror",
                               "-Wshadow", "-Wdouble-promotion", "-c", str(runtime / src),
                               "-o", str(tmp_path / "k.o")], capture_output=True, text=True)
        assert proc.returncode == 0, f"{target} {src}:\n{proc.stderr}"
    nm = shutil.which("arm-none-eabi-nm" if cc[0].startswith("arm") else "nm")
    if nm and target != "host":
        # no float arithmetic pulled into the int8 kernels (soft-float helpers would show up)
        for src in KERNEL_SOURCES:
            subprocess.run([*cc, "-std=c99", "-O2", "-c", str(runtime / src), "-o", str(tmp_path / "k.o")],
                           check=True)
            syms = subprocess.run([nm, str(tmp_path / "k.o")], capture_output=True, text=True).stdout
            assert "__aeabi_f" not in syms and "__aeabi_d" not in syms, f"{target} {src} uses float"
