"""MEAN and REDUCE_MAX: int8 reductions over constant axes.

MEAN, int8, over constant axes -> ``te_mean_s8`` (firmware_templates/runtime/te_reduce.c).

What the oracle computes (TFLite kernels/reduce.cc, EvalMean with the generic
optimized kernel, int8):

- **HW fast path** -- rank-4 input, ``keep_dims`` true, the axes (normalized,
  duplicates ignored) are exactly {1, 2}: ``optimized_integer_ops::Mean``
  (kernels/internal/optimized/integer_ops/mean.h). In float32: ``real =
  in_scale / (float(H*W) * out_scale)`` -> QuantizeMultiplier; ``t = in_zp *
  in_scale / out_scale``,
  ``bias = out_zp - int(t > 0 ? t + 0.5f : t - 0.5f)``. Per (batch, channel):
  ``clamp(MultiplyByQuantizedMultiplier(sum of raw int8, mult, shift) + bias)``.
  Channels in whole blocks of 16 go through the 16-lane vector loop, whose
  final rounding shift breaks ties upward (vrshlq_s32); the last ``C % 16``
  channels use the scalar path (ties away from zero). Both are reproduced
  (blocks counted from channel 0: the oracle runs one thread; with more, the
  interpreter splits the channels between threads and the blocks move).
- **general path** -- anything else, e.g. Keras GlobalAveragePooling2D
  (``keep_dims`` false): ``reference_ops::QuantizedMeanOrSum``
  (kernels/internal/reference/reduce.h). ``QuantizeMultiplier(double(in_scale)
  / double(out_scale))``, then 1/N folded in with integers: ``s =
  min(floor(log2 N), 32, 31 + shift)``, ``mult' = (mult << s) / N``, ``shift' =
  shift - s``. Per output: ``clamp(MultiplyByQuantizedMultiplier(sum - in_zp *
  N, mult', shift') + out_zp)``.

Both were measured bit-exact against the oracle (tests/test_ops_shape.py).

REDUCE_MAX, int8, over constant axes -> ``te_reduce_max_s8`` (same file).
The oracle (kernels/reduce.cc, Register_REDUCE_MAX -> PrepareSimple +
EvalGeneric<kGenericOptimized, kMax>) takes the plain max of the raw int8
values over the reduced axes; it never requantizes. Instead its Eval refuses
a model whose input and output scale or zero point differ (measured:
"reduce.cc:961 input->params.scale != output->params.scale", ":963" for the
zero point), so ``check`` refuses those too. Measured bit-exact in
tests/test_ops_reduce_max.py.
"""

from __future__ import annotations

import math

import numpy as np

from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import LowerCtx, Lowered, OpSpec, register
from tinyedge.ops.common import c_list, const_ints, int8_tensor_problems, normalize_axis, same_quant, shape_str
from tinyedge.quant import quantize_multiplier

MAX_DIMS = 6  # te_reduce.h TE_REDUCE_MAX_DIMS
NEON_LANES = 16  # channels per block of the oracle's vector loop


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


def is_hw_fast_path(op: Operator, graph: Graph) -> bool:
    """The oracle's condition for optimized_integer_ops::Mean. Measured on the
    oracle: axes [1, 2], [2, 1], [-3, -2], [1, -2], [1, 2, 2], [2, -2, 1] all take
    it (normalized, de-duplicated), keep_dims=false never does."""
    x = graph.tensor(op.inputs[0])
    axes = resolved_axes(op, graph)
    return (bool(op.options.get("keep_dims", False)) and len(x.shape) == 4
            and not isinstance(axes, str) and sorted(axes) == [1, 2])


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
                        f"scale {y.scale:.9g} zp {y.zero_point}); the oracle refuses this too")
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


def hw_fast_constants(x: Tensor, y: Tensor) -> dict[str, int]:
    """optimized_integer_ops::Mean's constants, in float32 as the oracle computes them."""
    f = np.float32
    n, h, w, c = x.shape
    in_s, out_s = f(x.scale), f(y.scale)
    real = f(in_s / f(f(h * w) * out_s))
    mult, shift = quantize_multiplier(float(real))
    t = f(f(f(x.zero_point) * in_s) / out_s)
    t = f(t + f(0.5)) if t > 0 else f(t - f(0.5))
    bias = int(y.zero_point) - int(t)  # C++ float -> int32 truncates toward zero
    return {"sub": 0, "mult": mult, "shift": shift, "add": bias,
            "channels": int(c), "round_up_channels": NEON_LANES * (int(c) // NEON_LANES)}


def general_constants(x: Tensor, y: Tensor, count: int) -> dict[str, int]:
    """reference_ops::QuantizedMeanOrSum's constants (count = elements per output)."""
    mult, shift = quantize_multiplier(float(x.scale) / float(y.scale))
    s = min(count.bit_length() - 1, 32, 31 + shift)  # >= 0: shift >= -31 after QuantizeMultiplier
    mult = (mult << s) // count  # int64 division; mult >= 0, so floor == C's truncation
    return {"sub": int(x.zero_point) * count, "mult": int(mult), "shift": shift - s,
            "add": int(y.zero_point), "channels": 1, "round_up_channels": 0}


def _lower(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    axes = resolved_axes(op, g)
    assert not isinstance(axes, str)
    count = math.prod(x.shape[a] for a in axes)
    fast = is_hw_fast_path(op, g)
    consts = hw_fast_constants(x, y) if fast else general_constants(x, y, count)
    dims, out_strides = merge_reduce(x.shape, axes)
    out_size = y.size
    pname = ctx.name("params")
    path = "HW fast path" if fast else "general path"
    return Lowered(
        comment=(f"MEAN {shape_str(x)} over axes {axes} (keep_dims={bool(op.options.get('keep_dims'))}) "
                 f"-> {shape_str(y)}, {count} values per output, oracle's {path}: "
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
                "input and output quantization must be equal (the oracle refuses otherwise)",
))
