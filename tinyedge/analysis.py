"""What `tinyedge inspect` reports: ops, tensors, parameters, MACs, memory, fit.

Reads only the graph IR and the op registry: no TensorFlow, no compiler.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyedge.boards import STATIC_RAM_UPPER_BYTES
from tinyedge.compiler import CompiledNetwork
from tinyedge.errors import TinyEdgeError
from tinyedge.model.ir import Operator
from tinyedge.ops import load_all

# Upper bounds, before a build measures them exactly: flash the runtime code,
# board support and validation server take beside the weights (measured
# 7-12 KB at -O2 on the shared models; generous so "fits" is a promise), and
# static RAM beside the arena, the stack and the protocol's frame buffer
# (tinyedge.boards.STATIC_RAM_UPPER_BYTES).
CODE_UPPER_BYTES = 32 * 1024

_OPTION_KEYS = ("padding", "stride_w", "stride_h", "filter_width", "filter_height", "depth_multiplier",
                "dilation_wfactor", "dilation_hfactor", "fused_activation_function", "beta", "axis",
                "keep_num_dims")
_PADDING = {0: "SAME", 1: "VALID"}
_ACT = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


@dataclass
class OpRow:
    index: int
    opcode: str
    inputs: list[str]
    outputs: list[str]
    options: dict[str, Any]
    param_bytes: int
    macs: int
    supported: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class Fit:
    board: str
    flash_size: int
    ram_size: int
    flash_min: int  # weights alone: no firmware for this model can be smaller
    flash_max: int  # weights + an upper bound on code
    ram_min: int  # arena + the board's stack reservation
    ram_max: int  # ram_min + an upper bound on other static data
    verdict: str  # "fits" | "does not fit" | "may not fit"
    reason: str

    @property
    def fits(self) -> bool:
        return self.verdict == "fits"


@dataclass
class Inspection:
    model: str
    sha256: str
    model_bytes: int
    inputs: list[str]
    outputs: list[str]
    ops: list[OpRow]
    param_bytes: int  # constant tensors in the .tflite
    weights_bytes: int  # constant arrays in the generated firmware (reordered, folded)
    total_macs: int
    arena_bytes: int
    arena_exact: bool
    problems: list[str]
    supported_ops: list[str]
    fit: Fit | None = None
    kernels: str = "portable"  # the kernel set the arena and weights figures are for

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.fit is not None:
            d["fit"]["fits"] = self.fit.fits
        return d


def _options(op: Operator) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in _OPTION_KEYS:
        if k in op.options:
            v = op.options[k]
            if k == "padding":
                v = _PADDING.get(int(v), v)
            elif k == "fused_activation_function":
                k, v = "activation", _ACT.get(int(v), v)
                if v == "NONE":
                    continue
            elif isinstance(v, float):
                v = float(np.float32(v))
            out[k] = v
    return out


def inspect_network(net: CompiledNetwork) -> Inspection:
    """What `inspect` shows of a network compiled with ``strict=False``; the fit
    verdict when it was compiled for a board."""
    graph = net.graph
    by_op: dict[int, list[str]] = {}
    for p in net.problems:
        by_op.setdefault(p.op_index, []).append(p.reason)
    rows = []
    for op in graph.operators:
        consts = [t for t in graph.op_inputs(op) if t is not None and t.is_const]
        rows.append(OpRow(
            index=op.index, opcode=op.opcode,
            inputs=[graph.tensors[i].describe() for i in op.inputs if i >= 0],
            outputs=[graph.tensors[i].describe() for i in op.outputs],
            options=_options(op), param_bytes=sum(t.nbytes for t in consts), macs=net.macs[op.index],
            supported=op.index not in by_op, problems=by_op.get(op.index, []),
        ))
    insp = Inspection(
        model=graph.source, sha256=graph.sha256, model_bytes=len(graph.model_bytes),
        inputs=[t.describe() for t in graph.input_tensors],
        outputs=[t.describe() for t in graph.output_tensors],
        ops=rows, param_bytes=graph.const_bytes(), weights_bytes=net.weights_bytes, total_macs=net.total_macs,
        arena_bytes=net.arena_bytes, arena_exact=net.supported,
        problems=[str(p) for p in net.problems], supported_ops=sorted(load_all()), kernels=net.kernels,
    )
    if net.board is not None and not net.board.is_library:  # a library's memories are the user's
        insp.fit = fit_board(insp, net.board)
    return insp


def fit_board(insp: Inspection, board: Any) -> Fit:
    """Fit from bounds: "fits" when the upper bounds fit, "does not fit" when a
    lower bound (weights alone; arena + stack) already exceeds the board."""
    flash_min, flash_max = insp.weights_bytes, insp.weights_bytes + CODE_UPPER_BYTES
    ram_min = insp.arena_bytes + board.stack_size  # the linker reserves the board's stack
    ram_max = ram_min + board.max_payload + STATIC_RAM_UPPER_BYTES
    over = []
    if flash_min > board.flash_size:
        # more than `parameters`: weights reordered plus per-channel multipliers/shifts and LUTs
        over.append(f"flash: the weights and constants alone take {flash_min:,} B, "
                    f"{board.name} has {board.flash_size:,} B")
    # Per RAM region (one region on most emulated boards; several on real parts,
    # where the board file places the stack, the static data and the arena).
    low = board.ram_needs(insp.arena_bytes, 0)
    high = board.ram_needs(insp.arena_bytes, STATIC_RAM_UPPER_BYTES)
    ram_regions_fit = all(n <= board.region(r).size for r, n in high.items())
    for region, need in low.items():
        size = board.region(region).size
        if need <= size:
            continue
        if len(board.regions) == 2:  # one RAM: the arena, the stack and nothing else
            over.append(f"RAM: arena {insp.arena_bytes} B + stack {board.stack_size} B = {ram_min} B, "
                        f"{board.name} has {board.ram_size} B")
        else:
            over.append(f"RAM: {region} would need {need:,} B (arena {insp.arena_bytes:,} B and what "
                        f"the board places beside it), {board.name}'s {region} has {size:,} B")
    if over:
        verdict, reason = "does not fit", "; ".join(over)
    elif flash_max <= board.flash_size and ram_max <= board.ram_size and ram_regions_fit:
        verdict, reason = "fits", "fits"
    else:
        verdict = "may not fit"
        reason = (f"close to the limits (flash {flash_min}..{flash_max} of {board.flash_size} B, RAM "
                  f"{ram_min}..{ram_max} of {board.ram_size} B): `tinyedge build` gives the exact numbers")
    return Fit(board=board.name, flash_size=board.flash_size, ram_size=board.ram_size,
               flash_min=flash_min, flash_max=flash_max, ram_min=ram_min, ram_max=ram_max,
               verdict=verdict, reason=reason)


def require_fit(net: CompiledNetwork) -> Fit | None:
    """The fit verdict of a network compiled for a board; a clear error when a
    lower bound already exceeds the board (no build could fit)."""
    if net.board is None:
        return None
    fit = inspect_network(net).fit
    if fit is not None and fit.verdict == "does not fit":
        raise TinyEdgeError(f"{Path(net.graph.source).name} does not fit {net.board.name}: {fit.reason}",
                            "pick a board with more memory (`tinyedge boards`) or a smaller model")
    return fit
