"""The `tinyedge` command line: parses arguments and prints; the work is elsewhere."""

from __future__ import annotations

import errno
import json
import math
import sys
import traceback
from functools import wraps
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tinyedge import __version__, procs
from tinyedge.errors import INTERNAL_ERROR_EXIT, REPORT_BUG, InternalError, TinyEdgeError
from tinyedge.outputs import check_output_dir, check_output_file

# Piped output (logs, CI) gets wide tables instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else 160
out = Console(soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, soft_wrap=True, width=_WIDTH)


def _fail(message: str, hint: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        err.print(f"[yellow]hint:[/] {escape(hint)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a TinyEdgeError as one line + hint, no traceback, exit 1; an
    interruption or a termination signal as one line, exit 128 + signal; and
    a bug (InternalError or any unexpected exception) with its traceback and a
    request to report it, exit 70. Child processes are stopped on every path
    (tinyedge.procs)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with procs.signals_raise():
                return fn(*args, **kwargs)
        except TinyEdgeError as exc:
            _fail(exc.message, exc.hint)
        except (KeyboardInterrupt, procs.Terminated) as exc:
            name = exc.name if isinstance(exc, procs.Terminated) else "Ctrl-C"
            err.print(f"[red]interrupted ({name})[/]: stopped, and every program tinyedge started with it",
                      highlight=False)
            sys.exit(procs.exit_code(exc))
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # usage errors: click prints them
        except OSError as exc:  # the environment, not tinyedge: a full disk, a vanished file
            where = f": {exc.filename}" if exc.filename else ""
            _fail(f"{exc.strerror or exc}{where}",
                  "free some disk space and run again" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                  else "check the path and its permissions")
        except Exception as exc:  # noqa: BLE001 - a bug: show everything
            err.print(traceback.format_exc(), highlight=False, markup=False, soft_wrap=True)
            if isinstance(exc, InternalError) and exc.detail:
                err.print(exc.detail, highlight=False, markup=False, soft_wrap=True)
            message = exc.message if isinstance(exc, InternalError) else f"{type(exc).__name__}: {exc}"
            err.print(f"[bold red]internal error:[/] {escape(message)}", highlight=False, soft_wrap=True)
            err.print(f"[yellow]{REPORT_BUG}[/] (tinyedge {__version__})", highlight=False, soft_wrap=True)
            sys.exit(INTERNAL_ERROR_EXIT)

    return wrapper


def _check(ok: bool, message: str, hint: str) -> None:
    """A command-line value that makes no sense: refused before any work."""
    if not ok:
        raise TinyEdgeError(message, hint)


def _given(ctx: click.Context, name: str) -> bool:
    """Did the user give option ``name`` (not its default)?"""
    return ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinyedge")
def main() -> None:
    """tinyedge: trained model -> int8 TFLite -> ahead-of-time C firmware for
    Cortex-M -> validated bit-exact against TFLite, on a board or in QEMU.

    \b
    Typical flow:
      tinyedge convert model.keras -o model.tflite --calibration calib.npy
      tinyedge inspect model.tflite --board mps2-an386
      tinyedge generate model.tflite --board mps2-an386 -o fw
      tinyedge build fw
      tinyedge validate model.tflite --board mps2-an386 --emulator qemu --random 10
    """


# ---------------------------------------------------------------- convert
@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="the int8 .tflite to write")
@click.option("--calibration", type=click.Path(path_type=Path), required=True,
              help="representative inputs (.npy or .npz, see docs/datasets.md)")
@click.option("--validation", type=click.Path(path_type=Path), default=None,
              help="inputs (and optional labels y) for the float-vs-int8 drift report")
@click.option("--io", "io", type=click.Choice(["int8", "float"]), default="int8", show_default=True,
              help="int8 input/output, or float I/O with QUANTIZE/DEQUANTIZE at the edges")
@user_errors
def convert(model: Path, output: Path, calibration: Path, validation: Path | None, io: str) -> None:
    """Quantize a Keras model (.keras, .h5) or SavedModel dir to a full-int8 .tflite."""
    from tinyedge.convert import convert_model

    check_output_file(output, "-o")
    report = convert_model(model, output, calibration, validation, io=io)  # type: ignore[arg-type]
    click.echo(report.format())
    out.print(f"wrote {output}")


# ---------------------------------------------------------------- inspect
@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--board", default=None, help="check whether the model fits this board")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
@user_errors
def inspect(model: Path, board: str | None, as_json: bool) -> None:
    """Ops, tensors, parameters, MACs, arena size; does it fit a board?

    Exits 1 when the model has ops tinyedge cannot generate, or when it cannot
    fit --board."""
    from tinyedge.analysis import inspect_network
    from tinyedge.compiler import compile
    from tinyedge.model import load_model

    b = None
    if board:
        from tinyedge.boards import load_board

        b = load_board(board)
    insp = inspect_network(compile(load_model(model), b, strict=False))
    if as_json:
        click.echo(json.dumps(insp.to_dict(), indent=2))
    else:
        _print_inspection(insp)
    if insp.problems or (insp.fit is not None and insp.fit.verdict == "does not fit"):
        sys.exit(1)


def _print_inspection(insp: Any) -> None:
    out.print(f"[bold]{insp.model}[/]  {insp.model_bytes} B  sha256 {insp.sha256}", highlight=False)
    out.print(f"inputs:  {', '.join(insp.inputs)}", highlight=False)
    out.print(f"outputs: {', '.join(insp.outputs)}", highlight=False)
    table = Table(show_lines=False)
    for col in ("#", "op", "inputs -> outputs", "options", "params B", "MACs"):
        table.add_column(col, justify="right" if col in ("#", "params B", "MACs") else "left")
    for r in insp.ops:
        opts = " ".join(f"{k}={v}" for k, v in r.options.items())
        name = r.opcode if r.supported else f"[red]{r.opcode} (unsupported)[/]"
        table.add_row(str(r.index), name, f"{' '.join(r.inputs)}\n-> {' '.join(r.outputs)}", opts,
                      f"{r.param_bytes:,}", f"{r.macs:,}")
    out.print(table)
    out.print(f"parameters: {insp.param_bytes:,} B   MACs: {insp.total_macs:,}   "
              f"arena: {insp.arena_bytes:,} B{'' if insp.arena_exact else ' (estimate: unsupported ops)'}",
              highlight=False)
    if insp.fit is not None:
        f = insp.fit
        color = {"fits": "green", "does not fit": "red"}.get(f.verdict, "yellow")
        detail = "" if f.fits else f": {f.reason}"
        out.print(f"board {f.board}: flash {f.flash_min:,}..{f.flash_max:,} of {f.flash_size:,} B, "
                  f"RAM {f.ram_min:,}..{f.ram_max:,} of {f.ram_size:,} B -> [{color}]{f.verdict}[/]{detail}",
                  highlight=False)
    if insp.problems:
        out.print("[red]unsupported:[/]")
        for p in insp.problems:
            out.print(f"  {p}", highlight=False)
        out.print(f"supported ops: {', '.join(insp.supported_ops)}", highlight=False)


# ---------------------------------------------------------------- generate
@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--board", required=True, help="board name (see `tinyedge boards`)")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="project directory")
@user_errors
def generate(model: Path, board: str, output: Path) -> None:
    """Render a self-contained firmware project (builds with plain `make`).

    Into an existing project directory: the files of the previous generation
    that this one does not write are removed (unless you changed them), and
    files tinyedge did not write are left alone. Exits 1 when the model cannot
    fit the board."""
    from tinyedge.codegen.project import generate_project
    from tinyedge.pipeline import compile_for_board

    check_output_dir(output, "-o")
    proj = generate_project(compile_for_board(model, board), output, log=_note)
    for rel in proj.kept:
        err.print(f"[yellow]note:[/] kept {proj.path / rel}: the previous generation wrote it and you changed it; "
                  "this generation does not use it (delete it if the build trips on it)", highlight=False)
    out.print(f"generated {proj.path} for {proj.board_name}: {len(proj.net.ops)} ops, "
              f"arena {proj.net.arena_bytes:,} B, {proj.net.total_macs:,} MACs", highlight=False)
    out.print(f"next: tinyedge build {proj.path}   (or: make -C {proj.path})", highlight=False)


# ---------------------------------------------------------------- build
@main.command()
@click.argument("project", type=click.Path(path_type=Path))
@user_errors
def build(project: Path) -> None:
    """Build a generated project with arm-none-eabi-gcc; print flash and RAM use.

    A failed build shows the compiler's first error; make's whole output is in
    PROJECT/build/make.log."""
    from tinyedge.build import build_project, read_manifest

    read_manifest(project)  # a tinyedge project, before anything else
    check_output_dir(project, "PROJECT")
    res = build_project(project, log=_note)
    _print_memory(res.memory)
    out.print(f"firmware: {res.elf}", highlight=False)


def _print_memory(m: Any) -> None:
    table = Table(title="memory (from the ELF)")
    table.add_column("section")
    table.add_column("bytes", justify="right")
    table.add_column("in")
    for name, val, where in m.rows():
        table.add_row(name, f"{val:,}", where)
    out.print(table)
    out.print(f"flash {m.flash_used:,} / {m.flash_size:,} B ({100 * m.flash_used / m.flash_size:.1f} %)   "
              f"RAM {m.ram_used:,} / {m.ram_size:,} B ({100 * m.ram_used / m.ram_size:.1f} %)", highlight=False)


# ---------------------------------------------------------------- validate
@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--board", required=True, help="board name (see `tinyedge boards`)")
@click.option("--emulator", type=click.Choice(["qemu", "renode"]), default=None, help="run in an emulator")
@click.option("--port", default=None, help="serial port of a flashed board, e.g. /dev/ttyACM0")
@click.option("--data", type=click.Path(path_type=Path), default=None, help="inputs (.npy/.npz)")
@click.option("--random", "n_random", type=int, default=None, help="N random inputs instead of --data")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for --random")
@click.option("--report", type=click.Path(path_type=Path), default=Path("report.json"), show_default=True,
              help="the report, rewritten after every sample; an existing report of another model or board "
                   "is not overwritten without --force")
@click.option("--project", type=click.Path(path_type=Path), default=None,
              help="firmware project dir (default: tinyedge_build/<model>-<board>)")
@click.option("--firmware", type=click.Path(path_type=Path), default=None,
              help="validate this already built firmware (ELF, or its project dir) as it is: no generate/build")
@click.option("--resume", is_flag=True,
              help="keep the samples already in --report and continue; refused unless the report is of this "
                   "very run (model, board, inputs)")
@click.option("--force", is_flag=True, help="overwrite --report even when it holds another run's report")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="seconds to wait for the device")
@click.option("--per-layer", "per_layer", is_flag=True,
              help="compare every op's output on the device with the oracle, for one sample (--sample)")
