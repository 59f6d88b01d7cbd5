"""Benchmarks: instructions, peak RAM and code per model, beside TensorFlow Lite Micro.

Each model is generated for a board and a kernel set, built and run in QEMU
on the input the TFLM baselines used (``input[i] = (int8_t)((i*37 + 11) &
0xff)``); the output must equal the oracle's (TFLM), or the row is marked as
not exact. Per row:

* ``instructions``: SysTick ticks under ``-icount shift=0`` x the board's
  instructions per tick, SysTick restarted at a fixed phase before the run,
  so that the figure is identical run to run;
* ``peak_ram``: the arena + the stack the inference used (the firmware paints
  the stack before the run and finds the lowest word overwritten after it) +
  the static RAM the network and its runtime own (from the ELF's symbols;
  the validation server's I/O buffers and the board support's are not
  counted, as TFLM's figure counts neither);
* ``code``: flash minus the network's constant arrays (weights, biases,
  multipliers, op parameters);
* with ``profile``: every op's instructions (:mod:`tinyedge.profile`).

:func:`summarize` compares them with ../shared/baselines (TFLM reference
kernels and TFLM + CMSIS-NN, geometric means over the four MLPerf Tiny
models) and judges the targets of issue 9; :func:`write_results` writes
``results.json`` and ``results.md``. benchmarks/README.md gives the method.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from tinyedge import __version__
from tinyedge.errors import TinyEdgeError
from tinyedge.infiles import check_regular
from tinyedge.model import Graph
from tinyedge.model.ir import DTYPES
from tinyedge.outputs import write_atomic

# The four MLPerf Tiny models the geometric means and the issue-9 targets are over.
MLPERF_MODELS = ("kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8")
# Issue 9's targets: against TFLM + CMSIS-NN on these boards...
TARGET_BOARDS = ("mps2-an386", "mps2-an500")
INSTRUCTIONS_PER_MODEL = 0.8   # x TFLM + CMSIS-NN's instructions, every model
INSTRUCTIONS_GEOMEAN = 0.7     # x the same, geometric mean over the four
PEAK_RAM_VS_ARENA = 0.75       # x TFLM's arena alone
CODE_VS_TFLM = 0.5             # x TFLM's code (text minus the model)
# ... and on this one, the default (Helium) kernels against --kernels portable
HELIUM_BOARD = "mps3-an547"
HELIUM_SPEEDUP = 2.0


@dataclass
class BenchRow:
    model: str
    board: str
    core: str
    kernels: str            # the kernel set the network was compiled with (tinyedge.kernels)
    kernels_requested: str  # what was asked for: "auto" (the board's default) or a set
    macs: int
    instructions: int
    ticks: int
    exact: bool  # the output equals the oracle's (`oracle`)
    oracle: str  # "tflite-micro <version>", or the TFLite interpreter for a model TFLM cannot run
    output_hex: str
    peak_ram: int     # arena + stack + static_ram
    arena: int
    stack: int        # bytes of stack the inference used (painted high-water mark)
    static_ram: int   # .data + .bss the network and its runtime own, the arena apart
    code: int         # flash beside the weights: code, other constants, the .data image
    weights: int      # the network's constant arrays
    flash: int
    ram: int          # data + bss (arena included) + the stack reservation
    baseline: dict[str, Any]  # TFLM numbers for the same model and core ("ref", "cmsis_nn")
    profile: dict[str, Any] | None = None  # every op's instructions (tinyedge.profile)


def baseline_input(graph: Graph) -> list[np.ndarray]:
    """The TFLM baselines' input: byte i of each input tensor is (i*37 + 11) & 0xff."""
    out = []
    for t in graph.input_tensors:
        raw = ((np.arange(t.nbytes, dtype=np.int64) * 37 + 11) & 0xFF).astype(np.uint8)
        np_t = next(nt for n, nt in DTYPES.values() if n == t.dtype)
        out.append(raw.view(np_t).reshape(t.shape))
    return out


