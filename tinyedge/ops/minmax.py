"""MAXIMUM and MINIMUM, int8 with broadcast -> ``te_maximum_s8`` / ``te_minimum_s8``.

TensorFlow Lite Micro (micro/kernels/maximum_minimum.cc,
reference_ops::MaximumMinimumBroadcastSlow) compares the raw int8 values and
copies the larger / smaller one: no requantization, the quantization of the
inputs and the output is never read. The converter gives all three the same
scale and zero point, which is what makes that correct; a model whose tensors
disagree is still computed exactly as TFLM does (raw compare).
"""

from __future__ import annotations

from tinyedge.model.ir import Graph, Operator
from tinyedge.ops.base import LowerCtx, Lowered, OpSpec, register
from tinyedge.ops.broadcast import MAX_DIMS
from tinyedge.ops.common import bcast_walk, binary_shape_problems, int8_operand, int8_tensor_problems


def _check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) != 2 or len(op.outputs) != 1 or min(op.inputs) < 0:
        return [f"{op.opcode} needs 2 inputs and 1 output"]
    a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    problems = (int8_tensor_problems(a, "input 1") + int8_tensor_problems(b, "input 2")
                + int8_tensor_problems(y, "output"))
    if problems:
        return problems
    return binary_shape_problems(op.opcode, a, b, y, MAX_DIMS)


def _lower(op: Operator, ctx: LowerCtx, kernel: str) -> Lowered:
    g = ctx.graph
    a, b = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    y = g.tensor(op.outputs[0])
    name1, consts1 = int8_operand(ctx, op.inputs[0], "in1")
    name2, consts2 = int8_operand(ctx, op.inputs[1], "in2")
    pname = ctx.name("params")
    walk = "flat" if list(a.shape) == list(b.shape) else "broadcast"
    return Lowered(
        comment=f"{op.opcode} {list(a.shape)}, {list(b.shape)} -> {list(y.shape)} ({walk}), raw int8 compare",
        call=f"{kernel}(&{pname}, {name1}, {name2}, {ctx.ptr(op.outputs[0])});",
        params_type="te_minmax_params_t",
        params={"walk": bcast_walk(a.shape, b.shape)},
        params_name=pname,
        consts=consts1 + consts2,
    )


_CONSTRAINTS = ("int8 inputs and output, per-tensor; broadcast up to rank 6; raw compare "
                "(inputs and output share one quantization, as the converter makes them)")

register(OpSpec(name="MAXIMUM", lower=lambda op, ctx: _lower(op, ctx, "te_maximum_s8"), check=_check,
                constraints=_CONSTRAINTS))
register(OpSpec(name="MINIMUM", lower=lambda op, ctx: _lower(op, ctx, "te_minimum_s8"), check=_check,
                constraints=_CONSTRAINTS))
