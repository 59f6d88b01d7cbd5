"""FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D (and the pool checks): generated C,
compiled for the host, is bit-exact with the oracle, TensorFlow Lite Micro (host-C tier).

Expected values come only from the TFLM interpreter (PyPI ``tflite-micro``,
reference kernels). Four sources of models:

- every layer of these ops in the shared reference models, each checked in
  isolation: it is fed TFLM's own input tensor for that layer (read back with
  TFLM's kPreserveAllTensors) and compared with TFLM's output tensor for it;
- small Keras models with awkward shapes (tests/keras_models.py plus the
  extra cases below: single output pixel, depth < 8, channel counts that are
  not multiples of 4 or 8, channel multiplier 3, per-tensor weights, ...);
- models patched to reach what the converter rarely emits: a real multiplier
  above 1 (positive shift) and the RELU_N1_TO_1 / RELU6 clamps;
- crafted inputs that pin TFLM's requantization: accumulators chosen so that
  TFLM's double rounding (MultiplyByQuantizedMultiplier: SRDHM, then a
  rounding shift with ties away from zero) gives another integer than a
  shift that breaks ties upward (what TFLite's x86 kernels do) and than a
  single rounding (TFLITE_SINGLE_ROUNDING); every such output must equal
  TFLM's and differ from the alternatives.

Every host build is made for each kernel set that runs on the host
(conftest.HOST_KERNEL_VARIANTS): the portable set; the dsp set (the arm_dsp
kernels, with arm_dsp/te_dsp.h emulating SXTB16/SMLAD/SMLABB/SMLATT), so the
Cortex-M4/M7/M33/M55 kernels are checked on every awkward shape here; and the
dsp lowering built with the portable reference of every kernel it chose. The
instructions themselves run in the emulator tier (QEMU).

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
from typing import Any, Callable, Iterable

import numpy as np
import pytest
from flatbuffers.table import Table

import keras_models
from graphtools import merge_graphs
from conftest import HOST_KERNEL_VARIANTS, MODEL_NAMES, host_network, require_tool, shared_model
from keras_models import KerasCase
from modelpatch import with_batch
from tinyedge import quant
from tinyedge.codegen.lower import check_graph, require_supported
from tinyedge.errors import TinyEdgeError
from tinyedge.model import Graph, Operator, Tensor, load_model, read_model
from tinyedge.ops import load_all
from tinyedge.ops.common import input_tensor

OUR_OPS = {"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"}
N_SAMPLES = 8

# ---------------------------------------------------------------- model sources

EXTRA_CASES: tuple[KerasCase, ...] = (
    # FULLY_CONNECTED: NONE activation with many negative outputs (tie breaking),
    # depth < 8 and units < 4 (the kernels' 4-unit blocks and their tail), rows > 1.
    KerasCase("te_dense_wide", ((64,),), "L.Dense(40)(x)", ("FULLY_CONNECTED",)),
    KerasCase("te_dense_tiny", ((5,),), "L.Dense(3)(x)", ("FULLY_CONNECTED",)),
    KerasCase("te_dense_rows3", ((3, 24),), "L.Dense(19)(x)", ("FULLY_CONNECTED",)),
    KerasCase("te_dense_relu6", ((12,),), "L.Dense(9, activation='relu6')(x)", ("FULLY_CONNECTED",)),
    # CONV_2D: a single output pixel, in_c = 1, stride 3 / non-square.
    KerasCase("te_conv_out1x1", ((4, 4, 6),), "L.Conv2D(12, 4)(x)", ("CONV_2D",)),
    KerasCase("te_conv_c1_5x1", ((12, 7, 1),), "L.Conv2D(4, (5, 1), strides=(2, 1), padding='same')(x)",
              ("CONV_2D",)),
    KerasCase("te_conv_s3_valid", ((11, 10, 2),), "L.Conv2D(5, (3, 2), strides=(3, 2))(x)", ("CONV_2D",)),
    # DEPTHWISE_CONV_2D: channels not a multiple of 4 or 8 (the kernel's 4-channel
    # blocks and their tail), multiplier 3, 5x5 stride 2.
    KerasCase("te_dw_21ch", ((9, 10, 21),), "L.DepthwiseConv2D(3, padding='same')(x)",
              ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_m3_s2", ((9, 10, 5),), "L.DepthwiseConv2D(3, strides=2, depth_multiplier=3, padding='same')(x)",
              ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_5x5_s2", ((11, 9, 10),), "L.DepthwiseConv2D(5, strides=2)(x)", ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_nobias_16", ((6, 7, 16),), "L.DepthwiseConv2D(3, padding='same', use_bias=False)(x)",
              ("DEPTHWISE_CONV_2D",)),
    # DEPTHWISE_CONV_2D on the Helium kernel (te_blocked.h, 16 lanes per block): channels dividing 16
    # with stride 1 (the lanes run along the output row, the last block partial), 24 channels with
    # stride 2 (a partial 16-channel block), dilation, a stride larger than the kernel (input rows skipped)
    KerasCase("te_dw_c8_row", ((7, 9, 8),), "L.DepthwiseConv2D(3, padding='same')(x)", ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_c4_row", ((6, 5, 4),), "L.DepthwiseConv2D(3, padding='same')(x)", ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_c2_row", ((6, 11, 2),), "L.DepthwiseConv2D(3, padding='same')(x)", ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_c1_row", ((5, 7, 1),), "L.DepthwiseConv2D(3, padding='same')(x)", ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_c24_s2", ((9, 8, 24),), "L.DepthwiseConv2D(3, strides=2, padding='same')(x)",
              ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_dil2", ((10, 9, 20),), "L.DepthwiseConv2D(3, dilation_rate=2, padding='same')(x)",
              ("DEPTHWISE_CONV_2D",)),
    KerasCase("te_dw_2x2_s3", ((10, 11, 6),), "L.DepthwiseConv2D(2, strides=3)(x)", ("DEPTHWISE_CONV_2D",)),
    # CONV_2D: dilation; a 1x1 kernel whose depth (24) is not a multiple of 16; two pixels at a time
    # (depth > 64: 81, a last partial chunk, 7 output channels, an odd number of pixels)
    KerasCase("te_conv_deep_odd", ((7, 5, 9),), "L.Conv2D(7, 3, padding='same')(x)", ("CONV_2D",)),
    KerasCase("te_conv_dil2", ((9, 10, 6),), "L.Conv2D(5, 3, dilation_rate=2, padding='same')(x)", ("CONV_2D",)),
    KerasCase("te_conv_1x1_c24", ((5, 6, 24),), "L.Conv2D(6, 1)(x)", ("CONV_2D",)),
    # deep accumulations with one output pixel: test_requantization_is_tflm_double_rounding
    # crafts inputs that hit chosen accumulators in them
    KerasCase("te_dense_deep_pc", ((1024,),), "L.Dense(8)(x)", ("FULLY_CONNECTED",)),
    KerasCase("te_conv_deep_1px", ((6, 6, 16),), "L.Conv2D(8, 6)(x)", ("CONV_2D",)),
    KerasCase("te_dw_deep_1px", ((9, 9, 8),), "L.DepthwiseConv2D(9)(x)", ("DEPTHWISE_CONV_2D",)),
) + (
    # chains whose inner layers the planner runs in place (test_in_place_layers_bit_exact):
    # 3x3 / 5x3 / dilated windows over a ring of input rows, an odd pixel count (the dsp
    # kernel's pixel pairs straddle rows), one column (every pair straddles), 1x1 out_c < in_c
    KerasCase("te_inplace_conv", ((7, 9, 6),),
              "L.Conv2D(5, (5, 3), padding='same')(L.Conv2D(5, 1)(L.Conv2D(7, 3, padding='same')"
              "(L.Conv2D(10, 1)(x))))", ("CONV_2D",) * 4),
    KerasCase("te_inplace_conv_col", ((6, 1, 4),), "L.Conv2D(3, (3, 1), padding='same')(L.Conv2D(4, 1)(x))",
              ("CONV_2D",) * 2),
    KerasCase("te_inplace_conv_dil", ((8, 7, 3),),
              "L.Conv2D(6, 3, dilation_rate=2, padding='same')(L.Conv2D(6, 1)(x))", ("CONV_2D",) * 2),
    # a graph output that takes its dying input's buffer, then is read by a 1x1 layer that
    # could run in place: it must not (the output is read after the run)
    KerasCase("te_inplace_out", ((7, 9, 8),),
              "(lambda a: [a, L.Conv2D(5, 1)(a)])(L.Conv2D(6, 3, padding='same')(L.Conv2D(8, 1)(x)))",
              ("CONV_2D",) * 3),
    KerasCase("te_inplace_dw", ((6, 5, 8),),
              "L.DepthwiseConv2D(3, dilation_rate=2, padding='same')(L.DepthwiseConv2D(3, padding='same')"
              "(L.Conv2D(8, 1)(x)))", ("CONV_2D", "DEPTHWISE_CONV_2D", "DEPTHWISE_CONV_2D")),
)
INPLACE_CASES = {"te_inplace_conv": {1, 2, 3}, "te_inplace_conv_col": {1}, "te_inplace_conv_dil": {1},
                 "te_inplace_dw": {1, 2}, "te_inplace_out": {1}}  # name -> the ops the dsp lowering runs in place

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


def with_tensor_scale(data: bytes, tensor_index: int, factor: float) -> bytes:
    """``data`` with tensor ``tensor_index``'s (first) quantization scale multiplied by ``factor``."""
    import tflite

    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(buf, 0)
    q = model.Subgraphs(0).Tensors(tensor_index).Quantization()
    tab = q._tab
    off = tab.Offset(8)  # QuantizationParameters field 2: scale (vector of float)
    pos = tab.Vector(off)
    (old,) = struct.unpack_from("<f", buf, pos)
    struct.pack_into("<f", buf, pos, np.float32(old * factor))
    return bytes(buf)


