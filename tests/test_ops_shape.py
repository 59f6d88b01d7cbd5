"""Data-movement ops and MEAN (tinyedge/ops/shape_ops.py, reduce.py;
runtime te_shape.c, te_reduce.c) are bit-exact with TensorFlow Lite Micro.

Two kinds of test models, both run by the oracle for the expected values (the
TFLM interpreter; for TILE, which TFLM has no kernel for, the TFLite
interpreter -- so TILE gets graphs of its own):

- converted by TF from Keras (the graphs users get): one model whose
  independent branches are CONCATENATION, PAD, PADV2, TRANSPOSE,
  STRIDED_SLICE, RESIZE_NEAREST_NEIGHBOR, SPLIT, SPLIT_V and MEAN
  (GlobalAveragePooling2D with and without keepdims); one of UpSampling2D
  (size 2 and (2, 3)) and UpSampling1D, which Keras 3 lowers to
  RESHAPE/TILE/RESHAPE;
- built here as flatbuffers (:class:`TinyGraph`): what the converter never
  emits but TFLM runs -- SQUEEZE and EXPAND_DIMS (the converter turns them
  into RESHAPE), batches > 1, every rank TFLM accepts (TRANSPOSE and PAD to 5,
  STRIDED_SLICE to 4), reversed and clamped slices, every resize flag
  combination, MEAN over every axis pattern (including the 4-D H,W keep_dims
  case, where the x86 TFLite interpreter rounds ties differently: witnesses),
  constant concatenation inputs; TILE of rank 1-7, every multiples pattern,
  int64 multiples, int16/int32/float32 tensors (float NaN/inf/-0 bit patterns
  too) and an output quantized differently from the input (TFLite copies the
  bytes unchanged);
- what TFLM refuses (ranks, int64 operands, too many inputs, negative
  permutations, ...) is refused by ``check`` with TFLM's reason.

Each model is compiled once for the host (HostNetwork) and run on many random
samples plus the extremes; every output value must equal the oracle's.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import math
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest

from conftest import require_tool
from tinyedge.errors import TinyEdgeError
from tinyedge.hostrun import HostNetwork
from tinyedge.model import Graph, read_model
from tinyedge.model.ir import Operator, Quant, Tensor
from tinyedge.ops import load_all
from tinyedge.oracle import Oracle, TflmOracle
from tinyedge.quant import mul_by_quantized_multiplier, quantize_multiplier, srdhm
from tinyedge.resources import templates_dir

N_RANDOM = 150
MY_OPS = ("CONCATENATION", "SPLIT", "SPLIT_V", "PAD", "PADV2", "STRIDED_SLICE", "TRANSPOSE",
          "RESIZE_NEAREST_NEIGHBOR", "SQUEEZE", "EXPAND_DIMS", "MEAN", "TILE")
NP_DTYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64, "float32": np.float32}


# ---------------------------------------------------------------------------- running and comparing


FLOAT_SPECIALS = np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-45, -3.4e38], dtype=np.float32)


def random_tensor(rng: np.random.Generator, t: Tensor) -> np.ndarray:
    """Uniform over the whole range of an integer dtype; for float32, normal
    values with NaN, infinities, -0 and a denormal mixed in (a copy must keep their bits)."""
    if t.dtype == "float32":
        x = (rng.standard_normal(t.shape) * 100).astype(np.float32)
        mask = rng.random(t.shape) < 0.2
        x[mask] = rng.choice(FLOAT_SPECIALS, size=int(mask.sum()))
        return x
    info = np.iinfo(NP_DTYPES[t.dtype])
    return rng.integers(info.min, info.max, size=t.shape, endpoint=True, dtype=NP_DTYPES[t.dtype])


def samples_for(graph: Graph, n: int, seed: int) -> list[list[np.ndarray]]:
    """n uniform random samples, then all -128, all 127 and a few constant fills
    (constant inputs make MEAN's sums hit rounding ties)."""
    rng = np.random.default_rng(seed)
    ins = graph.input_tensors
    out = [[random_tensor(rng, t) for t in ins] for _ in range(n)]
    for fill in (-128, 127, -1, 0, 1, 37, -77):
        out.append([np.full(t.shape, fill, dtype=NP_DTYPES[t.dtype]) for t in ins])
    return out


def as_bits(a: np.ndarray) -> np.ndarray:
    """Integers to compare exactly: float32 by bit pattern (NaN == NaN, -0 != 0)."""
    return (a.view(np.int32) if a.dtype == np.float32 else a).astype(np.int64)


def assert_bit_exact(data: bytes, workdir: Path, n: int = N_RANDOM, seed: int = 0) -> int:
    """Every output of every sample equals the oracle's; returns the number of values compared."""
    graph = read_model(data, "<test>")
    host = HostNetwork(graph, workdir)
    oracle = Oracle(data)
    samples = samples_for(graph, n, seed)
    got = host.run_many(samples)
    compared = 0
    bad: dict[str, tuple[int, int]] = {}
    for sample, outs in zip(samples, got, strict=True):
        want = oracle.run(sample)
        for t_index, o, w in zip(graph.outputs, outs, want, strict=True):
            t = graph.tensor(t_index)
            assert tuple(w.shape) == t.shape, f"oracle output {t.name} has shape {w.shape}, model says {t.shape}"
            assert o.dtype == w.dtype, f"{t.name}: host gives {o.dtype}, oracle {w.dtype}"
            compared += o.size
            diff = np.abs(as_bits(o) - as_bits(w))
            if diff.any():
                producer = next(op for op in graph.operators if t_index in op.outputs)
                key = f"op {producer.index} {producer.opcode} -> {t.name}"
                cnt, mx = bad.get(key, (0, 0))
                bad[key] = (cnt + int(np.count_nonzero(diff)), max(mx, int(diff.max())))
    assert not bad, f"values differing from the oracle (count, max diff): {bad}"
    return compared


# ---------------------------------------------------------------------------- a tiny .tflite builder

TYPE_CODES = {"int8": 9, "int16": 7, "int32": 2, "int64": 4, "float32": 0}
Q_IN = (0.05, 3)


def _fb(module: str) -> Any:
    return importlib.import_module(f"tflite.{module}")


@dataclass
class _T:
    shape: tuple[int, ...]
    dtype: str = "int8"
    quant: tuple[float, int] | None = Q_IN
    data: np.ndarray | None = None


@dataclass
class _Op:
    opcode: str
    inputs: list[int]
    outputs: list[int]
    options: str | None = None  # the BuiltinOptions table name, e.g. "SqueezeOptions"
    fields: dict[str, Any] = field(default_factory=dict)  # CamelCase field -> value (list = int32 vector)


class TinyGraph:
    """Builds a one-subgraph .tflite: independent single-op branches, each from
    its own graph input(s) to its own graph output(s)."""

    def __init__(self) -> None:
        self.tensors: list[_T] = []
        self.ops: list[_Op] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    def _add(self, t: _T) -> int:
        self.tensors.append(t)
        return len(self.tensors) - 1

    def input(self, shape: Sequence[int], quant: tuple[float, int] | None = Q_IN, dtype: str = "int8") -> int:
        i = self._add(_T(tuple(shape), dtype, quant))
        self.inputs.append(i)
        return i

    def const(self, values: Any, dtype: str = "int32", quant: tuple[float, int] | None = None) -> int:
        arr = np.asarray(values, dtype=NP_DTYPES[dtype])
        return self._add(_T(tuple(arr.shape), dtype, quant, arr))

    def op(self, opcode: str, inputs: list[int], out_shapes: Sequence[Sequence[int]],
           options: str | None = None, quant: tuple[float, int] | None = Q_IN, graph_output: bool = True,
           dtype: str = "int8", **fields: Any) -> list[int]:
        outs = [self._add(_T(tuple(s), dtype, quant)) for s in out_shapes]
        if graph_output:
            self.outputs += outs
        self.ops.append(_Op(opcode, inputs, outs, options, fields))
        return outs

    # -- serialization
    @staticmethod
    def _vec(b: Any, values: Sequence[Any], kind: str) -> int:
        size = 8 if kind == "Int64" else 4
        b.StartVector(size, len(values), size)
        for v in reversed(list(values)):
            getattr(b, f"Prepend{kind}")(v)
        return b.EndVector()

    @staticmethod
    def _offsets(b: Any, offs: Sequence[int]) -> int:
        b.StartVector(4, len(offs), 4)
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def _options(self, b: Any, name: str, fields: dict[str, Any]) -> int:
        m = _fb(name)
        vecs = {k: self._vec(b, v, "Int32") for k, v in fields.items() if isinstance(v, (list, tuple))}
        getattr(m, f"{name}Start")(b)
        for k, v in fields.items():
            getattr(m, f"{name}Add{k}")(b, vecs.get(k, v))
        return getattr(m, f"{name}End")(b)

    def _tensor(self, b: Any, k: int, t: _T, buffer: int) -> int:
        T, Q = _fb("Tensor"), _fb("QuantizationParameters")
        name = b.CreateString(f"t{k}")
        shape = self._vec(b, t.shape, "Int32")
        q = None
        if t.quant is not None:
            scale = self._vec(b, [float(t.quant[0])], "Float32")
            zp = self._vec(b, [int(t.quant[1])], "Int64")
            Q.QuantizationParametersStart(b)
            Q.QuantizationParametersAddScale(b, scale)
            Q.QuantizationParametersAddZeroPoint(b, zp)
            q = Q.QuantizationParametersEnd(b)
        T.TensorStart(b)
        T.TensorAddShape(b, shape)
        T.TensorAddType(b, TYPE_CODES[t.dtype])
        T.TensorAddName(b, name)
        T.TensorAddBuffer(b, buffer)
        if q is not None:
            T.TensorAddQuantization(b, q)
        return T.TensorEnd(b)

    def tflite(self) -> bytes:
        import flatbuffers
        from tflite.BuiltinOperator import BuiltinOperator
        from tflite.BuiltinOptions import BuiltinOptions

        B, O, OC, SG, M = (_fb(n) for n in ("Buffer", "Operator", "OperatorCode", "SubGraph", "Model"))
        b = flatbuffers.Builder(4096)
        buffers, tensors, buffer_of = [], [], {}
        B.BufferStart(b)
        buffers.append(B.BufferEnd(b))  # buffer 0: empty, for activations
        for k, t in enumerate(self.tensors):
            if t.data is not None:
                vec = b.CreateNumpyVector(np.frombuffer(np.ascontiguousarray(t.data).tobytes(), np.uint8))
                B.BufferStart(b)
                B.BufferAddData(b, vec)
                buffer_of[k] = len(buffers)
                buffers.append(B.BufferEnd(b))
        for k, t in enumerate(self.tensors):
            tensors.append(self._tensor(b, k, t, buffer_of.get(k, 0)))
        codes = sorted({op.opcode for op in self.ops})
        code_offs = []
        for c in codes:
            v = getattr(BuiltinOperator, c)
            OC.OperatorCodeStart(b)
            OC.OperatorCodeAddDeprecatedBuiltinCode(b, min(v, 127))
            OC.OperatorCodeAddBuiltinCode(b, v)
            OC.OperatorCodeAddVersion(b, 1)
            code_offs.append(OC.OperatorCodeEnd(b))
        op_offs = []
        for op in self.ops:
            ins, outs = self._vec(b, op.inputs, "Int32"), self._vec(b, op.outputs, "Int32")
            opts = self._options(b, op.options, op.fields) if op.options else None
            O.OperatorStart(b)
            O.OperatorAddOpcodeIndex(b, codes.index(op.opcode))
            O.OperatorAddInputs(b, ins)
            O.OperatorAddOutputs(b, outs)
            if opts is not None:
                O.OperatorAddBuiltinOptionsType(b, getattr(BuiltinOptions, op.options))
                O.OperatorAddBuiltinOptions(b, opts)
            op_offs.append(O.OperatorEnd(b))
        t_vec, o_vec = self._offsets(b, tensors), self._offsets(b, op_offs)
        i_vec, out_vec = self._vec(b, self.inputs, "Int32"), self._vec(b, self.outputs, "Int32")
        name = b.CreateString("main")
        SG.SubGraphStart(b)
        SG.SubGraphAddTensors(b, t_vec)
        SG.SubGraphAddInputs(b, i_vec)
        SG.SubGraphAddOutputs(b, out_vec)
        SG.SubGraphAddOperators(b, o_vec)
        SG.SubGraphAddName(b, name)
        sg = SG.SubGraphEnd(b)
        sg_vec, c_vec, b_vec = self._offsets(b, [sg]), self._offsets(b, code_offs), self._offsets(b, buffers)
        desc = b.CreateString("tinyedge test_ops_shape")
        M.ModelStart(b)
        M.ModelAddVersion(b, 3)
        M.ModelAddOperatorCodes(b, c_vec)
        M.ModelAddSubgraphs(b, sg_vec)
        M.ModelAddDescription(b, desc)
        M.ModelAddBuffers(b, b_vec)
        b.Finish(M.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    # -- one helper per op kind
    def strided_slice(self, shape: Sequence[int], spec: tuple[Any, ...]) -> None:
        """A slice written as Python indexing (slices and ints), numpy's shape as the output."""
        begin, end, strides, bm, em, sm = [], [], [], 0, 0, 0
        for a, s in enumerate(spec):
            if isinstance(s, int):
                begin.append(s)
                end.append(s + 1)
                strides.append(1)
                sm |= 1 << a
                continue
            begin.append(s.start if s.start is not None else 0)
            end.append(s.stop if s.stop is not None else 0)
            strides.append(s.step if s.step is not None else 1)
            bm |= (s.start is None) << a
            em |= (s.stop is None) << a
        out = np.empty(shape)[spec].shape
        self.op("STRIDED_SLICE", [self.input(shape), self.const(begin), self.const(end), self.const(strides)],
                [out], "StridedSliceOptions", BeginMask=bm, EndMask=em, ShrinkAxisMask=sm)

    def pad(self, shape: Sequence[int], pads: list[list[int]], value: int | None = None,
            pad_dtype: str = "int32") -> None:
        out = [d + a + b for d, (a, b) in zip(shape, pads)]
        ins = [self.input(shape), self.const(pads, pad_dtype)]
        if value is None:
            self.op("PAD", ins, [out], "PadOptions")
        else:
            self.op("PADV2", ins + [self.const(value, "int8", Q_IN)], [out], "PadV2Options")

    def transpose(self, shape: Sequence[int], perm: list[int]) -> None:
        self.op("TRANSPOSE", [self.input(shape), self.const(perm)], [[shape[p] for p in perm]],
                "TransposeOptions")

    def resize(self, shape: Sequence[int], size: tuple[int, int], align: bool, half: bool) -> None:
        self.op("RESIZE_NEAREST_NEIGHBOR", [self.input(shape), self.const(list(size))],
                [[shape[0], *size, shape[3]]], "ResizeNearestNeighborOptions",
                AlignCorners=align, HalfPixelCenters=half)

    def tile(self, shape: Sequence[int], multiples: Sequence[int], dtype: str = "int8",
             mult_dtype: str = "int32", q_out: tuple[float, int] | None = Q_IN, x: int | None = None,
             graph_output: bool = True) -> int:
        """TILE of a new graph input (or of tensor ``x``); int8/int16 quantized, else not."""
        q = Q_IN if dtype in ("int8", "int16") else None
        x = self.input(shape, q, dtype) if x is None else x
        out = [d * m for d, m in zip(shape, multiples)]
        (y,) = self.op("TILE", [x, self.const(list(multiples), mult_dtype)], [out],
                       quant=q_out if q is not None else None, dtype=dtype, graph_output=graph_output)
        return y

    def mean(self, shape: Sequence[int], axes: list[int], keep: bool, q_in: tuple[float, int],
             q_out: tuple[float, int]) -> None:
        red = {a % len(shape) for a in axes}
        out = [1 if d in red else n for d, n in enumerate(shape) if keep or d not in red]
        self.op("MEAN", [self.input(shape, q_in), self.const(axes)], [out], "ReducerOptions",
                quant=q_out, KeepDims=keep)


# ---------------------------------------------------------------------------- hand-built models


def movement_model() -> bytes:
    g = TinyGraph()
    # SQUEEZE / EXPAND_DIMS: no code, the output aliases the input
    g.op("SQUEEZE", [g.input((1, 1, 7, 1, 3))], [(1, 7, 3)], "SqueezeOptions", SqueezeDims=[1, 3])
    g.op("SQUEEZE", [g.input((2, 1, 3))], [(2, 3)], "SqueezeOptions")
    g.op("EXPAND_DIMS", [g.input((1, 7, 3)), g.const(-1)], [(1, 7, 3, 1)], "ExpandDimsOptions")
    g.op("EXPAND_DIMS", [g.input((5,)), g.const([0])], [(1, 5)], "ExpandDimsOptions")
    # TRANSPOSE, rank 2..5 (TFLM's limit)
    g.transpose((9, 7), [1, 0])
    g.transpose((4, 5, 6), [0, 2, 1])
    g.transpose((2, 3, 4, 5), [3, 1, 0, 2])
    g.transpose((2, 3, 1, 4, 3), [4, 0, 3, 1, 2])
    # STRIDED_SLICE: negative strides, clamping, masks, shrink, rank 1/2/3/4 (TFLM's limit)
    g.strided_slice((3, 4, 5, 6), (slice(-1, -4, -1), slice(5, None, -2), slice(-10, 3, 2), slice(1, 6, 3)))
    g.strided_slice((3, 8, 9, 4), (slice(1, 2), -2, slice(None, None, -3), slice(-3, None)))
    g.strided_slice((3, 8, 9, 4), (2, slice(100, -100, -1), 0, slice(None, -1)))
    g.strided_slice((11,), (slice(-100, 100, 4),))
    g.strided_slice((6, 10), (slice(None, None, -1), slice(2, 3)))
    g.strided_slice((2, 3, 5), (slice(None, None, -1), 1, slice(-1, -4, -1)))
    # PAD / PADV2: rank 1..5, nothing to pad
    g.pad((5,), [[2, 3]])
    g.pad((2, 1, 3, 2, 2), [[1, 0], [0, 2], [0, 0], [1, 1], [0, 0]])
    g.pad((1, 4, 5, 3), [[0, 0], [0, 0], [0, 0], [0, 0]])
    g.pad((3, 4, 5), [[1, 1], [2, 0], [0, 3]], value=-128)
    g.pad((2, 3, 4, 2), [[0, 0], [1, 2], [3, 1], [0, 0]], value=100)
    # CONCATENATION: rank 1/2/5/6, axis 0 and negative, a constant input, the same tensor twice, 10 inputs
    c = g.const(np.arange(-6, 6).reshape(2, 6), "int8", Q_IN)
    g.op("CONCATENATION", [g.input((3, 6)), c, g.input((1, 6))], [(6, 6)], "ConcatenationOptions", Axis=0)
    a = g.input((2, 3, 2, 4, 3))
    g.op("CONCATENATION", [a, g.input((2, 3, 5, 4, 3)), a], [(2, 3, 9, 4, 3)], "ConcatenationOptions",
         Axis=-3)
    g.op("CONCATENATION", [g.input((4,)), g.input((7,))], [(11,)], "ConcatenationOptions", Axis=0)
    g.op("CONCATENATION", [g.input((2, 1, 2, 3, 1, k)) for k in range(1, 11)], [(2, 1, 2, 3, 1, 55)],
         "ConcatenationOptions", Axis=-1)
    # SPLIT / SPLIT_V: negative axis, axis 0, an inferred (-1) size
    g.op("SPLIT", [g.const(-1), g.input((2, 3, 6))], [(2, 3, 2)] * 3, "SplitOptions", NumSplits=3)
    g.op("SPLIT", [g.const(0), g.input((4, 5))], [(2, 5)] * 2, "SplitOptions", NumSplits=2)
    g.op("SPLIT_V", [g.input((2, 7, 3)), g.const([2, -1, 4]), g.const(1)], [(2, 2, 3), (2, 1, 3), (2, 4, 3)],
         "SplitVOptions", NumSplits=3)
    # a chain: aliasing ops between kernels, intermediate tensors in the arena
    (t,) = g.op("SQUEEZE", [g.input((1, 4, 1, 6))], [(1, 4, 6)], "SqueezeOptions", graph_output=False,
                SqueezeDims=[2])
    (t,) = g.op("TRANSPOSE", [t, g.const([0, 2, 1])], [(1, 6, 4)], "TransposeOptions", graph_output=False)
    (t,) = g.op("EXPAND_DIMS", [t, g.const(1)], [(1, 1, 6, 4)], "ExpandDimsOptions", graph_output=False)
    (t,) = g.op("PAD", [t, g.const([[0, 0], [0, 0], [1, 0], [0, 2]])], [(1, 1, 7, 6)], "PadOptions",
                graph_output=False)
    g.op("CONCATENATION", [t, t], [(1, 1, 14, 6)], "ConcatenationOptions", Axis=2)
    return g.tflite()


def resize_model() -> bytes:
    g = TinyGraph()
    for align in (False, True):
        for half in (False, True):
            g.resize((2, 5, 4, 3), (8, 11), align, half)  # up
            g.resize((1, 7, 9, 2), (3, 4), align, half)  # down
            g.resize((1, 6, 6, 5), (6, 6), align, half)  # same size
            g.resize((1, 1, 3, 4), (4, 1), align, half)  # 1 -> n and n -> 1
    return g.tflite()


def mean_model() -> bytes:
    g = TinyGraph()
    # 4-D, keep_dims, axes {1, 2} however written: the x86 TFLite interpreter's optimized
    # path (its own float32 constants, ties rounded up in 16-channel blocks); TFLM has one
    # path for all. 33 channels = two 16-lane blocks + 1, batch 2; equal scales and 4
    # values per mean: ties everywhere (X86_MEAN_OPS: the first five ops)
    g.mean((2, 2, 2, 33), [1, 2], True, (0.05, 3), (0.05, 3))
    g.mean((2, 2, 2, 33), [2, 1], True, (0.05, 3), (0.025, -5))
    g.mean((1, 3, 5, 16), [-3, -2], True, (0.02, -5), (0.013, 7))
    g.mean((1, 4, 4, 8), [1, 2, -2], True, (0.02, 100), (0.0071, -100))
    g.mean((1, 7, 1, 40), [1, 2], True, (0.031, -128), (0.002, 127))
    # other axis sets / keep_dims=False
    g.mean((1, 4, 4, 40), [1], True, (0.05, 3), (0.05, 3))
    g.mean((1, 4, 4, 40), [1, 2], False, (0.05, 3), (0.0125, -9))
    g.mean((2, 3, 4, 5, 6), [0, 2, 4], False, (0.04, -2), (0.01, 11))
    g.mean((3, 7), [1], True, (0.05, 3), (0.05, 3))
    g.mean((3, 7), [-2], False, (0.05, 3), (0.5, 0))
    g.mean((2, 5, 6, 3), [3], False, (0.01, 0), (0.003, -20))
    g.mean((2, 5, 6, 3), [0, 1, 2, 3], False, (0.02, 9), (0.0001, 0))  # saturates
    g.mean((1, 1, 1, 24), [1, 2], True, (0.05, 3), (0.07, -3))  # one value per mean
    return g.tflite()


def tile_model() -> bytes:
    g = TinyGraph()
    # rank 1..6, batch > 1, multiples of 1 anywhere (and everywhere), non-powers of two
    g.tile((5,), [3])
    g.tile((7,), [1])
    g.tile((1,), [100])
    g.tile((3, 4), [2, 3])
    g.tile((1, 6), [4, 1])
    g.tile((5, 1), [1, 7])
    g.tile((2, 3), [1, 37])
    g.tile((2, 3, 4), [1, 2, 1])
    g.tile((2, 3, 4), [3, 1, 2])
    g.tile((2, 3, 4, 5), [2, 1, 3, 1])
    g.tile((1, 4, 4, 8), [1, 1, 1, 1])
    g.tile((3, 2, 2, 3), [1, 2, 2, 1])
    g.tile((2, 2, 3, 2, 3), [2, 3, 1, 2, 2])
    g.tile((2, 2, 2, 2, 2, 2), [2, 2, 2, 2, 2, 2])
    g.tile((3, 1, 2, 1, 2, 4), [1, 3, 1, 2, 2, 1])
    # nearest-neighbour up-sampling as Keras 3 writes it (repeat = reshape + tile), here in one TILE
    g.tile((2, 4, 1, 5, 1, 3), [1, 1, 2, 1, 3, 1])
    # int64 multiples; an output quantized differently (the oracle copies the bytes unchanged)
    g.tile((3, 4), [2, 2], mult_dtype="int64")
    g.tile((3, 4), [2, 1], q_out=(0.1, -7))
    # other element types: the same byte copy (float32 NaN payloads, -0 and infinities included)
    g.tile((2, 3, 4), [2, 1, 3], "int16")
    g.tile((3, 5), [2, 2], "int32", mult_dtype="int64")
    g.tile((2, 3, 2), [1, 3, 2], "float32")
    g.tile((4,), [5], "float32")
    # rank 7 (between RESHAPEs: graph inputs and outputs are rank <= 6); its copies merge to <= 6 dims
    shape7 = (2, 1, 3, 1, 2, 1, 2)
    (r,) = g.op("RESHAPE", [g.input((2, 3, 2, 2)), g.const(list(shape7))], [shape7], "ReshapeOptions",
                graph_output=False, NewShape=list(shape7))
    t = g.tile(shape7, [1, 2, 1, 1, 2, 1, 3], x=r, graph_output=False)
    g.op("RESHAPE", [t, g.const([2, 2, 3, 4, 6])], [(2, 2, 3, 4, 6)], "ReshapeOptions", NewShape=[2, 2, 3, 4, 6])
    # a chain: TILE of a TILE's output, both in the arena
    t = g.tile((2, 3), [2, 1], graph_output=False)
    g.tile((4, 3), [1, 3], x=t)
    return g.tflite()


def _random_shape(rng: np.random.Generator, rank: int, max_dim: int = 5) -> tuple[int, ...]:
    return tuple(int(d) for d in rng.integers(1, max_dim + 1, size=rank))


def _random_slice(rng: np.random.Generator, n: int) -> Any:
    """A random index for an axis of size n: an int (shrink) or a slice that may
    be reversed, out of range or open-ended; never empty."""
    while True:
        if rng.random() < 0.15:
            return int(rng.integers(-n, n))
        step = int(rng.choice([1, 1, 2, 3, -1, -2]))
        start = None if rng.random() < 0.3 else int(rng.integers(-n - 2, n + 2))
        stop = None if rng.random() < 0.3 else int(rng.integers(-n - 2, n + 2))
        s = slice(start, stop, step)
        if len(range(n)[s]):
            return s


def fuzz_model(seed: int) -> bytes:
    """Random variants of every op but TILE (TFLM lacks it: :func:`fuzz_tile_model`), from a
    seeded generator, in one graph; ranks up to TFLM's limits."""
    rng = np.random.default_rng(seed)
    g = TinyGraph()
    for _ in range(6):
        shape = _random_shape(rng, int(rng.integers(1, 6)), 4)
        g.transpose(shape, [int(p) for p in rng.permutation(len(shape))])
    for _ in range(8):
        shape = _random_shape(rng, int(rng.integers(1, 5)), 6)
        g.strided_slice(shape, tuple(_random_slice(rng, n) for n in shape))
    for _ in range(5):
        shape = _random_shape(rng, int(rng.integers(1, 6)))
        pads = [[int(a), int(b)] if rng.random() < 0.6 else [0, 0] for a, b in rng.integers(0, 3, (len(shape), 2))]
        g.pad(shape, pads, value=None if rng.random() < 0.5 else int(rng.integers(-128, 128)))
    for _ in range(5):
        rank = int(rng.integers(1, 6))
        base = list(_random_shape(rng, rank))
        axis = int(rng.integers(-rank, rank))
        parts = [tuple(base[:axis % rank] + [int(rng.integers(1, 4))] + base[axis % rank + 1:])
                 for _ in range(int(rng.integers(1, 5)))]
        out = list(base)
        out[axis % rank] = sum(p[axis % rank] for p in parts)
        g.op("CONCATENATION", [g.input(p) for p in parts], [out], "ConcatenationOptions", Axis=axis)
    for _ in range(4):
        rank = int(rng.integers(1, 5))
        shape = list(_random_shape(rng, rank))
        axis = int(rng.integers(0, rank))
        sizes = [int(s) for s in rng.integers(1, 4, size=int(rng.integers(1, 4)))]
        shape[axis] = sum(sizes)
        outs = [shape[:axis] + [s] + shape[axis + 1:] for s in sizes]
        g.op("SPLIT_V", [g.input(shape), g.const(sizes), g.const(axis - rank)], outs, "SplitVOptions",
             NumSplits=len(sizes))
    for _ in range(4):
        shape = _random_shape(rng, 4, 6)
        size = (int(rng.integers(1, 10)), int(rng.integers(1, 10)))
        g.resize(shape, size, bool(rng.random() < 0.5), bool(rng.random() < 0.5))
    for _ in range(8):
        rank = int(rng.integers(1, 6)) if rng.random() < 0.5 else 4
        shape = _random_shape(rng, rank, 6)
        axes = sorted({int(a) for a in rng.integers(-rank, rank, size=int(rng.integers(1, rank + 1)))})
        q_in = (float(rng.uniform(0.001, 0.1)), int(rng.integers(-128, 128)))
        q_out = (float(rng.uniform(0.001, 0.1)), int(rng.integers(-128, 128)))
        g.mean(shape, axes, bool(rng.random() < 0.6), q_in, q_out)
    return g.tflite()


def fuzz_tile_model(seed: int) -> bytes:
    """Random TILEs (compared with the TFLite interpreter: TFLM has no TILE kernel)."""
    rng = np.random.default_rng(seed)
    g = TinyGraph()
    for _ in range(10):
        shape = _random_shape(rng, int(rng.integers(1, 7)), 4)
        g.tile(shape, [int(m) for m in rng.choice([1, 1, 2, 3, 5], size=len(shape))])
    return g.tflite()


HAND_BUILT = {"movement": movement_model, "resize": resize_model, "mean": mean_model, "tile": tile_model,
              "fuzz1": lambda: fuzz_model(1), "fuzz2": lambda: fuzz_model(2),
              "fuzz_tile1": lambda: fuzz_tile_model(1), "fuzz_tile2": lambda: fuzz_tile_model(2)}


@pytest.mark.parametrize("name", sorted(HAND_BUILT))
def test_hand_built_graph_bit_exact(name: str, tmp_path: Path) -> None:
    data = HAND_BUILT[name]()
    graph = read_model(data, name)
    opcodes = {op.opcode for op in graph.operators}
    assert opcodes <= set(MY_OPS) | {"RESHAPE"}
    assert ("TILE" in opcodes) == name.startswith(("tile", "fuzz_tile")), "TILE graphs are compared with TFLite"
    assert assert_bit_exact(data, tmp_path / name) > 0


# ---------------------------------------------------------------------------- Keras models, converted by TF

FACTORY_VERSION = 1
# (input shapes, expression over the inputs x0, x1 ..., the op it must convert to)
KERAS_BRANCHES: tuple[tuple[tuple[tuple[int, ...], ...], str, str], ...] = (
    (((6, 7, 5), (6, 7, 3)), "L.Concatenate(axis=-1)([x0, x1])", "CONCATENATION"),
    (((6, 7, 5),), "L.Concatenate(axis=1)([x0, x0])", "CONCATENATION"),
    (((6, 7, 5),), "L.ZeroPadding2D(((1, 2), (0, 3)))(x0)", "PAD"),
    (((6, 7, 3),), "L.Lambda(lambda t: tf.pad(t, [[0, 0], [2, 0], [1, 1], [0, 2]], constant_values=0.3))(x0)",
     "PADV2"),
    (((6, 7, 5),), "L.Permute((2, 1, 3))(x0)", "TRANSPOSE"),
    (((6, 7, 5),), "L.Lambda(lambda t: t[:, 1:5:2, ::-1, 1:])(x0)", "STRIDED_SLICE"),
    (((6, 7, 3),), "L.Lambda(lambda t: t[:, -2, 1::3, 0])(x0)", "STRIDED_SLICE"),
    (((6, 7, 3),), "L.Lambda(lambda t: tf.image.resize(t, (11, 4), method='nearest'))(x0)",
     "RESIZE_NEAREST_NEIGHBOR"),
    (((6, 7, 5),), "L.Lambda(lambda t: tf.compat.v1.image.resize_nearest_neighbor(t, (3, 13), "
                   "align_corners=True))(x0)", "RESIZE_NEAREST_NEIGHBOR"),
    (((6, 7, 5),), "L.GlobalAveragePooling2D()(x0)", "MEAN"),
    (((4, 4, 40),), "L.GlobalAveragePooling2D(keepdims=True)(x0)", "MEAN"),
    (((5, 3, 19),), "L.GlobalAveragePooling2D()(x0)", "MEAN"),
    (((6, 7, 5),), "L.Lambda(lambda t: tf.split(t, [2, -1, 1], axis=-1))(x0)", "SPLIT_V"),
    (((6, 7, 3),), "L.Lambda(lambda t: tf.split(t, 2, axis=1))(x0)", "SPLIT"),
)


# UpSampling2D / UpSampling1D: Keras 3 repeats (ops.repeat) = RESHAPE, TILE, RESHAPE per axis
UPSAMPLING_BRANCHES: tuple[tuple[tuple[tuple[int, ...], ...], str, str], ...] = (
    (((5, 7, 3),), "L.UpSampling2D(2)(x0)", "RESHAPE TILE RESHAPE TILE RESHAPE"),
    (((4, 6, 5),), "L.UpSampling2D((2, 3), interpolation='nearest')(x0)", "RESHAPE TILE RESHAPE TILE RESHAPE"),
    (((6, 4),), "L.UpSampling1D(3)(x0)", "RESHAPE TILE RESHAPE"),
)


def _keras_key(branches: tuple[Any, ...]) -> str:
    try:
        tf_version = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        tf_version = "none"
    return hashlib.sha256(repr((FACTORY_VERSION, tf_version, branches)).encode()).hexdigest()[:16]


def _convert_keras_branches(branches: tuple[Any, ...]) -> bytes:
    """One Keras model, one independent branch (own inputs, own outputs) per entry.
    (Branches sharing an input make the converter's quantizer fall back to float.)"""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from tinyedge.convert import convert_keras

    rng = np.random.default_rng(7)
    ins: list[Any] = []
    outs: list[Any] = []
    for shapes, expr, _ in branches:
        xs = [keras.Input(s) for s in shapes]
        ins += xs
        y = eval(expr, {"L": keras.layers, "tf": tf}, {f"x{i}": x for i, x in enumerate(xs)})
        outs += list(y) if isinstance(y, (list, tuple)) else [y]
    calibration = []
    for x in ins:  # an asymmetric range per input, so zero points differ
        lo, hi = -rng.uniform(0.2, 3.0), rng.uniform(0.2, 3.0)
        calibration.append(rng.uniform(lo, hi, (64, *x.shape[1:])).astype(np.float32))
    return convert_keras(keras.Model(ins, outs), calibration)


def _cached_keras(request: pytest.FixtureRequest, stem: str, branches: tuple[Any, ...]) -> bytes:
    path = Path(request.config.cache.mkdir("tinyedge-shape-ops")) / f"{stem}-{_keras_key(branches)}.tflite"
    if path.exists():
        return path.read_bytes()
    data = _convert_keras_branches(branches)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


@pytest.fixture(scope="module")
def keras_model(request: pytest.FixtureRequest) -> bytes:
    return _cached_keras(request, "branches", KERAS_BRANCHES)


@pytest.fixture(scope="module")
def upsampling_model(request: pytest.FixtureRequest) -> bytes:
    return _cached_keras(request, "upsampling", UPSAMPLING_BRANCHES)


def test_keras_converted_ops_bit_exact(keras_model: bytes, tmp_path: Path) -> None:
    graph = read_model(keras_model, "keras")
    got = sorted(op.opcode for op in graph.operators)
    assert got == sorted(op for _, _, op in KERAS_BRANCHES), f"the converter emitted {got}"
    means = [op for op in graph.operators if op.opcode == "MEAN"]
    assert {bool(op.options["keep_dims"]) for op in means} == {True, False}  # both oracle paths
    assert assert_bit_exact(keras_model, tmp_path / "keras") > 0


def test_keras_upsampling_bit_exact(upsampling_model: bytes, tmp_path: Path) -> None:
    """Keras 3's UpSampling2D (nearest; size 2 and (2, 3)) and UpSampling1D, as converted."""
    graph = read_model(upsampling_model, "upsampling")
    got = sorted(op.opcode for op in graph.operators)
    assert got == sorted(" ".join(ops for _, _, ops in UPSAMPLING_BRANCHES).split()), f"the converter emitted {got}"
    assert {t.dtype for t in graph.tensors if not t.is_const} == {"int8"}
    mults = sorted(graph.tensor(op.inputs[1]).array().tolist() for op in graph.operators if op.opcode == "TILE")
    # one TILE per repeated axis: rows by 2 then columns by 2; rows by 2 then columns by 3; steps by 3
    assert mults == sorted([[1, 1, 2, 1, 1], [1, 1, 1, 2, 1], [1, 1, 2, 1, 1], [1, 1, 1, 3, 1], [1, 1, 3, 1]])
    assert assert_bit_exact(upsampling_model, tmp_path / "upsampling") > 0


# ---------------------------------------------------------------------------- the MEAN paths, on the host side


X86_MEAN_OPS = 5  # the first ops of mean_model(): where the x86 interpreter takes its 4-D path


def x86_mean_hw(x: np.ndarray, q_in: tuple[float, int], q_out: tuple[float, int]) -> np.ndarray:
    """The x86 TFLite interpreter's optimized int8 MEAN over H, W (4-D, keep_dims):
    float32 constants, the raw int8 sum requantized, ties rounded up in whole 16-channel
    blocks and away from zero in the last C % 16 channels. Only to show that TFLM differs."""
    f = np.float32
    n, h, w, c = x.shape
    in_s, out_s = f(q_in[0]), f(q_out[0])
    mult, shift = quantize_multiplier(float(f(in_s / f(f(h * w) * out_s))))
    t = f(f(f(q_in[1]) * in_s) / out_s)
    bias = q_out[1] - int(f(t + f(0.5)) if t > 0 else f(t - f(0.5)))
    sums = x.astype(np.int64).sum(axis=(1, 2))
    out = np.empty((n, c), np.int64)
    for b, ch in np.ndindex(n, c):
        if ch < 16 * (c // 16):  # vrshlq_s32: the final shift rounds ties up
            right = max(-shift, 0)
            v = srdhm(int(sums[b, ch]) << max(shift, 0), mult)
            v = (v + ((1 << right) >> 1)) >> right
        else:
            v = mul_by_quantized_multiplier(int(sums[b, ch]), mult, shift)
        out[b, ch] = min(127, max(-128, v + bias))
    return out.reshape(n, 1, 1, c)


def test_mean_4d_hw_is_not_x86s_path() -> None:
    """TFLM computes the 4-D H,W keep_dims MEAN like every other MEAN: on the samples of the
    bit-exactness test, the x86 interpreter's path gives other bytes than TFLM (which
    test_hand_built_graph_bit_exact[mean] shows we match) -- measured 700 outputs of op 0
    (ties in the 16-channel blocks) and 262 of op 2 (its float32 constants); the other three
    configurations happen to agree on these samples."""
    data = mean_model()
    graph = read_model(data, "mean")
    tflm = TflmOracle(data)
    differ = [0] * X86_MEAN_OPS
    for sample in samples_for(graph, 40, 0):
        want = tflm.run(sample)
        for k, op in enumerate(graph.operators[:X86_MEAN_OPS]):
            x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
            old = x86_mean_hw(sample[k], (x.scale, x.zero_point), (y.scale, y.zero_point))
            differ[k] += int(np.count_nonzero(old != want[k]))
    assert differ[0] > 0 and differ[2] > 0, f"outputs where x86's path differs from TFLM, per op: {differ}"


# ---------------------------------------------------------------------------- TILE's copy plan, on the host side


def _c_ints(v: object) -> list[int]:
    return [int(x) for x in str(v).strip("{}").split(",")]


def _run_copy(step: dict[str, object], src: np.ndarray, dst: np.ndarray, written: np.ndarray) -> None:
    """te_strided_copy_s8 in numpy; asserts a step reads only written bytes and writes only fresh ones."""
    rank = int(step["rank"])  # type: ignore[call-overload]
    dims = _c_ints(step["dims"])[:rank]
    idx = np.indices(dims).reshape(rank, -1)
    i = int(step["in_offset"]) + (np.array(_c_ints(step["in_strides"])[:rank])[:, None] * idx).sum(0)
    o = int(step["out_offset"]) + (np.array(_c_ints(step["out_strides"])[:rank])[:, None] * idx).sum(0)
    if src is dst:
        assert written[i].all(), "a step reads bytes no earlier step wrote"
    assert not written[o].any() and len(np.unique(o)) == o.size, "a step writes a byte twice"
    dst[o] = src[i]
    written[o] = True


def test_tile_plan_is_np_tile() -> None:
    """The copy steps, replayed in numpy on bytes, give np.tile for many shapes/multiples/element sizes;
    each step fits in the input's rank, reads only what earlier steps wrote, writes every byte once."""
    from tinyedge.ops.shape_ops import tile_steps

    rng = np.random.default_rng(3)
    cases = 0
    while cases < 300:
        rank = int(rng.integers(1, 7))
        shape = _random_shape(rng, rank, 4)
        mult = [int(m) for m in rng.choice([1, 1, 2, 3, 4, 7], size=rank)]
        esize = int(rng.choice([1, 2, 4]))
        if math.prod(shape) * math.prod(mult) * esize > 20000:
            continue
        cases += 1
        x = rng.integers(-128, 128, size=(*shape, esize), dtype=np.int8)
        want = np.tile(x, [*mult, 1]).reshape(-1)
        steps = tile_steps(shape, mult, esize)
        assert all(int(st["rank"]) <= rank for st in steps)  # type: ignore[call-overload]
        out = np.zeros(want.size, np.int8)
        written = np.zeros(want.size, bool)
        _run_copy(steps[0], x.reshape(-1), out, written)
        for st in steps[1:]:
            _run_copy(st, out, out, written)
        assert written.all() and np.array_equal(out, want), (shape, mult, esize)
        assert len(steps) == 1 + sum(math.ceil(math.log2(m)) for m in mult)


# ---------------------------------------------------------------------------- what is refused, and why


def _graph(opcode: str, tensors: list[Tensor], inputs: list[int], outputs: list[int],
           **options: Any) -> tuple[Operator, Graph]:
    op = Operator(0, opcode, inputs, outputs, options)
    return op, Graph(tensors, [op], [i for i in inputs if not tensors[i].is_const], outputs, "0" * 64, "<test>")


def _t(index: int, shape: Sequence[int], dtype: str = "int8", quant: tuple[float, int] | None = Q_IN,
       data: Any = None) -> Tensor:
    q = Quant((quant[0],), (quant[1],)) if quant is not None else None
    raw = None
    if data is not None:
        raw = np.asarray(data, dtype=NP_DTYPES[dtype]).tobytes()
    return Tensor(index, f"t{index}", tuple(shape), dtype, q, raw)


def _problems(opcode: str, tensors: list[Tensor], inputs: list[int], outputs: list[int], **options: Any) -> str:
    op, graph = _graph(opcode, tensors, inputs, outputs, **options)
    return " | ".join(load_all()[opcode].check(op, graph))


def test_supported_variants_pass_check() -> None:
    assert _problems("TRANSPOSE", [_t(0, (2, 3)), _t(1, (2,), "int32", None, [1, 0]), _t(2, (3, 2))],
                     [0, 1], [2]) == ""
    assert _problems("SQUEEZE", [_t(0, (1, 3)), _t(1, (3,))], [0], [1]) == ""
    # TILE: the oracle copies the bytes whatever the output's quantization; so do we
    assert _problems("TILE", [_t(0, (2, 3)), _t(1, (2,), "int64", None, [2, 1]), _t(2, (4, 3), quant=(0.5, -9))],
                     [0, 1], [2]) == ""
    # rank 7 whose copies merge to <= 6 dimensions
    assert _problems("TILE", [_t(0, (2, 1, 3, 1, 2, 1, 2)), _t(1, (7,), "int32", None, [1, 2, 1, 1, 2, 1, 3]),
                              _t(2, (2, 2, 3, 1, 4, 1, 6))], [0, 1], [2]) == ""
    assert _problems("TILE", [_t(0, (2, 3), "float32", None), _t(1, (2,), "int32", None, [1, 3]),
                              _t(2, (2, 9), "float32", None)], [0, 1], [2]) == ""


@pytest.mark.parametrize("opcode, tensors, inputs, outputs, options, expected", [
    ("CONCATENATION", [_t(0, (1, 2)), _t(1, (1, 3), quant=(0.1, 3)), _t(2, (1, 5))], [0, 1], [2],
     {"axis": 1}, "input 1 quantization (s=0.1 zp=3) differs from the output's"),
    ("CONCATENATION", [_t(0, (1, 2)), _t(1, (1, 3)), _t(2, (1, 5))], [0, 1], [2],
     {"axis": 1, "fused_activation_function": 1}, "fused activation RELU is not supported"),
    ("CONCATENATION", [_t(0, (1, 2)), _t(1, (1, 3)), _t(2, (1, 5))], [0, 1], [2],
     {"axis": 2}, "axis 2 is out of range for rank 2"),
    ("TRANSPOSE", [_t(0, (1,) * 6), _t(1, (6,), "int32", None, list(range(6))), _t(2, (1,) * 6)],
     [0, 1], [2], {}, "input rank 6 is not supported (max 5)"),
    ("TRANSPOSE", [_t(0, (2, 3)), _t(1, (2,), "int32", None, [-1, 0]), _t(2, (3, 2))],
     [0, 1], [2], {}, "permutation [-1, 0] has entries outside [0, 2); TFLM refuses that"),
    ("TRANSPOSE", [_t(0, (2, 3)), _t(1, (2,), "int64", None, [1, 0]), _t(2, (3, 2))],
     [0, 1], [2], {}, "the permutation must be a constant int32 tensor"),
    ("STRIDED_SLICE", [_t(0, (2,) * 5), *(_t(i, (5,), "int32", None, [0] * 5) for i in (1, 2)),
                       _t(3, (5,), "int32", None, [1] * 5), _t(4, (2,) * 5)],
     [0, 1, 2, 3], [4], {"begin_mask": 31, "end_mask": 31}, "input rank 5 is not supported (max 4)"),
    ("PAD", [_t(0, (2, 3)), _t(1, (2, 2), "int64", None, [[0, 1], [1, 1]]), _t(2, (3, 5))],
     [0, 1], [2], {}, "paddings must be a constant int32 tensor (TFLM reads them as int32)"),
    ("CONCATENATION", [*(_t(i, (1, 2)) for i in range(11)), _t(11, (1, 22))], list(range(11)), [11],
     {"axis": 1}, "11 inputs; TFLM's CONCATENATION takes at most 10"),
    ("CONCATENATION", [_t(0, (1, 2), quant=None), _t(1, (1, 3)), _t(2, (1, 5))], [0, 1], [2],
     {"axis": 1}, "input 0 is not quantized"),
    ("SPLIT", [_t(0, (), "int64", None, 1), _t(1, (2, 6)), _t(2, (2, 3)), _t(3, (2, 3))], [0, 1], [2, 3],
     {"num_splits": 2}, "axis must be a constant int32 scalar (TFLM reads it as int32)"),
    ("EXPAND_DIMS", [_t(0, (3,), "int32", None), _t(1, (), "int32", None, 0), _t(2, (1, 3), "int32", None)],
     [0, 1], [2], {}, "dtype int32 is not supported: TFLM's EXPAND_DIMS copies int8/int16/float32 only"),
    ("TRANSPOSE", [_t(0, (2, 3), "int16"), _t(1, (2,), "int32", None, [1, 0]), _t(2, (3, 2), "int16")],
     [0, 1], [2], {}, "input dtype int16 is not supported (int8 only)"),
    ("TRANSPOSE", [_t(0, (2, 3)), _t(1, (2,), "int32", None), _t(2, (3, 2))],
     [0, 1], [2], {}, "the permutation must be a constant"),
    ("STRIDED_SLICE", [_t(0, (4, 4)), *(_t(i, (2,), "int32", None, [0, 0]) for i in (1, 2)),
                       _t(3, (2,), "int32", None, [1, 1]), _t(4, (4, 4))],
     [0, 1, 2, 3], [4], {"ellipsis_mask": 1, "begin_mask": 3, "end_mask": 3}, "ellipsis_mask=1 is not supported"),
    ("STRIDED_SLICE", [_t(0, (4, 4)), *(_t(i, (2,), "int32", None, [0, 0]) for i in (1, 2)),
                       _t(3, (2,), "int32", None, [1, 1]), _t(4, (4, 4))],
     [0, 1, 2, 3], [4], {"new_axis_mask": 2, "begin_mask": 3, "end_mask": 3}, "new_axis_mask=2 is not supported"),
    ("STRIDED_SLICE", [_t(0, (4, 4)), *(_t(i, (2,), "int32", None, [0, 0]) for i in (1, 2)),
                       _t(3, (2,), "int32", None, [1, 0]), _t(4, (4, 4))],
     [0, 1, 2, 3], [4], {"begin_mask": 3, "end_mask": 3}, "a stride of 0 is not allowed"),
    ("STRIDED_SLICE", [_t(0, (4, 4)), _t(1, (2,), "int32", None, [0, 0]), _t(2, (2,), "int32", None, [2, 2]),
                       _t(3, (2,), "int32", None, [1, 1]), _t(4, (3, 2))],
     [0, 1, 2, 3], [4], {}, "output shape [3, 2] does not match the slice"),
    ("PAD", [_t(0, (2, 3)), _t(1, (2, 2), "int32", None, [[0, -1], [1, 1]]), _t(2, (1, 5))],
     [0, 1], [2], {}, "negative paddings"),
    ("PAD", [_t(0, (1, 1, 1, 1, 1, 2)), _t(1, (6, 2), "int32", None, np.zeros((6, 2))), _t(2, (1, 1, 1, 1, 1, 2))],
     [0, 1], [2], {}, "input rank 6 is not supported (max 5)"),
    ("PADV2", [_t(0, (2, 3)), _t(1, (2, 2), "int32", None, [[0, 0], [1, 1]]), _t(2, (), "int8", (0.5, 0), 4),
               _t(3, (2, 5))], [0, 1, 2], [3], {}, "constant_values quantization (s=0.5 zp=0) differs"),
    ("RESIZE_NEAREST_NEIGHBOR", [_t(0, (1, 2, 2, 1)), _t(1, (2,), "int32", None), _t(2, (1, 4, 4, 1))],
     [0, 1], [2], {}, "size must be a constant int32 tensor"),
    ("SPLIT", [_t(0, (), "int32", None, 1), _t(1, (2, 6)), _t(2, (2, 3)), _t(3, (2, 2))], [0, 1], [2, 3],
     {"num_splits": 2}, "outputs add up to 5 along axis 1, input has 6"),
    ("SPLIT", [_t(0, (), "int32", None, 1), _t(1, (2, 6)), _t(2, (2, 4)), _t(3, (2, 2))], [0, 1], [2, 3],
     {"num_splits": 2}, "SPLIT makes equal parts, but the outputs have sizes [4, 2]"),
    ("SPLIT", [_t(0, (), "int32", None, 1), _t(1, (2, 6)), _t(2, (3, 3)), _t(3, (2, 3))], [0, 1], [2, 3],
     {"num_splits": 2}, "output 0 shape [3, 3] does not fit input [2, 6]"),
    ("SPLIT_V", [_t(0, (2, 6)), _t(1, (2,), "int32", None, [4, 2]), _t(2, (), "int32", None, 1),
                 _t(3, (2, 3)), _t(4, (2, 3))], [0, 1, 2], [3, 4], {"num_splits": 2},
     "size_splits [4, 2] do not match the output sizes [3, 3]"),
    ("MEAN", [_t(0, (1, 4, 4, 2)), _t(1, (2,), "int32", None), _t(2, (1, 2), quant=(0.01, 0))],
     [0, 1], [2], {"keep_dims": False}, "axis must be a constant int32 tensor"),
    ("MEAN", [_t(0, (1, 4, 4, 2)), _t(1, (2,), "int32", None, [1, 2]), _t(2, (1, 2), quant=None)],
     [0, 1], [2], {"keep_dims": False}, "output is not quantized"),
    ("MEAN", [_t(0, (1, 4, 4, 2)), _t(1, (2,), "int32", None, [1, 5]), _t(2, (1, 2))],
     [0, 1], [2], {"keep_dims": False}, "axis 5 is out of range for rank 4"),
    ("TILE", [_t(0, (2, 3)), _t(1, (2,), "int32", None), _t(2, (4, 3))], [0, 1], [2], {},
     "multiples must be a constant int32/int64 tensor (a computed one is not supported)"),
    ("TILE", [_t(0, (2, 3)), _t(1, (2,), "float32", None, [2, 1]), _t(2, (4, 3))], [0, 1], [2], {},
     "multiples must be a constant int32/int64 tensor"),
    ("TILE", [_t(0, (2, 3)), _t(1, (1,), "int32", None, [2]), _t(2, (4, 3))], [0, 1], [2], {},
     "1 multiples for an input of rank 2"),
    ("TILE", [_t(0, (2, 3)), _t(1, (2,), "int32", None, [0, 1]), _t(2, (0, 3))], [0, 1], [2], {},
     "multiples [0, 1] must all be >= 1"),
    ("TILE", [_t(0, (2, 3)), _t(1, (2,), "int32", None, [2, 1]), _t(2, (4, 6))], [0, 1], [2], {},
     "output shape [4, 6] is not input [2, 3] x multiples [2, 1] = [4, 3]"),
    ("TILE", [_t(0, (2, 3)), _t(1, (2,), "int32", None, [2, 1]), _t(2, (4, 3), "int16")], [0, 1], [2], {},
     "input dtype int8 differs from output dtype int16"),
    ("TILE", [_t(0, (2, 3), "int64", None), _t(1, (2,), "int32", None, [2, 1]), _t(2, (4, 3), "int64", None)],
     [0, 1], [2], {}, "dtype int64 is not supported (int8/int16/int32/float32)"),
    ("TILE", [_t(0, (2, 3), data=np.zeros((2, 3))), _t(1, (2,), "int32", None, [2, 1]), _t(2, (4, 3))],
     [0, 1], [2], {}, "a constant input is not supported"),
    ("TILE", [_t(0, (2,) * 7), _t(1, (7,), "int32", None, [2] * 7), _t(2, (4,) * 7)], [0, 1], [2], {},
     "rank 7 not supported: a copy step has 7 dimensions after merging (max 6)"),
    ("SQUEEZE", [_t(0, (1, 3)), _t(1, (3,), quant=(0.05, 4))], [0], [1], {},
     "output quantization (s=0.05 zp=4) differs from the input's"),
    ("EXPAND_DIMS", [_t(0, (3,), data=[1, 2, 3]), _t(1, (), "int32", None, 0), _t(2, (1, 3))], [0, 1], [2], {},
     "a constant input is not supported"),
])
def test_check_refuses_with_a_reason(opcode: str, tensors: list[Tensor], inputs: list[int],
                                     outputs: list[int], options: dict[str, Any], expected: str) -> None:
    assert expected in _problems(opcode, tensors, inputs, outputs, **options)


def _refused_by_tflm(kind: str) -> bytes:
    """Single-op graphs TFLM's Prepare or Eval refuses."""
    g = TinyGraph()
    if kind == "transpose rank 6":
        g.transpose((1, 2, 1, 2, 1, 2), [5, 4, 3, 2, 1, 0])
    elif kind == "transpose negative perm":
        g.op("TRANSPOSE", [g.input((2, 3)), g.const([-1, 0])], [(3, 2)], "TransposeOptions")
    elif kind == "strided slice rank 5":
        g.strided_slice((2, 2, 2, 2, 3), (slice(None),) * 4 + (slice(1, 3),))
    elif kind == "pad rank 6":
        g.pad((1, 2, 1, 2, 1, 2), [[0, 0]] * 5 + [[1, 1]])
    elif kind == "concatenation of 11":
        g.op("CONCATENATION", [g.input((1, 2)) for _ in range(11)], [(1, 22)], "ConcatenationOptions", Axis=1)
    elif kind == "concatenation requantizing":
        g.op("CONCATENATION", [g.input((1, 2)), g.input((1, 3), (0.1, 3))], [(1, 5)], "ConcatenationOptions",
             Axis=1)
    elif kind == "padv2 value quantized otherwise":
        g.op("PADV2", [g.input((2, 3)), g.const([[0, 0], [1, 1]]), g.const(4, "int8", (0.5, 0))], [(2, 5)],
             "PadV2Options")
    elif kind == "expand_dims int32":
        g.op("EXPAND_DIMS", [g.input((3,), None, "int32"), g.const(0)], [(1, 3)], "ExpandDimsOptions",
             quant=None, dtype="int32")
    elif kind == "reduce_max requantizing":
        g.op("REDUCE_MAX", [g.input((1, 4, 4, 2)), g.const([1, 2])], [(1, 2)], "ReducerOptions",
             quant=(0.1, 3), KeepDims=False)
    return g.tflite()


TFLM_REFUSES = ["transpose rank 6", "transpose negative perm", "strided slice rank 5", "pad rank 6",
                "concatenation of 11", "concatenation requantizing", "padv2 value quantized otherwise",
                "expand_dims int32", "reduce_max requantizing"]


@pytest.mark.parametrize("kind", TFLM_REFUSES)
def test_what_tflm_refuses_is_refused(kind: str) -> None:
    """TFLM gives no answer for these graphs (its Prepare or Eval fails), so tinyedge's check
    refuses them too -- naming TFLM's rule."""
    data = _refused_by_tflm(kind)
    graph = read_model(data, kind)
    from tinyedge.codegen.lower import check_graph

    problems = [str(p) for p in check_graph(graph)]
    assert problems, f"{kind}: tinyedge accepts it"
    with pytest.raises((TinyEdgeError, RuntimeError)):
        tflm = TflmOracle(data)
        tflm.run([np.zeros(t.shape, NP_DTYPES[t.dtype]) for t in graph.input_tensors])


def test_every_op_is_registered_with_constraints() -> None:
    registry = load_all()
    for name in MY_OPS:
        assert name in registry and registry[name].constraints, name
    assert registry["SQUEEZE"].alias_input and registry["EXPAND_DIMS"].alias_input
    assert not registry["TRANSPOSE"].alias_input and not registry["TILE"].alias_input


# ---------------------------------------------------------------------------- the kernels build for Cortex-M


@pytest.mark.parametrize("cpu", [["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
                                 ["-mcpu=cortex-m0", "-mthumb"]], ids=["m4", "m0"])
def test_kernels_compile_warning_free_for_cortex_m(cpu: list[str], tmp_path: Path) -> None:
    require_tool("arm-none-eabi-gcc")
    runtime = templates_dir() / "runtime"
    for src in ("te_shape.c", "te_reduce.c"):
        cmd = ["arm-none-eabi-gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *cpu, f"-I{runtime}",
               "-c", str(runtime / src), "-o", str(tmp_path / f"{src}.o")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{src}: {proc.stderr}"


# ---------------------------------------------------------------------------- on the device


def device_model() -> bytes:
    """Batch-1 branches of every op here but TILE (its graphs are compared with TFLite): the
    data-movement ops, MEAN over several axis patterns and REDUCE_MAX."""
    g = TinyGraph()
    g.op("SQUEEZE", [g.input((1, 1, 7, 1, 3))], [(1, 7, 3)], "SqueezeOptions", SqueezeDims=[1, 3])
    g.op("EXPAND_DIMS", [g.input((1, 7, 3)), g.const(-1)], [(1, 7, 3, 1)], "ExpandDimsOptions")
    g.transpose((1, 3, 4, 5), [0, 3, 1, 2])
    g.transpose((1, 2, 3, 1, 4), [0, 4, 2, 1, 3])
    g.strided_slice((1, 8, 9, 4), (slice(None), slice(-1, -8, -2), slice(1, None, 3), 2))
    g.pad((1, 4, 5, 3), [[0, 0], [1, 2], [3, 0], [0, 1]])
    g.pad((1, 3, 4), [[0, 0], [2, 1], [1, 1]], value=-77)
    g.op("CONCATENATION", [g.input((1, 3, 6)), g.const(np.arange(-6, 6).reshape(1, 2, 6), "int8", Q_IN),
                           g.input((1, 1, 6))], [(1, 6, 6)], "ConcatenationOptions", Axis=1)
    g.op("SPLIT_V", [g.input((1, 7, 3)), g.const([2, -1, 4]), g.const(1)], [(1, 2, 3), (1, 1, 3), (1, 4, 3)],
         "SplitVOptions", NumSplits=3)
    g.op("SPLIT", [g.const(-1), g.input((1, 3, 6))], [(1, 3, 2)] * 3, "SplitOptions", NumSplits=3)
    for align, half in ((False, False), (True, False), (False, True)):
        g.resize((1, 5, 4, 3), (8, 11), align, half)
    g.mean((1, 2, 2, 33), [1, 2], True, (0.05, 3), (0.05, 3))
    g.mean((1, 3, 5, 16), [-3, -2], True, (0.02, -5), (0.013, 7))
    g.mean((1, 4, 4, 40), [1, 2], False, (0.05, 3), (0.0125, -9))
    g.mean((1, 3, 4, 5, 6), [2, 4], False, (0.04, -2), (0.01, 11))
    g.op("REDUCE_MAX", [g.input((1, 3, 4, 5)), g.const([1, -2])], [(1, 5)], "ReducerOptions", KeepDims=False)
    return g.tflite()


@pytest.mark.emulator
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385", "mps3-an547"])
def test_shape_and_reduce_ops_on_device(board: str, tmp_path: Path) -> None:
    """The same kernels as firmware on Cortex-M4F, M3 and M55, through ``tinyedge validate``:
    TFLM's bytes on random samples, the extremes and constant fills (MEAN ties)."""
    from test_kernels_misc import validate_on_device

    data = device_model()
    graph = read_model(data, "device")
    assert {op.opcode for op in graph.operators} == set(MY_OPS) - {"TILE"} | {"REDUCE_MAX"}
    validate_on_device(data, board, tmp_path, samples_for(graph, 4, 5))