def load_baselines(path: Path | None) -> list[dict[str, Any]]:
    """TFLM's figures (``{"results": [{"model", "core", "variant", ...}, ...]}``); [] when
    the file is absent. A file that is there but not of that form is refused."""
    if path is None or not path.exists():
        return []

    def refuse(why: str) -> TinyEdgeError:
        return TinyEdgeError(f"--baselines {path}: {why}",
                             "give the TFLM baselines file (benchmarks/tflm_qemu.json), or a path that does not "
                             "exist to bench without comparing")
    check_regular(path, "--baselines", "give the TFLM baselines file (benchmarks/tflm_qemu.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except IsADirectoryError:
        raise refuse("is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise refuse(f"cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    except json.JSONDecodeError as exc:
        raise refuse(f"is not valid JSON (truncated or damaged): {exc.msg} at line {exc.lineno}") from None
    rows = data.get("results") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("model", "core", "variant"))
            for r in rows):
        raise refuse("is not a baselines file (a 'results' list of rows with model, core and variant)")
    return rows


def check_bench(models: Iterable[Path], boards: Iterable[str], kernel_sets: Iterable[str]) -> None:
    """Everything a bench run will do is possible, checked before any of it starts:
    every model loads and fits every board with every kernel set, and every board
    runs in QEMU."""
    from tinyedge.boards import load_board
    from tinyedge.pipeline import compile_for_board

    for board_name in boards:
        if not load_board(board_name).qemu_machine:
            raise TinyEdgeError(f"board {board_name} cannot be benchmarked in QEMU", "pick an emulated board")
        for kernels in kernel_sets:
            for model in models:
                compile_for_board(model, board_name, kernels)


def baseline_for(rows: list[dict[str, Any]], model: str, core: str) -> dict[str, Any]:
    """TFLM's figures for ``model`` on ``core``, by variant ("ref", "cmsis_nn")."""
    short = core.replace("cortex-", "")
    found: dict[str, Any] = {}
    for r in rows:
        if r["model"] == model and r["core"] == short:
            found[r["variant"]] = {k: r[k] for k in ("approx_instructions", "arena_used_bytes", "text_minus_model",
                                                     "output_hex") if k in r}
    return found


def bench_model(model_path: Path, board_name: str, workdir: Path, baselines: list[dict[str, Any]],
                log: Callable[[str], None] = lambda _m: None, kernels: str = "auto",
                profile: bool = False) -> BenchRow:
    """Generate, build and run ``model_path`` on ``board_name`` in QEMU with the
    baselines' input; with ``profile``, measure every op too."""
    from tinyedge.build import build_project
    from tinyedge.codegen.project import generate_project
    from tinyedge.lock import project_lock
    from tinyedge.pipeline import compile_for_board
    from tinyedge.validate import validate_on_target

    net = compile_for_board(model_path, board_name, kernels)
    board = net.board
    assert board is not None
    graph = net.graph
    if not board.qemu_machine:
        raise TinyEdgeError(f"board {board_name} cannot be benchmarked in QEMU", "pick an emulated board")
    used = net.kernels
    project = workdir / f"{model_path.stem}-{board_name}-{used}"
    log(f"{model_path.stem} on {board_name} ({used} kernels): generate, build")
    with contextlib.ExitStack() as locked:   # the project is ours until QEMU has loaded the ELF
        locked.enter_context(project_lock(project, log=log))
        proj = generate_project(net, project)
        built = build_project(project)
        assert built.memory is not None  # emulated boards build firmware, not a library
        log(f"{model_path.stem} on {board_name} ({used} kernels): run" + (" and profile" if profile else ""))
        rep = validate_on_target(net, built.elf, [baseline_input(graph)],
                                 workdir / f"{model_path.stem}-{board_name}-{used}.report.json",
                                 asdict(built.memory), emulator="qemu", timeout=300.0,
                                 inputs="the TFLM baselines' input", force=True, started=locked.close,
                                 profile_sample=0 if profile else None)
    s = rep.samples[0]
    m = built.memory
    if s.stack_bytes is None:
        raise TinyEdgeError(f"the firmware for {board_name} did not measure its stack",
                            "regenerate the project with this tinyedge")
    return BenchRow(
        model=model_path.stem, board=board_name, core=board.core, kernels=used, kernels_requested=kernels,
        macs=proj.net.total_macs, instructions=s.instructions or 0, ticks=s.ticks, exact=s.exact,
        oracle=f"{rep.oracle['name']} {rep.oracle['version']}", output_hex=s.output_hex,
        peak_ram=m.arena + s.stack_bytes + m.static_runtime, arena=m.arena, stack=s.stack_bytes,
        static_ram=m.static_runtime, code=m.flash_used - m.weights, weights=m.weights, flash=m.flash_used,
        ram=m.ram_used, baseline=baseline_for(baselines, model_path.stem, board.core), profile=rep.profile,
    )


