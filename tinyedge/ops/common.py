"""Helpers every op family shares: operand checks, constant operands, requantization
constants and small C formatting helpers.

Op family modules import from here (and from :mod:`tinyedge.ops.base`,
:mod:`tinyedge.ops.broadcast`, :mod:`tinyedge.quant`), never from each other,
so that each family can change its internals alone.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tinyedge import quant
from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import ConstArray, LowerCtx, activation_name
from tinyedge.ops.broadcast import broadcast_shape, generic_plan, padded

SUPPORTED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
MAX_DIMS = 6  # te_shape.h TE_SHAPE_MAX_DIMS
INT_DTYPES = ("int32", "int64")


# ---- operand checks ----------------------------------------------------------------


def int8_tensor_problems(t: Tensor | None, role: str) -> list[str]:
    """Problems with an int8 activation tensor: present, int8, quantized per tensor, not empty."""
    if t is None:
        return [f"{role} tensor is missing"]
    if t.dtype != "int8":
        return [f"{role} dtype {t.dtype} is not supported (int8 only)"]
    if t.quant is None:
        return [f"{role} is not quantized"]
    if t.quant.per_channel:
        return [f"{role} is quantized per channel (per-tensor only)"]
    if t.size == 0:
        return [f"{role} is empty (shape {list(t.shape)})"]
    return []


def weight_problems(w: Tensor | None, n_channels: int, axis: int) -> list[str]:
    """Problems with a constant, symmetric int8 weight tensor (per-tensor or per-channel on ``axis``)."""
    if w is None:
        return ["filter tensor is missing"]
    if w.dtype != "int8":
        return [f"filter is {w.dtype}; only int8 weights are supported"]
    if not w.is_const:
        return ["filter is not a constant tensor; only constant weights are supported"]
    if w.quant is None:
        return ["filter has no quantization parameters"]
    if any(z != 0 for z in w.quant.zero_point):
        return ["filter has a non-zero zero point; int8 weights must be symmetric"]
    if w.quant.per_channel:
        if len(w.quant.scale) != n_channels:
            return [f"filter has {len(w.quant.scale)} scales for {n_channels} output channels"]
        if w.quant.axis != axis:
            return [f"filter is quantized per channel along axis {w.quant.axis}; expected axis {axis}"]
    return []


def bias_problems(b: Tensor | None, n_channels: int) -> list[str]:
    if b is None:
        return []
    if b.dtype != "int32":
        return [f"bias is {b.dtype}; only int32 bias is supported"]
    if not b.is_const:
        return ["bias is not a constant tensor"]
    if b.size != n_channels:
        return [f"bias has {b.size} values for {n_channels} output channels"]
    return []


def activation_problems(op: Operator) -> list[str]:
    act = activation_name(op)
    if act not in SUPPORTED_ACTIVATIONS:
        return [f"fused_activation_function {act} is not supported (supported: {', '.join(SUPPORTED_ACTIVATIONS)})"]
    return []


def fused_range_problems(op: Operator, y: Tensor) -> list[str]:
    """The fused activation's clamp as TFLM's Prepare computes it (CalculateActivationRangeQuantized)
    from the output's quantization: [] when it exists, else TFLM's reason for refusing."""
    try:
        quant.activation_range(activation_name(op), y.scale, y.zero_point)
    except ValueError as exc:
        return [str(exc)]
    return []


def requant_problems(reals: Sequence[float]) -> list[str]:
    """Real requantization multipliers TFLM's QuantizeMultiplier + MultiplyByQuantizedMultiplier
    (double rounding) give no defined answer for: not finite, negative, or >= 2^30."""
    for r in reals:
        if not np.isfinite(r) or r < 0:
            return [f"requantization multiplier {r} (input scale * filter scale / output scale) is not a "
                    "finite non-negative number; TFLM's QuantizeMultiplier fails on it"]
        shift = quant.multiplier_exponent(float(r))
        if shift > quant.MAX_LEFT_SHIFT:
            return [f"requantization multiplier {r:.6g} >= 2^30: TFLM's MultiplyByQuantizedMultiplier "
                    f"would shift left by {shift} bits (undefined in C++)"]
    return []


def binary_shape_problems(opname: str, a: Tensor, b: Tensor, y: Tensor, max_rank: int) -> list[str]:
    rank = max(len(a.shape), len(b.shape), len(y.shape))
    if rank > max_rank:
        return [f"{opname}: rank {rank} not supported (max {max_rank})"]
    out = broadcast_shape(a.shape, b.shape)
    if out is None:
        return [f"input shapes {list(a.shape)} and {list(b.shape)} do not broadcast"]
    if padded(out, rank) != padded(y.shape, rank) or y.size != int(np.prod(out, dtype=np.int64)):
        return [f"output shape {list(y.shape)} is not the broadcast of {list(a.shape)} and {list(b.shape)}"]
    return []


def same_quant(a: Tensor, b: Tensor) -> bool:
    """Scale and zero point equal (TFLite compares the float32 scales with ==)."""
    if a.quant is None or b.quant is None:
        return a.quant is None and b.quant is None
    return a.scale == b.scale and a.zero_point == b.zero_point


# ---- operands ----------------------------------------------------------------------


def input_tensor(graph: Graph, op: Operator, k: int) -> Tensor | None:
    """The k-th input of ``op`` (None when absent or omitted with -1)."""
    if k >= len(op.inputs) or op.inputs[k] < 0:
        return None
    return graph.tensor(op.inputs[k])


def const_ints(graph: Graph, index: int) -> np.ndarray | None:
    """The values of a constant int32/int64 operand, or None when it is not one."""
    if index < 0:
        return None
    t = graph.tensor(index)
    if not t.is_const or t.dtype not in INT_DTYPES:
        return None
    return t.array().astype(np.int64)


def int8_operand(ctx: LowerCtx, tensor_index: int, suffix: str) -> tuple[str, list[ConstArray]]:
    """How the C call names an int8 input: the arena macro, or a re-emitted constant array."""
    t = ctx.graph.tensor(tensor_index)
    if not t.is_const:
        return ctx.ptr(tensor_index), []
    name = ctx.name(suffix)
    values = t.array().astype(np.int8).reshape(-1)
    return name, [ConstArray(name=name, ctype="int8_t", values=values,
                             comment=f"constant input {t.name} {t.describe()}")]


def requant_consts(ctx: LowerCtx, reals: list[float], per_channel: bool) -> tuple[list[ConstArray], dict[str, object]]:
    """Multiplier/shift arrays (one entry when per-tensor) and the params fields naming them."""
    mults, shifts = quant.quantize_multipliers(reals if per_channel else reals[:1])
    m_name, s_name = ctx.name("mult"), ctx.name("shift")
    consts = [
        ConstArray(m_name, "int32_t", mults, "Q31 requantization multipliers (TFLite QuantizeMultiplier)"),
        ConstArray(s_name, "int32_t", shifts, "requantization exponents (> 0 left, < 0 right)"),
    ]
    fields: dict[str, object] = {"per_channel": 1 if per_channel else 0, "mult": m_name, "shift": s_name}
    return consts, fields


# ---- small formatting helpers ------------------------------------------------------


def shape_str(t: Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def normalize_axis(axis: int, rank: int) -> int | None:
    a = axis + rank if axis < 0 else axis
    return a if 0 <= a < rank else None


def c_int_list(values: Sequence[int]) -> str:
    """A C initializer for an int32_t array field: ``{1, 2, 3}``."""
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


def bcast_walk(s1: Sequence[int], s2: Sequence[int]) -> str:
    """The C initializer of a ``te_bcast_t`` (runtime te_broadcast.h): the output of an
    elementwise binary op over inputs of shapes ``s1`` and ``s2`` walked as rows, with
    dimensions merged by :func:`tinyedge.ops.broadcast.generic_plan` (for kernels whose every
    element takes the same recipe, so the walk order cannot change a result)."""
    plan = generic_plan(s1, s2)
    return "{" + ", ".join(c_int_list(v) for v in (plan.out_dims, plan.strides1, plan.strides2)) + "}"


def c_list(values: Sequence[int], n: int = MAX_DIMS) -> str:
    """A fixed-size C array initializer, zero-padded to ``n`` entries."""
    vals = [int(v) for v in values] + [0] * (n - len(values))
    return "{" + ", ".join(map(str, vals)) + "}"