def with_output_scale(data: bytes, factor: float) -> bytes:
    """``data`` with the (single) model output's scale multiplied by ``factor``."""
    import tflite

    sg = tflite.Model.GetRootAsModel(data, 0).Subgraphs(0)
    return with_tensor_scale(data, int(sg.Outputs(0)), factor)


def with_weight(data: bytes, op_index: int, position: int, value: int) -> bytes:
    """``data`` with element ``position`` (flat) of op ``op_index``'s filter (input 1) set to ``value``."""
    import tflite

    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(buf, 0)
    tensor = model.Subgraphs(0).Tensors(model.Subgraphs(0).Operators(op_index).Inputs(1))
    tab = model.Buffers(tensor.Buffer())._tab
    pos = tab.Vector(tab.Offset(4))  # Buffer field 0: data (vector of ubyte)
    struct.pack_into("<b", buf, pos + position, value)
    return bytes(buf)


def with_depth_multiplier(data: bytes, op_index: int, value: int) -> bytes:
    """``data`` with DEPTHWISE_CONV_2D op ``op_index``'s depth_multiplier option set to ``value``."""
    import tflite

    buf = bytearray(data)
    op = tflite.Model.GetRootAsModel(buf, 0).Subgraphs(0).Operators(op_index)
    table = op.BuiltinOptions()
    tab = Table(table.Bytes, table.Pos)
    off = tab.Offset(4 + 2 * 3)  # DepthwiseConv2DOptions field 3: depth_multiplier (int32)
    assert off, "depth_multiplier absent from the options table"
    struct.pack_into("<i", buf, tab.Pos + off, value)
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


