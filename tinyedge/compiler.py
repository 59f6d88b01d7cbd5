"""The one compiled artifact: a graph checked, lowered and planned for a board.

``compile(graph, board, kernels=...)`` is the only place that checks a graph against the
op registry, lowers each operator to its C kernel call and plans the arena.
Everything after it -- ``inspect``'s figures and fit verdict, the generated
project, the host runner, ``validate`` and ``bench`` -- reads the same
:class:`CompiledNetwork`, so a model is checked once and lowered once per run.

The kernel set (tinyedge/kernels.py: portable, dsp, mve; "auto" = the best the
board's core has) is resolved here, recorded in the network and given to every
lowering (``LowerCtx.kernels``), which picks the kernel each op calls and the
constant layout it reads; the generated project then holds that set's files.

With ``strict=False`` (``inspect``) a graph with unsupported ops still
compiles: its problems are listed, the supported ops are lowered, and the
arena is an estimate that leaves out the unsupported ops' scratch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tinyedge import kernels as kernel_sets
from tinyedge.codegen.lower import LoweredOp, Problem, check_graph, guarded, raise_problems
from tinyedge.model.ir import Graph
from tinyedge.ops import load_all
from tinyedge.ops.base import LowerCtx, Lowered
from tinyedge.planner import MemoryPlan, plan_memory

if TYPE_CHECKING:
    from tinyedge.boards import Board

_CTYPE_BYTES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4,
                "float": 4, "int64_t": 8}


@dataclass
class CompiledNetwork:
    """A graph lowered to one kernel call per op, with its arena planned."""

    graph: Graph
    board: Board | None
    problems: list[Problem]
    ops: list[LoweredOp]  # every op when supported; the supported ones otherwise
    plan: MemoryPlan
    macs: dict[int, int]  # op index -> multiply-accumulates
    kernels: str = "portable"  # the kernel set the ops were lowered for (tinyedge.kernels)

    @property
    def supported(self) -> bool:
        return not self.problems

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    @property
    def weights_bytes(self) -> int:
        """Bytes of the constant arrays the firmware holds (reordered weights, folded
        biases, multipliers, tables) -- more than the .tflite's parameters."""
        return sum(int(np.asarray(c.values).size) * _CTYPE_BYTES.get(c.ctype, 4)
                   for lo in self.ops for c in lo.lowered.consts)

    def require_supported(self) -> None:
        """Raise one clear error naming every unsupported op or option."""
        raise_problems(self.graph, self.problems)


_ARENA_MACRO = re.compile(r"\bT(\d+)\b")


def _arena_problems(graph: Graph, lowered: Lowered) -> list[str]:
    """The C of an op may name only activations as arena tensors (``T<index>``,
    LowerCtx.ptr): a constant or a variable has no place in the arena. (A valid
    TFLite model can put a constant where the kernel reads an activation.)"""
    text = " ".join([lowered.call, lowered.globals, lowered.reset, *map(str, lowered.params.values())])
    problems = []
    for index in sorted({int(m) for m in _ARENA_MACRO.findall(text)}):
        t = graph.tensors[index] if index < len(graph.tensors) else None
        if t is not None and not t.is_activation:
            problems.append(f"tensor {index} ({t.name or 'unnamed'}) is {'a constant' if t.is_const else 'a variable'} "
                            "where the kernel takes an activation")
    return problems


def compile(graph: Graph, board: Board | None = None, *, kernels: str = "auto",  # noqa: A001
            strict: bool = True) -> CompiledNetwork:
    """Check, lower and plan ``graph`` for ``board`` (None: no board, e.g. the host runner).

    ``kernels``: "auto" (the best set the board's core has; portable without a
    board) or a set of tinyedge.kernels.KERNEL_SETS, refused when the core
    lacks it. ``strict``: raise on unsupported ops (generate, validate, bench,
    the host runner); otherwise keep going and list them (inspect)."""
    kset = kernel_sets.resolve(kernels, board)
    registry = load_all()
    problems = check_graph(graph)
    if strict:
        raise_problems(graph, problems)
    bad_ops = {p.op_index for p in problems}
    ops: list[LoweredOp] = []
    for op in graph.operators:
        spec = registry.get(op.opcode)
        if spec is None or op.index in bad_ops:
            continue
        ops.append(LoweredOp(op, spec, guarded("lowering", op, graph, lambda: spec.lower(op, LowerCtx(graph, op, kset)))))
    late = [Problem(lo.op.index, lo.op.opcode, reason) for lo in ops for reason in _arena_problems(graph, lo.lowered)]
    if late:
        if strict:
            raise_problems(graph, late)
        problems = problems + late
        ops = [lo for lo in ops if lo.op.index not in {p.op_index for p in late}]
    scratch = {lo.op.index: lo.lowered.scratch_bytes for lo in ops if lo.lowered.scratch_bytes}
    aliases = {lo.op.index for lo in ops if lo.spec.alias_input}
    inplace = {lo.op.index: (lo.lowered.inplace, lo.lowered.inplace_scratch) for lo in ops if lo.lowered.inplace}
    plan = plan_memory(graph, scratch, aliases, inplace)
    # MACs of the ops that passed their checks: a malformed op has no meaningful count
    specs = {lo.op.index: lo.spec for lo in ops}
    macs = {op.index: guarded("counting the MACs of", op, graph, lambda: specs[op.index].macs(op, graph))
            if op.index in specs else 0 for op in graph.operators}
    return CompiledNetwork(graph, board, problems, ops, plan, macs, kset)
