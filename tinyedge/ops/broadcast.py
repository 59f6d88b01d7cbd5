"""Broadcast shape logic of the binary int8 ops (ADD, SUB, MUL, MAXIMUM, MINIMUM, PRELU).

Pure host-side shape arithmetic, no registrations.

What TensorFlow Lite Micro needs (its int8 binary kernels compute every element
with the same recipe, so only *which* input elements pair up matters, not the
order or any blocking):

- :func:`broadcast_shape`: the output shape, as TFLite's
  ``CalculateShapeForBroadcast`` (kernels/kernel_util.cc) and NumPy: the
  shapes are right-aligned, and each pair of extents must be equal or contain
  a 1 (the other one wins, also when it is 0).
- :func:`padded` / :func:`broadcast_strides`: ``RuntimeShape::ExtendedShape``
  (left-padding with 1) and the element strides of an input walked along the
  output, 0 where the input is broadcast.
- :func:`generic_plan`: the walk the kernels run -- the output in order, with
  extent-1 dimensions dropped and adjacent dimensions merged where both inputs
  stay contiguous (or stay broadcast), as TFLM's ``BroadcastBinaryOpSimple``
  (kernels/internal/reference/broadcast_loop.h) fuses its loops; at most
  :data:`MAX_DIMS` loops, the innermost one a row.

TFLM also calls ``ProcessBroadcastShapes`` (kernels/internal/reference/
process_broadcast_shapes.h), but only to learn *whether* the shapes differ; the
x86 TFLite interpreter's five-fold loop nest, whose vector blocks made the walk
matter, has no counterpart in TFLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

MAX_DIMS = 6  # the kernels' loop depth (te_broadcast.h TE_BCAST_DIMS)


def padded(shape: Sequence[int], rank: int = MAX_DIMS) -> list[int]:
    """``shape`` left-padded with 1 to ``rank`` dimensions (RuntimeShape::ExtendedShape)."""
    return [1] * (rank - len(shape)) + list(shape)


def broadcast_shape(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...] | None:
    """NumPy/TFLite broadcast of two shapes, or None when they do not broadcast."""
    rank = max(len(a), len(b))
    out = []
    for x, y in zip(padded(a, rank), padded(b, rank)):
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return tuple(out)


def broadcast_strides(in_shape: Sequence[int], out_shape: Sequence[int], rank: int = MAX_DIMS) -> list[int]:
    """Element strides of ``in_shape`` walked along ``out_shape``, both left-padded to ``rank``;
    0 where the input is broadcast (size 1 against a larger output dimension)."""
    shape, out = padded(in_shape, rank), padded(out_shape, rank)
    strides = [0] * rank
    step = 1
    for i in range(rank - 1, -1, -1):
        strides[i] = 0 if (shape[i] == 1 and out[i] != 1) else step
        step *= shape[i]
    return strides


@dataclass
class BroadcastPlan:
    """How a binary kernel walks its two inputs: a strided walk of the output (MAX_DIMS
    extents, outermost first; the element strides of each input, 0 where it is broadcast)."""

    out_dims: list[int]
    strides1: list[int]
    strides2: list[int]


def generic_plan(s1: Sequence[int], s2: Sequence[int]) -> BroadcastPlan:
    """The walk over the broadcast of ``s1`` and ``s2`` with extent-1 dimensions
    dropped and adjacent dimensions merged wherever both inputs stay contiguous (or both
    stay broadcast), so that the innermost dimension -- one kernel row -- is as long as
    possible. Only for kernels whose every element takes the same recipe (the walk order
    does not matter there), which is every int8 binary kernel of TFLM. TFLM's
    BroadcastBinaryOpSimple fuses loops the same way (up to 8 of them; here the
    inputs have rank <= 6, so <= 6 loops remain)."""
    out = broadcast_shape(s1, s2)
    if out is None:
        raise ValueError(f"shapes {list(s1)} and {list(s2)} do not broadcast")
    rank = max(len(out), 1)
    st1, st2 = broadcast_strides(s1, out, rank), broadcast_strides(s2, out, rank)
    dims: list[list[int]] = []  # [extent, stride1, stride2], outermost first
    for d, x, y in zip(padded(out, rank), st1, st2):
        if d == 1:
            continue
        if dims and dims[-1][1] == x * d and dims[-1][2] == y * d:
            dims[-1] = [dims[-1][0] * d, x, y]  # the outer dimension continues this one
        else:
            dims.append([d, x, y])
    if len(dims) > MAX_DIMS:  # cannot happen for rank <= 6 inputs; keep the loops exact anyway
        raise ValueError(f"broadcast of {list(s1)} and {list(s2)} needs more than {MAX_DIMS} loops")
    full = [[1, 0, 0]] * (MAX_DIMS - len(dims)) + dims
    return BroadcastPlan(out_dims=[d[0] for d in full], strides1=[d[1] for d in full],
                         strides2=[d[2] for d in full])
