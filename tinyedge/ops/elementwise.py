"""Elementwise binary ops with broadcast: ADD -> ``te_add_s8`` / ``te_add_s16``, SUB ->
``te_sub_s8`` / ``te_sub_s16`` (int8 or int16, all three tensors the same type).

What TensorFlow Lite Micro computes (micro/kernels/add.cc + add_common.cc,
sub.cc + sub_common.cc; C side in firmware_templates/runtime/te_elementwise.c):

- Prepare, in double: ``twice_max = 2 * max(s1, s2)``, input multipliers
  ``s1 / twice_max`` and ``s2 / twice_max``, output multiplier
  ``twice_max / (2^20 * s_out)``, each through
  ``QuantizeMultiplierSmallerThanOneExp``; ``left_shift = 20`` for int8, 15
  for int16 (then ``2^15`` replaces ``2^20`` above); the fused activation
  range from the output quantization
  (``CalculateActivationRangeQuantized``). SUB uses the same numbers: the TFLM
  source tree reads as if sub_common.cc derived them in float32, but the pinned
  wheel computes them in double (measured: tests/test_ops_sub.py has scale
  configurations where the two derivations give different outputs, and the
  wheel follows the double one).
- Eval: every element through one recipe, whatever the broadcast
  (reference_integer_ops::AddFunc via ElementWise / BroadcastBinaryFunction6DSlow
  for int8, reference_ops::AddElementwise / BroadcastAdd6DSlow for int16;
  reference_ops::SubElementwise / BroadcastQuantSubSlow for SUB): no vector
  blocks, no position-dependent rounding. So the walk order is free: the
  lowering passes one strided walk of the output with adjacent dimensions
  merged (:func:`tinyedge.ops.common.bcast_walk`, runtime te_broadcast.h),
  which is a single row when the shapes are equal.
- ``QuantizeMultiplierSmallerThanOneExp`` aborts the interpreter
  (``TFLITE_CHECK_LT(double_multiplier, 1.)``) when the output multiplier is
  >= 1, i.e. when the output scale is below ``2 * max(s1, s2) / 2^20``
  (``2^15`` for int16): TFLM gives no answer there, and ``check`` refuses the
  op with that reason. TFLM puts no condition on the zero points, nor does
  tinyedge (measured for int16 too).
"""

from __future__ import annotations

import numpy as np

from tinyedge import kernels as kernel_sets
from tinyedge import quant as quant_math
from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import ConstArray, LowerCtx, Lowered, OpSpec, activation_name, register
from tinyedge.ops import layout
from tinyedge.ops.broadcast import MAX_DIMS, broadcast_shape
from tinyedge.ops.common import bcast_walk, shape_str
from tinyedge.quant import activation_range, quantize_multiplier

SUPPORTED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
LEFT_SHIFT = {"int8": 20, "int16": 15}  # add_common.cc / sub_common.cc
RANGE = {"int8": (-128, 127), "int16": (-32768, 32767)}
SUFFIX = {"int8": "s8", "int16": "s16"}


def add_multipliers(s1: float, s2: float, s_out: float, opcode: str = "ADD",
                    dtype: str = "int8") -> dict[str, int]:
    """TFLM's CalculateOpDataAdd / CalculateOpDataSub: the three multipliers and shifts,
    computed in double from the float32 scales. Raises ValueError where
    QuantizeMultiplierSmallerThanOneExp would abort TFLM (a multiplier not in (0, 1))."""
    f1, f2, fo = (float(np.float32(s)) for s in (s1, s2, s_out))
    if not (f1 > 0 and f2 > 0 and fo > 0):
        raise ValueError(f"{opcode}: every scale must be positive (got {f1:.3g}, {f2:.3g}, {fo:.3g}); "
                         "TFLM's QuantizeMultiplierSmallerThanOneExp aborts otherwise")
    left_shift = LEFT_SHIFT[dtype]
    twice_max = 2.0 * max(f1, f2)
    real_out = twice_max / (float(1 << left_shift) * fo)
    if real_out >= 1.0:
        raise ValueError(f"{opcode} output multiplier >= 1: output scale {fo:.3g} is below 2 * max input "
                         f"scale / 2^{left_shift} = {twice_max / (1 << left_shift):.3g}; TFLM aborts there "
                         "(QuantizeMultiplierSmallerThanOneExp: TFLITE_CHECK_LT(multiplier, 1))")
    m1, sh1 = quantize_multiplier(f1 / twice_max)
    m2, sh2 = quantize_multiplier(f2 / twice_max)
    mo, sho = quantize_multiplier(real_out)
    if sho > 0:  # real_out rounded up to 1.0 in Q31: TFLITE_CHECK_LE(shift, 0) aborts
        raise ValueError(f"{opcode} output multiplier rounds to 1 (output scale {fo:.3g}); TFLM aborts there "
                         "(QuantizeMultiplierSmallerThanOneExp: TFLITE_CHECK_LE(shift, 0))")
    return {"in1_mult": m1, "in1_shift": sh1, "in2_mult": m2, "in2_shift": sh2,
            "out_mult": mo, "out_shift": sho}