class LayerOracle:
    """TFLM on one model, keeping every intermediate tensor readable (kPreserveAllTensors)."""

    def __init__(self, data: bytes) -> None:
        from tflite_micro.python.tflite_micro import runtime

        self.it = runtime.Interpreter.from_bytes(
            data, arena_size=max(len(data) * 10, 16 << 20),
            intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
        self.n_inputs = len(read_model(data).inputs)

    def run(self, inputs: list[np.ndarray], wanted: list[int]) -> list[np.ndarray]:
        """Run on ``inputs``; return the tensors ``wanted`` (any tensor index of the graph)."""
        assert len(inputs) == self.n_inputs
        for i, x in enumerate(inputs):
            det = self.it.get_input_details(i)
            self.it.set_input(np.ascontiguousarray(x.reshape(det["shape"])), i)
        self.it.invoke()
        out = []
        for i in wanted:
            t = self.it.GetTensor(i, 0)
            out.append(np.array(t["tensor_data"], copy=True).reshape(t["shape"]))
        return out


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
    return quant.conv_effective_scales(x.scale, w.quant.scale, y.scale, len(w.quant.scale))


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
    # weights of -128 (the converter keeps them in [-127, 127]) at taps 0 and 1 of one channel:
    # the Helium depthwise kernel then stops adding two taps' int16 products before widening
    # them (2 * (-128 * -128) overflows int16); the inputs at -128 reach that product
    for name, channels in (("te_dw_21ch", 21), ("te_dw_c8_row", 8)):
        data = with_weight(models[name], 0, 5, -128)
        out[f"{name}->weights-128"] = with_weight(data, 0, channels + 5, -128)
    return out


# Two images per run (the converter fixes the batch to 1): odd pixel counts per image, where the
# dsp conv kernel's pixel pairs end on a single pixel before the next image (te_conv_s3_valid: 15
# pixels, te_conv_out1x1: 1, te_inplace_conv: 63, its 1x1 layer in place), and the depthwise kernels
BATCHED = ("te_conv_s3_valid", "te_conv_out1x1", "te_inplace_conv", "te_dw_21ch", "te_dw_m3_s2")


def _batched_models(models: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{name}->batch2": with_batch(models[name], 2) for name in BATCHED}


@dataclass
class Results:
    """Host and oracle outputs of one model, sample by sample."""

    host: list[np.ndarray]
    oracle: list[np.ndarray]
    labels: list[str]

    def assert_exact(self) -> int:
        return assert_exact(self.host, self.oracle, self.labels)


@dataclass
class Suite:
    """Many single-op models run side by side in one merged network, each on its own inputs."""

    names: list[str]
    datas: list[bytes]
    graphs: list[Graph]
    samples: list[list[list[np.ndarray]]]  # per model: its samples

    def merged(self) -> Graph:
        return merge_graphs(self.graphs)

    def batched(self) -> list[list[np.ndarray]]:
        """The merged network's samples: sample k feeds every model its k-th sample (cycling)."""
        n = max(len(s) for s in self.samples)
        return [[x for s in self.samples for x in s[k % len(s)]] for k in range(n)]

    def compare(self, got: list[list[np.ndarray]]) -> dict[str, Results]:
        """The merged network's outputs ``got`` split per model, beside TFLM's on the same inputs."""
        from tinyedge.oracle import Oracle

        results: dict[str, Results] = {}
        pos = 0
        for name, data, g, samples in zip(self.names, self.datas, self.graphs, self.samples):
            oracle = Oracle(data)
            r = Results([], [], [])
            for k, sample in enumerate(samples):
                r.oracle += oracle.run(sample)
                r.host += got[k][pos:pos + len(g.outputs)]
                r.labels += [f"{name} sample {k} output {j}" for j in range(len(g.outputs))]
            pos += len(g.outputs)
            results[name] = r
        return results


def single_op_suite(single_op_models: dict[str, bytes], crafted: bool = False) -> Suite:
    """Every single-op model (uniform inputs and the extremes) and every patched model (inputs
    near the zero point too); with ``crafted``, the REQUANT_MODELS also get inputs crafted
    against a tie-up shift and a single rounding."""
    patched = _patched_models(single_op_models)
    named = (sorted(single_op_models.items()) + sorted(patched.items())
             + sorted(_batched_models(single_op_models).items()))
    graphs = [read_model(data, name) for name, data in named]
    rng = np.random.default_rng(20240611)
    per_model = [(_near_zero_point_inputs if name in patched else _uniform_inputs)(name, g, rng)
                 for (name, _), g in zip(named, graphs)]
    if crafted:
        for (name, _), g, samples in zip(named, graphs, per_model):
            if name in REQUANT_MODELS:
                samples += [[c.sample] for c in craft(g, ROUNDINGS, rng, per_alt=2)]
    return Suite([n for n, _ in named], [d for _, d in named], graphs, per_model)


@pytest.fixture(scope="session", params=sorted(HOST_KERNEL_VARIANTS))
def bench(request: pytest.FixtureRequest, single_op_models: dict[str, bytes],
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Results]:
    """Every single-op model and every patched model, merged into one host network
    (one compile per kernel variant), run on its inputs; TFLM run on the same inputs."""
    suite = single_op_suite(single_op_models)
    workdir = tmp_path_factory.mktemp(f"bench-{request.param}")
    host = host_network(suite.merged(), workdir, request.param)
    return suite.compare(host.run_many(suite.batched()))


def test_in_place_layers_bit_exact(single_op_models: dict[str, bytes], bench: dict[str, Results]) -> None:
    """Convolutions that write their output over their dying input (the planner's in-place
    buffers: a ring of input rows, or a 1x1 filter reading each pixel before writing it) give
    TFLM's bytes; under the dsp lowering the planner really does run them in place."""
    from tinyedge.compiler import compile as compile_graph

    checked = 0
    for name, ops in INPLACE_CASES.items():
        plan = compile_graph(read_model(single_op_models[name], name), kernels="dsp").plan
        assert plan.inplace_ops == ops, (name, plan.inplace_ops)
        checked += bench[name].assert_exact()
    assert checked > 1000


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


def assert_all_exact(bench: dict[str, Results], names: Iterable[str]) -> None:
    """Every named model of the bench exact, all differences reported at once."""
    failures = []
    for name in sorted(names):
        try:
            bench[name].assert_exact()
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)


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
    assert_all_exact(bench, patched)


def test_batched_models_bit_exact(single_op_models: dict[str, bytes], bench: dict[str, Results]) -> None:
    """Two images per run, each image's output where TFLM puts it (a kernel that steps over one
    image's last pixel shifts the next image and writes past the tensor)."""
    batched = _batched_models(single_op_models)
    odd_convs = 0
    for name, data in batched.items():
        g = read_model(data, name)
        assert all(t.shape[0] == 2 for t in g.input_tensors + g.output_tensors), name
        odd_convs += sum(1 for op in g.operators if op.opcode == "CONV_2D"
                         and g.tensor(op.outputs[0]).shape[1] * g.tensor(op.outputs[0]).shape[2] % 2)
    assert odd_convs >= 3
    assert_all_exact(bench, batched)


# ---------------------------------------------------------------- TFLM's requantization, pinned
#
# Inputs crafted so that one output element's accumulator is a chosen integer, where
# TFLM's arithmetic and a plausible alternative give different outputs. The expected
# value is TFLM's output; the alternative is computed only to choose the accumulators
# and to show that TFLM's output there really tells the two apart.


def _srdhm(a: np.ndarray, mult: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul of int64 accumulators (|a| < 2^31) by a Q31 multiplier."""
    return (a * mult + (1 << 30)) >> 31


def double_rounding(a: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """MultiplyByQuantizedMultiplier as TFLM's default build has it, shift <= 0: SRDHM, then
    RoundingDivideByPOT (ties away from zero)."""
    v, n = _srdhm(a, mult), -shift
    mask = (1 << n) - 1
    return (v >> n) + ((v & mask) > (mask >> 1) + (v < 0)).astype(np.int64)


def ties_up(a: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """SRDHM, then a rounding shift that breaks ties toward +inf (NEON vrshl; TFLite's x86 kernels)."""
    n = -shift
    return (_srdhm(a, mult) + ((1 << n) >> 1)) >> n


def single_rounding(a: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """TFLITE_SINGLE_ROUNDING's MultiplyByQuantizedMultiplier: one rounding of a * mult / 2^(31 - shift)."""
    t = 31 - shift
    return (a * mult + (1 << (t - 1))) >> t


@dataclass
class Probe:
    """One output element of a single-op model as a linear form of the model's input:
    acc = bias + sum_i w[i] * (x[pos[i]] - input_zp), requantized with (mult, shift)."""

    out: int  # flat output index
    pos: np.ndarray  # flat input positions
    w: np.ndarray  # int64
    bias: int
    mult: int
    shift: int


Alternative = Callable[[np.ndarray, Probe], np.ndarray]  # accumulators -> outputs (no zero point)


def probes(g: Graph) -> list[Probe]:
    """Every output element of a FULLY_CONNECTED, or of a CONV_2D / DEPTHWISE_CONV_2D (multiplier
    1) whose VALID kernel covers its whole input (one output pixel)."""
    (op,) = g.operators
    x, w_t, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    assert w_t.quant is not None
    b_t = input_tensor(g, op, 2)
    w = w_t.array().astype(np.int64)
    if op.opcode == "FULLY_CONNECTED":
        n_out = w.shape[0]
        forms = [(j, np.arange(w.shape[1]), w[j]) for j in range(n_out)]
    elif op.opcode == "CONV_2D":
        assert w.shape[1:] == x.shape[1:] and y.shape[1:3] == (1, 1)
        n_out = w.shape[0]
        forms = [(c, np.arange(x.size), w[c].reshape(-1)) for c in range(n_out)]
    else:
        assert w.shape[1:] == x.shape[1:] and y.shape[1:3] == (1, 1)
        n_out = c_in = x.shape[3]
        forms = [(c, np.arange(x.size // c_in) * c_in + c, w[0, :, :, c].reshape(-1)) for c in range(c_in)]
    reals = quant.conv_effective_scales(x.scale, w_t.quant.scale, y.scale, n_out)
    bias = b_t.array().astype(np.int64).reshape(-1) if b_t is not None else np.zeros(n_out, np.int64)
    out = []
    for ch, pos, wv in forms:
        mult, shift = quant.quantize_multiplier(reals[ch])
        assert shift <= 0
        out.append(Probe(ch, pos, wv, int(bias[ch]), mult, shift))
    return out


def telling_accumulators(p: Probe, zp_in: int, zp_out: int, alt: Alternative) -> np.ndarray:
    """Accumulators well inside p's reachable range, with an unclamped output, where TFLM's
    double rounding with p's multiplier and ``alt`` give different integers."""
    lo_x, hi_x = -128 - zp_in, 127 - zp_in
    reach_lo = p.bias + int(np.minimum(p.w * lo_x, p.w * hi_x).sum())
    reach_hi = p.bias + int(np.maximum(p.w * lo_x, p.w * hi_x).sum())
    real = p.mult * 2.0 ** (p.shift - 31)
    lo = max(reach_lo + (reach_hi - reach_lo) // 5, int((-120 - zp_out) / real))
    hi = min(reach_hi - (reach_hi - reach_lo) // 5, int((120 - zp_out) / real))
    a = np.arange(lo, hi, dtype=np.int64)
    return a[double_rounding(a, p.mult, p.shift) != alt(a, p)]


def _craft(w: np.ndarray, zp: int, target: int, rng: np.random.Generator, x0: np.ndarray) -> np.ndarray | None:
    """An int8 vector x with sum((x - zp) * w) == target, by greedy coordinate moves from x0."""
    x = x0.astype(np.int64)
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


@dataclass
class Crafted:
    sample: np.ndarray  # the model's input
    out: int  # the flat output index it targets
    acc: int  # the accumulator crafted there
    against: str  # what TFLM's output there must differ from
    other: int  # that alternative's output (zero point included)


def craft(g: Graph, alts: dict[str, Alternative], rng: np.random.Generator, per_alt: int) -> list[Crafted]:
    """Up to ``per_alt`` inputs per alternative, each on another output element where possible."""
    x_t, y_t = g.input_tensors[0], g.output_tensors[0]
    out: list[Crafted] = []
    for name, alt in alts.items():
        made = 0
        for k in rng.permutation(len(ps := probes(g))):
            p = ps[int(k)]
            accs = telling_accumulators(p, x_t.zero_point, y_t.zero_point, alt)
            for acc in rng.permutation(accs)[:3]:
                full = rng.integers(-128, 127, size=x_t.size, endpoint=True, dtype=np.int64)
                v = _craft(p.w, x_t.zero_point, int(acc) - p.bias, rng, full[p.pos])
                if v is not None:
                    full[p.pos] = v
                    other = int(alt(np.array([acc]), p)[0]) + y_t.zero_point
                    out.append(Crafted(full.astype(np.int8).reshape(x_t.shape), p.out, int(acc), name, other))
                    made += 1
                    break
            if made == per_alt:
                break
    return out


def check_crafted(models: dict[str, bytes], crafted: dict[str, list[Crafted]], variant: str,
                  workdir: Path) -> None:
    """All models in one host build; every crafted input's whole output equals TFLM's, and
    TFLM's value at the targeted element differs from the alternative's."""
    from tinyedge.oracle import Oracle

    names = sorted(models)
    graphs = [read_model(models[n], n) for n in names]
    host = host_network(merge_graphs(graphs), workdir, variant)
    n = max(len(crafted[m]) for m in names)
    got = host.run_many([[crafted[m][k % len(crafted[m])].sample for m in names] for k in range(n)])
    failures = []
    for pos, name in enumerate(names):
        oracle = Oracle(models[name])
        for k, c in enumerate(crafted[name]):
            want = oracle.run([c.sample])[0]
            tflm = int(want.reshape(-1)[c.out])
            assert tflm != c.other, f"{name}: TFLM gives {tflm} at accumulator {c.acc}, as {c.against} would"
            if not np.array_equal(got[k][pos].reshape(want.shape), want):
                failures.append(f"{name} input {k} (accumulator {c.acc}, against {c.against}): host "
                                f"{int(got[k][pos].reshape(-1)[c.out])}, TFLM {tflm}")
    assert not failures, "\n".join(failures)


REQUANT_MODELS = ("te_pt_dense_deep_a", "te_dense_deep_pc", "te_conv_deep_1px", "te_dw_deep_1px")
ROUNDINGS: dict[str, Alternative] = {
    "ties up": lambda a, p: ties_up(a, p.mult, p.shift),
    "single rounding": lambda a, p: single_rounding(a, p.mult, p.shift),
}


@pytest.mark.parametrize("variant", sorted(HOST_KERNEL_VARIANTS))
def test_requantization_is_tflm_double_rounding(variant: str, single_op_models: dict[str, bytes],
                                               tmp_path: Path) -> None:
    """FULLY_CONNECTED (per-tensor and per-channel), CONV_2D and DEPTHWISE_CONV_2D requantize with
    TFLM's MultiplyByQuantizedMultiplier: SRDHM, then RoundingDivideByPOT (ties away from zero).
    The crafted accumulators round differently under a tie-up shift (TFLite's x86 kernels) or a
    single rounding (TFLITE_SINGLE_ROUNDING)."""
    rng = np.random.default_rng(20240917)
    models = {n: single_op_models[n] for n in REQUANT_MODELS}
    crafted = {n: craft(read_model(data, n), ROUNDINGS, rng, per_alt=4) for n, data in models.items()}
    for n, c in crafted.items():
        assert {a: sum(x.against == a for x in c) for a in ROUNDINGS} == {a: 4 for a in ROUNDINGS}, n
    check_crafted(models, crafted, variant, tmp_path)


def test_fc_per_tensor_multiplier_is_the_double_product(single_op_models: dict[str, bytes],
                                                        tmp_path: Path) -> None:
    """The pinned TFLM derives a per-tensor FULLY_CONNECTED multiplier from
    double(s_in) * double(s_w) / double(s_out), not from the float32 product of the scales
    (TFLite, and TFLM's older sources). The two differ in the Q31 mantissa's last bits, which
    shows only at rare accumulators: on copies of one model with slightly different output
    scales, craft inputs that hit them."""
    base = single_op_models["te_pt_dense_deep_a"]
    g = read_model(base, "te_pt_dense_deep_a")
    (op,) = g.operators
    w_t = g.tensor(op.inputs[1])
    assert w_t.quant is not None and not w_t.quant.per_channel
    rng = np.random.default_rng(3)
    models: dict[str, bytes] = {}
    crafted: dict[str, list[Crafted]] = {}
    for k in range(40):
        data = with_output_scale(base, 1.0 + 1e-4 * k)
        v = read_model(data, f"scaled{k}")
        x_t, y_t = v.input_tensors[0], v.output_tensors[0]
        product = float(np.float32(np.float32(x_t.scale) * np.float32(w_t.scale)))
        as_float = quant.quantize_multiplier(product / float(y_t.scale))
        if as_float == quant.quantize_multiplier(float(x_t.scale) * float(w_t.scale) / float(y_t.scale)):
            continue
        alt: dict[str, Alternative] = {"the float32 product": lambda a, p, m=as_float: double_rounding(a, *m)}
        c = craft(v, alt, rng, per_alt=2)
        if c:
            models[f"scaled{k}"], crafted[f"scaled{k}"] = data, c
        if sum(map(len, crafted.values())) >= 6:
            break
    assert sum(map(len, crafted.values())) >= 6, "too few accumulators separate the two derivations"
    check_crafted(models, crafted, "portable", tmp_path)


# ---------------------------------------------------------------- shared models, layer by layer


@pytest.mark.parametrize("variant", sorted(HOST_KERNEL_VARIANTS))
def test_shared_model_layers_bit_exact(variant: str, tmp_path: Path) -> None:
    """Every FC / CONV / DEPTHWISE layer of every reference model, in isolation, fed the
    oracle's own input tensor for that layer; all layers of all models in one host build."""
    graphs = {name: load_model(shared_model(name)) for name in MODEL_NAMES}
    layers = {name: [op for op in g.operators if op.opcode in OUR_OPS] for name, g in graphs.items()}
    assert all(layers.values()), {n: len(v) for n, v in layers.items()}
    host = host_network(merge_graphs([isolate_ops(graphs[n], layers[n]) for n in MODEL_NAMES]), tmp_path,
                        variant)
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

    for bad in (5, 0):  # TFLM loops over the option as given, 0 included
        g = copy.deepcopy(_kws())
        op = _first(g, "DEPTHWISE_CONV_2D")
        op.options["depth_multiplier"] = bad
        assert any(f"depth_multiplier {bad}" in p for p in _problems(g, op))

    g = copy.deepcopy(_kws())
    op = _first(g, "FULLY_CONNECTED")
    y = g.tensors[op.outputs[0]]
    g.tensors[y.index] = replace(y, shape=(y.shape[-1], 1))  # same size, but not [rows, units]
    assert any("does not end in the" in p for p in _problems(g, op))

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


# ---------------------------------------------------------------- check(): what TFLM refuses


def with_tensor_zero_point(data: bytes, tensor_index: int, zero_point: int) -> bytes:
    """``data`` with tensor ``tensor_index``'s (first) zero point set to ``zero_point``."""
    import tflite

    buf = bytearray(data)
    q = tflite.Model.GetRootAsModel(buf, 0).Subgraphs(0).Tensors(tensor_index).Quantization()
    pos = q._tab.Vector(q._tab.Offset(10))  # QuantizationParameters field 3: zero_point (vector of long)
    struct.pack_into("<q", buf, pos, zero_point)
    return bytes(buf)


def _tflm_refuses(data: bytes) -> str:
    """TFLM's reason for refusing the model at Prepare (the test fails if TFLM loads it)."""
    from tinyedge.oracle import TflmOracle

    with pytest.raises(TinyEdgeError) as err:
        TflmOracle(data)
    return err.value.message


def _one_op_problems(data: bytes) -> list[str]:
    g = read_model(data)
    (op,) = g.operators
    return _problems(g, op)


def _pool_output_scale_off(pool: bytes, delta: float) -> bytes:
    """The pool model with its output scale ``delta`` above its input scale."""
    g = read_model(pool)
    return with_output_scale(pool, (g.input_tensors[0].scale + delta) / g.output_tensors[0].scale)


def _fc_bias_scale_off(dense: bytes, k: float) -> bytes:
    """The per-tensor FC model with its bias scale ``k`` output scales above s_in * s_w."""
    g = read_model(dense)
    (op,) = g.operators
    x, w, b, y = (g.tensor(i) for i in (*op.inputs, op.outputs[0]))
    return with_tensor_scale(dense, b.index, (x.scale * w.scale + k * y.scale) / b.scale)


def _patched(models: dict[str, bytes]) -> dict[str, tuple[bytes, str]]:
    """name -> (patched model, a phrase our check says when it refuses it)."""
    conv6, pool, dense = models["conv_relu6"], models["avgpool_2x2_s2"], models["te_pt_dense"]
    zp = read_model(pool).output_tensors[0].zero_point
    return {
        # PoolingPrepare: |input scale - output scale| <= 1e-6, equal zero points
        "pool output scale 1.5e-6 off": (_pool_output_scale_off(pool, 1.5e-6), "TFLM's pooling requires them equal"),
        "pool output scale 5e-7 off": (_pool_output_scale_off(pool, 5e-7), ""),
        "pool output zero point": (with_tensor_zero_point(pool, read_model(pool).outputs[0], zp + 1), "zero point"),
        # GetQuantizedConvolutionMultipler: |s_in * s_w - s_bias| / s_out <= 0.02 (per-tensor weights)
        "FC bias scale 0.0205 off": (_fc_bias_scale_off(dense, 0.0205), "bias scale"),
        "FC bias scale 0.0195 off": (_fc_bias_scale_off(dense, 0.0195), ""),
        # CalculateActivationRangeQuantized: 6 / output scale must fit in int32
        "RELU6 bound beyond int32": (with_output_scale(conv6, 1e-9), "beyond int32"),
    }


@pytest.fixture(scope="session")
def refusal_models(single_op_models: dict[str, bytes], model_cache: Path) -> dict[str, bytes]:
    return single_op_models | {"avgpool_2x2_s2": keras_models.tflite_model("avgpool_2x2_s2", model_cache)}


@pytest.mark.parametrize("case", ["pool output scale 1.5e-6 off", "pool output zero point", "FC bias scale 0.0205 off",
                                  "RELU6 bound beyond int32"])
def test_check_refuses_what_tflm_prepare_refuses(case: str, refusal_models: dict[str, bytes]) -> None:
    """Each patched model is refused by TFLM's Prepare (the interpreter will not load it); the
    check refuses it too, naming TFLM's rule."""
    data, phrase = _patched(refusal_models)[case]
    _tflm_refuses(data)
    problems = _one_op_problems(data)
    assert any(phrase in p for p in problems), problems


@pytest.mark.parametrize("case", ["conv_relu6", "avgpool_2x2_s2", "te_pt_dense", "pool output scale 5e-7 off",
                                  "FC bias scale 0.0195 off"])
def test_check_accepts_what_tflm_prepare_accepts(case: str, refusal_models: dict[str, bytes]) -> None:
    """The unpatched models, and patches just inside TFLM's tolerances: TFLM loads them and the
    check accepts them."""
    from tinyedge.oracle import TflmOracle

    data = refusal_models[case] if case in refusal_models else _patched(refusal_models)[case][0]
    TflmOracle(data)
    assert _one_op_problems(data) == []


def test_check_refuses_what_tflm_has_no_answer_for(refusal_models: dict[str, bytes]) -> None:
    """TFLM loads these, but its answer is not defined by the model: a real multiplier >= 2^30
    makes MultiplyByQuantizedMultiplier shift left by 31 bits or more (undefined in C++), and
    DEPTHWISE_CONV_2D loops over its depth_multiplier option as given (0: no output written)."""
    from tinyedge.oracle import TflmOracle

    huge = with_output_scale(refusal_models["dense_nobias"], 1e-12)
    TflmOracle(huge)
    assert any(">= 2^30" in p for p in _one_op_problems(huge))

    dw = refusal_models["dw_m1"]
    zero = with_depth_multiplier(dw, 0, 0)
    x = [np.full(t.shape, 3, np.int8) for t in read_model(dw).input_tensors]
    # TFLM really takes the option: with 0 it does not compute the op's output
    assert not np.array_equal(TflmOracle(zero).run(x)[0], TflmOracle(dw).run(x)[0])
    assert any("depth_multiplier 0" in p for p in _one_op_problems(zero))


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
    assert quant.quantize_multiplier(2.0 ** 40) == ((1 << 31) - 1, 30)  # saturated (the ops refuse it)
    # the exponent TFLM's double-rounding build keeps (no saturation): > 30 from 2^30 up
    assert quant.multiplier_exponent(2.0 ** 40) == 41
    assert quant.multiplier_exponent(2.0 ** 30) == 31
    assert quant.multiplier_exponent(2.0 ** 30 * (1 - 2.0 ** -40)) == 31  # mantissa rounds up
    assert quant.multiplier_exponent(2.0 ** 29) == 30
    assert quant.multiplier_exponent(2.0 ** -40) == 0
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
    # TFLM's Quantize refuses bounds whose rounded value leaves int32 (and 0 / 0)
    for act, scale in (("RELU6", 1e-9), ("RELU_N1_TO_1", 1e-10), ("RELU", 0.0)):
        with pytest.raises(ValueError, match="beyond int32"):
            quant.activation_range(act, scale, 0)
    assert quant.activation_range("RELU6", 6.0 / 2 ** 30, 0) == (0, 127)


# ---------------------------------------------------------------- the C compiles cleanly everywhere

KERNEL_SOURCES = ("te_fully_connected.c", "te_conv.c", "te_depthwise.c", "te_pool.c", "te_conv_fast.c", "te_dw_fast.c",
                  "te_window.c")
TARGETS = {
    "host": ["gcc"],
    "cortex-m4f": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m3": ["arm-none-eabi-gcc", "-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"],
    "cortex-m0": ["arm-none-eabi-gcc", "-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft"],
}
# the kernel sets each target builds (the host emulates the DSP instructions)
TARGET_SETS = {"host": ("portable", "dsp"), "cortex-m4f": ("portable", "dsp"), "cortex-m3": ("portable",),
               "cortex-m0": ("portable",)}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kernels_compile_warning_free(target: str, tmp_path: Path) -> None:
    from tinyedge.hostrun import copy_runtime

    cc = TARGETS[target]
    require_tool(cc[0])
    nm = shutil.which("arm-none-eabi-nm" if cc[0].startswith("arm") else "nm")
    for kernels in TARGET_SETS[target]:
        copy_runtime(tmp_path / kernels, kernels)
        runtime = tmp_path / kernels / "runtime"
        for src in KERNEL_SOURCES:
            proc = subprocess.run([*cc, "-std=c99", "-pedantic", "-O2", "-Wall", "-Wextra", "-Werror",
                                   "-Wshadow", "-Wdouble-promotion", "-c", str(runtime / src),
                                   "-o", str(tmp_path / "k.o")], capture_output=True, text=True)
            assert proc.returncode == 0, f"{target} {kernels} {src}:\n{proc.stderr}"
            if nm and target != "host":
                # no float arithmetic pulled into the int8 kernels (soft-float helpers would show up)
                syms = subprocess.run([nm, str(tmp_path / "k.o")], capture_output=True, text=True).stdout
                assert "__aeabi_f" not in syms and "__aeabi_d" not in syms, f"{target} {kernels} {src} uses float"
