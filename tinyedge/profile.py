"""Where the time goes: the cost of every op on the device (``--profile``).

The network is measured as it is, without instrumentation: the firmware runs
ops ``0..k`` from its initial state (protocol ``RUN_UNTIL``, the same timed
code as ``RUN``) and answers with the ticks they took; op ``k`` costs
``t(k) - t(k-1)``. The inputs are written again before every run, since the
planner lets later ops reuse their bytes. The costs add up to the last
prefix, which is the whole network: the profile checks that against a plain
``RUN`` on the same input. Under QEMU ``-icount`` both are exact instruction
counts (SysTick restarted at a fixed phase before every timed region), so
they must be equal; on a board with a cycle counter they may differ by a few
cycles (caches, flash wait states), and the report says by how much.

Units: instructions in an emulator (ticks x the board's instructions per
tick, rounded per prefix so that the per-op figures still add up exactly),
CPU cycles on a board (the DWT cycle counter, or SysTick at the CPU clock, or
the library's port-layer counter). Op 0 also carries the few instructions
of the two timer reads around every run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from tinyedge.compiler import CompiledNetwork
from tinyedge.errors import TinyEdgeError

OpProgress = Callable[[int, int], None]


@dataclass
class OpCost:
    op: int
    opcode: str
    shapes: str          # activation inputs (and the weights' shape) -> outputs
    macs: int
    cost: int            # instructions (emulated) or cycles of this op alone
    share: float         # cost / whole run, 0..1
    macs_per_unit: float | None  # MACs per instruction (or per cycle); None for ops without MACs
    prefix_ticks: int    # ticks of ops 0..op (what RUN_UNTIL answered)
    stack: int | None    # stack high-water mark of ops 0..op, bytes (None: not measured)


@dataclass
class Profile:
    sample: int
    unit: str            # "instructions" or "cycles"
    total: int           # the whole run from RUN, in ``unit``
    total_ticks: int
    sum_of_ops: int      # what the per-op figures add up to
    ops: list[OpCost] = field(default_factory=list)

    @property
    def adds_up(self) -> bool:
        return self.sum_of_ops == self.total

    def to_dict(self) -> dict[str, Any]:
        return {"sample": self.sample, "unit": self.unit, "total": self.total, "total_ticks": self.total_ticks,
                "sum_of_ops": self.sum_of_ops, "adds_up": self.adds_up,
                "ops": [asdict(o) for o in self.ops]}


def _dims(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def op_shapes(net: CompiledNetwork, index: int) -> str:
    """``1x49x10x1 (w 64x10x4x1) -> 1x25x5x64``: the activations an op reads, the
    shape of its first constant of rank >= 2 (the weights, when it has any), and
    what it writes."""
    g = net.graph
    op = g.operators[index]
    ins = [g.tensors[t] for t in op.inputs if t >= 0]
    acts = ", ".join(_dims(t.shape) for t in ins if not t.is_const) or "-"
    weights = next((t for t in ins if t.is_const and len(t.shape) >= 2), None)
    w = f" (w {_dims(weights.shape)})" if weights is not None else ""
    outs = ", ".join(_dims(g.tensors[t].shape) for t in op.outputs)
    return f"{acts}{w} -> {outs}"


def cost_converter(board: Any, emulated: bool) -> tuple[str, Callable[[int, int], int]]:
    """(unit, function of a RUN answer's (ticks, cycles) -> cost in that unit)."""
    from tinyedge.validate import latency_cycles

    ipt = getattr(board, "instructions_per_tick", None) if emulated else None
    if ipt:
        return "instructions", lambda ticks, _cycles: int(round(ticks * ipt))
    timer = getattr(board, "timer", "systick")

    def cycles(ticks: int, cyc: int) -> int:
        c = latency_cycles(timer, ticks, cyc)
        return ticks if c is None else c   # SysTick at the CPU clock counts cycles

    return "cycles", cycles


def profile_on_device(net: CompiledNetwork, client: Any, sample_index: int, raw_inputs: list[bytes],
                      emulated: bool, progress: OpProgress | None = None) -> Profile:
    """Measure every op of ``net`` on the device behind ``client`` for one input."""
    graph = net.graph
    unit, convert = cost_converter(net.board, emulated)
    n = len(graph.operators)
    if n == 0:
        raise TinyEdgeError("the model has no operators to profile", "profile a model with at least one op")

    def prefix(k: int) -> tuple[int, int, int | None]:
        def step() -> tuple[int, int, int | None]:
            client.write_inputs(raw_inputs)   # later ops may have reused the inputs' bytes
            res, _crc = client.run_until(k, raw_inputs)
            return int(res.ticks), int(res.cycles), res.stack
        result: tuple[int, int, int | None] = client.recovering(step, f"op {k} of the profile")
        return result

    prefixes = []
    for k in range(n):
        prefixes.append(prefix(k))
        if progress:
            progress(k, n)
    whole = client.infer(raw_inputs, f"the profile's whole run (sample {sample_index})")
    total = convert(int(whole.ticks), int(whole.cycles))
    cumulative = [convert(t, c) for t, c, _s in prefixes]
    ops = []
    previous = 0
    for k, ((ticks, _c, stack), cum) in enumerate(zip(prefixes, cumulative, strict=True)):
        cost = cum - previous
        previous = cum
        macs = int(net.macs.get(k, 0))
        ops.append(OpCost(op=k, opcode=graph.operators[k].opcode, shapes=op_shapes(net, k), macs=macs,
                          cost=cost, share=cost / total if total else 0.0,
                          macs_per_unit=(macs / cost if macs and cost > 0 else None),
                          prefix_ticks=ticks, stack=stack))
    return Profile(sample=sample_index, unit=unit, total=total, total_ticks=int(whole.ticks),
                   sum_of_ops=sum(o.cost for o in ops), ops=ops)


def profile_rows(profile: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The profile as a table (header, rows) for printing: op, type, shapes, MACs,
    cost, % of the whole run, MACs per instruction (or cycle). Takes the report's
    dict form, so that a saved report prints the same."""
    unit = profile["unit"]
    per = "instr" if unit == "instructions" else "cycle"
    header = ["op", "type", "shapes", "MACs", unit, "%", f"MACs/{per}"]
    rows = []
    for o in profile["ops"]:
        mpu = o["macs_per_unit"]
        rows.append([str(o["op"]), o["opcode"], o["shapes"], f"{o['macs']:,}", f"{o['cost']:,}",
                     f"{100 * o['share']:.1f}", f"{mpu:.3f}" if mpu is not None else "-"])
    total_macs = sum(o["macs"] for o in profile["ops"])
    total = profile["total"]
    rows.append(["", "total", "", f"{total_macs:,}", f"{total:,}", "100.0",
                 f"{total_macs / total:.3f}" if total and total_macs else "-"])
    return header, rows


def markdown_table(profile: dict[str, Any]) -> list[str]:
    header, rows = profile_rows(profile)
    right = {"MACs", profile["unit"], "%"} | {h for h in header if h.startswith("MACs/")}
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if h in right or h == "op" else "---" for h in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines
