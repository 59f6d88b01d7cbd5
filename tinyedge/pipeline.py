"""The steps chained: generate + build (when needed) + validate on a target."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from tinyedge.errors import TinyEdgeError
from tinyedge.model import Graph, load_model
from tinyedge.model.ir import DTYPES
from tinyedge.validate import ProgressFn, ValidationReport, validate_on_target

LogFn = Callable[[str], None]


def default_project_dir(model: Path, board: str) -> Path:
    return Path("tinyedge_build") / f"{model.stem}-{board}"


def random_samples(graph: Graph, n: int, seed: int) -> list[list[np.ndarray]]:
    from tinyedge.oracle import random_inputs

    rng = np.random.default_rng(seed)
    details = [{"dtype": next(nt for name, nt in DTYPES.values() if name == t.dtype), "shape": t.shape}
               for t in graph.input_tensors]
    return [random_inputs(details, rng) for _ in range(n)]


def load_samples(graph: Graph, path: Path) -> list[list[np.ndarray]]:
    from tinyedge.datasets import load_model_inputs

    return load_model_inputs(path, graph)


def validate_model(model: Path, board_name: str, *, emulator: str | None, port: str | None,
                   data: Path | None, n_random: int | None, seed: int, report_path: Path,
                   project: Path | None = None, resume: bool = False, timeout: float = 60.0,
                   progress: ProgressFn | None = None, log: LogFn | None = None) -> ValidationReport:
    from tinyedge.analysis import inspect_graph
    from tinyedge.boards import load_board
    from tinyedge.build import build_project
    from tinyedge.codegen.lower import require_supported
    from tinyedge.codegen.project import generate_project

    say = log or (lambda _msg: None)
    graph = load_model(model)
    board = load_board(board_name)
    require_supported(graph)  # unsupported ops: say so before anything is generated
    fit = inspect_graph(graph, board).fit
    if fit is not None and fit.verdict == "does not fit":  # a lower bound: no build can fit
        raise TinyEdgeError(f"{model.name} does not fit {board.name}: {fit.reason}",
                            "pick a board with more memory (`tinyedge boards`) or a smaller model")
    samples = load_samples(graph, data) if data is not None else random_samples(graph, n_random or 0, seed)
    if board.is_library:
        # The library runs inside the user's firmware, built and flashed by them:
        # nothing to generate or build here, only a serial port to talk to.
        if emulator or not port:
            raise TinyEdgeError(f"{board.name} is a library for your own firmware: there is "
                                "nothing tinyedge can run in an emulator",
                                "flash your firmware (with te_server_run()) and pass --port")
        say(f"validating {len(samples)} samples on {port} (your firmware with the {board.name} library)")
        return validate_on_target(graph, board, None, samples, report_path, {}, port=port,
                                  resume=resume, timeout=timeout, progress=progress)
    project = project or default_project_dir(model, board.name)
    say(f"generating {project} for {board.name}")
    generate_project(graph, board.name, project)
    say("building (make)")
    built = build_project(project)
    target = f"QEMU {board.qemu_machine}" if emulator == "qemu" else (emulator or port or "")
    say(f"validating {len(samples)} samples on {target}")
    return validate_on_target(graph, board, built.elf, samples, report_path,
                              asdict(built.memory) if built.memory else {},
                              emulator=emulator, port=port, resume=resume, timeout=timeout,
                              progress=progress)
