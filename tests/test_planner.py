"""The memory planner: no two live buffers share bytes; aliasing and scratch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.planner import ALIGN, plan_memory


def _chain_graph(sizes: list[int], skips: list[tuple[int, int]], outputs: tuple[int, ...] = ()) -> Graph:
    """t0 -> op0 -> t1 -> op1 -> ... ; skip (a, b) adds tensor t_a as an extra input of op b;
    ``outputs``: tensors that are graph outputs besides the last."""
    tensors = [Tensor(i, f"t{i}", (s,), "int8") for i, s in enumerate(sizes)]
    ops = []
    for i in range(len(sizes) - 1):
        ins = [i] + [a for a, b in skips if b == i and a < i]
        ops.append(Operator(i, "ADD", ins, [i + 1]))
    return Graph(tensors, ops, [0], [len(sizes) - 1, *outputs], sha256="0" * 64, source="<test>")


def _check_no_overlap(graph: Graph, plan) -> None:
    bufs = plan.buffers
    for i, a in enumerate(bufs):
        assert a.offset % ALIGN == 0
        assert a.offset + a.size <= plan.arena_bytes
        for b in bufs[i + 1 :]:
            live_overlap = a.first <= b.last and b.first <= a.last
            mem_overlap = a.offset < b.offset + b.size and b.offset < a.offset + a.size
            assert not (live_overlap and mem_overlap), (a, b)


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5000), min_size=2, max_size=12),
    data=st.data(),
)
def test_live_buffers_never_share_bytes(sizes: list[int], data: st.DataObject) -> None:
    n = len(sizes)
    skips = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 2)), max_size=4))
    scratch = data.draw(st.dictionaries(st.integers(0, n - 2), st.integers(1, 3000), max_size=3))
    g = _chain_graph(sizes, skips)
    plan = plan_memory(g, scratch)
    _check_no_overlap(g, plan)
    # every op's inputs, outputs and scratch are simultaneously addressable
    for op in g.operators:
        regions = [(plan.tensor_offsets[t], g.tensors[t].nbytes) for t in set(op.inputs + op.outputs)]
        if op.index in plan.scratch_offsets:
            regions.append((plan.scratch_offsets[op.index], scratch[op.index]))
        for i, (o1, s1) in enumerate(regions):
            for o2, s2 in regions[i + 1 :]:
                assert o1 + s1 <= o2 or o2 + s2 <= o1
    # the arena is at least the largest set of buffers live at one op
    for k in range(n - 1):
        live = sum(b.size for b in plan.buffers if b.first <= k <= b.last)
        assert plan.arena_bytes >= live


def test_chain_reuses_memory() -> None:
    # a chain of equal tensors needs only two slots, however long it is
    g = _chain_graph([1000] * 10, [])
    plan = plan_memory(g)
    assert plan.arena_bytes == 2 * 1008  # 1000 rounded up to 16


def test_alias_op_shares_the_input_buffer() -> None:
    g = _chain_graph([64, 64, 64], [])
    plan = plan_memory(g, alias_ops={0})
    assert plan.tensor_offsets[0] == plan.tensor_offsets[1]
    assert plan.tensor_offsets[2] != plan.tensor_offsets[1]


def test_graph_output_lives_to_the_end() -> None:
    # t1 is a graph output produced early: it must not be overwritten later
    tensors = [Tensor(i, f"t{i}", (100,), "int8") for i in range(4)]
    ops = [Operator(0, "ADD", [0], [1]), Operator(1, "ADD", [1], [2]), Operator(2, "ADD", [2], [3])]
    g = Graph(tensors, ops, [0], [1, 3], sha256="0" * 64, source="<test>")
    plan = plan_memory(g)
    assert plan.lifetime(1) == (0, 2)
    _check_no_overlap(g, plan)


def test_inplace_output_takes_the_dying_input() -> None:
    g = _chain_graph([4000, 4000, 4000, 4000], [])
    plan = plan_memory(g, inplace={0: ((0,), 0), 1: ((0,), 0), 2: ((0,), 0)})
    # op 0 would write over the graph input (the caller's data): never
    assert plan.tensor_offsets[1] == plan.tensor_offsets[2] == plan.tensor_offsets[3]
    assert plan.tensor_offsets[0] != plan.tensor_offsets[1]
    assert plan.arena_bytes == 8000 and plan.inplace_ops == {1, 2}
    _check_no_overlap(g, plan)


def test_inplace_only_where_the_input_dies() -> None:
    # t1 is read again by op 2 (a skip): op 1 cannot write over it; op 2 is t1's and t2's last reader
    g = _chain_graph([1000, 1000, 1000, 1000], [(1, 2)])
    plan = plan_memory(g, inplace={1: ((0,), 0), 2: ((0, 1), 0)})
    assert plan.tensor_offsets[2] != plan.tensor_offsets[1]
    assert plan.tensor_offsets[3] in (plan.tensor_offsets[1], plan.tensor_offsets[2])
    assert plan.inplace_ops == {2}
    _check_no_overlap(g, plan)


def test_inplace_never_over_a_graph_output() -> None:
    tensors = [Tensor(i, f"t{i}", (100,), "int8") for i in range(3)]
    ops = [Operator(0, "ADD", [0], [1]), Operator(1, "ADD", [1], [2])]
    g = Graph(tensors, ops, [0], [1, 2], sha256="0" * 64, source="<test>")
    plan = plan_memory(g, inplace={0: ((0,), 0), 1: ((0,), 0)})
    assert plan.tensor_offsets[2] != plan.tensor_offsets[1] and not plan.inplace_ops


def test_inplace_never_over_a_graph_output_that_took_a_buffer() -> None:
    # op 1 writes the graph output t2 over the dying t1; op 2 must not then write t3 over
    # that buffer (t2's, read after the run), although t1 itself is no graph output
    g = _chain_graph([1000, 1000, 1000, 1000], [], outputs=(2,))
    plan = plan_memory(g, inplace={1: ((0,), 0), 2: ((0,), 0)})
    assert plan.inplace_ops == {1}
    assert plan.tensor_offsets[2] == plan.tensor_offsets[1] != plan.tensor_offsets[3]
    _check_no_overlap(g, plan)


def test_inplace_scratch_only_when_in_place() -> None:
    g = _chain_graph([1000, 1000, 1000, 1000], [(1, 2)])
    plan = plan_memory(g, {1: 64, 2: 64}, inplace={1: ((0,), 500), 2: ((0,), 500)})
    sizes = {b.key: b.size for b in plan.buffers}
    assert plan.inplace_ops == {2}
    assert sizes["s1"] == 64 and sizes["s2"] == 576  # 64 + 500, aligned to 16
    _check_no_overlap(g, plan)


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 5000), min_size=2, max_size=12), data=st.data())
def test_inplace_plans_never_share_live_bytes(sizes: list[int], data: st.DataObject) -> None:
    n = len(sizes)
    skips = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 2)), max_size=4))
    ops_inplace = data.draw(st.sets(st.integers(0, n - 2), max_size=n - 1))
    outputs = tuple(sorted(data.draw(st.sets(st.integers(1, n - 1), max_size=2)) - {n - 1}))
    g = _chain_graph(sizes, skips, outputs)
    plan = plan_memory(g, inplace={k: ((0,), 16) for k in ops_inplace})
    _check_no_overlap(g, plan)
    assert plan.inplace_ops <= ops_inplace
    for op in g.operators:
        shared = plan.tensor_offsets[op.inputs[0]] == plan.tensor_offsets[op.outputs[0]]
        assert shared == (op.index in plan.inplace_ops)
        if shared:  # only over an input no later op reads, never over the graph's input or output
            assert all(op.inputs[0] not in later.inputs for later in g.operators[op.index + 1:])
            assert op.inputs[0] not in g.inputs and op.inputs[0] not in g.outputs
