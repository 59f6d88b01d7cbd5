"""The steps chained: compile + generate + build (when needed) + validate on a target."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from tinyedge.build import MemoryReport
from tinyedge.compiler import CompiledNetwork
from tinyedge.errors import TinyEdgeError
from tinyedge.model import Graph, load_model
from tinyedge.model.ir import DTYPES
from tinyedge.perlayer import LayerResult
from tinyedge.validate import ProgressFn, ValidationReport, validate_on_target

LogFn = Callable[[str], None]


def default_project_dir(model: Path, board: str) -> Path:
    return Path("tinyedge_build") / f"{model.stem}-{board}"


# --random N: the N samples are made (and hashed for the report) before the run,
# and the report, which holds every sample, is rewritten after each one.
MAX_RANDOM_SAMPLES = 100_000
MAX_RANDOM_BYTES = 1 << 30   # of input data in all


def random_samples(graph: Graph, n: int, seed: int) -> list[list[np.ndarray]]:
    """``n`` random inputs for ``graph`` from ``seed``; refused, before anything is
    made, beyond MAX_RANDOM_SAMPLES samples or MAX_RANDOM_BYTES of input data."""
    from tinyedge.oracle import random_inputs

    per_sample = max(1, sum(t.nbytes for t in graph.input_tensors))
    most = min(MAX_RANDOM_SAMPLES, MAX_RANDOM_BYTES // per_sample)
    if n > most:
        raise TinyEdgeError(f"--random {n}: at most {most:,} random samples of this model's {per_sample:,}-byte "
                            f"input (they are made before the run and every one is kept in the report)",
                            f"validate in runs of at most {most:,} samples, each with its own --seed and --report")
    rng = np.random.default_rng(seed)
    details = [{"dtype": next(nt for name, nt in DTYPES.values() if name == t.dtype), "shape": t.shape}
               for t in graph.input_tensors]
    return [random_inputs(details, rng) for _ in range(n)]


def load_samples(graph: Graph, path: Path) -> list[list[np.ndarray]]:
    from tinyedge.datasets import load_model_inputs

    return load_model_inputs(path, graph)


def compile_for_board(model: Path, board_name: str, kernels: str = "auto") -> CompiledNetwork:
    """Load, check, lower and plan a model for a board with a kernel set ("auto": the
    best the board's core has); refuse one that cannot fit."""
    from tinyedge.analysis import require_fit
    from tinyedge.boards import load_board
    from tinyedge.compiler import compile

    # unsupported ops and kernel sets the core lacks: refused before anything is written
    net = compile(load_model(model), load_board(board_name), kernels=kernels)
    require_fit(net)
    return net


def validate_model(model: Path, board_name: str, *, emulator: str | None, port: str | None,
                   data: Path | None, n_random: int | None, seed: int, report_path: Path,
                   project: Path | None = None, firmware: Path | None = None, resume: bool = False,
                   force: bool = False, timeout: float | None = None, baud: int | None = None,
                   per_layer_sample: int | None = None,
                   progress: ProgressFn | None = None, layer_progress: Callable[[LayerResult], None] | None = None,
                   log: LogFn | None = None, flash: bool = False, probe: str | None = None,
                   profile_sample: int | None = None,
                   profile_progress: Callable[[int, int], None] | None = None,
                   kernels: str = "auto") -> ValidationReport:
    """Generate and build (unless ``firmware`` names an already built ELF or project),
    [flash it,] then validate on the target. ``port="auto"``: the board's serial port,
    found by the USB ID its board file names.

    Everything the user gave is checked first -- the model and its fit, the
    data, an existing ``report_path`` (:mod:`tinyedge.reportfile`) -- before
    anything is generated, built, flashed or started. The project directory is
    locked from generating until the device has answered (:mod:`tinyedge.lock`).
    ``profile_sample``: then measure every op's cost on that sample (``--profile``)."""
    from tinyedge.build import build_project, check_firmware, memory_report
    from tinyedge.lock import project_lock
    from tinyedge.reportfile import check_existing_report
    from tinyedge.validate import resumed_samples, run_identity

    say = log or (lambda _msg: None)
    net = compile_for_board(model, board_name, kernels)
    board = net.board
    assert board is not None
    if port == "auto":
        from tinyedge.probes import find_board_port

        port = find_board_port(board, probe=probe)
        say(f"{board.name}'s serial port: {port}")
    elif port is not None:
        from tinyedge.device import check_port

        check_port(port)
    if data is not None:
        samples, inputs = load_samples(net.graph, data), f"--data {data.name}"
    else:
        samples, inputs = random_samples(net.graph, n_random or 0, seed), f"--random {n_random} --seed {seed}"
    for chosen in (per_layer_sample, profile_sample):
        if chosen is not None and not 0 <= chosen < len(samples):
            raise TinyEdgeError(f"--sample {chosen} is outside the {len(samples)} sample(s) given",
                                f"pick a sample from 0 to {len(samples) - 1}")
    resumed_samples(report_path,
                    check_existing_report(report_path, run_identity(net, samples, inputs, per_layer_sample),
                                          resume, force))
    if board.is_library:
        # The library runs inside the user's firmware, built and flashed by them:
        # nothing to generate or build here, only a serial port to talk to.
        if emulator or not port:
            raise TinyEdgeError(f"{board.name} is a library for your own firmware: there is "
                                "nothing tinyedge can run in an emulator",
                                "flash your firmware (with te_server_run()) and pass --port")
        say(f"validating on {port} (your firmware with the {board.name} library)")
        return validate_on_target(net, None, samples, report_path, {}, port=port, resume=resume, force=force,
                                  timeout=timeout, progress=progress, per_layer_sample=per_layer_sample,
                                  layer_progress=layer_progress, inputs=inputs,
                                  profile_sample=profile_sample, profile_progress=profile_progress)
    memory: MemoryReport | None
    built_with = net.kernels
    with contextlib.ExitStack() as locked:
        if firmware is not None:
            elf = firmware / "build" / "firmware.elf" if firmware.is_dir() else firmware
            if not elf.is_file():
                raise TinyEdgeError(f"no firmware at {elf}", "give the built firmware.elf or its project directory")
            built_with = check_firmware(elf, net.graph.sha256, Path(net.graph.source).stem, board.name,
                                        None if kernels == "auto" else net.kernels) or "unknown"
            memory = memory_report(elf, board.flash_size, board.ram_size)
            say(f"using the firmware {elf} as built (" + (f"{built_with} kernels)" if built_with != "unknown"
                                                           else "kernel set unknown: no project beside it)"))
        else:
            from tinyedge.codegen.project import check_project_dir, generate_project

            project = project or default_project_dir(model, board.name)
            check_project_dir(project, "--project")   # before its lock file is written in it
            locked.enter_context(project_lock(project, log=say))
            say(f"generating {project} for {board.name} ({net.kernels} kernels)")
            generate_project(net, project)
            say("building (make)")
            built = build_project(project)
            elf, memory = built.elf, built.memory
        if flash:
            from tinyedge.flash import flash_firmware

            say(f"flashing {elf}")
            fl = flash_firmware(elf, board, probe, log=say)
            say(f"flashed and verified {fl.verified_bytes:,} bytes through {fl.probe}; started by {fl.reset}")
        target = f"QEMU {board.qemu_machine}" if emulator == "qemu" else (emulator or port or "")
        what = (f"every op's output for sample {per_layer_sample}" if per_layer_sample is not None
                else f"{len(samples)} samples")
        say(f"validating {what} on {target}")
        return validate_on_target(net, elf, samples, report_path, asdict(memory) if memory else {},
                                  emulator=emulator, port=port, resume=resume, force=force, timeout=timeout,
                                  baud=baud, progress=progress, per_layer_sample=per_layer_sample,
                                  layer_progress=layer_progress, inputs=inputs, started=locked.close,
                                  profile_sample=profile_sample, profile_progress=profile_progress,
                                  kernels=built_with)
