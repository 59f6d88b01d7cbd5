"""Benchmarks: instructions per inference, flash and RAM, beside TFLite Micro.

Each model is generated, built and run in QEMU on a board with the input the
TFLM baselines used (``input[i] = (int8_t)((i*37 + 11) & 0xff)``); the output
must equal the oracle's, or the row is marked as failed. Instruction counts
come from SysTick under ``-icount shift=0`` and ELF sizes from the linked
firmware: both are deterministic, so results are compared exactly run to run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tinyedge import __version__
from tinyedge.errors import TinyEdgeError
from tinyedge.model import Graph
from tinyedge.model.ir import DTYPES


@dataclass
class BenchRow:
    model: str
    board: str
    core: str
    kernels: str  # the kernel set (tinyedge.kernels)
    macs: int
    instructions: int
    ticks: int
    exact: bool  # the output equals the oracle's (`oracle`)
    oracle: str  # "tflite-micro <version>", or the TFLite interpreter for a model TFLM cannot run
    output_hex: str
    arena: int
    weights: int
    code: int  # flash beside the weights: code + other constants + data image
    flash: int
    ram: int  # data + bss (arena included) + stack reservation
    baseline: dict[str, Any]  # TFLM numbers for the same model and core ("ref", "cmsis_nn")


def baseline_input(graph: Graph) -> list[np.ndarray]:
    """The TFLM baselines' input: byte i of each input tensor is (i*37 + 11) & 0xff."""
    out = []
    for t in graph.input_tensors:
        raw = ((np.arange(t.nbytes, dtype=np.int64) * 37 + 11) & 0xFF).astype(np.uint8)
        np_t = next(nt for n, nt in DTYPES.values() if n == t.dtype)
        out.append(raw.view(np_t).reshape(t.shape))
    return out


def load_baselines(path: Path | None) -> list[dict[str, Any]]:
    if path is None or not path.exists():
        return []
    return list(json.loads(path.read_text()).get("results", []))


def _baseline_for(rows: list[dict[str, Any]], model: str, core: str) -> dict[str, Any]:
    short = core.replace("cortex-", "")
    found: dict[str, Any] = {}
    for r in rows:
        if r["model"] == model and r["core"] == short:
            found[r["variant"]] = {k: r[k] for k in ("approx_instructions", "arena_used_bytes", "text_minus_model",
                                                     "output_hex") if k in r}
    return found


def bench_model(model_path: Path, board_name: str, workdir: Path, baselines: list[dict[str, Any]],
                log: Callable[[str], None] = lambda _m: None, kernels: str = "auto") -> BenchRow:
    from tinyedge.build import build_project
    from tinyedge.codegen.project import generate_project
    from tinyedge.pipeline import compile_for_board
    from tinyedge.validate import validate_on_target

    net = compile_for_board(model_path, board_name, kernels)
    board = net.board
    assert board is not None
    graph = net.graph
    if not board.qemu_machine:
        raise TinyEdgeError(f"board {board_name} cannot be benchmarked in QEMU", "pick an emulated board")
    project = workdir / f"{model_path.stem}-{board_name}-{net.kernels}"
    log(f"{model_path.stem} on {board_name} ({net.kernels} kernels): generate, build")
    proj = generate_project(net, project)
    built = build_project(project)
    assert built.memory is not None  # emulated boards build firmware, not a library
    rep = validate_on_target(net, built.elf, [baseline_input(graph)], workdir / "bench-report.json",
                             asdict(built.memory), emulator="qemu", timeout=300.0)
    s = rep.samples[0]
    m = built.memory
    return BenchRow(
        model=model_path.stem, board=board_name, core=board.core, kernels=net.kernels, macs=proj.net.total_macs,
        instructions=s.instructions or 0, ticks=s.ticks, exact=s.exact,
        oracle=f"{rep.oracle['name']} {rep.oracle['version']}", output_hex=s.output_hex,
        arena=m.arena, weights=m.weights, code=m.flash_used - m.weights, flash=m.flash_used, ram=m.ram_used,
        baseline=_baseline_for(baselines, model_path.stem, board.core),
    )


def _ratio(ours: int, theirs: int | None) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "-"


def to_markdown(rows: list[BenchRow]) -> str:
    lines = [
        "# tinyedge benchmarks",
        "",
        f"tinyedge {__version__}. Instructions per inference from SysTick under QEMU `-icount shift=0`",
        "(ticks x instructions per tick of the board), input `input[i] = (int8_t)((i*37 + 11) & 0xff)`",
        "as in the TFLite Micro baselines (../shared/baselines). Sizes from the linked ELF (arm-none-eabi-gcc -O2).",
        "Ratios are tinyedge / TFLM: below 1 is better. \"exact\": every output byte equals what TensorFlow",
        f"Lite Micro's interpreter computes ({', '.join(sorted({r.oracle for r in rows})) or 'tflite-micro'}).",
        "",
        "| model | board | kernels | MACs | instructions | vs TFLM ref | vs TFLM+CMSIS-NN | arena B | vs TFLM arena "
        "| code B (flash - weights) | vs TFLM code | weights B | exact |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ref = r.baseline.get("ref", {})
        nn = r.baseline.get("cmsis_nn", {})
        lines.append(
            f"| {r.model} | {r.board} | {r.kernels} | {r.macs:,} | {r.instructions:,} "
            f"| {_ratio(r.instructions, ref.get('approx_instructions'))} "
            f"| {_ratio(r.instructions, nn.get('approx_instructions'))} "
            f"| {r.arena:,} | {_ratio(r.arena, nn.get('arena_used_bytes'))} "
            f"| {r.code:,} | {_ratio(r.code, nn.get('text_minus_model'))} | {r.weights:,} "
            f"| {'yes' if r.exact else 'NO'} |"
        )
    lines += [
        "",
        "TFLM's \"code\" is its text minus the model array (runtime, kernels, harness, newlib-nano's vsnprintf);",
        "ours is flash minus the network's constant arrays (runtime, kernels, board support, validation server).",
        "TFLM's arena is `arena_used_bytes()`; ours is the planner's static arena (activations + scratch).",
        "",
    ]
    return "\n".join(lines)


def write_results(rows: list[BenchRow], outdir: Path) -> tuple[Path, Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    js = outdir / "results.json"
    md = outdir / "results.md"
    js.write_text(json.dumps({"tinyedge_version": __version__, "results": [asdict(r) for r in rows]},
                             indent=2) + "\n")
    md.write_text(to_markdown(rows))
    return js, md
