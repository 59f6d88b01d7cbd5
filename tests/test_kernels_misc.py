"""AVERAGE_POOL_2D, MAX_POOL_2D, SOFTMAX, ADD, QUANTIZE, DEQUANTIZE, RESHAPE:
generated C, compiled for the host, is bit-exact with TensorFlow Lite Micro.

Expected values come only from the oracle (the TFLM interpreter, PyPI
``tflite-micro``, reference kernels). Model sources:

- single-op models written directly as flatbuffers (:func:`build_ops`), so that
  any scale, zero point, beta, shape and broadcast can be reached: random
  configurations plus the awkward ones (1x1 pools, stride 2 SAME, odd channel
  counts, softmax over 1/3/1000 classes, beta 1e-3..1e3, int16 softmax
  output, every broadcast pattern -- same shapes, either input broadcast, both,
  a single element, 6-D, differing ranks --, constant operands, tensor sizes
  around the block sizes of the x86 TFLite kernels). All the ops of a family go
  into one graph, so each family is one compile and one oracle;
- witnesses: inputs where the x86 TFLite interpreter's arithmetic (vector
  blocks vs scalar tails, ``x * (1/s)`` rounded half to even, two-rounding
  dequantize, ties-up requantize) and TFLM's differ. The tests check that the
  old recipe really gives other bytes there (so they pin the arithmetic), that
  TFLM gives the same answer at every position, and that we match TFLM;
- the Keras models of tests/keras_models.py made only of these ops;
- every layer of these ops in the shared reference models, fed TFLM's own
  input tensor for that layer (TFLM's ``kPreserveAllTensors``).

The emulator tier runs the float paths (softmax, quantize and dequantize) as
firmware in QEMU on Cortex-M4F (hardware FPU), Cortex-M3, and the soft-float
Cortex-M0 ``microbit`` for QUANTIZE/DEQUANTIZE: same bytes as the oracle.
"""

from __future__ import annotations

import importlib
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import flatbuffers
import numpy as np
import pytest

import keras_models
from conftest import HOST_KERNEL_VARIANTS, host_network, require_tool, shared_model
from tinyedge.codegen.lower import check_graph
from tinyedge.hostrun import HostNetwork
from tinyedge.model import Graph, load_model, read_model
from tinyedge.ops import load_all
from tinyedge.ops.base import LowerCtx
from tinyedge.ops.broadcast import broadcast_shape
from tinyedge.ops.elementwise import add_multipliers
from tinyedge.oracle import Oracle, TflmOracle
from tinyedge.quant import quantize_multiplier, rounding_divide_by_pot, srdhm
from tinyedge.resources import templates_dir

MY_OPS = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "SOFTMAX", "ADD", "QUANTIZE", "DEQUANTIZE", "RESHAPE"}
F32 = np.float32
N_SAMPLES = 6

# ============================================================ flatbuffer model builder

_TYPES = {"float32": 0, "int32": 2, "uint8": 3, "int16": 7, "int8": 9}
Options = tuple[str, Callable[[Any], int]]


def _schema(name: str) -> Any:
    return importlib.import_module(f"tflite.{name}")


@dataclass(eq=False)  # identity: the same T object in two ops is one tensor
class T:
    shape: tuple[int, ...]
    dtype: str = "int8"
    scale: float | None = None
    zp: int = 0
    data: np.ndarray | None = None  # constant tensor contents


@dataclass(eq=False)
class Op:
    opcode: str
    inputs: list[T]
    outputs: list[T]
    options: Options | None = None


def build_ops(ops: Sequence[Op]) -> bytes:
    """A .tflite with these operators. A T used by several ops is one tensor; the model's
    inputs are the non-constant tensors no op produces, its outputs those no op consumes."""
    import tflite

    tensors: list[T] = []
    index: dict[int, int] = {}
    for op in ops:
        for t in op.inputs + op.outputs:
            if id(t) not in index:
                index[id(t)] = len(tensors)
                tensors.append(t)
    produced = {id(t) for op in ops for t in op.outputs}
    consumed = {id(t) for op in ops for t in op.inputs}
    graph_in = [index[id(t)] for t in tensors if id(t) not in produced and t.data is None]
    graph_out = [index[id(t)] for t in tensors if id(t) in produced and id(t) not in consumed]

    b = flatbuffers.Builder(4096)

    def ivec(start: Callable[[Any, int], None], vals: Sequence[int]) -> int:
        start(b, len(vals))
        for v in reversed(vals):
            b.PrependInt32(int(v))
        return int(b.EndVector())

    def ovec(start: Callable[[Any, int], None], offs: Sequence[int]) -> int:
        start(b, len(offs))
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return int(b.EndVector())

    B, TT, Q = _schema("Buffer"), _schema("Tensor"), _schema("QuantizationParameters")
    buffers = []
    for t in [None, *tensors]:  # buffer 0: the empty sentinel
        data = None
        if t is not None and t.data is not None:
            data = b.CreateByteVector(np.ascontiguousarray(t.data).tobytes())
        B.Start(b)
        if data is not None:
            B.AddData(b, data)
        buffers.append(B.End(b))
    t_offs = []
    for i, t in enumerate(tensors):
        name = b.CreateString(f"t{i}")
        shape = ivec(TT.StartShapeVector, list(t.shape))
        q = None
        if t.scale is not None:
            Q.StartScaleVector(b, 1)
            b.PrependFloat32(t.scale)
            sc = b.EndVector()
            Q.StartZeroPointVector(b, 1)
            b.PrependInt64(t.zp)
            zp = b.EndVector()
            Q.Start(b)
            Q.AddScale(b, sc)
            Q.AddZeroPoint(b, zp)
            q = Q.End(b)
        TT.Start(b)
        TT.AddShape(b, shape)
        TT.AddType(b, _TYPES[t.dtype])
        TT.AddBuffer(b, i + 1)
        TT.AddName(b, name)
        if q is not None:
            TT.AddQuantization(b, q)
        t_offs.append(TT.End(b))
    codes = sorted({op.opcode for op in ops})
    O = _schema("Operator")
    op_offs = []
    for op in ops:
        opt = op.options[1](b) if op.options is not None else None
        iv = ivec(O.StartInputsVector, [index[id(t)] for t in op.inputs])
        ov = ivec(O.StartOutputsVector, [index[id(t)] for t in op.outputs])
        O.Start(b)
        O.AddOpcodeIndex(b, codes.index(op.opcode))
        O.AddInputs(b, iv)
        O.AddOutputs(b, ov)
        if op.options is not None:
            O.AddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, op.options[0]))
            O.AddBuiltinOptions(b, opt)
        op_offs.append(O.End(b))
    SG = _schema("SubGraph")
    tv = ovec(SG.StartTensorsVector, t_offs)
    siv = ivec(SG.StartInputsVector, graph_in)
    sov = ivec(SG.StartOutputsVector, graph_out)
    opv = ovec(SG.StartOperatorsVector, op_offs)
    sname = b.CreateString("main")
    SG.Start(b)
    SG.AddTensors(b, tv)
    SG.AddInputs(b, siv)
    SG.AddOutputs(b, sov)
    SG.AddOperators(b, opv)
    SG.AddName(b, sname)
    sg = SG.End(b)
    OC = _schema("OperatorCode")
    oc_offs = []
    for c in codes:
        code = getattr(tflite.BuiltinOperator, c)
        OC.Start(b)
        OC.AddDeprecatedBuiltinCode(b, min(code, 127))
        OC.AddBuiltinCode(b, code)
        OC.AddVersion(b, 1)
        oc_offs.append(OC.End(b))
    M = _schema("Model")
    ocv = ovec(M.StartOperatorCodesVector, oc_offs)
    sgv = ovec(M.StartSubgraphsVector, [sg])
    bv = ovec(M.StartBuffersVector, buffers)
    desc = b.CreateString("tinyedge test_kernels_misc")
    M.Start(b)
    M.AddVersion(b, 3)
    M.AddOperatorCodes(b, ocv)
    M.AddSubgraphs(b, sgv)
    M.AddBuffers(b, bv)
    M.AddDescription(b, desc)
    b.Finish(M.End(b), file_identifier=b"TFL3")
    return bytes(b.Output())


ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}


