"""QUANTIZE (float32 -> int8/int16; int8 -> int8, uint8 -> int8, int8 -> uint8, int8 -> int16,
int16 -> int8, int16 -> int16) and DEQUANTIZE (int8/uint8/int16 -> float32).

uint8 appears at the edges of published int8 models: TF's converter with
``inference_input_type=tf.uint8`` / ``inference_output_type=tf.uint8`` writes a
QUANTIZE uint8 -> int8 after the input and a QUANTIZE int8 -> uint8 before the
output (equal scales, zero points 128 apart).

What TensorFlow Lite Micro computes (micro/kernels/quantize_common.cc,
dequantize_common.cc; C side and the exact float steps in
firmware_templates/runtime/te_quantize.c), the same for every element:

- float32 -> int8/int16: ``reference_ops::AffineQuantize``:
  ``clamp((int32)roundf(x / (float)scale) + zero_point)`` -- one float32
  division, rounded half away from zero, clamped to the output type.
- integer -> integer: Prepare computes ``QuantizeMultiplier(double(in_scale)
  / double(out_scale))``; Eval is ``reference_ops::Requantize``:
  ``clamp(MultiplyByQuantizedMultiplier(q - in_zp, mult, shift) + out_zp)``
  (its XOR-0x80 fast path for equal scales and zero points 128 apart gives the
  same bytes).
- int8/uint8/int16 -> float32: ``reference_ops::Dequantize``:
  ``(float)(double(scale) * (q - zero_point))``, one rounding.

Combinations TFLM refuses, refused here with its reason: uint8 -> uint8,
float32 -> uint8, uint8 <-> int16 (Eval: "Input ..., output ... not
supported"), per-channel quantization (Prepare: one scale only). TFLM's int32
variants are not generated (no tinyedge op reads or writes int32 activations).
"""

from __future__ import annotations

import numpy as np

from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import LowerCtx, Lowered, OpSpec, register
from tinyedge.quant import quantize_multiplier

F32 = np.float32
_INTS = ("int8", "uint8", "int16")
_SUFFIX = {"int8": "s8", "uint8": "u8", "int16": "s16", "float32": "f32"}
# (input dtype, output dtype) pairs TFLM's QUANTIZE runs and tinyedge generates
_QUANTIZE = {("float32", "int8"), ("float32", "int16"), ("int8", "int8"), ("uint8", "int8"),
             ("int8", "uint8"), ("int8", "int16"), ("int16", "int8"), ("int16", "int16")}


def _io(op: Operator, graph: Graph) -> tuple[Tensor, Tensor] | None:
    if len(op.inputs) != 1 or len(op.outputs) != 1 or op.inputs[0] < 0:
        return None
    return graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])


def _quant_problems(role: str, t: Tensor) -> list[str]:
    if t.quant is None:
        return [f"{role} ({t.dtype}) has no quantization parameters"]
    if t.quant.per_channel:
        return [f"{role} is quantized per channel (TFLM's QUANTIZE takes one scale per tensor)"]
    if not t.scale > 0:
        return [f"{role} scale {t.scale} is not positive"]
    return []


def _check_quantize(op: Operator, graph: Graph) -> list[str]:
    io = _io(op, graph)
    if io is None:
        return [f"{op.opcode} needs 1 input and 1 output"]
    x, y = io
    problems: list[str] = []
    if x.dtype not in ("float32", *_INTS):
        problems.append(f"input dtype {x.dtype} is not supported (float32, int8, uint8 or int16)")
    elif y.dtype not in _INTS:
        problems.append(f"output dtype {y.dtype} is not supported (int8, uint8 or int16)")
    elif (x.dtype, y.dtype) not in _QUANTIZE:
        problems.append(f"{x.dtype} -> {y.dtype} is not supported: TFLM's QUANTIZE has no such kernel "
                        f"(\"Input {x.dtype}, output {y.dtype} not supported\"; it has "
                        f"{', '.join(f'{a} -> {b}' for a, b in sorted(_QUANTIZE))})")
    if x.is_const:
        problems.append("a constant input is not supported")
    if x.size != y.size:
        problems.append(f"input has {x.size} elements, output {y.size}")
    if y.dtype in _INTS:
        problems += _quant_problems("output", y)
    if x.dtype in _INTS:
        problems += _quant_problems("input", x)
    return problems


