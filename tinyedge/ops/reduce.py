"""MEAN and REDUCE_MAX: int8 reductions over constant axes.

MEAN, int8, over constant axes -> ``te_mean_s8`` (firmware_templates/runtime/te_reduce.c).

What TensorFlow Lite Micro computes (micro/kernels/reduce.cc + reduce_common.cc,
EvalMean -> EvalIntegerMean -> ``reference_ops::QuantizedMeanOrSum`` in
kernels/internal/reference/reduce.h): ONE path for every axis set, rank and
``keep_dims`` -- TFLM has no special 4-D / H,W kernel for int8 (the float
kernel has one; the x86 TFLite interpreter's optimized int8 path, which rounds
ties differently per 16-channel block, does not exist in TFLM):

- Prepare, in double: ``QuantizeMultiplier(double(in_scale) / double(out_scale))``.
- Eval: the axes are normalized (negative + rank) and de-duplicated
  (ResolveAxis); the raw int8 values are summed in int32 per output; N is the
  number of values per output; 1/N is folded into the multiplier with
  integers: ``s = min(floor(log2 N), 32, 31 + shift)``, ``mult' = (mult << s)
  / N`` (int64, truncating), ``shift' = shift - s``. Per output:
  ``clamp(MultiplyByQuantizedMultiplier(sum - in_zp * N, mult', shift') + out_zp)``.

REDUCE_MAX, int8, over constant axes -> ``te_reduce_max_s8`` (same file).
TFLM (reduce_common.cc, EvalMinMaxHelper -> ``reference_ops::ReduceGeneric``)
initializes each output to -128 and takes the plain max of the raw int8
values; it never requantizes. Instead its Eval refuses a model whose input and
output scale or zero point differ (``TF_LITE_ENSURE_EQ`` on both), so
``check`` refuses those too.
"""

from __future__ import annotations

import math

import numpy as np

from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import LowerCtx, Lowered, OpSpec, register
from tinyedge.ops.common import c_list, const_ints, int8_tensor_problems, normalize_axis, same_quant, shape_str
from tinyedge.quant import quantize_multiplier

MAX_DIMS = 6  # te_reduce.h TE_REDUCE_MAX_DIMS


def resolved_axes(op: Operator, graph: Graph) -> list[int] | str:
    """The reduced axes, normalized and de-duplicated, or why they are not usable."""
    x = graph.tensor(op.inputs[0])
    t = graph.tensor(op.inputs[1])
    raw = const_ints(graph, op.inputs[1])
    if raw is None or t.dtype != "int32":
        return "axis must be a constant int32 tensor"
    axes: list[int] = []
    for a in raw.reshape(-1).tolist():
        n = normalize_axis(int(a), len(x.shape))
        if n is None:
            return f"axis {a} is out of range for rank {len(x.shape)}"
        if n not in axes:
            axes.append(n)
    return axes


def _output_shape(x: Tensor, axes: list[int], keep_dims: bool) -> list[int]:
    if keep_dims:
        return [1 if d in axes else n for d, n in enumerate(x.shape)]
    return [n for d, n in enumerate(x.shape) if d not in axes]


def _check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) < 2 or op.inputs[0] < 0 or op.inputs[1] < 0 or len(op.outputs) != 1:
        return ["needs an input, an axis tensor and 1 output"]
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    problems = int8_tensor_problems(x, "input") + int8_tensor_problems(y, "output")
    if x.is_const:
        problems.append("a constant input is not supported")
    if len(x.shape) > MAX_DIMS:
        problems.append(f"input rank {len(x.shape)} is not supported (max {MAX_DIMS})")
    if problems:
        return problems
    axes = resolved_axes(op, graph)
    if isinstance(axes, str):
        return [axes]
    want = _output_shape(x, axes, bool(op.options.get("keep_dims", False)))
    if list(y.shape) != want:
        problems.append(f"output shape {list(y.shape)} is not the reduction of {list(x.shape)} "
                        f"over axes {axes} (expected {want})")
    return problems