def add_options(act: str = "NONE") -> Options:
    def f(b: Any) -> int:
        A = _schema("AddOptions")
        A.Start(b)
        A.AddFusedActivationFunction(b, ACT[act])
        return int(A.End(b))
    return ("AddOptions", f)


def pool_options(fh: int, fw: int, sh: int, sw: int, padding: str = "VALID", act: str = "NONE") -> Options:
    def f(b: Any) -> int:
        P = _schema("Pool2DOptions")
        P.Start(b)
        P.AddPadding(b, 0 if padding == "SAME" else 1)
        P.AddStrideW(b, sw)
        P.AddStrideH(b, sh)
        P.AddFilterWidth(b, fw)
        P.AddFilterHeight(b, fh)
        P.AddFusedActivationFunction(b, ACT[act])
        return int(P.End(b))
    return ("Pool2DOptions", f)


def softmax_options(beta: float) -> Options:
    def f(b: Any) -> int:
        S = _schema("SoftmaxOptions")
        S.Start(b)
        S.AddBeta(b, beta)
        return int(S.End(b))
    return ("SoftmaxOptions", f)


# ============================================================ running and comparing


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise bit equality (floats compared by their bits: -0.0 != 0.0, NaN == same NaN)."""
    if a.dtype.kind == "f":
        return np.asarray(a.view(np.uint32) == b.view(np.uint32))
    return np.asarray(a == b)


def _samples(g: Graph, rng: np.random.Generator, n: int = N_SAMPLES) -> list[list[np.ndarray]]:
    """Integer inputs uniform over their full range (plus all minimum / all maximum); float
    inputs of a QUANTIZE: N(0, 60 * scale) (15000 * scale for an int16 output) mixed with
    exact half-way values k.5 * scale, and once zeros, -0, huge, inf and NaN."""
    consumer = {i: op for op in g.operators for i in op.inputs}
    out: list[list[np.ndarray]] = []
    for k in range(n + 3):
        sample = []
        for t in g.input_tensors:
            if t.dtype != "float32":
                info = np.iinfo(t.dtype)
                if k == n:
                    x = np.full(t.shape, info.min, t.dtype)
                elif k == n + 1:
                    x = np.full(t.shape, info.max, t.dtype)
                else:
                    x = rng.integers(info.min, info.max, t.shape, dtype=t.dtype, endpoint=True)
            else:
                y = g.tensor(consumer[t.index].outputs[0])
                ys = F32(y.scale)
                std, span = (60, 140) if y.dtype == "int8" else (15000, 33000)
                x = (rng.standard_normal(t.shape) * std * ys).astype(F32)
                half = ((rng.integers(-span, span, t.shape) + 0.5) * ys).astype(F32)
                x = np.where(rng.random(t.shape) < 0.4, half, x).astype(F32)
                if k == n + 2:
                    special = np.array([0.0, -0.0, 1e30, -1e30, np.inf, -np.inf, np.nan, 3e9, -3e9], F32)
                    flat = x.reshape(-1)
                    flat[: special.size] = special[: flat.size]
            sample.append(x)
        out.append(sample)
    return out


@dataclass
class Result:
    checked: int
    mismatches: list[str]
    samples: int = 0
    by_output: dict[int, list[str]] = field(default_factory=dict)  # graph output index -> mismatches


def run_and_compare(model: bytes, workdir: Path, rng: np.random.Generator,
                    labels: Sequence[str] | None = None,
                    samples: list[list[np.ndarray]] | None = None, variant: str = "portable") -> Result:
    """Generate + compile the model for the host (one of conftest.HOST_KERNEL_VARIANTS), run
    every sample, compare with the oracle."""
    g = read_model(model, "<test>")
    host = host_network(g, workdir, variant)
    oracle = Oracle(model)
    samples = samples if samples is not None else _samples(g, rng)
    got = host.run_many(samples)
    checked = 0
    bad: list[str] = []
    by_output: dict[int, list[str]] = {}
    for k, (sample, outs) in enumerate(zip(samples, got, strict=True)):
        want = oracle.run(sample)
        for j, (o, w) in enumerate(zip(outs, want, strict=True)):
            checked += o.size
            same = _same(o, w)
            if not same.all():
                where = labels[j] if labels else f"output {j}"
                idx = np.argwhere(~same)[:3].tolist()
                msg = (f"sample {k}, {where}: {int((~same).sum())} of {o.size} differ, "
                       f"first at {idx}: ours {o[~same][:3].tolist()} oracle {w[~same][:3].tolist()}")
                bad.append(msg)
                by_output.setdefault(j, []).append(msg)
    return Result(checked, bad, len(samples), by_output)


def _describe(op: Op) -> str:
    def t(x: T) -> str:
        q = f" s={x.scale:.4g} zp={x.zp}" if x.scale is not None else ""
        return f"{x.dtype}{list(x.shape)}{q}{' const' if x.data is not None else ''}"
    return f"{op.opcode} {', '.join(t(x) for x in op.inputs)} -> {', '.join(t(x) for x in op.outputs)}"


# ============================================================ op families


def _scale(rng: np.random.Generator, lo: float = -3.0, hi: float = 0.5) -> float:
    return float(F32(10 ** rng.uniform(lo, hi)))


def _zp(rng: np.random.Generator) -> int:
    return int(rng.integers(-128, 128))


def _pool(kind: str, n: int, h: int, w: int, c: int, fh: int, fw: int, sh: int, sw: int, pad: str,
          act: str, s: float, z: int) -> Op:
    oh = (h + sh - 1) // sh if pad == "SAME" else (h + sh - fh) // sh
    ow = (w + sw - 1) // sw if pad == "SAME" else (w + sw - fw) // sw
    return Op(kind, [T((n, h, w, c), "int8", s, z)], [T((n, oh, ow, c), "int8", s, z)],
              pool_options(fh, fw, sh, sw, pad, act))


def pool_ops(kind: str, rng: np.random.Generator) -> list[Op]:
    ops = [
        _pool(kind, 1, 6, 6, 4, 1, 1, 1, 1, "VALID", "NONE", 0.1, 3),        # 1x1 pool
        _pool(kind, 1, 6, 5, 3, 1, 1, 2, 2, "SAME", "NONE", 0.05, -7),       # 1x1 stride 2
        _pool(kind, 1, 9, 9, 5, 3, 3, 2, 2, "SAME", "NONE", 0.02, 10),       # stride 2 SAME, odd c
        _pool(kind, 1, 8, 7, 7, 2, 2, 2, 2, "SAME", "RELU", 0.03, -20),      # odd size SAME
        _pool(kind, 1, 25, 5, 64, 25, 5, 25, 5, "VALID", "NONE", 0.08, -128),  # kws global pool
        _pool(kind, 2, 5, 4, 70, 3, 2, 1, 2, "SAME", "RELU6", 0.04, -100),   # > 64 channels, batch 2
        _pool(kind, 1, 3, 3, 300, 3, 3, 3, 3, "VALID", "RELU_N1_TO_1", 0.01, 0),  # many channels
        _pool(kind, 1, 7, 7, 1, 4, 4, 3, 3, "SAME", "NONE", 0.2, 5),         # c = 1, big overhang
        _pool(kind, 1, 1, 1, 8, 1, 1, 1, 1, "VALID", "NONE", 0.2, 5),        # a single cell
    ]
    for _ in range(16):
        h, w = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        c = int(rng.choice([1, 2, 3, 5, 8, 16, 17, 33, 64, 65]))
        fh, fw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        pad = "SAME" if rng.random() < 0.5 else "VALID"
        act = str(rng.choice(["NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
        ops.append(_pool(kind, int(rng.choice([1, 1, 2])), h, w, c, fh, fw, int(rng.integers(1, 4)),
                         int(rng.integers(1, 4)), pad, act, _scale(rng), _zp(rng)))
    return ops


def softmax_ops(rng: np.random.Generator) -> list[Op]:
    def sm(shape: tuple[int, ...], s: float, z: int, beta: float, out: str = "int8",
           os_: float = 1 / 256, oz: int = -128) -> Op:
        return Op("SOFTMAX", [T(shape, "int8", s, z)], [T(shape, out, os_, oz)], softmax_options(beta))

    ops = [
        # TFLM's int8 -> int8 SOFTMAX aborts the interpreter (SIGABRT) when 512 or more values of
        # a row are equal to its maximum (measured; e.g. all 127): rows here stay below 512
        sm((1, 3), 0.1, 0, 1.0), sm((1, 1), 0.1, 5, 1.0), sm((1, 511), 0.05, -10, 1.0),
        sm((1, 12), 0.1446929, 14, 1.0),                      # the kws head
        sm((2, 2, 3, 10), 0.2, -3, 1.0),                      # rank 4, several rows
        sm((1, 10), 0.1, 0, 1e-3), sm((1, 10), 0.1, 0, 1e3),  # extreme beta
        sm((3, 17), 0.01, 20, 0.5), sm((1, 64), 3.0, 0, 2.0),
        sm((1, 255), 1e-4, -128, 1.0),                        # nearly flat
        sm((2, 100), 0.05, 7, 1.0, "int16", 1 / 65536, -32768),  # TFLM: int16 out needs zp -32768, 1/65536
        sm((2, 1000), 0.02, -9, 1.3, "int16", 1 / 65536, -32768),
        sm((1, 7), 0.3, 1, 0.7, "int16", 1 / 65536, -32768),
    ]
    for _ in range(10):
        d = int(rng.choice([2, 3, 10, 16, 33, 100, 1000]))
        beta = float(rng.choice([1.0, 0.5, 2.0, float(10 ** rng.uniform(-2, 2))]))
        if rng.random() < 0.3:
            ops.append(sm((2, d), _scale(rng), _zp(rng), beta, "int16", 1 / 65536, -32768))
        else:
            ops.append(sm((int(rng.integers(1, 4)), min(d, 511)), _scale(rng), _zp(rng), beta))
    return ops


def _add(a_shape: tuple[int, ...], b_shape: tuple[int, ...], s1: float, z1: int, s2: float, z2: int,
         so: float, zo: int, act: str = "NONE", const_b: np.ndarray | None = None, dtype: str = "int8") -> Op:
    n = max(len(a_shape), len(b_shape))
    ea = (1,) * (n - len(a_shape)) + a_shape
    eb = (1,) * (n - len(b_shape)) + b_shape
    out = tuple(max(x, y) for x, y in zip(ea, eb))
    return Op("ADD", [T(a_shape, dtype, s1, z1), T(b_shape, dtype, s2, z2, data=const_b)],
              [T(out, dtype, so, zo)], add_options(act))


def random_broadcast_shapes(rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Two input shapes that broadcast: rank 1-5, some dims 1 on either side, sometimes a
    lower-rank second input, innermost extents around the 8/16-element block sizes."""
    rank = int(rng.integers(1, 6))
    out = [int(v) for v in rng.integers(1, 6, rank)]
    if rng.random() < 0.4:
        out[-1] = int(rng.choice([8, 15, 16, 17, 31, 32, 33, 40, 100]))
    a, b = list(out), list(out)
    if rng.random() > 0.3:
        for i in range(rank):
            r = rng.random()
            if r < 0.3:
                a[i] = 1
            elif r < 0.6:
                b[i] = 1
    if rng.random() < 0.15:
        b = b[int(rng.integers(0, rank)):]
    return a, b


