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

Legacy, for the x86 TFLite oracle (still imported by mul.py and minmax.py until
their TFLM versions are merged; unused by ADD and SUB): :func:`broadcast_plan`,
TFLite's ``ProcessBroadcastShapes`` (kernels/internal/reference/
process_broadcast_shapes.h) with the five-fold loop nest of the optimized
kernels, and the ``FLAT`` / ``FIVEFOLD`` / ``GENERIC`` categories. TFLM also
calls ProcessBroadcastShapes, but only to learn *whether* the shapes differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

MAX_DIMS = 6  # the kernels' loop depth (TE_BCAST_MAX_DIMS, TE_MUL_MAX_DIMS, TE_MINMAX_MAX_DIMS)

# Legacy (x86 TFLite): BroadcastableOpCategory kNonBroadcast, kFirst/kSecondInputBroadcastsFast,
# kGenericBroadcast, as returned by broadcast_plan.
FLAT, FIVEFOLD, GENERIC = 0, 1, 2


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
    """How a binary kernel walks its two inputs.

    ``out_dims`` / ``strides1`` / ``strides2``: a strided walk of the output
    (MAX_DIMS extents, outermost first; element strides of each input, 0 where it
    is broadcast). ``mode``, ``swap`` and ``y`` are only set by the legacy
    :func:`broadcast_plan` (ProcessBroadcastShapes' category, its switch of the
    inputs and ``broadcast_shape[0..4]``); :func:`generic_plan` leaves them at
    GENERIC / False / ones."""

    mode: int
    swap: bool = False
    y: tuple[int, int, int, int, int] = (1, 1, 1, 1, 1)
    out_dims: list[int] = field(default_factory=list)
    strides1: list[int] = field(default_factory=list)
    strides2: list[int] = field(default_factory=list)


def generic_plan(s1: Sequence[int], s2: Sequence[int]) -> BroadcastPlan:
    """A GENERIC walk over the broadcast of ``s1`` and ``s2`` with extent-1 dimensions
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
    return BroadcastPlan(GENERIC, out_dims=[d[0] for d in full],
                         strides1=[d[1] for d in full], strides2=[d[2] for d in full])


# ---- legacy: the x86 TFLite oracle's ProcessBroadcastShapes / five-fold loops ----------


def _fast_input(e0: list[int], e1: list[int]) -> bool | None:
    """ProcessBroadcastShapes' first loop, from the innermost dimension: True when input 1
    broadcasts fast, False when input 2 does, None for a generic broadcast."""
    for x, y in zip(reversed(e0), reversed(e1)):
        if x == y:
            continue
        if x == 1:
            return True
        if y == 1:
            return False
        return None
    raise AssertionError("equal shapes have no broadcast category")


def _fivefold_extents(a: list[int], b: list[int]) -> tuple[tuple[int, int, int, int, int], bool]:
    """The five extents y0..y4 of ``a`` (the input broadcast fast) against ``b``, greedily
    from the innermost dimension, and whether dimensions were left over (then TFLite falls
    back to the generic broadcast, keeping the extents computed so far)."""
    y = [1, 1, 1, 1, 1]
    i = len(a) - 1
    # TFLite's five greedy loops, innermost dimension first: extents equal (y4), a broadcast
    # (y3), equal (y2), b broadcast (y1), equal (y0); each multiplies in the output extent.
    loops: tuple[tuple[int, list[int] | None], ...] = ((4, None), (3, a), (2, None), (1, b), (0, None))
    for slot, broadcast in loops:
        while i >= 0 and (a[i] == b[i] if broadcast is None else broadcast[i] == 1):
            y[slot] *= b[i] if a[i] == 1 else a[i]
            i -= 1
    return (y[0], y[1], y[2], y[3], y[4]), i >= 0


def broadcast_plan(s1: Sequence[int], s2: Sequence[int]) -> BroadcastPlan:
    """TFLite's ProcessBroadcastShapes for inputs of shapes ``s1`` and ``s2``, with the
    (unmerged) strided walk of their broadcast. Like TFLite, a fivefold attempt that
    fails on an outer dimension is GENERIC but keeps its ``swap`` and partial ``y``."""
    out = broadcast_shape(s1, s2)
    if out is None:
        raise ValueError(f"shapes {list(s1)} and {list(s2)} do not broadcast")
    walk: dict[str, Any] = {"out_dims": padded(out), "strides1": broadcast_strides(s1, out),
                            "strides2": broadcast_strides(s2, out)}
    rank = len(out)
    e0, e1 = padded(s1, rank), padded(s2, rank)
    if e0 == e1:
        return BroadcastPlan(FLAT, **walk)
    first_fast = _fast_input(e0, e1)
    if first_fast is None:
        return BroadcastPlan(GENERIC, **walk)
    swap = not first_fast
    y, left_over = _fivefold_extents(e1, e0) if swap else _fivefold_extents(e0, e1)
    return BroadcastPlan(GENERIC if left_over else FIVEFOLD, swap, y, **walk)
