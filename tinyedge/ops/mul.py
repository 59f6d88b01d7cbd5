"""MUL, int8 with broadcast and fused activation -> ``te_mul_s8``.

What TensorFlow Lite Micro computes (micro/kernels/mul_common.cc; C side in
firmware_templates/runtime/te_mul.c):

- Prepare (CalculateOpDataMul): ``real = double(s1) * double(s2) / double(s_out)``
  in double precision (TFLite's own MUL takes the product in float32 first;
  TFLM does not), then ``QuantizeMultiplier``; the fused activation range is
  ``CalculateActivationRangeQuantized``.
- Eval: ``clamp(zp_out + MultiplyByQuantizedMultiplier((x1 - zp1) * (x2 - zp2)))``
  for every output element, with or without broadcast (MulElementwise /
  BroadcastMul6DSlow): no vector blocks, so the walk is free and the host
  merges dimensions (:func:`tinyedge.ops.common.bcast_walk`).

int16 MUL (TFLM's other quantized variant) is not supported: no other tinyedge
op produces int16 activations.
"""

from __future__ import annotations

from tinyedge.model.ir import Graph, Operator
from tinyedge.ops.base import LowerCtx, Lowered, OpSpec, activation_name, register
from tinyedge.ops.broadcast import MAX_DIMS
from tinyedge.ops.common import (SUPPORTED_ACTIVATIONS, bcast_walk, binary_shape_problems, int8_operand,
                                 int8_tensor_problems)
from tinyedge.quant import activation_range, quantize_multiplier

# CalculateActivationRangeQuantized refuses a bound whose zp + round(bound / scale) leaves int32
_ACTIVATION_BOUND = {"RELU6": 6.0, "RELU_N1_TO_1": 1.0}


def mul_real_multiplier(s1: float, s2: float, s_out: float) -> float:
    """TFLM's MUL Prepare: ``double(s1) * double(s2) / double(s_out)`` (the scales are float32)."""
    return float(s1) * float(s2) / float(s_out)


def _check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) != 2 or len(op.outputs) != 1 or min(op.inputs) < 0:
        return ["MUL needs 2 inputs and 1 output"]
    a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    problems = (int8_tensor_problems(a, "input 1") + int8_tensor_problems(b, "input 2")
                + int8_tensor_problems(y, "output"))
    act = activation_name(op)
    if act not in SUPPORTED_ACTIVATIONS:
        problems.append(f"fused activation {act} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1)")
    if problems:
        return problems
    problems += binary_shape_problems("MUL", a, b, y, MAX_DIMS)
    if not problems and mul_real_multiplier(a.scale, b.scale, y.scale) <= 0:
        problems.append("the scales give a non-positive multiplier")
    bound = _ACTIVATION_BOUND.get(act)
    if not problems and bound is not None and bound / y.scale >= 2.0**31 - 256:
        problems.append(f"output scale {y.scale:g} is too small for {act}: TFLM's "
                        "CalculateActivationRangeQuantized refuses a bound beyond int32")
    return problems


def _macs(op: Operator, graph: Graph) -> int:
    return graph.tensor(op.outputs[0]).size


def _lower(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    a, b = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    y = g.tensor(op.outputs[0])
    act = activation_name(op)
    real = mul_real_multiplier(a.scale, b.scale, y.scale)
    mult, shift = quantize_multiplier(real)
    act_min, act_max = activation_range(act, y.scale, y.zero_point)
    name1, consts1 = int8_operand(ctx, op.inputs[0], "in1")
    name2, consts2 = int8_operand(ctx, op.inputs[1], "in2")
    pname = ctx.name("params")
    walk = "flat" if list(a.shape) == list(b.shape) else "broadcast"
    return Lowered(
        comment=(f"MUL {list(a.shape)} x {list(b.shape)} -> {list(y.shape)} ({walk}), "
                 f"real multiplier {real:.9g}, activation {act} [{act_min}, {act_max}]"),
        call=f"te_mul_s8(&{pname}, {name1}, {name2}, {ctx.ptr(op.outputs[0])});",
        params_type="te_mul_params_t",
        params={
            "in1_offset": -a.zero_point, "in2_offset": -b.zero_point, "out_offset": y.zero_point,
            "out_mult": mult, "out_shift": shift, "act_min": act_min, "act_max": act_max,
            "walk": bcast_walk(a.shape, b.shape),
        },
        params_name=pname,
        consts=consts1 + consts2,
    )


register(OpSpec(
    name="MUL",
    lower=_lower,
    check=_check,
    constraints=("int8 inputs and output, per-tensor; broadcast of any two shapes up to rank 6; "
                 "fused NONE/RELU/RELU6/RELU_N1_TO_1; constant inputs allowed"),
    macs=_macs,
))