# ---------------------------------------------------------------------------- comparisons

def _ratio(ours: int, theirs: int | None) -> float | None:
    return ours / theirs if theirs else None


def geomean(values: Iterable[float]) -> float:
    vals = list(values)
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


@dataclass
class Geomean:
    board: str
    kernels: str
    models: int          # how many of the four MLPerf Tiny models it is over
    vs_ref: float | None        # instructions / TFLM reference kernels'
    vs_cmsis_nn: float | None   # instructions / TFLM + CMSIS-NN's


@dataclass
class Target:
    """One of issue 9's targets, judged on the rows at hand."""

    target: str          # what is asked, in words
    board: str
    model: str           # a model, or "geometric mean", or "all"
    measured: str
    limit: str
    met: bool | None     # None: not judged (rows or baselines missing)


def _default_rows(rows: list[BenchRow]) -> list[BenchRow]:
    return [r for r in rows if r.kernels_requested == "auto"]


def _row(rows: list[BenchRow], model: str, board: str, requested: str) -> BenchRow | None:
    return next((r for r in rows if r.model == model and r.board == board and r.kernels_requested == requested),
                None)


def geomeans(rows: list[BenchRow]) -> list[Geomean]:
    """Per board and kernel set: geometric mean over the MLPerf Tiny models present of
    instructions / TFLM's (reference kernels; + CMSIS-NN)."""
    out = []
    keys = sorted({(r.board, r.kernels, r.kernels_requested) for r in rows})
    for board, kernels, requested in keys:
        group = [r for r in rows if (r.board, r.kernels, r.kernels_requested) == (board, kernels, requested)
                 and r.model in MLPERF_MODELS]
        if not group:
            continue

        def mean(variant: str) -> float | None:
            ratios = [_ratio(r.instructions, r.baseline.get(variant, {}).get("approx_instructions")) for r in group]
            return geomean(x for x in ratios if x is not None) if all(x is not None for x in ratios) else None

        out.append(Geomean(board, kernels if requested == "auto" else f"{kernels} (--kernels {requested})",
                           len(group), mean("ref"), mean("cmsis_nn")))
    return out


def targets(rows: list[BenchRow]) -> list[Target]:
    """Issue 9's targets, each judged on the rows present (``met`` None where a row or
    a baseline is missing): on M4 and M7 the default kernels against TFLM +
    CMSIS-NN (instructions per model and their geometric mean, peak RAM against
    TFLM's arena, code); on M55 the default kernels against --kernels portable;
    every output exact."""
    out: list[Target] = []
    default = _default_rows(rows)
    for board in TARGET_BOARDS:
        ratios = []
        for model in MLPERF_MODELS:
            r = _row(default, model, board, "auto")
            nn = r.baseline.get("cmsis_nn", {}) if r else {}
            ratio = _ratio(r.instructions, nn.get("approx_instructions")) if r else None
            ratios.append(ratio)
            out.append(_judge(f"instructions <= {INSTRUCTIONS_PER_MODEL}x TFLM+CMSIS-NN", board, model,
                              ratio, INSTRUCTIONS_PER_MODEL,
                              f"{r.instructions:,} ({ratio:.2f}x)" if r and ratio else "-"))
        known = [x for x in ratios if x is not None]
        gm = geomean(known) if len(known) == len(MLPERF_MODELS) else None
        out.append(_judge(f"instructions <= {INSTRUCTIONS_GEOMEAN}x TFLM+CMSIS-NN, geometric mean", board,
                          "geometric mean", gm, INSTRUCTIONS_GEOMEAN, f"{gm:.3f}x" if gm else "-"))
        for model in MLPERF_MODELS:
            r = _row(default, model, board, "auto")
            nn = r.baseline.get("cmsis_nn", {}) if r else {}
            ratio = _ratio(r.peak_ram, nn.get("arena_used_bytes")) if r else None
            out.append(_judge(f"peak RAM <= {PEAK_RAM_VS_ARENA}x TFLM's arena", board, model, ratio,
                              PEAK_RAM_VS_ARENA, f"{r.peak_ram:,} B ({ratio:.2f}x)" if r and ratio else "-"))
        for model in MLPERF_MODELS:
            r = _row(default, model, board, "auto")
            nn = r.baseline.get("cmsis_nn", {}) if r else {}
            ratio = _ratio(r.code, nn.get("text_minus_model")) if r else None
            out.append(_judge(f"code <= {CODE_VS_TFLM}x TFLM's", board, model, ratio, CODE_VS_TFLM,
                              f"{r.code:,} B ({ratio:.2f}x)" if r and ratio else "-"))
    for model in MLPERF_MODELS:
        fast = _row(rows, model, HELIUM_BOARD, "auto")
        slow = _row(rows, model, HELIUM_BOARD, "portable")
        speedup = slow.instructions / fast.instructions if fast and slow and fast.instructions else None
        met = None if speedup is None else speedup >= HELIUM_SPEEDUP
        out.append(Target(f"default kernels >= {HELIUM_SPEEDUP:g}x fewer instructions than --kernels portable",
                          HELIUM_BOARD, model,
                          f"{fast.instructions:,} vs {slow.instructions:,} ({speedup:.2f}x)"
                          if fast and slow and speedup else "-", f">= {HELIUM_SPEEDUP:g}x", met))
    not_exact = [f"{r.model} on {r.board} ({r.kernels})" for r in rows if not r.exact]
    out.append(Target("every output exact against TFLM", "all", "all",
                      f"{len(rows) - len(not_exact)}/{len(rows)} exact" + (": not " + ", ".join(not_exact)
                                                                          if not_exact else ""),
                      "all", bool(rows) and not not_exact))
    return out