def _check_binary(op: Operator, graph: Graph) -> list[str]:
    """ADD / SUB: int8 or int16 per-tensor (all the same type), broadcastable shapes up to
    6-D, a supported activation, multipliers TFLM's Prepare accepts."""
    problems: list[str] = []
    if len(op.inputs) != 2 or len(op.outputs) != 1 or min(op.inputs) < 0:
        return [f"{op.opcode} needs 2 inputs and 1 output"]
    a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    for role, t in (("input 1", a), ("input 2", b), ("output", y)):
        if t.dtype not in LEFT_SHIFT:
            problems.append(f"{role} dtype {t.dtype} is not supported (int8 or int16)")
        elif t.dtype != y.dtype:
            problems.append(f"{role} dtype {t.dtype} differs from the output's {y.dtype} (TFLM takes one type)")
        elif t.quant is None:
            problems.append(f"{role} is not quantized")
        elif t.quant.per_channel:
            problems.append(f"{role} is quantized per channel (per-tensor only)")
        if len(t.shape) > MAX_DIMS:
            problems.append(f"{role} has rank {len(t.shape)} (at most {MAX_DIMS}, TFLM's RuntimeShape limit)")
    act = activation_name(op)
    if act not in SUPPORTED_ACTIVATIONS:
        problems.append(f"fused activation {act} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1)")
    if problems:
        return problems
    out = broadcast_shape(a.shape, b.shape)
    if out is None:
        problems.append(f"input shapes {list(a.shape)} and {list(b.shape)} do not broadcast")
    elif int(np.prod(out, dtype=np.int64)) != y.size:
        problems.append(f"output shape {list(y.shape)} is not the broadcast shape {list(out)}")
    try:
        add_multipliers(a.scale, b.scale, y.scale, op.opcode, y.dtype)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


def _operand(ctx: LowerCtx, t: Tensor, suffix: str, consts: list[ConstArray]) -> str:
    """The C expression for an input: its arena pointer, or a constant array re-emitted here."""
    if not t.is_const:
        return ctx.ptr(t.index)
    name = ctx.name(suffix)
    ctype = f"{t.dtype}_t"
    consts.append(ConstArray(name=name, ctype=ctype, values=t.array().astype(t.dtype).reshape(-1),
                             comment=f"constant operand {t.name} ({t.describe()})"))
    return name


def _quant_params(op: Operator, g: Graph) -> tuple[dict[str, object], str]:
    """The quantization fields of the parameter block (CalculateOpDataAdd / Sub) and a
    description of the activation."""
    a, b = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    y = g.tensor(op.outputs[0])
    act = activation_name(op)
    act_min, act_max = activation_range(act, y.scale, y.zero_point, *RANGE[y.dtype])
    params: dict[str, object] = {
        "in1_offset": -a.zero_point, "in2_offset": -b.zero_point, "out_offset": y.zero_point,
        "left_shift": LEFT_SHIFT[y.dtype],
        **add_multipliers(a.scale, b.scale, y.scale, op.opcode, y.dtype),
        "act_min": act_min, "act_max": act_max,
    }
    return params, f"activation {act} [{act_min}, {act_max}]"


def _rescaled_table(zero_point: int, left_shift: int, mult: int, shift: int) -> list[int]:
    """TFLM's rescaled input for every int8 value q (q = -128..127): MultiplyByQuantizedMultiplier
    SmallerThanOneExp((q - zero_point) << left_shift, mult, shift)."""
    return [quant_math.mul_by_quantized_multiplier((q - zero_point) << left_shift, mult, shift)
            for q in range(-128, 128)]


