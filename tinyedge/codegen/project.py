"""Render a complete, self-contained firmware project for one model and board.

The project builds with `make` alone (no tinyedge needed): network files from
the lowered graph, the runtime of the network's kernel set copied verbatim
(tinyedge/kernels.py: one implementation of every kernel, flat in runtime/),
board support and the application rendered from the board's data file. A manifest (tinyedge.json)
records what the project was generated from, without timestamps or absolute
paths, so the same inputs give the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tinyedge import __version__
from tinyedge.boards import firmware_files
from tinyedge.build import MANIFEST
from tinyedge.codegen.network import render_network_files, write_files
from tinyedge.codegen.render import render_template
from tinyedge.compiler import CompiledNetwork
from tinyedge.errors import TinyEdgeError
from tinyedge.hostrun import copy_runtime
from tinyedge.resources import templates_dir


@dataclass
class Project:
    path: Path
    net: CompiledNetwork
    board_name: str


def _check_outdir(outdir: Path) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise TinyEdgeError(f"{outdir} exists and is not a directory", "choose another -o")
    if outdir.is_dir() and any(outdir.iterdir()) and not (outdir / MANIFEST).exists():
        raise TinyEdgeError(f"{outdir} is not empty and not a tinyedge project; refusing to overwrite",
                            "choose an empty or new directory for -o")


def generate_project(net: CompiledNetwork, outdir: str | Path, model_name: str | None = None) -> Project:
    """Write the firmware project for a network compiled for a board."""
    board = net.board
    if board is None:
        raise ValueError("generate_project needs a network compiled for a board")
    net.require_supported()  # nothing is written for a graph that cannot be generated
    graph = net.graph
    outdir = Path(outdir)
    _check_outdir(outdir)
    name = model_name or (Path(graph.source).stem if graph.source != "<bytes>" else "model")
    outdir.mkdir(parents=True, exist_ok=True)

    write_files(outdir, render_network_files(net, name))
    copy_runtime(outdir, net.kernels)
    if not board.is_library:  # a library goes into a vendor project: no second main()
        write_files(outdir, {"host/host_main.c": (templates_dir() / "host" / "host_main.c").read_text()})

    ctx = {"board": board, "model_name": name, "model_sha256": graph.sha256,
           "arena_bytes": net.arena_bytes, "version": __version__}
    tdir = templates_dir()
    for src, dst in firmware_files(board):
        target = outdir / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        text = render_template(src, ctx) if src.endswith(".j2") else (tdir / src).read_text()
        write_files(outdir, {dst: text})

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
    }
    write_files(outdir, {MANIFEST: json.dumps(manifest, indent=2, sort_keys=True) + "\n"})
    return Project(outdir, net, board.name)