def _judge(what: str, board: str, model: str, ratio: float | None, limit: float, measured: str) -> Target:
    return Target(what, board, model, measured, f"<= {limit:g}x", None if ratio is None else ratio <= limit)


# ---------------------------------------------------------------------------- output

def _fmt_ratio(ours: int, theirs: int | None) -> str:
    r = _ratio(ours, theirs)
    return f"{r:.2f}x" if r is not None else "-"


def _grouped(ts: list[Target]) -> list[tuple[tuple[str, str], list[Target]]]:
    """Targets by (what, board), in order of first appearance."""
    groups: dict[tuple[str, str], list[Target]] = {}
    for t in ts:
        groups.setdefault((t.target, t.board), []).append(t)
    return list(groups.items())


def _verdict(group: list[Target]) -> str:
    judged = [t for t in group if t.met is not None]
    missed = [t for t in judged if not t.met]
    if missed:
        return "NOT MET" + (f" ({len(missed)} of {len(group)})" if len(group) > 1 else "")
    if not judged:
        return "not judged"
    return "met" if len(judged) == len(group) else f"met where judged ({len(judged)} of {len(group)})"


def environment() -> dict[str, str]:
    """The tools the figures depend on, as their first --version line."""
    env = {}
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        path = shutil.which(tool)
        if path is None:
            env[tool] = "not found"
            continue
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        env[tool] = (proc.stdout.splitlines() or ["?"])[0].strip()
    return env


@dataclass
class Results:
    rows: list[BenchRow]
    env: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tinyedge_version": __version__,
            "method": ("instructions: SysTick ticks under QEMU -icount shift=0 x the board's instructions per "
                       "tick, SysTick restarted at a fixed phase before the timed region; peak_ram: arena + "
                       "stack used by the inference (painted high-water mark) + static RAM of the network and "
                       "its runtime (ELF symbols; not the validation server's or the board support's); code: "
                       "flash - weights; exact: output bytes equal to the oracle's; input "
                       "input[i] = (int8_t)((i*37 + 11) & 0xff); see benchmarks/README.md"),
            "environment": self.env,
            "results": [asdict(r) for r in self.rows],
            "geomeans": [asdict(g) for g in geomeans(self.rows)],
            "targets": [asdict(t) for t in targets(self.rows)],
        }


