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
from tinyedge.kernels import CHOICES as KERNEL_CHOICES

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


KERNELS_HELP = ("kernel set: auto = the best the board's core has (mve on Cortex-M55, dsp on M4/M7/M33, "
                "portable otherwise); portable forces the plain C kernels; a set the core lacks is refused")


def kernels_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--kernels", type=click.Choice(KERNEL_CHOICES), default="auto", show_default=True,
                        help=KERNELS_HELP)(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinyedge")
def main() -> None:
    """tinyedge: trained model -> int8 TFLite -> ahead-of-time C firmware for
    Cortex-M -> validated exact with TensorFlow Lite Micro, on a board or in QEMU.

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
@kernels_option
@user_errors
def inspect(model: Path, board: str | None, as_json: bool, kernels: str) -> None:
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
    insp = inspect_network(compile(load_model(model), b, kernels=kernels, strict=False))
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
              f"arena: {insp.arena_bytes:,} B{'' if insp.arena_exact else ' (estimate: unsupported ops)'} "
              f"with the {insp.kernels} kernels",
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
@kernels_option
@user_errors
def generate(model: Path, board: str, output: Path, kernels: str) -> None:
    """Render a self-contained firmware project (builds with plain `make`).

    Into an existing project directory: the files of the previous generation
    that this one does not write are removed (unless you changed them), and
    files tinyedge did not write are left alone. Exits 1 when the model cannot
    fit the board."""
    from tinyedge.codegen.project import generate_project
    from tinyedge.pipeline import compile_for_board

    check_output_dir(output, "-o")
    proj = generate_project(compile_for_board(model, board, kernels), output, log=_note)
    for rel in proj.kept:
        err.print(f"[yellow]note:[/] kept {proj.path / rel}: the previous generation wrote it and you changed it; "
                  "this generation does not use it (delete it if the build trips on it)", highlight=False)
    out.print(f"generated {proj.path} for {proj.board_name} ({proj.net.kernels} kernels): {len(proj.net.ops)} ops, "
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
    if res.memory is None:  # a library target
        out.print(f"library: {res.elf}  (link it into your firmware with your port layer)",
                  highlight=False)
        return
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
@click.option("--port", default=None,
              help="serial port of the board, e.g. /dev/ttyACM0, or `auto` (found by the board's USB ID)")
@click.option("--flash", "flash_first", is_flag=True, help="flash the built firmware before validating (with --port)")
@click.option("--probe", default=None, help="with --flash: probe ID, or gdb://HOST:PORT (see `tinyedge flash`)")
@click.option("--data", type=click.Path(path_type=Path), default=None, help="inputs (.npy/.npz)")
@click.option("--random", "n_random", type=int, default=None,
              help="N random inputs instead of --data (at most 100,000, and 1 GiB of input data)")
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
@click.option("--timeout", type=float, default=None,
              help="longest wait on the device in seconds, a running inference included (default: from the "
                   "model's size and the board's speed, at least 10)")
@click.option("--baud", type=int, default=None, help="with --port: the line's baud rate (default: the board file's)")
@click.option("--per-layer", "per_layer", is_flag=True,
              help="compare every op's output on the device with the oracle, for one sample (--sample)")
@click.option("--profile", "profile", is_flag=True,
              help="then measure every op's cost on one sample (--sample): instructions in an emulator, "
                   "cycles on a board; printed as a table and written to the report")
@click.option("--sample", "sample", type=int, default=0, show_default=True,
              help="with --per-layer or --profile: which sample of --data/--random")
@kernels_option
@click.pass_context
@user_errors
def validate(ctx: click.Context, model: Path, board: str, emulator: str | None, port: str | None,
             flash_first: bool, probe: str | None, data: Path | None, n_random: int | None, seed: int,
             report: Path, project: Path | None, firmware: Path | None, resume: bool, force: bool,
             timeout: float | None, baud: int | None, per_layer: bool, sample: int, profile: bool = False,
             kernels: str = "auto") -> None:
    """Run the model on a device or emulator; compare every output with TensorFlow Lite Micro.

    The oracle is the TFLM interpreter (PyPI tflite-micro): the pass criterion is
    that every output byte equals its output. The TFLite interpreter's answer is
    shown beside it as a second opinion. With --per-layer, the device runs the
    network op by op and every op's output is compared, to find the first op
    where the firmware and TFLM part ways. With --profile, every op's cost is
    then measured on the device (the network runs ops 0..k for every k; op k
    costs the difference) and printed as a table.

    With --port the firmware runs on a board: a board that resets mid-run is
    checked again and the sample in flight sent again (the report counts the
    resets), corrupted or lost frames are sent again, and no wait on the
    device outlasts --timeout.
    """
    from tinyedge.pipeline import validate_model

    if (emulator is None) == (port is None):
        raise click.UsageError("give exactly one of --emulator or --port")
    if flash_first and port is None:
        raise click.UsageError("--flash programs a board: give --port (not --emulator)")
    if probe is not None and not flash_first:
        raise click.UsageError("--probe is for --flash")
    if (data is None) == (n_random is None):
        raise click.UsageError("give exactly one of --data or --random N")
    if profile and per_layer:
        raise click.UsageError("--profile and --per-layer are separate runs: give one of them")
    _check_run_options(n_random, seed, timeout, sample, baud)
    check_output_file(report, "--report")
    if project is not None:
        check_output_dir(project, "--project", create_parents=not _given(ctx, "project"))

    def progress(i: int, n: int, s: Any) -> None:
        # every sample for small runs; for large ones every tenth, and every mismatch
        if n > 20 and s.exact and (i + 1) % max(1, n // 10) and i + 1 != n:
            return
        mark = "[green]exact[/]" if s.exact else f"[red]MISMATCH ({s.mismatches} values, max diff {s.max_abs_diff:g})[/]"
        if s.device_resets:
            mark += f" [yellow](the device reset {s.device_resets} time(s); sent again from scratch)[/]"
        cost = _latency(s.instructions, s.cycles, s.microseconds, s.ticks)
        out.print(f"sample {i + 1}/{n}: {mark}  {cost}", highlight=False)

    def layer_progress(layer: Any) -> None:
        mark = ("[green]exact[/]" if layer.exact else
                f"[red]{layer.mismatches}/{layer.elements} differ, max {layer.max_abs_diff:g}[/]")
        out.print(f"op {layer.op:>3} {layer.opcode:<24} out {layer.output} {layer.dtype}{layer.shape}: {mark}",
                  highlight=False)

    rep = validate_model(model, board, emulator=emulator, port=port, data=data, n_random=n_random,
                         seed=seed, report_path=report, project=project, firmware=firmware, resume=resume,
                         force=force, timeout=timeout, baud=baud, per_layer_sample=sample if per_layer else None,
                         progress=progress, layer_progress=layer_progress,
                         log=lambda msg: out.print(msg, highlight=False), flash=flash_first, probe=probe,
                         profile_sample=sample if profile else None, profile_progress=_profile_progress,
                         kernels=kernels)
    oracle = rep.oracle
    if oracle["note"]:
        out.print(f"[yellow]note:[/] {oracle['note']}", highlight=False)
    oracle_name = f"{oracle['label']} ({oracle['name']} {oracle['version']})"
    if rep.per_layer is not None:
        _print_per_layer(rep.per_layer, oracle_name, report)
        return
    s = rep.summary()
    verdict = "[bold green]PASS[/]" if rep.all_exact else "[bold red]FAIL[/]"
    if s["instructions_median"] is not None:
        instr = f", {s['instructions_median']:,} instructions/inference (SysTick under QEMU icount)"
    elif s["cycles_median"] is not None:
        instr = ", " + _latency(None, s["cycles_median"], s["microseconds_median"], 0) + "/inference"
        clock = rep.device.get("clock_hz", 0)
        instr += f" (cycle counter, {clock / 1e6:g} MHz)" if clock else " (cycle counter)"
    elif s["ticks_median"] is not None:
        instr = f", {s['ticks_median']:,} SysTick ticks/inference"
    else:
        instr = ""
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
        stack = (f", stack used by the network {s['stack_bytes_max']:,} B"
                 if s["stack_bytes_max"] is not None else "")
        out.print(f"flash {m['flash_used']:,} B, RAM {m['ram_used']:,} B (arena {m['arena']:,} B{stack}); "
                  f"report: {report}", highlight=False)
    if rep.profile is not None:
        print_profile(rep.profile)
    link = rep.link
    if link and (link["device_resets"] or link["retries"]):
        out.print(f"link: {link['device_resets']} device reset(s), {link['retries']} request(s) sent again, "
                  f"{link['corrupted_frames']} corrupted frame(s) dropped; nothing was lost", highlight=False)
    if not rep.all_exact:
        first = rep.first_mismatch
        target = f"--emulator {emulator}" if emulator else f"--port {port}"
        inputs = f"--data {data}" if data is not None else f"--random {n_random} --seed {seed}"
        err.print(f"[yellow]hint:[/] find the first op that differs: tinyedge validate {model} --board {board} "
                  f"{target} {inputs} --per-layer --sample {first}", highlight=False, soft_wrap=True)
        sys.exit(1)


def _latency(instructions: int | None, cycles: int | None, micros: float | None, ticks: int) -> str:
    """Emulated boards: instructions; boards with a cycle counter: cycles and µs."""
    if instructions is not None:
        return f"{instructions:,} instructions"
    if cycles is not None:
        return f"{cycles:,} cycles" + (f" = {micros:,.1f} µs" if micros is not None else "")
    return f"{ticks:,} ticks"


def _note(msg: str) -> None:
    err.print(f"[yellow]note:[/] {escape(msg)}", highlight=False)


def _check_run_options(n_random: int | None, seed: int, timeout: float | None, sample: int,
                       baud: int | None = None) -> None:
    _check(n_random is None or n_random >= 1, f"--random {n_random}: the number of random samples must be at least 1",
           "e.g. --random 10")
    _check(seed >= 0, f"--seed {seed}: the seed must be 0 or more", "e.g. --seed 0")
    _check(timeout is None or (math.isfinite(timeout) and timeout > 0),
           f"--timeout {timeout:g}: must be a positive number of seconds" if timeout is not None else "",
           "e.g. --timeout 60, or leave it out for the default from the model's size")
    _check(sample >= 0, f"--sample {sample}: sample numbers start at 0", "e.g. --sample 0 for the first sample")
    _check(baud is None or baud > 0, f"--baud {baud}: must be a positive number of bits per second",
           "e.g. --baud 115200")


def _profile_progress(k: int, n: int) -> None:
    if (k + 1) % 10 == 0 or k + 1 == n:
        err.print(f"profile: ops 0..{k} measured ({k + 1}/{n})", highlight=False)


def print_profile(profile: dict[str, Any], title: str = "") -> None:
    """The --profile table, and whether the per-op figures add up to the whole run."""
    from tinyedge.profile import profile_rows

    header, rows = profile_rows(profile)
    table = Table(title=title or f"cost of every op (sample {profile['sample']})")
    for h in header:
        table.add_column(h, justify="left" if h in ("type", "shapes") else "right")
    for r in rows:
        table.add_row(*r)
    out.print(table)
    unit = profile["unit"]
    if profile["adds_up"]:
        out.print(f"the ops add up to the whole run: {profile['total']:,} {unit}", highlight=False)
    else:
        out.print(f"[yellow]the ops add up to {profile['sum_of_ops']:,} {unit}, the whole run took "
                  f"{profile['total']:,}[/]", highlight=False)


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
@click.option("--port", default=None, help="serial port of the board, or `auto` (found by the board's USB ID)")
@click.option("--baud", type=int, default=None, help="with --port: the line's baud rate (default: the board file's)")
@click.option("--timeout", type=float, default=None,
              help="longest wait on the device in seconds (default: from the model's size and the board's speed)")
@click.option("--flash", "flash_first", is_flag=True, help="flash the firmware before validating (with --port)")
@click.option("--probe", default=None, help="with --flash: probe ID, or gdb://HOST:PORT (see `tinyedge flash`)")
@click.option("--calibration", type=click.Path(path_type=Path), default=None,
              help="needed when MODEL is a Keras model or SavedModel (it is converted first)")
@click.option("--data", type=click.Path(path_type=Path), default=None)
@click.option("--random", "n_random", type=int, default=None)
@click.option("-o", "--outdir", type=click.Path(path_type=Path), default=Path("tinyedge_build"), show_default=True)
@kernels_option
@click.pass_context
@user_errors
def run(ctx: click.Context, model: Path, board: str, emulator: str | None, port: str | None,
        baud: int | None, timeout: float | None, flash_first: bool, probe: str | None,
        calibration: Path | None, data: Path | None, n_random: int | None, outdir: Path, kernels: str) -> None:
    """Chain the steps: [convert] -> generate -> build -> [flash] -> validate.

    Writes into OUTDIR: the converted model, the project <model>-<board>/ and
    its report <model>-<board>.report.json."""
    if (emulator is None) == (port is None):
        raise click.UsageError("give exactly one of --emulator or --port")
    if (data is None) == (n_random is None):
        raise click.UsageError("give exactly one of --data or --random N")
    _check_run_options(n_random, 0, timeout, 0, baud)
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
    ctx.invoke(validate, model=tflite_path, board=board, emulator=emulator, port=port,
               flash_first=flash_first, probe=probe, data=data,
               n_random=n_random, seed=0, report=outdir / f"{name}.report.json", project=outdir / name,
               firmware=None, resume=False, force=False, timeout=timeout, baud=baud, per_layer=False, sample=0,
               kernels=kernels)


# ---------------------------------------------------------------- flash
@main.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--board", default=None,
              help="board name (default: the board of the project directory TARGET)")
@click.option("--probe", default=None,
              help="a pyOCD probe's unique ID (or part of it) when several are attached, "
                   "or a GDB server: gdb://HOST:PORT, gdb:///dev/ttyACM0 (docs/flashing.md)")
@user_errors
def flash(target: Path, board: str | None, probe: str | None) -> None:
    """Program a firmware ELF (or a built project DIR), read it back, reset and run it."""
    from tinyedge.boards import load_board
    from tinyedge.flash import flash_firmware

    if board is None:
        if not target.is_dir():
            raise click.UsageError("give --board (TARGET is not a project directory)")
        from tinyedge.build import read_manifest

        board = str(read_manifest(target)["board"])
    rep = flash_firmware(target, load_board(board), probe, log=lambda m: out.print(m, highlight=False))
    core = f", core {rep.core}" if rep.core else ""
    out.print(f"flashed {rep.image} to {rep.board} through {rep.probe}{core}: {rep.total_bytes:,} bytes "
              f"written, {rep.verified_bytes:,} read back and equal; started by {rep.reset} "
              f"({rep.seconds:.1f} s)", highlight=False)


# ---------------------------------------------------------------- devices
@main.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
@user_errors
def devices(as_json: bool) -> None:
    """Serial ports and debug probes attached to this machine."""
    from tinyedge.probes import (PYOCD_MISSING, boards_for_usb_id, discover_pyocd_probes,
                                 list_serial_ports, pyocd_available)

    ports = list_serial_ports()
    probes = [info for info, _p in discover_pyocd_probes()] if pyocd_available() else None
    if as_json:
        click.echo(json.dumps({
            "serial_ports": [dict(p.to_dict(), boards=boards_for_usb_id(p.usb_id)) for p in ports],
            "debug_probes": None if probes is None else [vars(p) for p in probes],
            "debug_probes_note": None if probes is not None else PYOCD_MISSING,
        }, indent=2))
        return
    table = Table(title=f"serial ports ({len(ports)})")
    for col in ("device", "USB VID:PID", "serial number", "description", "boards with this VCP"):
        table.add_column(col)
    for p in ports:
        table.add_row(p.device, p.usb_id or "-", p.serial_number or "-", p.description,
                      ", ".join(boards_for_usb_id(p.usb_id)) or "-")
    out.print(table)
    if probes is None:
        out.print(f"debug probes: {PYOCD_MISSING}", highlight=False)
        return
    table = Table(title=f"debug probes ({len(probes)}, from pyOCD)")
    for col in ("unique ID", "vendor", "product", "on board (target)"):
        table.add_column(col)
    for pr in probes:
        table.add_row(pr.unique_id, pr.vendor, pr.description,
                      f"{pr.board} ({pr.target})" if pr.board else "-")
    out.print(table)


# ---------------------------------------------------------------- bench
@main.command()
@click.argument("models", nargs=-1, type=click.Path(path_type=Path), required=True)
@click.option("--board", "boards_", multiple=True, default=["mps2-an386"], show_default=True,
              help="emulated board(s) to run on; repeat for several")
@click.option("--profile", is_flag=True, help="also measure every op's instructions (printed and written)")
@click.option("--baselines", type=click.Path(path_type=Path), default=Path("benchmarks/tflm_qemu.json"),
              show_default=True,
              help="TFLM's figures to compare with (benchmarks/README.md says how they were measured); "
                   "no comparison when the file is absent")
@click.option("-o", "--outdir", type=click.Path(path_type=Path), default=Path("benchmarks"), show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("tinyedge_build/bench"), show_default=True)
@click.option("--kernels", "kernel_sets", type=click.Choice(KERNEL_CHOICES), multiple=True, default=["auto"],
              show_default=True, help=KERNELS_HELP + "; repeat to measure several sets")
@user_errors
@click.pass_context
def bench(ctx: click.Context, models: tuple[Path, ...], boards_: tuple[str, ...], profile: bool,
          baselines: Path, outdir: Path, workdir: Path, kernel_sets: tuple[str, ...]) -> None:
    """Instructions, peak RAM and code per model in QEMU, beside TFLite Micro.

    Every model runs on every --board with every --kernels set, on the TFLM
    baselines' input; the output must be exact with TFLM. Writes
    results.json and results.md to --outdir: the figures, the ratios to TFLM
    (reference kernels and CMSIS-NN, geometric means over the four MLPerf Tiny
    models) and whether each target of issue 9 is met. Exit 1 if any output
    is not exact.
    """
    from tinyedge.bench import bench_model, check_bench, load_baselines, targets, write_results

    check_output_dir(outdir, "--outdir", create_parents=not _given(ctx, "outdir"))
    check_output_dir(workdir, "--workdir", create_parents=not _given(ctx, "workdir"))
    base = load_baselines(baselines)
    check_bench(models, boards_, kernel_sets)
    rows = []
    for board in boards_:
        for kernels in kernel_sets:
            for model in models:
                row = bench_model(model, board, workdir, base, log=lambda m: err.print(m, highlight=False),
                                  kernels=kernels, profile=profile)
                rows.append(row)
                out.print(f"{row.model} on {row.board} ({row.kernels} kernels): {row.instructions:,} instructions, "
                          f"peak RAM {row.peak_ram:,} B (arena {row.arena:,} + stack {row.stack:,} + static "
                          f"{row.static_ram:,}), code {row.code:,} B, {'exact' if row.exact else 'NOT EXACT'}",
                          highlight=False)
                if row.profile is not None:
                    print_profile(row.profile, title=f"{row.model} on {row.board} ({row.kernels} kernels)")
    js, md = write_results(rows, outdir)
    for t in targets(rows):
        if t.met is None:
            continue
        mark = "[green]met[/]" if t.met else "[red]NOT MET[/]"
        out.print(f"{mark}  {t.target}: {t.board} {t.model}: {t.measured}", highlight=False)
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
    for col in ("board", "core", "flash", "RAM", "runs on", "description"):
        table.add_column(col)
    for name in list_boards():
        b = load_board(name)
        if b.is_library:
            table.add_row(b.name, b.core, "-", "-", "your firmware (library)", b.description)
            continue
        runs_on = f"QEMU {b.qemu_machine}" if b.qemu_machine else f"board ({b.timer.upper()} timing)"
        table.add_row(b.name, b.core, f"{b.flash_size // 1024} KB", f"{b.ram_size // 1024} KB",
                      runs_on, b.description)
    out.print(table)


if __name__ == "__main__":
    main()