def requantize_multiplier(in_scale: float, out_scale: float) -> tuple[int, int]:
    """quantize_common.cc Prepare: QuantizeMultiplier(double(in_scale) / double(out_scale))."""
    return quantize_multiplier(float(F32(in_scale)) / float(F32(out_scale)))


def _lower_quantize(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x = g.tensor(op.inputs[0])
    y = g.tensor(op.outputs[0])
    pname = ctx.name("params")
    src, dst = ctx.ptr(op.inputs[0]), ctx.ptr(op.outputs[0])
    if x.dtype == "float32":
        return Lowered(
            comment=(f"QUANTIZE float32 -> {y.dtype} (s={y.scale:.6g} zp={y.zero_point}), {x.size} values: "
                     "roundf(x / s) + zp, clamped (AffineQuantize)"),
            call=f"te_quantize_f32_{_SUFFIX[y.dtype]}(&{pname}, {src}, {dst});",
            params_type="te_quantize_params_t",
            params={"size": x.size, "scale": float(F32(y.scale)), "zero_point": y.zero_point},
            params_name=pname,
        )
    mult, shift = requantize_multiplier(x.scale, y.scale)
    fn = f"te_requantize_{_SUFFIX[x.dtype]}_{_SUFFIX[y.dtype]}"
    return Lowered(
        comment=(f"QUANTIZE {x.dtype} (s={x.scale:.6g} zp={x.zero_point}) -> {y.dtype} (s={y.scale:.6g} "
                 f"zp={y.zero_point}), {x.size} values, x {mult}*2^{shift}/2^31 (Requantize)"),
        call=f"{fn}(&{pname}, {src}, {dst});",
        params_type="te_requantize_params_t",
        params={"size": x.size, "in_zp": x.zero_point, "out_zp": y.zero_point,
                "mult": mult, "shift": shift},
        params_name=pname,
    )


def _check_dequantize(op: Operator, graph: Graph) -> list[str]:
    io = _io(op, graph)
    if io is None:
        return [f"{op.opcode} needs 1 input and 1 output"]
    x, y = io
    problems: list[str] = []
    if x.dtype not in _INTS:
        problems.append(f"input dtype {x.dtype} is not supported (int8, uint8 or int16)")
    else:
        problems += _quant_problems("input", x)
    if y.dtype != "float32":
        problems.append(f"output dtype {y.dtype} is not supported (float32 only)")
    if x.is_const:
        problems.append("a constant input is not supported (float weights are not generated)")
    if x.size != y.size:
        problems.append(f"input has {x.size} elements, output {y.size}")
    return problems


def _lower_dequantize(op: Operator, ctx: LowerCtx) -> Lowered:
    x = ctx.graph.tensor(op.inputs[0])
    pname = ctx.name("params")
    return Lowered(
        comment=(f"DEQUANTIZE {x.dtype} (s={x.scale:.6g} zp={x.zero_point}) -> float32, {x.size} values: "
                 "s * (q - zp), one rounding"),
        call=(f"te_dequantize_{_SUFFIX[x.dtype]}_f32(&{pname}, {ctx.ptr(op.inputs[0])}, "
              f"{ctx.ptr(op.outputs[0])});"),
        params_type="te_dequantize_params_t",
        params={"size": x.size, "scale": float(F32(x.scale)), "zero_point": x.zero_point},
        params_name=pname,
    )


register(OpSpec(
    name="QUANTIZE",
    lower=_lower_quantize,
    check=_check_quantize,
    constraints="float32 -> int8/int16; int8 -> int8/uint8/int16, uint8 -> int8, int16 -> int8/int16 "
                "(requantize); per-tensor",
))

register(OpSpec(
    name="DEQUANTIZE",
    lower=_lower_dequantize,
    check=_check_dequantize,
    constraints="int8/uint8/int16 -> float32; per-tensor",
))
