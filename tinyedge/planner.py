"""Static memory planner: one arena, an offset for every activation tensor.

Every activation tensor (neither constant nor variable state) gets a *buffer*; operators registered with
``alias_input`` (RESHAPE and friends) make their output share the buffer of
their input, so they cost neither bytes nor instructions. An operator whose
kernel can write its output over an input (``Lowered.inplace``: elementwise
ops, a 1x1 convolution that reads a pixel before writing it ...) takes that
input's buffer when the input dies at that operator (its last reader, and
neither a graph input nor a graph output). A buffer lives from
the op that writes it to the last op that reads it (graph inputs from the
start, graph outputs to the end); an op's scratch area lives during that op
only. Buffers are placed greedily, largest first, at the lowest aligned offset
that overlaps no buffer whose lifetime intersects -- the strategy TFLite
Micro's greedy planner also uses. Deterministic: ties break on buffer order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyedge.model.ir import Graph

ALIGN = 16


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Buffer:
    key: str  # "t<index>" (first tensor of the buffer) or "s<op>" for scratch
    size: int
    first: int  # first op index that needs it
    last: int  # last op index that needs it
    tensors: list[int] = field(default_factory=list)
    offset: int = -1


@dataclass
class MemoryPlan:
    arena_bytes: int
    tensor_offsets: dict[int, int]  # activation tensor index -> byte offset
    scratch_offsets: dict[int, int]  # op index -> byte offset of its scratch
    buffers: list[Buffer]
    inplace_ops: set[int] = field(default_factory=set)  # ops whose output took an input's buffer

    def lifetime(self, tensor_index: int) -> tuple[int, int]:
        for b in self.buffers:
            if tensor_index in b.tensors:
                return b.first, b.last
        raise KeyError(tensor_index)


def plan_memory(graph: Graph, scratch: dict[int, int] | None = None,
                alias_ops: set[int] | None = None,
                inplace: dict[int, tuple[tuple[int, ...], int]] | None = None) -> MemoryPlan:
    """Plan the arena. ``scratch``: op index -> bytes; ``alias_ops``: ops whose
    output 0 reuses input 0's buffer; ``inplace``: op index -> (positions of its
    inputs whose buffer output 0 may take when that input dies at the op, the
    scratch bytes the op needs beyond ``scratch`` when it runs in place)."""
    scratch = dict(scratch or {})
    alias_ops = alias_ops or set()
    inplace = inplace or {}
    n_ops = len(graph.operators)

    # union tensors into buffers along aliasing ops
    owner: dict[int, int] = {}  # tensor -> representative tensor

    def find(t: int) -> int:
        while owner.get(t, t) != t:
            t = owner[t]
        return t

    activations: list[int] = []
    seen: set[int] = set()

    def note(t: int) -> None:
        if t >= 0 and t not in seen and graph.tensors[t].is_activation:
            seen.add(t)
            activations.append(t)

    for t in graph.inputs:
        note(t)
    for op in graph.operators:
        for t in op.inputs:
            note(t)
        for t in op.outputs:
            note(t)
    for op in graph.operators:
        if op.index in alias_ops:
            src, dst = op.inputs[0], op.outputs[0]
            if graph.tensors[src].is_activation:
                owner[find(dst)] = find(src)

    first: dict[int, int] = {}
    last: dict[int, int] = {}
    size: dict[int, int] = {}

    def touch(t: int, i: int) -> None:
        r = find(t)
        first[r] = min(first.get(r, i), i)
        last[r] = max(last.get(r, i), i)
        size[r] = max(size.get(r, 0), graph.tensors[t].nbytes)

    for t in graph.inputs:
        touch(t, 0)
    for op in graph.operators:
        for t in op.inputs + op.outputs:
            if t >= 0 and graph.tensors[t].is_activation:
                touch(t, op.index)
    for t in graph.outputs:
        touch(t, max(n_ops - 1, 0))

    # in place: the output takes over a dying input's buffer, in op order;
    # never over a graph input (the caller's data) or a graph output (read after the run),
    # looked up through find() at each op: a graph output that took an earlier op's input buffer
    # has made that buffer one no later op may overwrite
    kept = [t for t in list(graph.inputs) + list(graph.outputs) if t >= 0]
    inplace_ops: set[int] = set()
    for op in graph.operators:
        if op.index not in inplace or not op.outputs or not graph.tensors[op.outputs[0]].is_activation:
            continue
        dst = find(op.outputs[0])
        positions, extra = inplace[op.index]
        for pos in positions:
            src_t = op.inputs[pos] if pos < len(op.inputs) else -1
            if src_t < 0 or not graph.tensors[src_t].is_activation:
                continue
            src = find(src_t)
            if src == dst or last[src] != op.index or first[dst] != op.index or any(find(t) == src for t in kept):
                continue
            owner[dst] = src
            inplace_ops.add(op.index)
            last[src] = last[dst]
            size[src] = max(size[src], size[dst])
            if extra:
                scratch[op.index] = scratch.get(op.index, 0) + extra
            break

    buffers: list[Buffer] = []
    by_rep: dict[int, Buffer] = {}
    for t in activations:
        r = find(t)
        if r not in by_rep:
            b = Buffer(key=f"t{r}", size=_align(size[r]), first=first[r], last=last[r])
            by_rep[r] = b
            buffers.append(b)
        by_rep[r].tensors.append(t)
    for op_index in sorted(scratch):
        if scratch[op_index] > 0:
            buffers.append(Buffer(key=f"s{op_index}", size=_align(scratch[op_index]),
                                  first=op_index, last=op_index))

    placed: list[Buffer] = []
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, i))
    for i in order:
        b = buffers[i]
        clashes = sorted(
            (p for p in placed if p.first <= b.last and b.first <= p.last), key=lambda p: p.offset
        )
        offset = 0
        for p in clashes:
            if offset + b.size <= p.offset:
                break
            offset = max(offset, p.offset + p.size)
        b.offset = offset
        placed.append(b)

    arena = max((b.offset + b.size for b in buffers), default=0)
    tensor_offsets = {t: b.offset for b in buffers for t in b.tensors}
    scratch_offsets = {int(b.key[1:]): b.offset for b in buffers if b.key.startswith("s")}
    return MemoryPlan(arena_bytes=arena, tensor_offsets=tensor_offsets,
                      scratch_offsets=scratch_offsets, buffers=buffers, inplace_ops=inplace_ops)