def _check_reduce_max(op: Operator, graph: Graph) -> list[str]:
    problems = _check(op, graph)
    if problems:
        return problems
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if not same_quant(x, y):
        problems.append(f"input and output quantization differ (scale {x.scale:.9g} zp {x.zero_point} vs "
                        f"scale {y.scale:.9g} zp {y.zero_point}); TFLM's REDUCE_MAX refuses that "
                        "(reduce_common.cc: TF_LITE_ENSURE_EQ on the scales and zero points)")
    return problems


def merge_reduce(shape: tuple[int, ...], axes: list[int]) -> tuple[list[int], list[int]]:
    """(dims, out_strides): extent-1 dimensions dropped, adjacent dimensions that
    are both reduced or both kept merged; out_strides is the C-order output stride
    of each kept dimension, 0 for a reduced one."""
    groups: list[list[int]] = []  # [extent, reduced]
    for d, n in enumerate(shape):
        if n == 1:
            continue
        red = int(d in axes)
        if groups and groups[-1][1] == red:
            groups[-1][0] *= int(n)
        else:
            groups.append([int(n), red])
    if not groups:
        groups = [[1, 0]]
    strides = [0] * len(groups)
    acc = 1
    for i in range(len(groups) - 1, -1, -1):
        if not groups[i][1]:
            strides[i] = acc
            acc *= groups[i][0]
    return [g[0] for g in groups], strides


def mean_constants(x: Tensor, y: Tensor, count: int) -> dict[str, int]:
    """reference_ops::QuantizedMeanOrSum's constants (count = elements per output)."""
    mult, shift = quantize_multiplier(float(np.float32(x.scale)) / float(np.float32(y.scale)))
    s = min(count.bit_length() - 1, 32, 31 + shift)  # >= 0: shift >= -31 after QuantizeMultiplier
    mult = (mult << s) // count  # int64 division; mult >= 0, so floor == C's truncation
    return {"sub": int(x.zero_point) * count, "mult": int(mult), "shift": shift - s,
            "add": int(y.zero_point)}


def _lower(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    axes = resolved_axes(op, g)
    assert not isinstance(axes, str)
    count = math.prod(x.shape[a] for a in axes)
    consts = mean_constants(x, y, count)
    dims, out_strides = merge_reduce(x.shape, axes)
    out_size = y.size
    pname = ctx.name("params")
    return Lowered(
        comment=(f"MEAN {shape_str(x)} over axes {axes} (keep_dims={bool(op.options.get('keep_dims'))}) "
                 f"-> {shape_str(y)}, {count} values per output (QuantizedMeanOrSum): "
                 f"mult {consts['mult']} shift {consts['shift']}"),
        call=(f"te_mean_s8(&{pname}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, "
              f"(int32_t *)(void *){ctx.scratch});"),
        params_type="te_mean_params_t",
        params={"rank": len(dims), "dims": c_list(dims, MAX_DIMS),
                "out_strides": c_list(out_strides, MAX_DIMS), "out_size": out_size, **consts},
        params_name=pname,
        scratch_bytes=4 * out_size,
    )


register(OpSpec(
    name="MEAN",
    lower=_lower,
    check=_check,
    constraints="int8, rank 1-6, any constant axes (negative too), keep_dims true/false; "
                "input and output quantization may differ",
))


def _lower_reduce_max(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    axes = resolved_axes(op, g)
    assert not isinstance(axes, str)
    dims, out_strides = merge_reduce(x.shape, axes)
    pname = ctx.name("params")
    return Lowered(
        comment=(f"REDUCE_MAX {shape_str(x)} over axes {axes} (keep_dims={bool(op.options.get('keep_dims'))}) "
                 f"-> {shape_str(y)}, raw int8 max"),
        call=f"te_reduce_max_s8(&{pname}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});",
        params_type="te_reduce_max_params_t",
        params={"rank": len(dims), "dims": c_list(dims, MAX_DIMS),
                "out_strides": c_list(out_strides, MAX_DIMS), "out_size": y.size},
        params_name=pname,
    )


register(OpSpec(
    name="REDUCE_MAX",
    lower=_lower_reduce_max,
    check=_check_reduce_max,
    constraints="int8, rank 1-6, any constant axes (negative too), keep_dims true/false; "
                "input and output quantization must be equal (TFLM refuses otherwise)",
))
