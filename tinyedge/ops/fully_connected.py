"""FULLY_CONNECTED, int8, lowered to te_fully_connected_s8.

The host computes every constant the kernel needs: the Q31 multiplier(s) and
shift(s) exactly as TFLite derives them (per-tensor: the float32 product of
the input and filter scales, divided in double, as in
GetQuantizedConvolutionMultipler; per-channel: all in double), the fused
activation's clamp, and the bias with the input zero-point term
``-input_zp * sum_i filter[o][i]`` folded in, so that the kernel's inner loop
is a plain int8 dot product. See firmware_templates/runtime/te_fully_connected.c.
"""

from __future__ import annotations

import numpy as np

from tinyedge import quant
from tinyedge.model.ir import Graph, Operator
from tinyedge.ops.base import ConstArray, LowerCtx, Lowered, OpSpec, activation_name, register
from tinyedge.ops.common import (
    activation_problems,
    bias_problems,
    input_tensor,
    int8_tensor_problems,
    requant_consts,
    weight_problems,
)

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _folded_bias(op: Operator, graph: Graph) -> np.ndarray:
    """bias[o] - input_zp * sum_i filter[o][i], in int64 (the caller checks the range)."""
    x, w, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), input_tensor(graph, op, 2)
    rows = w.array().astype(np.int64).sum(axis=1)
    bias = b.array().astype(np.int64).reshape(-1) if b is not None else np.zeros(w.shape[0], np.int64)
    return bias - int(x.zero_point) * rows


def check_fc(op: Operator, graph: Graph) -> list[str]:
    """Every reason this FULLY_CONNECTED cannot be lowered."""
    if len(op.inputs) < 2:
        return [f"has {len(op.inputs)} inputs; expected input, weights[, bias]"]
    if len(op.outputs) != 1:
        return [f"has {len(op.outputs)} outputs; expected 1"]
    x, w, b = input_tensor(graph, op, 0), input_tensor(graph, op, 1), input_tensor(graph, op, 2)
    y = graph.tensor(op.outputs[0])
    problems = int8_tensor_problems(x, "input") + int8_tensor_problems(y, "output")
    if w is None or len(w.shape) != 2:
        return problems + ["weights must be a 2-D constant tensor [units, depth]"]
    problems += weight_problems(w, w.shape[0], 0)
    problems += bias_problems(b, w.shape[0])
    problems += activation_problems(op)
    fmt = int(op.options.get("weights_format", 0))
    if fmt != 0:
        problems.append(f"weights_format {fmt} (shuffled) is not supported; only DEFAULT")
    if problems:
        return problems
    assert x is not None
    if x.size % w.shape[1] != 0:
        return [f"input has {x.size} values, not a multiple of the weights' depth {w.shape[1]}"]
    if y.size != (x.size // w.shape[1]) * w.shape[0]:
        return [f"output shape {list(y.shape)} does not match {x.size // w.shape[1]} rows of {w.shape[0]} units"]
    folded = _folded_bias(op, graph)
    if folded.min() < INT32_MIN or folded.max() > INT32_MAX:
        return ["bias with the input zero point folded in does not fit in int32"]
    return []


def lower_fc(op: Operator, ctx: LowerCtx) -> Lowered:
    graph = ctx.graph
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    assert w.quant is not None
    units, depth = w.shape
    batches = x.size // depth
    per_channel = w.quant.per_channel
    reals = quant.fc_effective_scales(x.scale, w.quant.scale, y.scale, units)
    req_consts, req_fields = requant_consts(ctx, reals, per_channel)
    act = activation_name(op)
    act_min, act_max = quant.activation_range(act, y.scale, y.zero_point)
    f_name, b_name = ctx.name("filter"), ctx.name("bias")
    consts = [
        ConstArray(f_name, "int8_t", w.array().reshape(-1), f"weights [{units}][{depth}], as in the model"),
        ConstArray(b_name, "int32_t", _folded_bias(op, graph).astype(np.int32),
                   f"bias - input_zp ({x.zero_point}) * row sums of the weights"),
    ]
    params_name = ctx.name("params")
    params: dict[str, object] = {
        "batches": batches, "in_depth": depth, "out_depth": units,
        "output_offset": y.zero_point, "act_min": act_min, "act_max": act_max,
    }
    keep = " keep_num_dims" if op.options.get("keep_num_dims") else ""
    return Lowered(
        comment=(f"FULLY_CONNECTED {batches}x{depth} -> {batches}x{units}{keep}, "
                 f"{'per-channel' if per_channel else 'per-tensor'} weights, {act}"),
        call=f"te_fully_connected_s8(&{params_name}, {ctx.ptr(op.inputs[0])}, {f_name}, {b_name}, "
             f"{ctx.ptr(op.outputs[0])});",
        params_type="te_fc_params_t",
        params=params | req_fields,
        params_name=params_name,
        consts=consts + req_consts,
    )


def fc_macs(op: Operator, graph: Graph) -> int:
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    return (x.size // w.shape[1]) * w.shape[0] * w.shape[1]


register(OpSpec(
    name="FULLY_CONNECTED",
    lower=lower_fc,
    check=check_fc,
    constraints="int8 in/out, int8 symmetric weights (per-tensor or per-channel), optional int32 bias; "
                "any number of rows, keep_num_dims; fused NONE/RELU/RELU6/RELU_N1_TO_1",
    macs=fc_macs,
))
