"""The contract between the code generator and each supported op.

An op family module (``tinyedge/ops/conv.py`` ...) registers an :class:`OpSpec`
per TFLite builtin op. The code generator calls ``check`` (is this op with
these options/dtypes supported?), then ``lower``, which turns one operator
into one C kernel call with constant arguments computed on the host.

Names the lowering may use in C (the code generator defines them):
- ``ctx.ptr(tensor_index)``: a macro naming the tensor's data in the arena
  (activations) -- e.g. ``T12`` -- typed for the tensor's dtype;
- ``ctx.scratch``: a macro naming this op's scratch area (``int8_t *``), only
  valid when ``Lowered.scratch_bytes > 0``;
- ``ctx.name(suffix)``: a unique C identifier for this op's constants;
- ``ctx.kernels``: the kernel set the project gets ("portable", "dsp", "mve";
  tinyedge/kernels.py). The lowering picks the kernel to call and the layout of
  its constants from it (e.g. pre-widened weights for an SMLAD kernel); every
  kernel it names must have a portable implementation in runtime/, which the
  set's variant directories may replace.
Constant tensors are never read from the flatbuffer at run time: the lowering
re-emits what it needs (reordered, folded) as :class:`ConstArray`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from tinyedge.model.ir import Graph, Operator


@dataclass
class ConstArray:
    """A constant C array emitted into network.c (in flash)."""

    name: str  # full C identifier, from ctx.name(...)
    ctype: str  # "int8_t", "int16_t", "int32_t", "uint8_t", "float", ...
    values: np.ndarray  # emitted flattened, in C order; 2-D: an array of structs (ctype), one row each
    comment: str = ""  # where the numbers come from
    align: int = 0  # byte alignment the kernel needs beyond the default (word-aligned from 16 values on)


@dataclass
class Lowered:
    """One operator lowered to C."""

    comment: str  # one line for humans: what the op does, shapes, key params
    call: str  # the C statement(s), e.g. "te_conv2d_s8(&op3_params, T1, op3_filter, op3_bias, T2, S3);"
    params_type: str | None = None  # C struct type of the params block, if any
    params: dict[str, Any] = field(default_factory=dict)  # field -> C literal (int/float/str expr)
    params_name: str | None = None  # identifier for the params block (default ctx.name("params"))
    consts: list[ConstArray] = field(default_factory=list)
    scratch_bytes: int = 0  # temporary arena bytes needed while this op runs
    # positions in op.inputs whose buffer output 0 may take (the kernel never overwrites
    # input bytes it has yet to read); the planner does when that input dies at this op,
    # and then gives the op inplace_scratch more scratch bytes (e.g. a ring of input rows)
    inplace: tuple[int, ...] = ()
    inplace_scratch: int = 0
    globals: str = ""  # file-scope C declarations (e.g. persistent state of a stateful op)
    reset: str = ""  # C statements that put that state back to its initial value


class LowerCtx:
    """What a lowering may ask of the code generator."""

    def __init__(self, graph: Graph, op: Operator, kernels: str = "portable") -> None:
        self.graph = graph
        self.op = op
        self.kernels = kernels
        self.prefix = f"op{op.index}"

    def ptr(self, tensor_index: int) -> str:
        """The arena macro of an activation (``T<index>``). Only activations have
        one: :func:`tinyedge.compiler.compile` refuses an op whose C uses the macro
        of a constant or a variable."""
        return f"T{tensor_index}"

    @property
    def scratch(self) -> str:
        return f"S{self.op.index}"

    def name(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"


CheckFn = Callable[[Operator, Graph], list[str]]
LowerFn = Callable[[Operator, LowerCtx], Lowered]
MacsFn = Callable[[Operator, Graph], int]


def _no_macs(op: Operator, graph: Graph) -> int:
    return 0


@dataclass
class OpSpec:
    name: str  # TFLite builtin name, e.g. "CONV_2D"
    lower: LowerFn
    check: CheckFn  # returns a list of problems; empty means supported
    constraints: str  # one line for `tinyedge ops`: dtypes, options supported
    macs: MacsFn = _no_macs
    alias_input: bool = False  # output is input 0 reinterpreted (RESHAPE...): no code, no copy


REGISTRY: dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"op {spec.name} registered twice")
    REGISTRY[spec.name] = spec
    return spec


# ---- helpers shared by lowerings -------------------------------------------------

FUSED_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def activation_name(op: Operator) -> str:
    return FUSED_ACTIVATIONS.get(int(op.options.get("fused_activation_function", 0)), "?")


def c_array_literal(values: np.ndarray, per_line: int = 16) -> str:
    """Format values as the body of a C initializer, ``per_line`` values per line."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind == "f":
        items = [_c_float(float(v)) for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n    ".join(lines)


def _c_float(v: float) -> str:
    """A float32 literal that round-trips exactly (hex float is exact and C99)."""
    if v != v:
        return "NAN"
    if v in (float("inf"), float("-inf")):
        return "INFINITY" if v > 0 else "-INFINITY"
    mantissa, exp = float(np.float32(v)).hex().split("p")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}p{exp}f"
