"""Render a complete, self-contained firmware project for one model and board.

The project builds with `make` alone (no tinyedge needed): network files from
the lowered graph, the runtime of the network's kernel set copied verbatim
(tinyedge/kernels.py: one implementation of every kernel, flat in runtime/),
board support and the application rendered from the board's data file. A manifest (tinyedge.json)
records what the project was generated from, without timestamps or absolute
paths, so the same inputs give the same bytes.

The manifest also lists every file tinyedge wrote, with its SHA-256. When a
project is generated again into the same directory (another board, another
model), the files of the previous generation that the new one does not write
-- a previous board's UART driver, say -- are removed if they are as tinyedge
wrote them; a file the user changed is kept (and reported), and files
tinyedge never wrote are never touched. Generating runs under the project's
lock (:mod:`tinyedge.lock`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tinyedge import __version__
from tinyedge.boards import firmware_files
from tinyedge.build import MANIFEST
from tinyedge.codegen.network import render_network_files, write_files
from tinyedge.codegen.render import render_template
from tinyedge.compiler import CompiledNetwork
from tinyedge.errors import TinyEdgeError
from tinyedge.hostrun import runtime_files
from tinyedge.lock import LOCK_NAME, project_lock
from tinyedge.resources import templates_dir


@dataclass
class Project:
    path: Path
    net: CompiledNetwork
    board_name: str
    removed: list[str] = field(default_factory=list)  # stale files of the previous generation, removed
    kept: list[str] = field(default_factory=list)  # stale files the user changed, left in place


def check_project_dir(outdir: Path, option: str = "-o") -> None:
    """``outdir`` can take a generated project: new, empty, or a tinyedge project
    (checked before anything is written in it, its lock file included)."""
    if outdir.exists() and not outdir.is_dir():
        raise TinyEdgeError(f"{outdir} exists and is not a directory", f"choose another {option}")
    if outdir.is_dir() and not (outdir / MANIFEST).exists() and \
            any(p.name != LOCK_NAME for p in outdir.iterdir()):
        raise TinyEdgeError(f"{outdir} is not empty and not a tinyedge project; refusing to overwrite",
                            f"choose an empty or new directory for {option}")


def _sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _previous_files(outdir: Path) -> dict[str, str]:
    """The files the previous generation wrote (path -> SHA-256), from its manifest.
    A manifest from before file lists (tinyedge 0.1) names none: of its files only
    runtime/, which was always all tinyedge's, is known."""
    try:
        manifest = json.loads((outdir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if isinstance(files, dict):
        return {str(k): str(v) for k, v in files.items()}
    runtime = outdir / "runtime"
    return {f"runtime/{p.name}": _sha256(p.read_bytes()) for p in runtime.iterdir() if p.is_file()} \
        if runtime.is_dir() else {}


def _remove_stale(outdir: Path, previous: dict[str, str], current: dict[str, str]) -> tuple[list[str], list[str]]:
    removed, kept = [], []
    for rel in sorted(set(previous) - set(current)):
        path = outdir / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute() or not path.is_file():
            continue
        if _sha256(path.read_bytes()) != previous[rel]:
            kept.append(rel)
            continue
        path.unlink()
        removed.append(rel)
        parent = path.parent
        while parent != outdir and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    return removed, kept


def project_files(net: CompiledNetwork, name: str) -> dict[str, str]:
    """Every file of the project but the manifest: relative path -> text."""
    board = net.board
    assert board is not None
    graph = net.graph
    files = dict(render_network_files(net, name))
    files.update(runtime_files(net.kernels))
    if not board.is_library:  # a library goes into a vendor project: no second main()
        files["host/host_main.c"] = (templates_dir() / "host" / "host_main.c").read_text()
    ctx = {"board": board, "model_name": name, "model_sha256": graph.sha256,
           "arena_bytes": net.arena_bytes, "version": __version__}
    tdir = templates_dir()
    for src, dst in firmware_files(board):
        files[dst] = render_template(src, ctx) if src.endswith(".j2") else (tdir / src).read_text()
    return files


def generate_project(net: CompiledNetwork, outdir: str | Path, model_name: str | None = None,
                     log: Callable[[str], None] | None = None) -> Project:
    """Write the firmware project for a network compiled for a board."""
    board = net.board
    if board is None:
        raise ValueError("generate_project needs a network compiled for a board")
    net.require_supported()  # nothing is written for a graph that cannot be generated
    graph = net.graph
    outdir = Path(outdir)
    check_project_dir(outdir)
    name = model_name or (Path(graph.source).stem if graph.source != "<bytes>" else "model")
    files = project_files(net, name)
    manifest = {
        "tinyedge_version": __version__,
        "model_name": name,
        "model_sha256": graph.sha256,
        "board": board.name,
        "target": board.target,
        "kernels": net.kernels,
        "arena_bytes": net.arena_bytes,
        "total_macs": net.total_macs,
        "inputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in graph.input_tensors],
        "outputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in graph.output_tensors],
        "files": {rel: _sha256(text) for rel, text in sorted(files.items())},
    }
    with project_lock(outdir, log=log):
        previous = _previous_files(outdir)
        write_files(outdir, files)
        removed, kept = _remove_stale(outdir, previous, files)
        write_files(outdir, {MANIFEST: json.dumps(manifest, indent=2, sort_keys=True) + "\n"})
    return Project(outdir, net, board.name, removed, kept)