def _lower_binary_fast(op: Operator, ctx: LowerCtx, sign: str) -> Lowered | None:
    """int8 ADD / SUB as te_add_fast_s8 (te_add_fast.h): two tables of rescaled inputs and one
    requantization record, or None when the record cannot reproduce TFLM's output."""
    g = ctx.graph
    a, b = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    y = g.tensor(op.outputs[0])
    fields, act = _quant_params(op, g)
    q = {k: int(v) for k, v in fields.items() if isinstance(v, (int, np.integer))}
    t1 = _rescaled_table(a.zero_point, LEFT_SHIFT["int8"], q["in1_mult"], q["in1_shift"])
    t2 = [(1 if sign == "+" else -1) * v for v in
          _rescaled_table(b.zero_point, LEFT_SHIFT["int8"], q["in2_mult"], q["in2_shift"])]
    got = layout.channel_record(min(t1) + min(t2), max(t1) + max(t2), 0, q["out_mult"], q["out_shift"],
                                y.zero_point, q["act_min"], q["act_max"])
    if got is None:
        return None
    record, constant = got
    if constant is not None:  # the sum is then the record's bias 4v whatever the inputs
        t1, t2, record[0] = [record[0]] * 256, [0] * 256, 0
    consts: list[ConstArray] = []
    p1 = _operand(ctx, a, "input1", consts)
    p2 = _operand(ctx, b, "input2", consts)
    n1, n2 = ctx.name("table1"), ctx.name("table2")
    consts += [
        ConstArray(n1, "int32_t", np.array(t1, np.int64),
                   f"input 1 rescaled as TFLM does, for q = -128..127: ((q - {a.zero_point}) << 20) * "
                   f"{q['in1_mult']} * 2^{q['in1_shift']} / 2^31"),
        ConstArray(n2, "int32_t", np.array(t2, np.int64),
                   f"input 2 rescaled likewise{', negated (SUB)' if sign == '-' else ''}"),
    ]
    pname = ctx.name("params")
    how = "same shapes" if a.shape == b.shape else "broadcast"
    return Lowered(
        comment=f"{op.opcode} int8 {shape_str(a)} {sign} {shape_str(b)} -> {shape_str(y)} ({how}), {act} "
                "(te_add_fast_s8)",
        call=f"te_add_fast_s8(&{pname}, {p1}, {p2}, {ctx.ptr(op.outputs[0])});",
        params_type="te_add_fast_params_t",
        params={"table1": n1, "table2": n2, "output_offset": y.zero_point, "act_min": q["act_min"],
                "act_max": q["act_max"], "out": "{" + ", ".join(str(v) for v in record) + "}",
                "walk": bcast_walk(a.shape, b.shape)},
        params_name=pname,
        consts=consts,
        inplace=_inplace_inputs(op, g),
    )


def _inplace_inputs(op: Operator, g: Graph) -> tuple[int, ...]:
    """The inputs the output may overwrite: those of the output's size and type, i.e. not
    broadcast (the kernels read both inputs' elements for output element i before writing
    it, and such an input's element i sits where output element i goes)."""
    y = g.tensor(op.outputs[0])
    return tuple(k for k in (0, 1)
                 if g.tensor(op.inputs[k]).nbytes == y.nbytes and g.tensor(op.inputs[k]).dtype == y.dtype)


def _lower_binary(op: Operator, ctx: LowerCtx, kernel: str, sign: str) -> Lowered:
    g = ctx.graph
    if g.tensor(op.outputs[0]).dtype == "int8" and kernel_sets.searches(ctx.kernels, "arm_dsp"):
        fast = _lower_binary_fast(op, ctx, sign)
        if fast is not None:
            return fast
    a, b = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    y = g.tensor(op.outputs[0])
    fn = f"{kernel}_{SUFFIX[y.dtype]}"
    quant, act = _quant_params(op, g)
    how = "same shapes" if a.shape == b.shape else "broadcast"
    consts: list[ConstArray] = []
    p1 = _operand(ctx, a, "input1", consts)
    p2 = _operand(ctx, b, "input2", consts)
    pname = ctx.name("params")
    return Lowered(
        comment=f"{op.opcode} {y.dtype} {shape_str(a)} {sign} {shape_str(b)} -> {shape_str(y)} ({how}), {act}",
        call=f"{fn}(&{pname}, {p1}, {p2}, {ctx.ptr(op.outputs[0])});",
        params_type=f"{kernel}_params_t",
        params={**quant, "walk": bcast_walk(a.shape, b.shape)},
        params_name=pname,
        consts=consts,
        inplace=_inplace_inputs(op, g),
    )


def _lower_add(op: Operator, ctx: LowerCtx) -> Lowered:
    return _lower_binary(op, ctx, "te_add", "+")


def _lower_sub(op: Operator, ctx: LowerCtx) -> Lowered:
    return _lower_binary(op, ctx, "te_sub", "-")


_CONSTRAINTS = ("int8 or int16 (one type for all three tensors), per-tensor; broadcast up to 6-D; "
                "fused NONE/RELU/RELU6/RELU_N1_TO_1; output multiplier < 1 (output scale >= 2*max input "
                "scale / 2^20, 2^15 for int16, else TFLM aborts)")

register(OpSpec(name="ADD", lower=_lower_add, check=_check_binary, constraints=_CONSTRAINTS))
register(OpSpec(name="SUB", lower=_lower_sub, check=_check_binary, constraints=_CONSTRAINTS))
