"""Data-movement ops, int8 (TILE also int16/int32/float32).

Kernels in firmware_templates/runtime/te_shape.c.

CONCATENATION, SPLIT, SPLIT_V, PAD, PADV2, STRIDED_SLICE, TRANSPOSE, TILE and
RESIZE_NEAREST_NEIGHBOR copy bytes: TensorFlow Lite Micro's kernels for them
(micro/kernels/*.cc, reference kernels) do no arithmetic on the values, so
every output byte is an input byte (or the pad value). What has to match is
*which* byte goes where; that is resolved here, on the host, from the constant
operands, and what TFLM's Prepare refuses is refused here with its reason:

- STRIDED_SLICE (strided_slice_common.cc): rank <= 4 ("input dim should not
  exceed 4"); begin/end/strides and the begin/end/shrink masks resolved like
  StridedSliceStartForAxis / StridedSliceEndForAxis
  (kernels/internal/strided_slice_logic.h; the iteration is Python's
  ``range(start, end, stride)``); the result must reproduce the output shape
  stored in the model, else the op is refused. TFLM silently ignores the
  ellipsis and new-axis masks (it zeroes them); we refuse them rather than
  compute something else than TensorFlow meant.
- TRANSPOSE (transpose_common.cc): rank <= 5, a constant int32 permutation of
  non-negative entries ("permutations array is out of bounds" otherwise).
- RESIZE_NEAREST_NEIGHBOR: TFLM's kernel is the reference one
  (kernels/internal/reference/resize_nearest_neighbor.h, GetNearestNeighbor),
  which computes source indices in float32; :func:`nearest_indices`
  reproduces that float32 arithmetic with numpy float32 scalars.
- CONCATENATION (concatenation.cc): at most 10 inputs (kMaxInputNum), rank <=
  6, and for int8 every input's scale and zero point equal to the output's
  ("no re-scaling needed for Int8 quantized kernel"), so there is never a
  requantization to reproduce; we refuse the same models.
- PAD / PADV2 (pad_common.cc): rank <= 5, constant int32 paddings (TFLM reads
  them as int32); the pad value is the output zero point, or for PADV2 the raw
  int8 of the constant_values tensor, whose quantization must equal the
  output's.
- SPLIT / SPLIT_V (split.cc, split_v.cc): a constant int32 axis (TFLM reads it
  as int32).
- TILE: TFLM has no kernel for it (tinyedge runs it anyway; such a model is
  compared with the TFLite interpreter, tile.cc): raw bytes for every element
  type, any rank (measured to rank 8), input and output types equal -- not
  their quantization (measured: a differing output scale/zero point gets the
  input's bytes unchanged). We do the same, on bytes, as a short sequence of
  strided copies planned by :func:`tile_steps`.

SQUEEZE and EXPAND_DIMS emit no code: their output shares the input's buffer
(``alias_input``), as RESHAPE does.

Shapes are reduced before they reach C: dimensions of extent 1 are dropped and
adjacent dimensions that stay contiguous are merged, so the kernels loop over
long contiguous rows (memcpy) wherever the layout allows.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tinyedge.model.ir import DTYPE_SIZES, Graph, Operator, Tensor
from tinyedge.ops.base import ConstArray, LowerCtx, Lowered, OpSpec, activation_name, register
from tinyedge.ops.common import (
    MAX_DIMS,
    INT_DTYPES,
    c_list,
    const_ints,
    int8_tensor_problems,
    normalize_axis,
    same_quant,
    shape_str,
)

# the ranks TFLM's Prepare accepts (pad_common.cc PadKernelMaxDimensionCount(), strided_slice_common.cc
# kMaxDim, transpose_common.cc "only supports 1D-5D input arrays")
TFLM_MAX_DIMS = {"PAD": 5, "PADV2": 5, "STRIDED_SLICE": 4, "TRANSPOSE": 5}
CONCAT_MAX_INPUTS = 10  # concatenation.cc kMaxInputNum
# ---------------------------------------------------------------------------- helpers


def row_major_strides(shape: Sequence[int]) -> list[int]:
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * int(shape[i + 1])
    return strides


def quant_str(t: Tensor) -> str:
    return f"s={t.scale:.6g} zp={t.zero_point}" if t.quant is not None else "no quantization"


def arity(op: Operator, n_in: int, n_out: int | None = 1) -> list[str]:
    ins_ok = len(op.inputs) >= n_in and all(i >= 0 for i in op.inputs[:n_in])
    outs_ok = n_out is None or len(op.outputs) == n_out
    if ins_ok and outs_ok and op.outputs:
        return []
    outs = "outputs" if n_out is None else f"{n_out} output{'s' if n_out != 1 else ''}"
    return [f"needs {n_in} input{'s' if n_in != 1 else ''} and {outs}, "
            f"got {len(op.inputs)} and {len(op.outputs)}"]


def merge_copy(dims: Sequence[int], in_strides: Sequence[int],
               out_strides: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """Drop extent-1 dimensions and merge a dimension into the next inner one
    when both strides stay contiguous across them."""
    items = [(int(d), int(i), int(o)) for d, i, o in zip(dims, in_strides, out_strides) if d != 1]
    if not items:
        return [1], [1], [1]
    merged = [items[0]]
    for d, i, o in items[1:]:
        pd, pi, po = merged[-1]
        if pi == i * d and po == o * d:
            merged[-1] = (pd * d, i, o)
        else:
            merged.append((d, i, o))
    return [m[0] for m in merged], [m[1] for m in merged], [m[2] for m in merged]


def copy_params(dims: Sequence[int], in_strides: Sequence[int], out_strides: Sequence[int],
                in_offset: int = 0, out_offset: int = 0) -> dict[str, object]:
    """``te_copy_params_t`` for a strided copy (merged; at most MAX_DIMS dimensions)."""
    d, i, o = merge_copy(dims, in_strides, out_strides)
    if len(d) > MAX_DIMS:
        raise ValueError(f"{len(d)} dimensions after merging (max {MAX_DIMS})")
    return {"rank": len(d), "dims": c_list(d), "in_strides": c_list(i), "out_strides": c_list(o),
            "in_offset": int(in_offset), "out_offset": int(out_offset)}


def copy_lowered(comment: str, ctx: LowerCtx, op: Operator, params: dict[str, object]) -> Lowered:
    pname = ctx.name("params")
    return Lowered(
        comment=comment,
        call=f"te_strided_copy_s8(&{pname}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});",
        params_type="te_copy_params_t",
        params=params,
        params_name=pname,
    )


def check_data_in_out(op: Operator, graph: Graph, max_rank: int) -> list[str]:
    """int8 activation in (input 0) and out (output 0), ranks within limits."""
    x = graph.tensor(op.inputs[0])
    y = graph.tensor(op.outputs[0])
    problems = int8_tensor_problems(x, "input") + int8_tensor_problems(y, "output")
    if x.is_const:
        problems.append("a constant input is not supported")
    for role, t in (("input", x), ("output", y)):
        if len(t.shape) > max_rank:
            problems.append(f"{role} rank {len(t.shape)} is not supported (max {max_rank})")
    return problems


# ---------------------------------------------------------------------------- TRANSPOSE


def transpose_perm(op: Operator, graph: Graph) -> list[int] | str:
    """The permutation, or why it is unusable (TFLM's TransposePrepare: a constant
    int32 vector of ``rank`` entries, each in [0, rank))."""
    perm = const_ints(graph, op.inputs[1])
    if perm is None or graph.tensor(op.inputs[1]).dtype != "int32":
        return "the permutation must be a constant int32 tensor"
    rank = len(graph.tensor(op.inputs[0]).shape)
    p = [int(v) for v in perm.reshape(-1)]
    if any(v < 0 or v >= rank for v in p):
        return (f"permutation {p} has entries outside [0, {rank}); TFLM refuses that "
                "(\"Transpose op permutations array is out of bounds\")")
    if sorted(p) != list(range(rank)):
        return f"permutation {p} is not a permutation of {rank} axes"
    return p


def _check_transpose(op: Operator, graph: Graph) -> list[str]:
    problems = arity(op, 2)
    if problems:
        return problems
    problems = check_data_in_out(op, graph, TFLM_MAX_DIMS["TRANSPOSE"])
    perm = transpose_perm(op, graph)
    if isinstance(perm, str):
        return problems + [perm]
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    want = [x.shape[a] for a in perm]
    if list(y.shape) != want:
        problems.append(f"output shape {list(y.shape)} is not the permuted input shape {want}")
    return problems


def _lower_transpose(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    perm = transpose_perm(op, g)
    assert not isinstance(perm, str), perm
    in_strides = row_major_strides(x.shape)
    dims = [x.shape[a] for a in perm]
    params = copy_params(dims, [in_strides[a] for a in perm], row_major_strides(dims))
    return copy_lowered(f"TRANSPOSE {shape_str(x)} perm {perm} -> {shape_str(y)}, "
                        f"{params['rank']}-D strided copy", ctx, op, params)


# ---------------------------------------------------------------------------- STRIDED_SLICE


def _slice_axis(begin: int, end: int, stride: int, size: int, begin_masked: bool,
                end_masked: bool, shrink: bool) -> tuple[int, int]:
    """(start, count) of one axis: TFLite's StridedSliceStartForAxis /
    StridedSliceEndForAxis (offset=False), then range(start, end, stride)."""
    start = begin + size if begin < 0 else begin
    start = min(max(start, 0), size) if stride > 0 else min(max(start, -1), size - 1)
    if begin_masked:
        start = 0 if stride > 0 else size - 1
    if shrink:
        stop = start + 1 if start < size else start
    else:
        stop = end + size if end < 0 else end
        stop = min(max(stop, 0), size) if stride > 0 else min(max(stop, -1), size - 1)
        if end_masked:
            stop = size if stride > 0 else -1
    return start, len(range(start, stop, stride))


def slice_plan(op: Operator, graph: Graph) -> tuple[list[int], list[int], list[int]] | str:
    """Per input axis (start, stride, count), or the reason the slice is not supported."""
    x = graph.tensor(op.inputs[0])
    rank = len(x.shape)
    vals = [const_ints(graph, i) for i in op.inputs[1:4]]
    if any(v is None for v in vals) or any(graph.tensor(i).dtype != "int32" for i in op.inputs[1:4]):
        return "begin, end and strides must be constant int32 tensors"
    begin, end, strides = ([int(a) for a in v.reshape(-1)] for v in vals if v is not None)
    opts = op.options
    for mask in ("ellipsis_mask", "new_axis_mask"):
        if int(opts.get(mask, 0)):
            return (f"{mask}={opts[mask]} is not supported (the TF converter rewrites it into "
                    f"RESHAPE + STRIDED_SLICE)")
    if bool(opts.get("offset", False)):
        return "offset=true is not supported"
    if not len(begin) == len(end) == len(strides) == rank:
        return (f"begin/end/strides have {len(begin)}/{len(end)}/{len(strides)} entries for a "
                f"rank-{rank} input (one per axis is supported)")
    if 0 in strides:
        return f"a stride of 0 is not allowed (strides {strides})"
    bm, em, sm = (int(opts.get(k, 0)) for k in ("begin_mask", "end_mask", "shrink_axis_mask"))
    starts, counts = [], []
    for a in range(rank):
        s, c = _slice_axis(begin[a], end[a], strides[a], int(x.shape[a]), bool(bm >> a & 1),
                           bool(em >> a & 1), bool(sm >> a & 1))
        starts.append(s)
        counts.append(c)
    y = graph.tensor(op.outputs[0])
    want = [c for a, c in enumerate(counts) if not sm >> a & 1]
    if list(y.shape) != want or math.prod(counts) != y.size:
        return (f"output shape {list(y.shape)} does not match the slice of {list(x.shape)} "
                f"(begin {begin}, end {end}, strides {strides}: expected {want}, "
                f"{math.prod(counts)} elements)")
    return starts, strides, counts


def _check_strided_slice(op: Operator, graph: Graph) -> list[str]:
    problems = arity(op, 4)
    if problems:
        return problems
    problems = check_data_in_out(op, graph, TFLM_MAX_DIMS["STRIDED_SLICE"])
    if problems:
        return problems
    plan = slice_plan(op, graph)
    return [plan] if isinstance(plan, str) else []


def _lower_strided_slice(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    plan = slice_plan(op, g)
    assert not isinstance(plan, str), plan
    starts, steps, counts = plan
    in_strides = row_major_strides(x.shape)
    offset = sum(s * st for s, st in zip(starts, in_strides))
    params = copy_params(counts, [st * s for st, s in zip(steps, in_strides)],
                         row_major_strides(counts), in_offset=offset)
    ranges = ", ".join(f"{s}..{s + (c - 1) * st} step {st}" for s, st, c in zip(starts, steps, counts))
    return copy_lowered(f"STRIDED_SLICE {shape_str(x)} [{ranges}] -> {shape_str(y)}, "
                        f"{params['rank']}-D strided copy", ctx, op, params)


# ---------------------------------------------------------------------------- PAD / PADV2


def _pad_value(op: Operator, graph: Graph) -> int | str:
    """The int8 pad value, or the reason it cannot be determined."""
    y = graph.tensor(op.outputs[0])
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return int(y.zero_point)
    cv = graph.tensor(op.inputs[2])
    if not cv.is_const or cv.dtype != "int8" or cv.size != 1:
        return f"constant_values must be a constant int8 scalar (got {cv.describe()})"
    if not same_quant(cv, y):
        return (f"constant_values quantization ({quant_str(cv)}) differs from the output's "
                f"({quant_str(y)}); TFLM's PADV2 refuses that")
    return int(cv.array().reshape(-1)[0])


def _pad_pairs(op: Operator, graph: Graph) -> list[tuple[int, int]] | str:
    x = graph.tensor(op.inputs[0])
    pads = const_ints(graph, op.inputs[1])
    if pads is None or graph.tensor(op.inputs[1]).dtype != "int32":
        return "paddings must be a constant int32 tensor (TFLM reads them as int32)"
    if pads.shape != (len(x.shape), 2):
        return f"paddings shape {list(pads.shape)} is not [{len(x.shape)}, 2]"
    if (pads < 0).any():
        return f"negative paddings {pads.tolist()} are not allowed"
    return [(int(a), int(b)) for a, b in pads]


def _check_pad(op: Operator, graph: Graph) -> list[str]:
    problems = arity(op, 2)
    if problems:
        return problems
    problems = check_data_in_out(op, graph, TFLM_MAX_DIMS[op.opcode])
    if problems:
        return problems
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    pairs = _pad_pairs(op, graph)
    if isinstance(pairs, str):
        return [pairs]
    want = [d + a + b for d, (a, b) in zip(x.shape, pairs)]
    if list(y.shape) != want:
        problems.append(f"output shape {list(y.shape)} is not the padded input shape {want}")
    value = _pad_value(op, graph)
    if isinstance(value, str):
        problems.append(value)
    return problems


def merge_pad(in_dims: Sequence[int], pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(in_dim, before, after) per merged dimension: an unpadded dimension folds
    into the one before it (its rows are either all padding or all copied);
    outer unpadded extent-1 dimensions are dropped."""
    merged: list[tuple[int, int, int]] = []
    for d, (a, b) in zip(in_dims, pairs):
        if merged and a == 0 and b == 0:
            pd, pa, pb = merged[-1]
            merged[-1] = (pd * d, pa * d, pb * d)
        elif d == 1 and a == 0 and b == 0:
            continue
        else:
            merged.append((int(d), a, b))
    return merged or [(1, 0, 0)]