def to_markdown(results: Results) -> str:
    rows = results.rows
    oracles = ", ".join(sorted({r.oracle for r in rows})) or "tflite-micro"
    env = "; ".join(f"{k}: {v}" for k, v in results.env.items())
    lines = [
        "# tinyedge benchmarks",
        "",
        f"tinyedge {__version__}. Instructions per inference from SysTick under QEMU `-icount shift=0`",
        "(ticks x instructions per tick of the board, SysTick restarted at a fixed phase: identical run to",
        "run), input `input[i] = (int8_t)((i*37 + 11) & 0xff)` as in the TFLite Micro baselines. Peak RAM =",
        "arena + stack used by the inference (painted) + static RAM of the network and its runtime. Code =",
        "flash - weights. Ratios are tinyedge / TFLM: below 1 is better. \"exact\": every output byte equals",
        f"what TensorFlow Lite Micro computes ({oracles}). Method and reproduction: [README.md](README.md).",
    ]
    if env:
        lines += ["", f"Tools: {env}."]
    lines += [
        "",
        "## Issue 9 targets",
        "",
        "| target | board | " + " | ".join(MLPERF_MODELS) + " | |",
        "|---|---|" + "---:|" * len(MLPERF_MODELS) + "---|",
    ]
    for (what, board), group in _grouped(targets(rows)):
        cells = {t.model: t.measured + ("" if t.met is not False else " (not met)") for t in group}
        if len(group) == 1 and group[0].model not in MLPERF_MODELS:   # one figure for all the models
            row = [f"{group[0].measured}"] + [""] * (len(MLPERF_MODELS) - 1)
        else:
            row = [cells.get(m, "-") for m in MLPERF_MODELS]
        lines.append(f"| {what} | {board} | " + " | ".join(row) + f" | {_verdict(group)} |")
    lines += [
        "",
        "## Results",
        "",
        "| model | board | kernels | MACs | instructions | vs TFLM ref | vs TFLM+CMSIS-NN "
        "| peak RAM B (arena + stack + static) | vs TFLM arena | code B | vs TFLM code | weights B | exact |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ref = r.baseline.get("ref", {})
        nn = r.baseline.get("cmsis_nn", {})
        kernels = r.kernels if r.kernels_requested == "auto" else f"{r.kernels} (forced)"
        lines.append(
            f"| {r.model} | {r.board} | {kernels} | {r.macs:,} | {r.instructions:,} "
            f"| {_fmt_ratio(r.instructions, ref.get('approx_instructions'))} "
            f"| {_fmt_ratio(r.instructions, nn.get('approx_instructions'))} "
            f"| {r.peak_ram:,} ({r.arena:,} + {r.stack:,} + {r.static_ram:,}) "
            f"| {_fmt_ratio(r.peak_ram, nn.get('arena_used_bytes'))} "
            f"| {r.code:,} | {_fmt_ratio(r.code, nn.get('text_minus_model'))} | {r.weights:,} "
            f"| {'yes' if r.exact else 'NO'} |"
        )
    gms = geomeans(rows)
    if gms:
        lines += [
            "",
            "## Geometric means over the MLPerf Tiny models (KWS, VWW, IC, AD)",
            "",
            "| board | kernels | models | instructions vs TFLM ref | vs TFLM+CMSIS-NN |",
            "|---|---|---:|---:|---:|",
        ]
        for g in gms:
            lines.append(f"| {g.board} | {g.kernels} | {g.models} "
                         f"| {f'{g.vs_ref:.3f}x' if g.vs_ref else '-'} "
                         f"| {f'{g.vs_cmsis_nn:.3f}x' if g.vs_cmsis_nn else '-'} |")
    lines += [
        "",
        "TFLM's figures (tflm_qemu.json, measured the same way on the same QEMU machines): instructions",
        "from SysTick x 40, arena = `arena_used_bytes()` (stack and other static RAM not counted), code = text",
        "minus the model array (TFLM, its kernels, the harness, newlib-nano's vsnprintf). Ours: code includes",
        "the runtime, kernels, board support and the validation server.",
    ]
    profiled = [r for r in rows if r.profile]
    if profiled:
        from tinyedge.profile import markdown_table

        lines += ["", "## Where the instructions go", ""]
        for r in profiled:
            assert r.profile is not None
            lines += [f"### {r.model} on {r.board} ({r.kernels})", ""]
            lines += markdown_table(r.profile)
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def write_results(rows: list[BenchRow], outdir: Path, env: dict[str, str] | None = None) -> tuple[Path, Path]:
    results = Results(rows, env if env is not None else environment())
    outdir.mkdir(parents=True, exist_ok=True)
    js = outdir / "results.json"
    md = outdir / "results.md"
    write_atomic(js, json.dumps(results.to_dict(), indent=2) + "\n", "the benchmark results")
    write_atomic(md, to_markdown(results), "the benchmark table")
    return js, md