def add_ops(rng: np.random.Generator) -> list[Op]:
    ops = [
        _add((1, 4, 4, 8), (1, 1, 1, 8), 0.1, 3, 0.05, -3, 0.12, 1),          # input 2 broadcast, rows of 8
        _add((1, 1, 1, 40), (1, 4, 4, 40), 0.1, 3, 0.05, -3, 0.12, 1),        # input 1 broadcast, rows of 40
        _add((1, 4, 4, 8), (1, 1, 1, 1), 0.02, -5, 0.3, 9, 0.25, -2),         # a single-element input 2
        _add((1, 1, 1, 1), (1, 5, 5, 3), 0.3, 9, 0.02, -5, 0.25, -2, "RELU"),  # a single-element input 1
        _add((1, 4, 1, 8), (1, 1, 4, 1), 0.05, 1, 0.07, 2, 0.1, 0),           # both inputs broadcast
        _add((2, 1, 3, 1, 5, 2), (1, 4, 1, 6, 5, 1), 0.05, 1, 0.07, 2, 0.1, 0),  # 6-D, both broadcast
        _add((1, 4, 4, 8), (8,), 0.1, 3, 0.05, -3, 0.12, 1),                  # ranks differ
        _add((3, 5), (3, 5), 0.6550214, -88, 0.0011691, -37, 0.0022611, -36),  # x86 TFLite wrapped int16 here
        _add((1, 37), (1, 37), 0.05, 3, 0.031, -7, 0.07, -2, "RELU6"),
        _add((1, 33), (1, 33), 0.05, 3, 0.031, -7, 0.07, -2, "RELU_N1_TO_1"),
        _add((1, 32, 32, 16), (1, 32, 32, 16), 0.0393936, -128, 0.104195, 4, 0.0509457, -128, "RELU"),
        _add((1, 6, 6, 4), (1, 6, 6, 4), 0.1, 0, 0.1, 0, 0.2, 0,
             const_b=rng.integers(-128, 128, (1, 6, 6, 4), dtype=np.int8)),   # constant operand
        _add((2, 3, 19), (2, 1, 19), 0.1, 3, 0.01, -3, 0.12, 1,
             const_b=rng.integers(-128, 128, (2, 1, 19), dtype=np.int8)),
    ]
    for _ in range(30):
        a, b = random_broadcast_shapes(rng)
        s1, s2 = _scale(rng), _scale(rng)
        if rng.random() < 0.2:
            s2 = float(F32(s1 * 10 ** rng.uniform(-4, -2)))
        so = float(F32(max(s1, s2) * 10 ** rng.uniform(-2.5, 1.0)))
        act = str(rng.choice(["NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
        ops.append(_add(tuple(a), tuple(b), s1, _zp(rng), s2, _zp(rng), so, _zp(rng), act))
    return ops


def quantize_ops(rng: np.random.Generator) -> list[Op]:
    ops = []
    for n in (1, 7, 8, 9, 15, 16, 17, 24, 31, 64, 69):
        ops.append(Op("QUANTIZE", [T((1, n), "float32")], [T((1, n), "int8", _scale(rng, -3, 0), _zp(rng))]))
    ops.append(Op("QUANTIZE", [T((1, 4, 4, 3), "float32")], [T((1, 4, 4, 3), "int8", 1 / 255, -128)]))
    # subnormal scale: the samples (N(0, 60 s), k.5 * s) are subnormal inputs
    ops.append(Op("QUANTIZE", [T((1, 11), "float32")], [T((1, 11), "int8", 1.5e-40, -7)]))
    return ops


def dequantize_ops(rng: np.random.Generator) -> list[Op]:
    ops = [Op("DEQUANTIZE", [T((1, n), "int8", _scale(rng, -4, 1), _zp(rng))], [T((1, n), "float32")])
           for n in (1, 7, 8, 9, 15, 16, 17, 24, 31, 64, 69, 100)]
    # a subnormal scale: subnormal outputs (a core flushing them to zero would differ)
    ops.append(Op("DEQUANTIZE", [T((1, 9), "int8", 3e-39, 5)], [T((1, 9), "float32")]))
    return ops


def requantize_ops(rng: np.random.Generator) -> list[Op]:
    ops = []
    for n in (1, 15, 16, 17, 32, 33, 48, 69, 100, 16, 31):
        si = _scale(rng, -3, 0)
        so = si if n == 31 else float(F32(si * 10 ** rng.uniform(-2, 2)))
        ops.append(Op("QUANTIZE", [T((1, n), "int8", si, _zp(rng))], [T((1, n), "int8", so, _zp(rng))]))
    return ops


def add16_ops(rng: np.random.Generator) -> list[Op]:
    """int16 ADD (left shift 15): the broadcast patterns, symmetric and asymmetric zero points,
    every activation, a constant operand, random configurations."""
    def zp() -> int:
        return 0 if rng.random() < 0.5 else int(rng.integers(-300, 300))

    ops = [
        _add((1, 37), (1, 37), 1e-4, 0, 3e-4, 0, 4e-4, 0, dtype="int16"),
        _add((1, 4, 4, 8), (1, 1, 1, 8), 2e-4, 5, 1e-4, -7, 3e-4, 11, "RELU", dtype="int16"),
        _add((1, 1, 1, 1), (1, 5, 5, 3), 3e-4, 0, 2e-5, 0, 2.5e-4, 0, "RELU6", dtype="int16"),
        _add((2, 1, 3, 1, 5, 2), (1, 4, 1, 6, 5, 1), 5e-5, 1, 7e-5, 2, 1e-4, 0, "RELU_N1_TO_1", dtype="int16"),
        _add((1, 6, 4), (1, 6, 4), 1e-4, 0, 1e-4, 0, 2e-4, 0, dtype="int16",
             const_b=rng.integers(-32768, 32768, (1, 6, 4), dtype=np.int16)),
    ]
    for _ in range(12):
        a, b = random_broadcast_shapes(rng)
        s1, s2 = _scale(rng, -5, -2), _scale(rng, -5, -2)
        so = float(F32(max(s1, s2) * 10 ** rng.uniform(-1.5, 1.0)))
        act = str(rng.choice(["NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
        ops.append(_add(tuple(a), tuple(b), s1, zp(), s2, zp(), so, zp(), act, dtype="int16"))
    return ops


def quantize16_ops(rng: np.random.Generator) -> list[Op]:
    """The int16 side of QUANTIZE / DEQUANTIZE, and DEQUANTIZE of uint8: float32 -> int16,
    int8 -> int16, int16 -> int8, int16 -> int16 (scales both ways, zero points 0 and not)."""
    ops = []
    for n, s, z in ((1, 1 / 32768, 0), (17, 3e-5, 0), (33, 2e-4, 100), (9, 1e-2, -5)):
        ops.append(Op("QUANTIZE", [T((1, n), "float32")], [T((1, n), "int16", s, z)]))
    for n in (1, 16, 17, 40):
        si = _scale(rng, -3, 0)
        so16 = float(F32(si * 10 ** rng.uniform(-3, -1)))
        ops.append(Op("QUANTIZE", [T((1, n), "int8", si, _zp(rng))], [T((1, n), "int16", so16, 0)]))
        ops.append(Op("QUANTIZE", [T((1, n), "int16", so16, int(rng.integers(-9, 9)))],
                      [T((1, n), "int8", float(F32(si * 10 ** rng.uniform(-0.5, 0.5))), _zp(rng))]))
        ops.append(Op("QUANTIZE", [T((1, n), "int16", so16, 0)],
                      [T((1, n), "int16", float(F32(so16 * 10 ** rng.uniform(-1, 1))), int(rng.integers(-50, 50)))]))
    for n in (1, 17, 33):
        ops.append(Op("DEQUANTIZE", [T((1, n), "int16", _scale(rng, -5, -1), int(rng.integers(-99, 99)))],
                      [T((1, n), "float32")]))
        ops.append(Op("DEQUANTIZE", [T((1, n), "uint8", _scale(rng, -3, 0), int(rng.integers(0, 256)))],
                      [T((1, n), "float32")]))
    return ops


def chain_ops() -> list[Op]:
    """The kws head: AVERAGE_POOL -> RESHAPE -> SOFTMAX (RESHAPE is an alias, no code), and a
    float-I/O chain QUANTIZE -> ADD -> MAX_POOL -> DEQUANTIZE."""
    x = T((1, 5, 4, 12), "int8", 0.08, -128)
    p = T((1, 1, 1, 12), "int8", 0.08, -128)
    shape = T((2,), "int32", data=np.array([1, 12], np.int32))
    r = T((1, 12), "int8", 0.08, -128)
    y = T((1, 12), "int8", 1 / 256, -128)
    f = T((1, 6, 6, 5), "float32")
    q = T((1, 6, 6, 5), "int8", 0.03, 4)
    q2 = T((1, 6, 6, 5), "int8", 0.05, -9)
    s = T((1, 6, 6, 5), "int8", 0.06, 2)
    m = T((1, 3, 3, 5), "int8", 0.06, 2)
    d = T((1, 3, 3, 5), "float32")
    return [
        Op("AVERAGE_POOL_2D", [x], [p], pool_options(5, 4, 5, 4)),
        Op("RESHAPE", [p, shape], [r]),
        Op("SOFTMAX", [r], [y], softmax_options(1.0)),
        Op("QUANTIZE", [f], [q]),
        Op("ADD", [q, q2], [s], add_options("RELU")),
        Op("MAX_POOL_2D", [s], [m], pool_options(2, 2, 2, 2, "SAME")),
        Op("DEQUANTIZE", [m], [d]),
    ]


FAMILIES: dict[str, Callable[[np.random.Generator], list[Op]]] = {
    "AVERAGE_POOL_2D": lambda rng: pool_ops("AVERAGE_POOL_2D", rng),
    "MAX_POOL_2D": lambda rng: pool_ops("MAX_POOL_2D", rng),
    "SOFTMAX": softmax_ops,
    "ADD": add_ops,
    "ADD int16": add16_ops,
    "QUANTIZE float->int8": quantize_ops,
    "QUANTIZE/DEQUANTIZE int16, DEQUANTIZE uint8": quantize16_ops,
    "QUANTIZE int8->int8": requantize_ops,
    "DEQUANTIZE": dequantize_ops,
    "chains with RESHAPE": lambda rng: chain_ops(),
}


def _family_ops(family: str) -> list[Op]:
    return FAMILIES[family](np.random.default_rng(sum(map(ord, family))))


@pytest.fixture(scope="session")
def family_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    """Every family's ops in one graph: one compile, one oracle; results split by family."""
    ops: list[Op] = []
    owner: list[str] = []
    for family in sorted(FAMILIES):
        fops = _family_ops(family)
        ops += fops
        owner += [family] * len(fops)
    model = build_ops(ops)
    g = read_model(model, "families")
    problems = check_graph(g)
    assert not problems, [str(p) for p in problems]
    labels, families = [], []
    for t_index in g.outputs:
        op_index = next(op.index for op in g.operators if t_index in op.outputs)
        labels.append(f"op {op_index}: {_describe(ops[op_index])}")
        families.append(owner[op_index])
    res = run_and_compare(model, tmp_path_factory.mktemp("families"), np.random.default_rng(2024), labels)
    out = {f: Result(0, []) for f in FAMILIES}
    for f, size in zip(families, (g.tensor(i).size for i in g.outputs)):
        out[f].checked += size * res.samples
    for j, msgs in res.by_output.items():
        out[families[j]].mismatches += msgs
    return out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_bit_exact(family: str, family_results: dict[str, Result]) -> None:
    res = family_results[family]
    assert not res.mismatches, "not bit-exact with the oracle:\n" + "\n".join(res.mismatches)
    assert res.checked > 500


@pytest.mark.parametrize("variant", sorted(v for v in HOST_KERNEL_VARIANTS if v != "portable"))
def test_add_family_bit_exact_other_kernels(variant: str, tmp_path: Path) -> None:
    """The ADD family with the kernel sets whose lowering takes the tables of te_add_fast.h
    for int8 (and the portable reference of that kernel)."""
    from tinyedge.compiler import compile

    model = build_ops(_family_ops("ADD"))
    g = read_model(model, "add-family")
    calls = [lo.lowered.call for lo in compile(g, kernels=HOST_KERNEL_VARIANTS[variant][0]).ops]
    assert sum("te_add_fast_s8" in c for c in calls) >= 10, calls
    res = run_and_compare(model, tmp_path, np.random.default_rng(2025), variant=variant)
    assert not res.mismatches, "not bit-exact with the oracle:\n" + "\n".join(res.mismatches)
    assert res.checked > 500


def test_add_cases_cover_the_broadcasts() -> None:
    """The ADD family reaches every broadcast pattern (so the family test means something):
    same shapes, only input 1 broadcast, only input 2 broadcast, both, a single-element input
    on either side, differing ranks, rank 6."""
    seen: set[str] = set()
    for op in _family_ops("ADD"):
        a, b = op.inputs[0].shape, op.inputs[1].shape
        out = broadcast_shape(a, b)
        assert out is not None
        n = len(out)
        ea, eb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
        bc1 = any(x == 1 and o != 1 for x, o in zip(ea, out))
        bc2 = any(x == 1 and o != 1 for x, o in zip(eb, out))
        seen.add({(False, False): "same", (True, False): "input 1", (False, True): "input 2",
                  (True, True): "both"}[(bc1, bc2)])
        if math.prod(a) == 1 < math.prod(out):
            seen.add("single 1")
        if math.prod(b) == 1 < math.prod(out):
            seen.add("single 2")
        if len(a) != len(b):
            seen.add("ranks differ")
        if n == 6:
            seen.add("6-D")
    assert seen >= {"same", "input 1", "input 2", "both", "single 1", "single 2", "ranks differ", "6-D"}, seen


# ============================================================ witnesses: x86 TFLite arithmetic vs TFLM

# The x86 TFLite interpreter's optimized kernels (NEON code through NEON_2_SSE) compute some
# elements with other roundings than TFLM's reference kernels. The Python models below exist
# only to show that a witness tells the two apart; every expected value comes from TFLM.


def _wrap(x: int, bits: int) -> int:
    half = 1 << (bits - 1)
    return (x + half) % (1 << bits) - half


def _vshl(x: int, n: int) -> int:
    return _wrap(x << n, 32) if n >= 0 else x >> -n


def x86_add_vector(cfg: tuple, a: int, b: int, scalar_broadcast: bool, in2_sign: int = 1) -> int:
    """x86 TFLite's AddElementwiseInt8 block of 16 (one rounding per input), or its
    AddScalarBroadcast block of 8 (a truncating shift), then an int16 wrap of the output.
    ``in2_sign=-1``: input 2's multiplier negated (how TFLite's SUB once used these kernels)."""
    s1, z1, s2, z2, so, zo = cfg[:6]
    q = add_multipliers(s1, s2, so)
    m2 = in2_sign * q["in2_mult"]
    if scalar_broadcast:
        x1 = _vshl(srdhm(_vshl(a - z1, 20), q["in1_mult"]), q["in1_shift"])
        x2 = _vshl(srdhm(_vshl(b - z2, 20), m2), q["in2_shift"])
    else:
        x1 = srdhm(_vshl(a - z1, 20 + q["in1_shift"]), q["in1_mult"])
        x2 = srdhm(_vshl(b - z2, 20 + q["in2_shift"]), m2)
    v = rounding_divide_by_pot(srdhm(x1 + x2, q["out_mult"]), -q["out_shift"])
    return max(-128, min(127, _wrap(_wrap(v, 16) + zo, 16)))


# (s1, z1, s2, z2, s_out, z_out, a, b): configurations where the x86 interpreter's vector
# recipe and TFLM's reference recipe give different outputs for the input pair (a, b);
# found by searching all 65536 input pairs of random scale configurations (about 1 pair
# in 65536 in 3 % of configurations), so random inputs alone would not tell them apart.
ADD_ROWS_WITNESSES = [  # x86 AddElementwiseInt8 (blocks of 16)
    (0.17565231, -11, 0.021299366, 103, 0.018529192, -31, 10, -48),
    (0.02591727, 65, 0.11576304, 109, 0.02575682, -126, 73, 118),
    (0.11389937, 61, 0.067044646, -47, 0.011961646, -55, 59, -18),
    (0.033331864, -21, 0.018356958, -9, 0.046581704, 82, -101, -101),
    (0.3021218, 77, 0.6124503, -101, 0.9005612, -16, 3, -27),
    (0.009855449, 117, 0.04642635, -21, 0.009642693, 28, -60, -7),
]
ADD_SCALAR_WITNESSES = [  # x86 AddScalarBroadcast (blocks of 8); a is the single-element input
    (0.0012096991, 81, 0.1821962, -44, 0.12761378, -13, -48, -54),
    (0.483223, 100, 0.01854175, -122, 0.45488617, -3, 21, 11),
    (0.0018262689, -37, 0.012921898, -85, 0.0026816432, 55, 76, -88),
    (0.010491704, -43, 0.0021464264, -25, 0.0043107606, -100, 28, -120),
    (0.02591727, 65, 0.11576304, 109, 0.02575682, -126, 73, 118),
    (0.016206026, -69, 0.006690836, 7, 0.00069401297, 31, -78, 33),
]
# QUANTIZE float32 -> int8, (scale, x): x / scale in float32 rounds to a tie k + 0.5 that the
# exact quotient is not on (or the other way round), so a double division rounds otherwise.
QUANTIZE_DIVISION_WITNESSES = [
    (0.027362382039427757, -1.682786464691162),
    (0.15985693037509918, -14.147337913513184),
    (0.0021928860805928707, -0.027411075308918953),
    (0.03549936041235924, -1.011731743812561),
]
# DEQUANTIZE (scale, zero point, q): f32(q * s) + f32(-zp * s) (x86 blocks of 8, two
# roundings) is not f32(s * (q - zp)) (one rounding) there
DEQUANTIZE_WITNESSES = [(0.017852409, 101, 104), (0.017852409, 101, 91), (0.017852409, 101, 75),
                        (0.0362333208322525, 65, -125)]


def _round_away(v: float) -> int:
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def witness_ops() -> tuple[list[Op], list[np.ndarray], list[int]]:
    """The witness ops, their inputs, and per op the value (bits for float) the x86
    interpreter's recipe gives there -- which is not TFLM's (checked below).

    ADD: the witness pairs above, as rows of 37 and as a single element broadcast over 19 in
    both input orders. QUANTIZE float -> int8: k.5 * scale values (x86: x * (1/s) rounded half
    to even in blocks of 8; TFLM: x / s rounded half away from zero) and the division witnesses
    (x86 tail: a double division). DEQUANTIZE: one rounding, not two. int8 requantize x 0.25:
    ties away from zero (x86 blocks of 16: ties up)."""
    ops: list[Op] = []
    feeds: list[np.ndarray] = []
    old: list[int] = []
    for w in ADD_ROWS_WITNESSES:
        s1, z1, s2, z2, so, zo, a, b = w
        ops.append(_add((1, 37), (1, 37), s1, z1, s2, z2, so, zo))
        feeds += [np.full((1, 37), a, np.int8), np.full((1, 37), b, np.int8)]
        old.append(x86_add_vector(w, a, b, scalar_broadcast=False))
    for w in ADD_SCALAR_WITNESSES:
        s1, z1, s2, z2, so, zo, a, b = w
        ops.append(_add((1, 1), (1, 19), s1, z1, s2, z2, so, zo))
        feeds += [np.full((1, 1), a, np.int8), np.full((1, 19), b, np.int8)]
        ops.append(_add((1, 19), (1, 1), s2, z2, s1, z1, so, zo))
        feeds += [np.full((1, 19), b, np.int8), np.full((1, 1), a, np.int8)]
        old += [x86_add_vector(w, a, b, scalar_broadcast=True)] * 2
    s = 0.0390625  # 5 * 2^-7: the half-way values k.5 * s are exact floats
    for v in (2.5, -2.5, 0.5, -0.5, 100.5):
        ops.append(Op("QUANTIZE", [T((1, 21), "float32")], [T((1, 21), "int8", s, 0)]))
        feeds.append(np.full((1, 21), F32(v * s), F32))
        old.append(int(np.rint(F32(v * s) * F32(1.0 / s))))  # x86 blocks: round half to even
    for s_, x in QUANTIZE_DIVISION_WITNESSES:
        ops.append(Op("QUANTIZE", [T((1, 21), "float32")], [T((1, 21), "int8", s_, 0)]))
        feeds.append(np.full((1, 21), F32(x), F32))
        old.append(_round_away(float(F32(x)) / float(F32(s_))))  # x86 tail: double division
    for s_, zp, q in DEQUANTIZE_WITNESSES:
        ops.append(Op("DEQUANTIZE", [T((1, 21), "int8", s_, zp)], [T((1, 21), "float32")]))
        feeds.append(np.full((1, 21), q, np.int8))
        two = F32(F32(F32(q) * F32(s_)) + F32(-zp * float(F32(s_))))
        old.append(int(np.array(two, F32).view(np.int32)))  # compared as bits
    for q in (-5, -9, -13, -17):  # (q + 3) * 0.02 / 0.08 = -0.5, -1.5, ...: negative ties
        ops.append(Op("QUANTIZE", [T((1, 21), "int8", 0.02, -3)], [T((1, 21), "int8", 0.08, 5)]))
        feeds.append(np.full((1, 21), q, np.int8))
        old.append(math.floor((q + 3) / 4 + 0.5) + 5)  # x86 blocks: ties up
    return ops, feeds, old


def test_tflm_arithmetic_at_x86_witnesses(tmp_path: Path) -> None:
    """At each witness (:func:`witness_ops`) the x86 interpreter's recipe gives other bytes
    than TFLM; TFLM gives the same value at every position of a row (no vector blocks, no
    tail); ours gives TFLM's."""
    ops, feeds, old = witness_ops()
    want = TflmOracle(build_ops(ops)).run(feeds)
    for j, (op, out, x86) in enumerate(zip(ops, want, old, strict=True)):
        flat = out.reshape(-1)
        bits = flat.view(np.int32) if flat.dtype == np.float32 else flat.astype(np.int64)
        assert (bits == bits[0]).all(), f"op {j} ({_describe(op)}): TFLM's value depends on the position"
        assert int(bits[0]) != x86, f"op {j} ({_describe(op)}): not a witness, x86 and TFLM agree ({x86})"
    res = run_and_compare(build_ops(ops), tmp_path, np.random.default_rng(0), samples=[feeds])
    assert not res.mismatches, "\n".join(res.mismatches)


# ============================================================ ADD's Prepare: double, not float32


def add_multipliers_f32(s1: float, s2: float, so: float) -> dict[str, int]:
    """The candidate Prepare in float32 (what TFLM's sub_common.cc reads as): twice_max,
    the ratios and the output multiplier each rounded to float32 before QuantizeMultiplier."""
    f1, f2, fo = F32(s1), F32(s2), F32(so)
    tm = F32(F32(2) * max(f1, f2))
    pairs = [quantize_multiplier(float(F32(f1 / tm))), quantize_multiplier(float(F32(f2 / tm))),
             quantize_multiplier(float(F32(tm / F32(F32(1 << 20) * fo))))]
    return {"in1_mult": pairs[0][0], "in1_shift": pairs[0][1], "in2_mult": pairs[1][0],
            "in2_shift": pairs[1][1], "out_mult": pairs[2][0], "out_shift": pairs[2][1]}


def binary_recipe(q: dict[str, int], zeros: tuple[int, int, int], a: int, b: int, sign: int = 1) -> int:
    """TFLM's int8 AddFunc (sign 1) / SubElementwise (sign -1) with the given multipliers."""
    def mbqm(x: int, m: int, sh: int) -> int:
        return rounding_divide_by_pot(srdhm(x, m), -sh)

    z1, z2, zo = zeros
    raw = mbqm((a - z1) << 20, q["in1_mult"], q["in1_shift"]) + sign * mbqm((b - z2) << 20, q["in2_mult"],
                                                                            q["in2_shift"])
    return max(-128, min(127, mbqm(raw, q["out_mult"], q["out_shift"]) + zo))


# (s1, z1, s2, z2, s_out, z_out, a, b): the double and the float32 derivation of the
# multipliers give different ADD outputs for (a, b) (random search; about one configuration
# in three derives different multipliers, and then a few input pairs differ)
ADD_PREPARE_WITNESSES = [
    (0.0043183546513319016, 35, 0.3833056688308716, -52, 0.013313349336385727, -44, -49, -46),
    (0.10280138999223709, -107, 0.01601441577076912, -109, 0.1340065896511078, -117, 116, -5),
    (0.07865600287914276, 91, 0.0021634534932672977, -46, 0.2139153778553009, 35, 35, -37),
    (0.23101933300495148, 90, 0.03496616706252098, 49, 0.006321573164314032, 93, 97, -25),
]


def test_add_prepare_in_double(tmp_path: Path) -> None:
    """TFLM derives ADD's multipliers in double (add_common.cc): at each witness the float32
    derivation gives another output, TFLM does not follow it, and ours gives TFLM's."""
    ops, feeds = [], []
    for w in ADD_PREPARE_WITNESSES:
        ops.append(_add((1, 1), (1, 1), *w[:6]))
        feeds += [np.full((1, 1), w[6], np.int8), np.full((1, 1), w[7], np.int8)]
    want = TflmOracle(build_ops(ops)).run(feeds)
    for w, out in zip(ADD_PREPARE_WITNESSES, want, strict=True):
        other = binary_recipe(add_multipliers_f32(w[0], w[2], w[4]), (w[1], w[3], w[5]), w[6], w[7])
        assert int(out.reshape(-1)[0]) != other, f"{w}: not a witness"
    res = run_and_compare(build_ops(ops), tmp_path, np.random.default_rng(0), samples=[feeds])
    assert not res.mismatches, "\n".join(res.mismatches)


# ============================================================ Keras-converted models


def _keras_cases() -> list[str]:
    return [c.name for c in keras_models.CASES if set(c.ops) <= MY_OPS]


@pytest.fixture(scope="session")
def model_cache(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.cache.mkdir("tinyedge-keras-models"))


def graph_ops(g: Graph, only: Sequence[int] | None = None) -> list[Op]:
    """The operators of a parsed graph (all, or the indices in ``only``) as :class:`Op` s for
    :func:`build_ops`: same tensors (shared by index), quantization, constants and options."""
    act_names = {v: k for k, v in ACT.items()}
    tensors: dict[int, T] = {}

    def tensor(i: int) -> T:
        if i not in tensors:
            t = g.tensor(i)
            tensors[i] = T(t.shape, t.dtype, t.scale if t.quant else None, t.zero_point if t.quant else 0,
                           data=t.array() if t.is_const else None)
        return tensors[i]

    ops = []
    for op in g.operators:
        if only is not None and op.index not in only:
            continue
        o = op.options
        opt: Options | None = None
        if op.opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            opt = pool_options(o["filter_height"], o["filter_width"], o["stride_h"], o["stride_w"],
                               "SAME" if o["padding"] == 0 else "VALID", act_names[o["fused_activation_function"]])
        elif op.opcode == "SOFTMAX":
            opt = softmax_options(o["beta"])
        elif op.opcode == "ADD":
            opt = add_options(act_names[o["fused_activation_function"]])
        else:
            assert op.opcode in ("RESHAPE", "QUANTIZE", "DEQUANTIZE"), op.opcode
        ops.append(Op(op.opcode, [tensor(i) for i in op.inputs], [tensor(i) for i in op.outputs], opt))
    return ops


def test_keras_models_bit_exact(model_cache: Path, tmp_path: Path) -> None:
    """The converter's own models of these ops, all in one graph (one compile, one oracle)."""
    names = _keras_cases()
    assert {op for n in names for op in keras_models.case(n).ops} >= {
        "AVERAGE_POOL_2D", "MAX_POOL_2D", "SOFTMAX", "ADD", "RESHAPE"}, names
    ops: list[Op] = []
    labels: list[str] = []
    for name in names:
        g = read_model(keras_models.tflite_model(name, model_cache), name)
        ops += graph_ops(g)
        labels += [f"{name} output {j}" for j in range(len(g.outputs))]
    res = run_and_compare(build_ops(ops), tmp_path, np.random.default_rng(7), labels)
    assert not res.mismatches, "\n".join(res.mismatches)
    assert res.checked > 5000


# ============================================================ layers of the shared models


SHARED = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant"]


def tflm_tensor(oracle: TflmOracle, index: int) -> np.ndarray:
    """A tensor of the main subgraph after ``run`` (the oracle built with preserve_all_tensors)."""
    return np.array(oracle._interp.GetTensor(index, 0)["tensor_data"], copy=True)


@pytest.fixture(scope="session")
def shared_layer_mismatches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Every layer of these ops in the reference models, each alone in one merged graph, fed
    TFLM's own input tensors for that layer; compared with TFLM's output tensors."""
    rng = np.random.default_rng(99)
    n = 6
    ops: list[Op] = []
    feeds: list[list[np.ndarray]] = [[] for _ in range(n)]
    want: list[list[np.ndarray]] = [[] for _ in range(n)]
    where: list[str] = []
    for name in SHARED:
        path = shared_model(name)
        g = load_model(path)
        layers = [op for op in g.operators if op.opcode in MY_OPS - {"RESHAPE"}]
        assert layers, name
        ops += [op for layer in layers for op in graph_ops(g, [layer.index])]
        where += [f"{name} op {op.index} {op.opcode}" for op in layers]
        tflm = TflmOracle(path, preserve_all_tensors=True)
        for k in range(n):
            tflm.run([rng.integers(-128, 128, t.shape, dtype=np.int8) for t in g.input_tensors])
            feeds[k] += [tflm_tensor(tflm, i) for op in layers for i in op.inputs if not g.tensor(i).is_const]
            want[k] += [tflm_tensor(tflm, op.outputs[0]) for op in layers]
    host = HostNetwork(read_model(build_ops(ops), "shared-layers"), tmp_path_factory.mktemp("shared"))
    got = host.run_many(feeds)
    bad: dict[str, list[str]] = {name: [] for name in SHARED}
    for k in range(n):
        for label, o, w in zip(where, got[k], want[k], strict=True):
            if not np.array_equal(o, w):
                bad[label.split()[0]].append(f"{label}, sample {k}: {int((o != w).sum())} values differ")
    return bad


@pytest.mark.parametrize("name", SHARED)
def test_shared_model_layers_bit_exact(name: str, shared_layer_mismatches: dict[str, list[str]]) -> None:
    assert not shared_layer_mismatches[name], "\n".join(shared_layer_mismatches[name])


# ============================================================ check(): clear refusals


def _problems(ops: list[Op]) -> list[str]:
    return [str(p) for p in check_graph(read_model(build_ops(ops), "<check>"))]


@pytest.mark.parametrize("ops,needle", [
    ([Op("AVERAGE_POOL_2D", [T((1, 4, 4, 2), "int16", 0.1, 0)], [T((1, 2, 2, 2), "int16", 0.1, 0)],
         pool_options(2, 2, 2, 2))], "dtype int16"),
    ([Op("MAX_POOL_2D", [T((1, 4, 4, 2), "int8", 0.1, 0)], [T((1, 2, 2, 2), "int8", 0.1, 0)],
         pool_options(2, 2, 2, 2, act="TANH"))], "fused activation TANH"),
    ([Op("MAX_POOL_2D", [T((1, 4, 4, 2), "int8", 0.1, 0)], [T((1, 3, 3, 2), "int8", 0.1, 0)],
         pool_options(2, 2, 2, 2))], "output shape"),
    ([Op("SOFTMAX", [T((1, 5), "int8", 0.1, 0)], [T((1, 5), "int8", 1 / 256, 0)], softmax_options(1.0))],
     "zero point -128"),
    ([Op("SOFTMAX", [T((1, 5), "int8", 0.1, 0)], [T((1, 5), "int8", 1 / 256, -128)], softmax_options(-1.0))],
     "beta -1"),
    ([Op("SOFTMAX", [T((1, 5), "float32")], [T((1, 5), "float32")], softmax_options(1.0))],
     "input dtype float32"),
    ([Op("ADD", [T((1, 4), "int32", 0.1, 0), T((1, 4), "int32", 0.1, 0)], [T((1, 4), "int32", 0.1, 0)],
         add_options())], "dtype int32"),
    ([Op("ADD", [T((1, 4), "int8", 0.1, 0), T((1, 4), "int8", 0.1, 0)], [T((1, 4), "int16", 0.1, 0)],
         add_options())], "input 1 dtype int8 differs from the output's int16"),
    ([Op("ADD", [T((1, 4), "int8", 0.1, 0), T((1, 4), "int8", 0.1, 0)], [T((1, 4), "int8", 0.1, 0)],
         add_options("TANH"))], "fused activation TANH"),
    ([_add((1, 4), (1, 4), 1.0, 0, 0.5, 3, 1.5e-6, 0)], "ADD output multiplier >= 1"),
    ([Op("QUANTIZE", [T((1, 4), "float32")], [T((1, 4), "int32", 0.1, 0)])], "output dtype int32"),
    ([Op("QUANTIZE", [T((1, 4), "uint8", 0.1, 0)], [T((1, 4), "int16", 0.1, 0)])],
     "uint8 -> int16 is not supported: TFLM's QUANTIZE has no such kernel"),
    ([Op("QUANTIZE", [T((1, 4), "float32")], [T((1, 4), "uint8", 0.1, 0)])],
     "float32 -> uint8 is not supported: TFLM's QUANTIZE has no such kernel"),
    ([Op("QUANTIZE", [T((1, 4), "uint8", 0.1, 0)], [T((1, 4), "uint8", 0.2, 3)])],
     "uint8 -> uint8 is not supported: TFLM's QUANTIZE has no such kernel"),
    ([Op("DEQUANTIZE", [T((1, 4), "int32", 0.1, 0)], [T((1, 4), "float32")])], "input dtype int32"),
    ([Op("RESHAPE", [T((1, 4), "int8", 0.1, 0), T((1,), "int32", data=np.array([5], np.int32))],
         [T((5,), "int8", 0.1, 0)])], "4 elements, output 5"),
])
def test_check_names_the_problem(ops: list[Op], needle: str) -> None:
    problems = _problems(ops)
    assert any(needle in p for p in problems), problems


def test_reshape_is_an_alias_without_code() -> None:
    registry = load_all()
    assert registry["RESHAPE"].alias_input
    g = read_model(build_ops(chain_ops()), "<chain>")
    op = next(o for o in g.operators if o.opcode == "RESHAPE")
    low = registry["RESHAPE"].lower(op, LowerCtx(g, op))
    assert low.call == "" and "RESHAPE" in low.comment and low.params_type is None


def test_every_op_documents_its_constraints() -> None:
    registry = load_all()
    for name in MY_OPS:
        assert registry[name].constraints, name


# ============================================================ the C compiles everywhere

MY_C = ["te_pool.c", "te_softmax.c", "te_elementwise.c", "te_quantize.c"]
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-c"]
TARGETS = {
    "host": ["gcc", "-Wshadow", "-Wconversion", "-pedantic"],
    "cortex-m4f": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                   "-mfpu=fpv4-sp-d16"],
    "cortex-m3": ["arm-none-eabi-gcc", "-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"],
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kernels_compile_warning_free(target: str, tmp_path: Path) -> None:
    cc, *flags = TARGETS[target]
    require_tool(cc)
    runtime = templates_dir() / "runtime"
    for src in MY_C:
        proc = subprocess.run([cc, *STRICT, *flags, "-I", str(runtime), str(runtime / src),
                               "-o", str(tmp_path / (src + ".o"))], capture_output=True, text=True)
        assert proc.returncode == 0, f"{target} {src}:\n{proc.stderr}"


# ============================================================ emulator: float paths on the device


def validate_on_device(data: bytes, board: str, tmp_path: Path, samples: list[list[np.ndarray]]) -> None:
    """Generate, build and validate in QEMU on these samples (batch-1 inputs): every
    output exact. The samples go in as arrays, not through a data file: they hold
    NaN and infinities, which `validate --data` refuses."""
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        require_tool(tool)
    from dataclasses import asdict

    from tinyedge.build import build_project
    from tinyedge.codegen.project import generate_project
    from tinyedge.pipeline import compile_for_board
    from tinyedge.validate import validate_on_target

    model = tmp_path / "ops.tflite"
    model.write_bytes(data)
    net = compile_for_board(model, board)
    generate_project(net, tmp_path / "fw")
    built = build_project(tmp_path / "fw")
    assert built.memory is not None
    inputs = [[np.asarray(x).reshape(t.shape) for x, t in zip(s, net.graph.input_tensors)] for s in samples]
    report = validate_on_target(net, built.elf, inputs, tmp_path / "report.json", asdict(built.memory),
                                emulator="qemu")
    assert report.complete and len(report.samples) == len(samples)
    assert report.all_exact, [s for s in report.samples if not s.exact][:1]


@pytest.mark.emulator
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385", "mps3-an547", "microbit"])
def test_quantize_paths_on_device(board: str, tmp_path: Path) -> None:
    """QUANTIZE (float -> int8/int16, requantize) and DEQUANTIZE run as firmware in QEMU and give
    TFLM's bytes: with the FPU (Cortex-M4F, Cortex-M55) and with soft float (Cortex-M3, and
    the Cortex-M0 microbit). The x86 witnesses go first, then the random families (ties,
    NaN, infinities, huge, signed zero, subnormal inputs and outputs)."""
    rng = np.random.default_rng(5)
    w_ops, w_feeds, _ = witness_ops()
    w_ops = [op for op in w_ops if op.opcode != "ADD"]  # integer only, and the M0 has 16 KB of RAM
    w_feeds = w_feeds[-len(w_ops):]
    ops = w_ops + [op for op in quantize_ops(rng) + dequantize_ops(rng) + requantize_ops(rng) + quantize16_ops(rng)
                   if op.inputs[0].shape[0] == 1]
    g = read_model(build_ops(ops), "quantize-paths")
    samples = [w_feeds + s[len(w_feeds):] for s in _samples(g, rng, n=3)]
    validate_on_device(build_ops(ops), board, tmp_path, samples)


@pytest.mark.emulator
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385", "mps3-an547"])
def test_add_sub_requantize_on_device(board: str, tmp_path: Path) -> None:
    """ADD (every broadcast pattern, the x86 witnesses), SUB (int8 and int16) and int8
    requantize run as firmware on Cortex-M4F, M3 and M55 and give TFLM's bytes."""
    from test_ops_sub import sub_ops

    rng = np.random.default_rng(6)
    w_ops, w_feeds, _ = witness_ops()
    n_add = sum(op.opcode == "ADD" for op in w_ops)
    w_ops, w_feeds = w_ops[:n_add], w_feeds[:2 * n_add]
    ops = w_ops + [op for op in add_ops(rng) + add16_ops(rng) + sub_ops(rng) + requantize_ops(rng)
                   if all(t.data is not None or t.shape[:1] == (1,) for t in op.inputs)
                   and op.outputs[0].shape[:1] == (1,) and op.outputs[0].shape != (1, 32, 32, 16)]
    g = read_model(build_ops(ops), "integer-ops")
    samples = [w_feeds + s[len(w_feeds):] for s in _samples(g, rng, n=3)]
    validate_on_device(build_ops(ops), board, tmp_path, samples)


@pytest.mark.emulator
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385"])  # Cortex-M4F (FPU), Cortex-M3 (soft float)
def test_softmax_on_device(board: str, tmp_path: Path) -> None:
    """SOFTMAX (float arithmetic in its tables) runs as firmware in QEMU and gives TFLM's bytes,
    with the FPU and with soft float."""
    rng = np.random.default_rng(5)
    ops = [op for op in softmax_ops(rng) if op.inputs[0].shape[0] == 1]  # data files hold batch-1 samples
    g = read_model(build_ops(ops), "softmax")
    validate_on_device(build_ops(ops), board, tmp_path, _samples(g, rng, n=3))
