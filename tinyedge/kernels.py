"""Kernel sets: which implementation of each runtime kernel a project gets.

The portable C kernels in ``firmware_templates/runtime/`` are the readable
reference and run on any core. Faster variants live beside them, in
``runtime/arm_dsp/`` (Armv7E-M/Armv8-M DSP extension: SMLAD, SXTB16 ...) and
``runtime/arm_mve/`` (Helium), as files with the same names, the same
functions and the same call signatures: a variant file *replaces* the
portable file of that name in the generated project. A variant directory may
also hold files of its own (helpers only its kernels include).

A kernel set names the directories searched, first match wins:

    mve       arm_mve/, then arm_dsp/, then the portable runtime/
    dsp       arm_dsp/, then the portable runtime/
    portable  the portable runtime/ only

so a project holds exactly one implementation of every kernel, and a set
without a variant of some kernel falls back to the next one. The set is
chosen at generate time from the board's core (``auto``: the best the core
has), or forced with ``--kernels``; asking for a set the core lacks is an
error. The lowering (tinyedge/ops/*.py) sees the set in ``LowerCtx.kernels``
and picks the kernel each op calls, and the constant layout that kernel
reads, accordingly -- no run-time flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tinyedge.boards import CORES
from tinyedge.errors import TinyEdgeError
from tinyedge.resources import templates_dir

if TYPE_CHECKING:
    from tinyedge.boards import Board

KERNEL_SETS = ("portable", "dsp", "mve")
CHOICES = ("auto", *KERNEL_SETS)  # what --kernels accepts

# set -> variant directories under runtime/, searched in order before the portable files
VARIANT_DIRS: dict[str, tuple[str, ...]] = {
    "portable": (),
    "dsp": ("arm_dsp",),
    "mve": ("arm_mve", "arm_dsp"),
}

# what a core needs for a set (boards.CoreInfo fields), and how the error names it
_NEEDS = {"dsp": ("dsp", "the DSP extension (SMLAD, SXTB16)"), "mve": ("mve", "Helium (MVE)")}

# kernel sets whose files compile on the host (the DSP intrinsics are emulated there
# by arm_dsp/te_dsp.h; Helium is not)
HOST_SETS = ("portable", "dsp")

RUNTIME_SUFFIXES = (".c", ".h")


def best_for_core(core: str) -> str:
    """The fastest set a core supports."""
    info = CORES[core]
    return "mve" if info.mve else "dsp" if info.dsp else "portable"


def resolve(requested: str, board: Board | None) -> str:
    """The kernel set for ``requested`` ("auto" or a set) on ``board`` (None: no
    board, e.g. the host runner; "auto" is then "portable")."""
    if requested not in CHOICES:
        raise TinyEdgeError(f"unknown kernel set {requested!r}", f"use one of: {', '.join(CHOICES)}")
    if board is None:
        return "portable" if requested == "auto" else requested
    if requested == "auto":
        return best_for_core(board.core)
    if requested in _NEEDS:
        field, what = _NEEDS[requested]
        if not getattr(CORES[board.core], field):
            raise TinyEdgeError(
                f"--kernels {requested} needs {what}, which {board.name}'s {board.core} does not have",
                f"use --kernels {best_for_core(board.core)} (or auto) on this board")
    return requested


def searches(kernels: str, variant_dir: str) -> bool:
    """Whether a set takes files from ``variant_dir`` ("arm_dsp", "arm_mve"): a lowering
    asks this to pick a kernel whose fast implementation lives there (the mve set
    searches arm_dsp too, so it runs the dsp kernels where arm_mve has none)."""
    return variant_dir in VARIANT_DIRS[kernels]


def runtime_root() -> Path:
    return templates_dir() / "runtime"


def runtime_files(kernels: str) -> dict[str, Path]:
    """File name -> source file of every runtime file a project with ``kernels`` holds:
    the portable files, each replaced by the first variant of that name found in the
    set's variant directories, plus the variant directories' own files."""
    if kernels not in KERNEL_SETS:
        raise ValueError(f"unknown kernel set {kernels!r}")
    root = runtime_root()
    files = {p.name: p for p in sorted(root.iterdir()) if p.is_file() and p.suffix in RUNTIME_SUFFIXES}
    for sub in reversed(VARIANT_DIRS[kernels]):  # the first directory searched is applied last
        for p in sorted((root / sub).iterdir()) if (root / sub).is_dir() else []:
            if p.is_file() and p.suffix in RUNTIME_SUFFIXES:
                files[p.name] = p
    return dict(sorted(files.items()))


def provider(kernels: str, filename: str) -> str:
    """Which directory supplies ``filename`` in a set: "arm_mve", "arm_dsp" or "portable"."""
    path = runtime_files(kernels)[filename]
    return "portable" if path.parent == runtime_root() else path.parent.name


def describe(kernels: str) -> str:
    """One line for humans: the set and where its files come from."""
    dirs = [f"runtime/{d}/" for d in VARIANT_DIRS[kernels]] + ["runtime/"]
    return f"{kernels} ({' then '.join(dirs)})"
