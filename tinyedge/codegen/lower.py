"""Check a graph against the op registry: every reason it cannot be generated.

Lowering itself happens once per run, in :func:`tinyedge.compiler.compile`.

An op's family code runs only on an op with the inputs and outputs TFLite's
op takes (:mod:`tinyedge.ops.arity`); if it still fails on some model, that is
a bug in tinyedge, reported as an :class:`InternalError` naming the op.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Callable, TypeVar

from tinyedge.errors import InternalError, TinyEdgeError
from tinyedge.model.ir import Graph, Operator
from tinyedge.ops import load_all
from tinyedge.ops.arity import arity_problems
from tinyedge.ops.base import Lowered, OpSpec

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    op_index: int
    opcode: str
    reason: str

    def __str__(self) -> str:
        return f"op {self.op_index} {self.opcode}: {self.reason}"


@dataclass
class LoweredOp:
    op: Operator
    spec: OpSpec
    lowered: Lowered


SUPPORTED_IO_DTYPES = {"int8", "float32", "int16", "int32", "uint8"}


def guarded(what: str, op: Operator, graph: Graph, fn: Callable[[], T]) -> T:
    """Run op family code; an unexpected exception is a tinyedge bug, named by op."""
    try:
        return fn()
    except TinyEdgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported with its traceback
        raise InternalError(f"{what} op {op.index} ({op.opcode}) of {graph.source} failed: "
                            f"{type(exc).__name__}: {exc}") from exc


def check_graph(graph: Graph) -> list[Problem]:
    """Every reason the graph cannot be generated, by op position and name."""
    registry = load_all()
    problems: list[Problem] = []
    for op in graph.operators:
        spec = registry.get(op.opcode)
        if spec is None:
            problems.append(Problem(op.index, op.opcode, "unsupported op"))
            continue
        reasons = arity_problems(op) or guarded("checking", op, graph, lambda: spec.check(op, graph))
        for reason in reasons:
            problems.append(Problem(op.index, op.opcode, reason))
    for t in graph.input_tensors + graph.output_tensors:
        if t.dtype not in SUPPORTED_IO_DTYPES:
            problems.append(Problem(-1, "GRAPH", f"tensor {t.name or t.index} has unsupported dtype {t.dtype}"))
    return problems


def raise_problems(graph: Graph, problems: list[Problem]) -> None:
    """One clear error naming every unsupported op or option (nothing when there are none)."""
    if not problems:
        return
    first = problems[0]
    names = sorted({p.opcode for p in problems if p.reason == "unsupported op"})
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    if names:
        msg = f"unsupported op{'s' if len(names) > 1 else ''} {', '.join(names)} in {graph.source}: {first}{more}"
    else:
        msg = f"unsupported in {graph.source}: {first}{more}"
    raise TinyEdgeError(
        msg,
        "`tinyedge inspect MODEL` lists every problem; `tinyedge ops` lists what is supported",
    )


def require_supported(graph: Graph) -> None:
    """Raise one clear error naming every unsupported op or option."""
    raise_problems(graph, check_graph(graph))
