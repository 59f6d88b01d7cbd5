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

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tinyedge import kernels as kernel_sets
from tinyedge.codegen.lower import LoweredOp, Problem, check_graph, raise_problems
from tinyedge.model.ir import Graph
from tinyedge.ops import load_all
from tinyedge.ops.base import LowerCtx
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
        ops.append(LoweredOp(op, spec, spec.lower(op, LowerCtx(graph, op, kset))))
    scratch = {lo.op.index: lo.lowered.scratch_bytes for lo in ops if lo.lowered.scratch_bytes}
    aliases = {lo.op.index for lo in ops if lo.spec.alias_input}
    inplace = {lo.op.index: (lo.lowered.inplace, lo.lowered.inplace_scratch) for lo in ops if lo.lowered.inplace}
    plan = plan_memory(graph, scratch, aliases, inplace)
    macs = {op.index: (registry[op.opcode].macs(op, graph) if op.opcode in registry else 0)
            for op in graph.operators}
    return CompiledNetwork(graph, board, problems, ops, plan, macs, kset)
