"""How long to wait for the device: a bound on one inference and the default --timeout.

``--timeout`` bounds every wait on the device (see :class:`tinyedge.device.DeviceClient`).
Its default comes from the model's size and the board's speed:

    instructions <= 32 x MACs + 64 x elements + 10,000 x ops

where *elements* counts every value the ops read and write (activations, not
weights). 32 instructions per MAC is 8x what tinyedge's kernels execute on a
Cortex-M4 (2.6-4.0 instructions/MAC on the shared models, benchmarks/results.md)
and more than twice TFLite Micro's reference kernels (about 13); 64 per element
covers the exponentials of SOFTMAX/LOGISTIC/TANH. On a board, one instruction
is taken as one cycle of ``clock_hz`` (Cortex-M cores retire at most about one
instruction per cycle on such code; flash wait states are what the factor 8
is for). In QEMU the speed is that of the emulator, not of the board: at least
20 million instructions a second (measured 100-200 million on a loaded 2-core
host under ``-icount shift=0``).

    default --timeout = max(10 s, 2 x bound + 2 s)

so a device that is merely slow is never given up on, and a RUN whose request
was lost on the line is still sent again in time. A lower ``--timeout`` is the
user's to choose: a wait then ends at it, an inference included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tinyedge.compiler import CompiledNetwork

INSTRUCTIONS_PER_MAC = 32
INSTRUCTIONS_PER_ELEMENT = 64
INSTRUCTIONS_PER_OP = 10_000
EMULATOR_INSTRUCTIONS_PER_SECOND = {"qemu": 20e6, "renode": 5e6}
MIN_TIMEOUT = 10.0
LINK_ALLOWANCE = 2.0


@dataclass(frozen=True)
class InferenceBound:
    """A conservative upper bound on one inference of a model on a target."""

    macs: int
    elements: int
    ops: int
    instructions: int
    speed: float      # instructions per second
    where: str        # "a 25 MHz core", "QEMU"

    @property
    def seconds(self) -> float:
        return self.instructions / self.speed

    def describe(self) -> str:
        return (f"{self.macs:,} MACs, {self.elements:,} values and {self.ops} ops: at most "
                f"{self.instructions:,} instructions, {self.seconds:.2g} s on {self.where}")


# The clock assumed for a library target's core, whose clock only the user's
# firmware knows: slow for a Cortex-M, so that the bound stays a bound.
UNKNOWN_CLOCK_HZ = 16_000_000


def inference_bound(net: CompiledNetwork, emulator: str | None) -> InferenceBound:
    """The bound for ``net`` on its board, or in ``emulator`` ("qemu", "renode")."""
    graph = net.graph
    elements = sum(graph.tensors[t].size for op in graph.operators for t in (*op.inputs, *op.outputs)
                   if t >= 0 and not graph.tensors[t].is_const)
    ops = len(graph.operators)
    instructions = (INSTRUCTIONS_PER_MAC * net.total_macs + INSTRUCTIONS_PER_ELEMENT * elements
                    + INSTRUCTIONS_PER_OP * ops)
    if emulator:
        speed = EMULATOR_INSTRUCTIONS_PER_SECOND.get(emulator, min(EMULATOR_INSTRUCTIONS_PER_SECOND.values()))
        where = f"{emulator} ({speed / 1e6:g} M instructions/s at the least)"
    else:
        if net.board is None:
            raise ValueError("a bound on a device needs a network compiled for a board")
        if net.board.clock_hz:
            speed = float(net.board.clock_hz)
            where = f"a {net.board.clock_hz / 1e6:g} MHz core"
        else:  # a library board (generic-cortex-*): the user's clock is not known here
            speed = float(UNKNOWN_CLOCK_HZ)
            where = f"a core of unknown clock (taken as {UNKNOWN_CLOCK_HZ / 1e6:g} MHz)"
    return InferenceBound(net.total_macs, elements, ops, instructions, speed, where)


def default_timeout(bound: InferenceBound) -> float:
    """Seconds: max(10, 2 x the bound + 2), rounded up to a whole second."""
    return float(max(MIN_TIMEOUT, math.ceil(2 * bound.seconds + LINK_ALLOWANCE)))