def _lower_pad(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    pairs = _pad_pairs(op, g)
    value = _pad_value(op, g)
    assert not isinstance(pairs, str) and not isinstance(value, str)
    merged = merge_pad(x.shape, pairs)
    pname = ctx.name("params")
    source = "output zero point" if len(op.inputs) < 3 or op.inputs[2] < 0 else "constant_values"
    return Lowered(
        comment=(f"{op.opcode} {shape_str(x)} -> {shape_str(y)}, paddings {[list(p) for p in pairs]}, "
                 f"value {value} ({source}); {len(merged)}-D after merging"),
        call=f"te_pad_s8(&{pname}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});",
        params_type="te_pad_params_t",
        params={"rank": len(merged),
                "in_dims": c_list([m[0] for m in merged]),
                "out_dims": c_list([m[0] + m[1] + m[2] for m in merged]),
                "before": c_list([m[1] for m in merged]),
                "value": value},
        params_name=pname,
    )


# ---------------------------------------------------------------------------- CONCATENATION


def _check_concat(op: Operator, graph: Graph) -> list[str]:
    if not op.inputs or any(i < 0 for i in op.inputs) or len(op.outputs) != 1:
        return [f"needs at least 1 input and 1 output, got {len(op.inputs)} and {len(op.outputs)}"]
    y = graph.tensor(op.outputs[0])
    problems = int8_tensor_problems(y, "output")
    if problems:
        return problems
    rank = len(y.shape)
    axis = normalize_axis(int(op.options.get("axis", 0)), rank)
    if axis is None:
        return [f"axis {op.options.get('axis')} is out of range for rank {rank}"]
    if len(op.inputs) > CONCAT_MAX_INPUTS:
        problems.append(f"{len(op.inputs)} inputs; TFLM's CONCATENATION takes at most {CONCAT_MAX_INPUTS}")
    if rank > MAX_DIMS:
        problems.append(f"rank {rank} is not supported (max {MAX_DIMS}, as TFLM)")
    act = activation_name(op)
    if act != "NONE":
        problems.append(f"fused activation {act} is not supported (NONE only, as TFLM)")
    total = 0
    for k, i in enumerate(op.inputs):
        t = graph.tensor(i)
        problems += int8_tensor_problems(t, f"input {k}")
        if len(t.shape) != rank or any(t.shape[d] != y.shape[d] for d in range(rank) if d != axis):
            problems.append(f"input {k} shape {list(t.shape)} does not fit output {list(y.shape)} "
                            f"along axis {axis}")
            continue
        total += t.shape[axis]
        if not same_quant(t, y):
            problems.append(f"input {k} quantization ({quant_str(t)}) differs from the output's "
                            f"({quant_str(y)}): TFLM's int8 CONCATENATION requires them equal")
    if not problems and total != y.shape[axis]:
        problems.append(f"inputs add up to {total} along axis {axis}, output has {y.shape[axis]}")
    return problems


def _lower_concat(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    y = g.tensor(op.outputs[0])
    axis = normalize_axis(int(op.options.get("axis", 0)), len(y.shape))
    assert axis is not None
    inner = math.prod(y.shape[axis + 1:])
    chunks = [g.tensor(i).shape[axis] * inner for i in op.inputs]
    consts: list[ConstArray] = []
    ptrs = []
    for k, i in enumerate(op.inputs):
        t = g.tensor(i)
        if t.is_const:
            name = ctx.name(f"in{k}")
            consts.append(ConstArray(name, "int8_t", t.array().reshape(-1),
                                     f"constant input {k} of the concatenation: {t.describe()}"))
            ptrs.append(name)
        else:
            ptrs.append(ctx.ptr(i))
    chunks_name = ctx.name("chunks")
    consts.append(ConstArray(chunks_name, "int32_t", np.array(chunks, dtype=np.int32),
                             "bytes each input contributes to one output row"))
    pname = ctx.name("params")
    ins = ", ".join(ptrs)
    return Lowered(
        comment=(f"CONCATENATION of {len(op.inputs)} along axis {axis} -> {shape_str(y)}: "
                 f"{math.prod(y.shape[:axis])} rows of {sum(chunks)} bytes"),
        call=(f"{{ const int8_t *const ins[{len(ptrs)}] = {{{ins}}}; "
              f"te_concat_s8(&{pname}, {chunks_name}, ins, {ctx.ptr(op.outputs[0])}); }}"),
        params_type="te_concat_params_t",
        params={"n_inputs": len(ptrs), "outer": math.prod(y.shape[:axis]), "out_row": sum(chunks)},
        params_name=pname,
        consts=consts,
    )


# ---------------------------------------------------------------------------- SPLIT / SPLIT_V


def _split_operands(op: Operator) -> tuple[int, int]:
    """(data input index, axis input index) in op.inputs."""
    return (1, 0) if op.opcode == "SPLIT" else (0, 2)


def _split_axis(op: Operator, graph: Graph) -> int | str:
    data, ax = _split_operands(op)
    x = graph.tensor(op.inputs[data])
    a = const_ints(graph, op.inputs[ax])
    if a is None or a.size != 1 or graph.tensor(op.inputs[ax]).dtype != "int32":
        return "axis must be a constant int32 scalar (TFLM reads it as int32)"
    axis = normalize_axis(int(a.reshape(-1)[0]), len(x.shape))
    if axis is None:
        return f"axis {int(a.reshape(-1)[0])} is out of range for rank {len(x.shape)}"
    return axis


def _check_split(op: Operator, graph: Graph) -> list[str]:
    n_in = 2 if op.opcode == "SPLIT" else 3
    if len(op.inputs) < n_in or any(i < 0 for i in op.inputs[:n_in]) or not op.outputs:
        return [f"needs {n_in} inputs and at least 1 output"]
    data, _ = _split_operands(op)
    x = graph.tensor(op.inputs[data])
    problems = int8_tensor_problems(x, "input")
    if x.is_const:
        problems.append("a constant input is not supported")
    for k, o in enumerate(op.outputs):
        problems += int8_tensor_problems(graph.tensor(o), f"output {k}")
    if problems:
        return problems
    axis = _split_axis(op, graph)
    if isinstance(axis, str):
        return [axis]
    n = int(op.options.get("num_splits", len(op.outputs)))
    if n != len(op.outputs):
        problems.append(f"num_splits={n} but the op has {len(op.outputs)} outputs")
    sizes = []
    for k, o in enumerate(op.outputs):
        t = graph.tensor(o)
        if len(t.shape) != len(x.shape) or any(t.shape[d] != x.shape[d]
                                                for d in range(len(x.shape)) if d != axis):
            problems.append(f"output {k} shape {list(t.shape)} does not fit input {list(x.shape)} "
                            f"split along axis {axis}")
        else:
            sizes.append(t.shape[axis])
    if not problems and sum(sizes) != x.shape[axis]:
        problems.append(f"outputs add up to {sum(sizes)} along axis {axis}, input has {x.shape[axis]}")
    if not problems and op.opcode == "SPLIT" and len(set(sizes)) != 1:
        problems.append(f"SPLIT makes equal parts, but the outputs have sizes {sizes} along axis {axis}")
    if not problems and op.opcode == "SPLIT_V":
        given = const_ints(graph, op.inputs[1])
        listed = [] if given is None else [int(v) for v in given.reshape(-1)]
        if given is None:
            problems.append("size_splits must be a constant int32/int64 tensor")
        elif (len(listed) != len(sizes) or listed.count(-1) > 1
              or any(v not in (s, -1) for v, s in zip(listed, sizes))):
            problems.append(f"size_splits {listed} do not match the output sizes {sizes}")
    return problems


def _lower_split(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    data, _ = _split_operands(op)
    x = g.tensor(op.inputs[data])
    axis = _split_axis(op, g)
    assert isinstance(axis, int)
    inner = math.prod(x.shape[axis + 1:])
    chunks = [g.tensor(o).shape[axis] * inner for o in op.outputs]
    chunks_name = ctx.name("chunks")
    pname = ctx.name("params")
    outs = ", ".join(ctx.ptr(o) for o in op.outputs)
    return Lowered(
        comment=(f"{op.opcode} {shape_str(x)} along axis {axis} into "
                 f"{[g.tensor(o).shape[axis] for o in op.outputs]}"),
        call=(f"{{ int8_t *const outs[{len(op.outputs)}] = {{{outs}}}; "
              f"te_split_s8(&{pname}, {chunks_name}, {ctx.ptr(op.inputs[data])}, outs); }}"),
        params_type="te_split_params_t",
        params={"n_outputs": len(op.outputs), "outer": math.prod(x.shape[:axis]), "in_row": sum(chunks)},
        params_name=pname,
        consts=[ConstArray(chunks_name, "int32_t", np.array(chunks, dtype=np.int32),
                           "bytes of one input row that go to each output")],
    )


# ---------------------------------------------------------------------------- TILE

TILE_DTYPES = ("int8", "int16", "int32", "float32")


def tile_multiples(op: Operator, graph: Graph) -> list[int] | str:
    """The constant multiples, one per input dimension, or why they are unusable."""
    m = const_ints(graph, op.inputs[1])
    if m is None:
        return "multiples must be a constant int32/int64 tensor (a computed one is not supported)"
    rank = len(graph.tensor(op.inputs[0]).shape)
    values = [int(v) for v in m.reshape(-1)]
    if len(values) != rank:
        return f"{len(values)} multiples for an input of rank {rank}"
    if any(v < 1 for v in values):
        return f"multiples {values} must all be >= 1"
    return values


def tile_steps(shape: Sequence[int], multiples: Sequence[int], elem_size: int) -> list[dict[str, object]]:
    """The strided copies (``te_copy_params_t`` fields, merged) that tile a
    row-major tensor, on bytes.

    The element size is an innermost dimension, so every step moves bytes.
    Step 0 copies the input to the first tile of every dimension. Then, for
    each dimension d with multiples > 1, innermost first: for every outer
    position (the first tile of each outer dimension), the dimension's first
    tile -- contiguous, the dimensions inside it being complete already -- is
    replicated by doubling runs (copy [0, n) to [n, 2n), ...). Each step has
    at most d + 1 <= rank dimensions before merging, and reads only bytes an
    earlier step wrote, never the ones it writes."""
    in_dims = [int(d) for d in shape] + [int(elem_size)]
    mult = [int(m) for m in multiples] + [1]
    out_dims = [d * m for d, m in zip(in_dims, mult)]
    out_strides = row_major_strides(out_dims)
    steps = [copy_params(in_dims, row_major_strides(in_dims), out_strides)]
    for d in range(len(shape) - 1, -1, -1):
        if mult[d] == 1:
            continue
        tile = in_dims[d] * out_strides[d]  # bytes of one tile along d
        total, have = tile * mult[d], tile
        while have < total:
            n = min(have, total - have)
            strides = out_strides[:d] + [1]
            steps.append(copy_params(in_dims[:d] + [n], strides, strides, 0, have))
            have += n
    return steps


def copy_params_c(params: dict[str, object]) -> str:
    """A ``te_copy_params_t`` initializer (designated fields)."""
    return "{" + ", ".join(f".{k} = {v}" for k, v in params.items()) + "}"


def _check_tile(op: Operator, graph: Graph) -> list[str]:
    problems = arity(op, 2)
    if problems:
        return problems
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.dtype != y.dtype:
        problems.append(f"input dtype {x.dtype} differs from output dtype {y.dtype} (TFLite requires equal)")
    elif x.dtype not in TILE_DTYPES:
        problems.append(f"dtype {x.dtype} is not supported ({'/'.join(TILE_DTYPES)})")
    if x.is_const:
        problems.append("a constant input is not supported")
    if x.size == 0 or y.size == 0:
        problems.append(f"empty tensor (input {list(x.shape)}, output {list(y.shape)})")
    mult = tile_multiples(op, graph)
    if isinstance(mult, str):
        return problems + [mult]
    want = [d * m for d, m in zip(x.shape, mult)]
    if list(y.shape) != want:
        problems.append(f"output shape {list(y.shape)} is not input {list(x.shape)} "
                        f"x multiples {mult} = {want}")
    if not problems:
        try:
            tile_steps(x.shape, mult, DTYPE_SIZES[x.dtype])
        except ValueError as e:  # only possible above rank 6
            problems.append(f"rank {len(x.shape)} not supported: a copy step has {e}")
    return problems


def _lower_tile(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    mult = tile_multiples(op, g)
    assert not isinstance(mult, str), mult
    steps = tile_steps(x.shape, mult, DTYPE_SIZES[x.dtype])
    sname, pname = ctx.name("steps"), ctx.name("params")
    body = ",\n    ".join(copy_params_c(s) for s in steps)
    cast = "" if x.dtype == "int8" else "(int8_t *)"
    return Lowered(
        comment=(f"TILE {x.dtype} {shape_str(x)} x {mult} -> {shape_str(y)}: {len(steps)} strided "
                 f"byte copies ({x.nbytes} B in, {y.nbytes - x.nbytes} B replicated)"),
        call=(f"te_tile_s8(&{pname}, (const int8_t *){ctx.ptr(op.inputs[0])}, "
              f"{cast}{ctx.ptr(op.outputs[0])});"),
        params_type="te_tile_params_t",
        params={"n_steps": len(steps), "steps": sname},
        params_name=pname,
        globals=(f"/* the copies of the tile, in order: input -> first tiles, then doubling runs */\n"
                 f"static const te_copy_params_t {sname}[{len(steps)}] = {{\n    {body}\n}};"),
    )


# ---------------------------------------------------------------------------- RESIZE_NEAREST_NEIGHBOR


def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> list[int]:
    """Source index of every output index: TFLM's (reference) GetNearestNeighbor,
    in float32 like TFLM (int -> float conversions, one float32 rounding
    per operation; std::round is half away from zero, np.floor is floor)."""
    f = np.float32
    if align_corners and out_size > 1:
        scale = f(f(in_size - 1) / f(out_size - 1))
    else:
        scale = f(f(in_size) / f(out_size))
    offset = f(0.5) if half_pixel_centers else f(0.0)
    out = []
    for i in range(out_size):
        v = f(f(f(i) + offset) * scale)
        if align_corners:
            idx = int(math.copysign(math.floor(abs(float(v)) + 0.5), float(v)))
        else:
            idx = int(math.floor(float(v)))
        idx = min(idx, in_size - 1)
        if half_pixel_centers:
            idx = max(0, idx)
        out.append(idx)
    return out


def _check_resize(op: Operator, graph: Graph) -> list[str]:
    problems = arity(op, 2)
    if problems:
        return problems
    problems = check_data_in_out(op, graph, 4)
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if len(x.shape) != 4:
        return problems + [f"input must be 4-D NHWC, got shape {list(x.shape)}"]
    size = const_ints(graph, op.inputs[1])
    if size is None or graph.tensor(op.inputs[1]).dtype != "int32" or size.size != 2:
        return problems + ["size must be a constant int32 tensor of 2 values"]
    h, w = (int(v) for v in size.reshape(-1))
    want = [x.shape[0], h, w, x.shape[3]]
    if list(y.shape) != want:
        problems.append(f"output shape {list(y.shape)} is not {want}")
    return problems


def _lower_resize(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    n, ih, iw, c = x.shape
    _, oh, ow, _ = y.shape
    ac = bool(op.options.get("align_corners", False))
    hp = bool(op.options.get("half_pixel_centers", False))
    rows = [i * iw * c for i in nearest_indices(ih, oh, ac, hp)]
    cols = [i * c for i in nearest_indices(iw, ow, ac, hp)]
    rname, cname, pname = ctx.name("rows"), ctx.name("cols"), ctx.name("params")
    return Lowered(
        comment=(f"RESIZE_NEAREST_NEIGHBOR {shape_str(x)} -> {shape_str(y)}, "
                 f"align_corners={ac} half_pixel_centers={hp}"),
        call=(f"te_resize_nearest_s8(&{pname}, {rname}, {cname}, "
              f"{ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"),
        params_type="te_resize_params_t",
        params={"batches": n, "in_h": ih, "in_w": iw, "out_h": oh, "out_w": ow, "channels": c},
        params_name=pname,
        consts=[ConstArray(rname, "int32_t", np.array(rows, dtype=np.int32),
                           "source row of each output row, as an element offset (GetNearestNeighbor)"),
                ConstArray(cname, "int32_t", np.array(cols, dtype=np.int32),
                           "source column of each output column, as an element offset")],
    )


# ---------------------------------------------------------------------------- SQUEEZE / EXPAND_DIMS


EXPAND_DIMS_DTYPES = ("int8", "int16", "float32")


def _check_alias(op: Operator, graph: Graph) -> list[str]:
    if not op.inputs or op.inputs[0] < 0 or len(op.outputs) != 1:
        return ["needs a data input and 1 output"]
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    problems = []
    if x.dtype != y.dtype:
        problems.append(f"input dtype {x.dtype} differs from output dtype {y.dtype}")
    if x.size != y.size:
        problems.append(f"input has {x.size} elements, output {y.size}")
    if x.is_const:
        problems.append("a constant input is not supported")
    if not same_quant(x, y):
        problems.append(f"output quantization ({quant_str(y)}) differs from the input's ({quant_str(x)}); "
                        f"sharing the buffer would change the values' meaning")
    if op.opcode == "EXPAND_DIMS":  # expand_dims.cc: Eval copies these types only, the axis is read as int32
        if x.dtype not in EXPAND_DIMS_DTYPES:
            problems.append(f"dtype {x.dtype} is not supported: TFLM's EXPAND_DIMS copies "
                            f"{'/'.join(EXPAND_DIMS_DTYPES)} only")
        if len(op.inputs) < 2 or op.inputs[1] < 0 or graph.tensor(op.inputs[1]).dtype != "int32":
            problems.append("the axis must be an int32 tensor (TFLM's EXPAND_DIMS refuses other types)")
    return problems


def _lower_alias(op: Operator, ctx: LowerCtx) -> Lowered:
    x, y = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.outputs[0])
    return Lowered(comment=f"{op.opcode} {shape_str(x)} -> {shape_str(y)}: no code, the output "
                           f"shares the input's buffer", call="")


# ---------------------------------------------------------------------------- registry

register(OpSpec(
    name="CONCATENATION", lower=_lower_concat, check=_check_concat,
    constraints="int8, rank 1-6, at most 10 inputs, any axis (negative too); inputs quantized like "
                "the output (as TFLM requires); constant inputs allowed; fused NONE only",
))
register(OpSpec(
    name="SPLIT", lower=_lower_split, check=_check_split,
    constraints="int8, any rank; constant int32 axis (negative too)",
))
register(OpSpec(
    name="SPLIT_V", lower=_lower_split, check=_check_split,
    constraints="int8, any rank; constant int32 axis and size_splits (one -1 allowed)",
))
register(OpSpec(
    name="PAD", lower=_lower_pad, check=_check_pad,
    constraints="int8, rank 1-5; constant non-negative int32 paddings; pad value = output zero point",
))
register(OpSpec(
    name="PADV2", lower=_lower_pad, check=_check_pad,
    constraints="int8, rank 1-5; constant non-negative int32 paddings; constant int8 pad value "
                "quantized like the output",
))
register(OpSpec(
    name="STRIDED_SLICE", lower=_lower_strided_slice, check=_check_strided_slice,
    constraints="int8, rank 1-4; constant int32 begin/end/strides, one per axis, any sign; "
                "begin/end/shrink_axis masks; no ellipsis/new_axis mask, no offset",
))
register(OpSpec(
    name="TRANSPOSE", lower=_lower_transpose, check=_check_transpose,
    constraints="int8, rank 1-5; constant int32 permutation",
))
register(OpSpec(
    name="TILE", lower=_lower_tile, check=_check_tile,
    constraints="int8/int16/int32/float32 (raw bytes, as TFLite: quantization not changed; TFLM has no "
                "TILE, so a model with it is compared with the TFLite interpreter), rank 1-6 "
                "(higher when its copies merge to 6 dimensions); constant int32/int64 multiples >= 1",
))
register(OpSpec(
    name="RESIZE_NEAREST_NEIGHBOR", lower=_lower_resize, check=_check_resize,
    constraints="int8 NHWC; constant size; align_corners and half_pixel_centers",
))
register(OpSpec(
    name="SQUEEZE", lower=_lower_alias, check=_check_alias,
    constraints="any dtype, output quantized like the input; no code (output aliases the input)",
    alias_input=True,
))
register(OpSpec(
    name="EXPAND_DIMS", lower=_lower_alias, check=_check_alias,
    constraints="int8/int16/float32, int32 axis, output quantized like the input; no code (output aliases "
                "the input)",
    alias_input=True,
))
