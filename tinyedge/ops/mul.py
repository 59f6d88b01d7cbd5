"""MUL, int8 with broadcast and fused activation -> ``te_mul_s8``.

What the oracle computes (TFLite kernels/mul.cc, generic-optimized kernel;
C side in firmware_templates/runtime/te_mul.c):

- Prepare: ``real = input1.scale * input2.scale / output.scale`` evaluated in
  float32 (the ``params.scale`` fields are floats) and only then widened to
  double for ``QuantizeMultiplier``; the fused activation range is
  ``CalculateActivationRangeQuantized``.
- Eval: ``clamp(zp_out + MBQM((x1 - zp1) * (x2 - zp2)))``, walked in one of
  three ways chosen by ``ProcessBroadcastShapes``: flat, TFLite's "fivefold"
  broadcast loops, or the generic N-D broadcast. The way matters for
  bit-exactness only through the 16-element NEON blocks of the flat and
  fivefold paths (see te_mul.c), so the walk is reproduced exactly.

The broadcast shape logic (ProcessBroadcastShapes, strides) is
tinyedge/ops/broadcast.py. Also here, shared with minmax.py and
activations.py: the per-tensor int8 / broadcast shape checks and
:func:`operand`, which names an input in C whether it is an activation
in the arena or a constant tensor re-emitted as an array.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import ConstArray, LowerCtx, Lowered, OpSpec, activation_name, register
from tinyedge.ops.common import SUPPORTED_ACTIVATIONS, binary_shape_problems, c_int_list, int8_operand, int8_tensor_problems
from tinyedge.ops.broadcast import FIVEFOLD, FLAT, GENERIC, MAX_DIMS, broadcast_plan, broadcast_shape, padded
from tinyedge.quant import activation_range, f32, quantize_multiplier

# the TE_MUL_* names of te_mul.h


# ---- helpers shared by mul, minmax, activations ------------------------------------


# ---- checks shared with the other binary / unary int8 ops -----------------------


# ---- MUL ---------------------------------------------------------------------------


def mul_real_multiplier(s1: float, s2: float, s_out: float) -> float:
    """mul.cc Prepare: ``input1->params.scale * input2->params.scale / output->params.scale``
    in float32, widened to double."""
    return f32(f32(f32(s1) * f32(s2)) / f32(s_out))


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
    plan = broadcast_plan(a.shape, b.shape)
    name1, consts1 = int8_operand(ctx, op.inputs[0], "in1")
    name2, consts2 = int8_operand(ctx, op.inputs[1], "in2")
    pname = ctx.name("params")
    walk = {FLAT: "flat", FIVEFOLD: f"fivefold y={list(plan.y)}{' swapped' if plan.swap else ''}",
            GENERIC: "generic broadcast"}[plan.mode]
    return Lowered(
        comment=(f"MUL {list(a.shape)} x {list(b.shape)} -> {list(y.shape)} ({walk}), "
                 f"real multiplier {real:.9g}, activation {act} [{act_min}, {act_max}]"),
        call=f"te_mul_s8(&{pname}, {name1}, {name2}, {ctx.ptr(op.outputs[0])});",
        params_type="te_mul_params_t",
        params={
            "in1_offset": -a.zero_point, "in2_offset": -b.zero_point, "out_offset": y.zero_point,
            "out_mult": mult, "out_shift": shift, "act_min": act_min, "act_max": act_max,
            "mode": plan.mode, "size": y.size, "swap": int(plan.swap), "y": c_int_list(plan.y),
            "out_dims": c_int_list(plan.out_dims),
            "in1_strides": c_int_list(plan.strides1), "in2_strides": c_int_list(plan.strides2),
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