@click.option("--sample", "sample", type=int, default=0, show_default=True,
              help="with --per-layer: which sample of --data/--random")
@click.pass_context
@user_errors
def validate(ctx: click.Context, model: Path, board: str, emulator: str | None, port: str | None,
             data: Path | None, n_random: int | None, seed: int, report: Path, project: Path | None,
             firmware: Path | None, resume: bool, force: bool, timeout: float, per_layer: bool,
             sample: int) -> None:
    """Run the model on a device or emulator; compare every output with TensorFlow Lite Micro.

    The oracle is the TFLM interpreter (PyPI tflite-micro): the pass criterion is
    that every output byte equals its output. The TFLite interpreter's answer is
    shown beside it as a second opinion. With --per-layer, the device runs the
    network op by op and every op's output is compared, to find the first op
    where the firmware and TFLM part ways.
    """
    from tinyedge.pipeline import validate_model

    if (emulator is None) == (port is None):
        raise click.UsageError("give exactly one of --emulator or --port")
    if (data is None) == (n_random is None):
        raise click.UsageError("give exactly one of --data or --random N")
    _check_run_options(n_random, seed, timeout, sample)
    check_output_file(report, "--report")
    if project is not None:
        check_output_dir(project, "--project", create_parents=not _given(ctx, "project"))

    def progress(i: int, n: int, s: Any) -> None:
        # every sample for small runs; for large ones every tenth, and every mismatch
        if n > 20 and s.exact and (i + 1) % max(1, n // 10) and i + 1 != n:
            return
        mark = "[green]exact[/]" if s.exact else f"[red]MISMATCH ({s.mismatches} values, max diff {s.max_abs_diff:g})[/]"
        cost = f"{s.instructions:,} instructions" if s.instructions is not None else f"{s.ticks:,} ticks"
        out.print(f"sample {i + 1}/{n}: {mark}  {cost}", highlight=False)

    def layer_progress(layer: Any) -> None:
        mark = ("[green]exact[/]" if layer.exact else
                f"[red]{layer.mismatches}/{layer.elements} differ, max {layer.max_abs_diff:g}[/]")
        out.print(f"op {layer.op:>3} {layer.opcode:<24} out {layer.output} {layer.dtype}{layer.shape}: {mark}",
                  highlight=False)

    rep = validate_model(model, board, emulator=emulator, port=port, data=data, n_random=n_random,
                         seed=seed, report_path=report, project=project, firmware=firmware, resume=resume,
                         force=force, timeout=timeout, per_layer_sample=sample if per_layer else None,
                         progress=progress, layer_progress=layer_progress,
                         log=lambda msg: out.print(msg, highlight=False))
    oracle = rep.oracle
    if oracle["note"]:
        out.print(f"[yellow]note:[/] {oracle['note']}", highlight=False)
    oracle_name = f"{oracle['label']} ({oracle['name']} {oracle['version']})"
    if rep.per_layer is not None:
        _print_per_layer(rep.per_layer, oracle_name, report)
        return
    s = rep.summary()
    verdict = "[bold green]PASS[/]" if rep.all_exact else "[bold red]FAIL[/]"
    instr = (f", {s['instructions_median']:,} instructions/inference (SysTick under QEMU icount)"
             if s["instructions_median"] is not None else
             f", {s['ticks_median']:,} SysTick ticks/inference" if s["ticks_median"] is not None else "")
    out.print(f"{verdict}: {s['exact']}/{s['samples']} samples exact with {oracle_name}{instr}", highlight=False)
    second = rep.second_opinion_summary()
    if second is not None and rep.second_opinion is not None:
        name = f"{rep.second_opinion['name']} {rep.second_opinion['version']}"
        if second["elements_differing"]:
            out.print(f"second opinion, the TFLite interpreter ({name}; not the pass criterion): "
                      f"{second['samples_differing']}/{second['samples']} samples differ from it, "
                      f"{second['elements_differing']:,} output elements, by up to {second['max_abs_diff']:g}",
                      highlight=False)
        else:
            out.print(f"second opinion, the TFLite interpreter ({name}): agrees on every output", highlight=False)
    m = rep.memory
    if m:
        out.print(f"flash {m['flash_used']:,} B, RAM {m['ram_used']:,} B (arena {m['arena']:,} B); "
                  f"report: {report}", highlight=False)
    if not rep.all_exact:
        first = rep.first_mismatch
        target = f"--emulator {emulator}" if emulator else f"--port {port}"
        inputs = f"--data {data}" if data is not None else f"--random {n_random} --seed {seed}"
        err.print(f"[yellow]hint:[/] find the first op that differs: tinyedge validate {model} --board {board} "
                  f"{target} {inputs} --per-layer --sample {first}", highlight=False, soft_wrap=True)
        sys.exit(1)


def _note(msg: str) -> None:
    err.print(f"[yellow]note:[/] {escape(msg)}", highlight=False)


def _check_run_options(n_random: int | None, seed: int, timeout: float, sample: int) -> None:
    _check(n_random is None or n_random >= 1, f"--random {n_random}: the number of random samples must be at least 1",
           "e.g. --random 10")
    _check(seed >= 0, f"--seed {seed}: the seed must be 0 or more", "e.g. --seed 0")
    _check(math.isfinite(timeout) and timeout > 0, f"--timeout {timeout:g}: must be a positive number of seconds",
           "e.g. --timeout 60")
    _check(sample >= 0, f"--sample {sample}: sample numbers start at 0", "e.g. --sample 0 for the first sample")


def _print_per_layer(per_layer: dict[str, Any], oracle_name: str, report: Path) -> None:
    layers = per_layer["layers"]
    first = per_layer["first_mismatch"]
    if first is None:
        out.print(f"[bold green]PASS[/]: all {len(layers)} op outputs of sample {per_layer['sample']} are exact "
                  f"with {oracle_name}; report: {report}", highlight=False)
        return
    row = next(r for r in layers if r["op"] == first["op"] and r["output"] == first["output"])
    bad = sum(1 for r in layers if not r["exact"])
    out.print(f"[bold red]FAIL[/]: op {row['op']} ({row['opcode']}) is the first op whose output differs from "
              f"{oracle_name}: output {row['output']} {row['dtype']}{row['shape']} ({row['name'] or 'unnamed'}), "
              f"{row['mismatches']:,} of {row['elements']:,} elements differ, by up to {row['max_abs_diff']:g}; "
              f"{bad} op output(s) differ in all; report: {report}", highlight=False)
    sys.exit(1)


# ---------------------------------------------------------------- run
@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--board", default="mps2-an386", show_default=True)
@click.option("--emulator", type=click.Choice(["qemu", "renode"]), default=None)
@click.option("--port", default=None, help="serial port of a flashed board")
@click.option("--calibration", type=click.Path(path_type=Path), default=None,
              help="needed when MODEL is a Keras model or SavedModel (it is converted first)")
@click.option("--data", type=click.Path(path_type=Path), default=None)
@click.option("--random", "n_random", type=int, default=None)
@click.option("-o", "--outdir", type=click.Path(path_type=Path), default=Path("tinyedge_build"), show_default=True)
@click.pass_context
@user_errors
def run(ctx: click.Context, model: Path, board: str, emulator: str | None, port: str | None,
        calibration: Path | None, data: Path | None, n_random: int | None, outdir: Path) -> None:
    """Chain the steps: [convert] -> generate -> build -> validate.

    Writes into OUTDIR: the converted model, the project <model>-<board>/ and
    its report <model>-<board>.report.json."""
    if (emulator is None) == (port is None):
        raise click.UsageError("give exactly one of --emulator or --port")
    if (data is None) == (n_random is None):
        raise click.UsageError("give exactly one of --data or --random N")
    _check_run_options(n_random, 0, 60.0, 0)
    check_output_dir(outdir, "--outdir", create_parents=not _given(ctx, "outdir"))
    tflite_path = model
    if model.suffix != ".tflite":
        if calibration is None:
            raise click.UsageError("MODEL is not a .tflite: give --calibration to convert it first")
        tflite_path = outdir / f"{model.stem}_int8.tflite"
        outdir.mkdir(parents=True, exist_ok=True)
        ctx.invoke(convert, model=model, output=tflite_path, calibration=calibration, validation=data,
                   io="int8")
    name = f"{tflite_path.stem}-{board}"
    outdir.mkdir(parents=True, exist_ok=True)
    ctx.invoke(validate, model=tflite_path, board=board, emulator=emulator, port=port, data=data,
               n_random=n_random, seed=0, report=outdir / f"{name}.report.json", project=outdir / name,
               firmware=None, resume=False, force=False, timeout=60.0, per_layer=False, sample=0)


# ---------------------------------------------------------------- bench
@main.command()
@click.argument("models", nargs=-1, type=click.Path(path_type=Path), required=True)
@click.option("--board", "boards_", multiple=True, default=["mps2-an386"], show_default=True,
              help="emulated board(s) to run on; repeat for several")
@click.option("--baselines", type=click.Path(path_type=Path), default=Path("../shared/baselines/tflm_qemu.json"),
              show_default=True, help="TFLM numbers to compare with (skipped when the file is absent)")
@click.option("-o", "--outdir", type=click.Path(path_type=Path), default=Path("benchmarks"), show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("tinyedge_build/bench"), show_default=True)
@user_errors
@click.pass_context
def bench(ctx: click.Context, models: tuple[Path, ...], boards_: tuple[str, ...], baselines: Path, outdir: Path,
          workdir: Path) -> None:
    """Instructions, flash and RAM per model in QEMU, beside TFLite Micro; writes JSON + Markdown."""
    from tinyedge.bench import bench_model, load_baselines, write_results

    check_output_dir(outdir, "--outdir", create_parents=not _given(ctx, "outdir"))
    check_output_dir(workdir, "--workdir", create_parents=not _given(ctx, "workdir"))
    base = load_baselines(baselines)
    rows = []
    for board in boards_:
        for model in models:
            row = bench_model(model, board, workdir, base, log=lambda m: err.print(m, highlight=False))
            rows.append(row)
            out.print(f"{row.model} on {row.board}: {row.instructions:,} instructions, arena {row.arena:,} B, "
                      f"flash {row.flash:,} B, {'exact' if row.exact else 'MISMATCH'}", highlight=False)
    js, md = write_results(rows, outdir)
    out.print(f"wrote {js} and {md}")
    if not all(r.exact for r in rows):
        sys.exit(1)


# ---------------------------------------------------------------- ops / boards
@main.command()
@click.option("--json", "as_json", is_flag=True)
def ops(as_json: bool) -> None:
    """The supported ops and their constraints (from the code generator's registry)."""
    from tinyedge.ops import load_all

    reg = load_all()
    if as_json:
        click.echo(json.dumps({k: reg[k].constraints for k in sorted(reg)}, indent=2))
        return
    table = Table(title=f"{len(reg)} supported ops")
    table.add_column("op")
    table.add_column("constraints")
    for name in sorted(reg):
        table.add_row(name, reg[name].constraints)
    out.print(table)


@main.command()
@user_errors
def boards() -> None:
    """The boards tinyedge can generate firmware for."""
    from tinyedge.boards import list_boards, load_board

    table = Table()
    for col in ("board", "core", "flash", "RAM", "QEMU machine", "description"):
        table.add_column(col)
    for name in list_boards():
        b = load_board(name)
        table.add_row(b.name, b.core, f"{b.flash_size // 1024} KB", f"{b.ram_size // 1024} KB",
                      b.qemu_machine or "-", b.description)
    out.print(table)


if __name__ == "__main__":
    main()
