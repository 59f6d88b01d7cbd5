"""What an existing ``--report`` file means for a validation run.

A report records the run it belongs to: the model (name and SHA-256), the
board, the inputs (how they were given, how many, and a SHA-256 over every
input byte) and, for ``--per-layer``, the sample. Before any work:

* ``--resume`` continues only a report of *this* run. It refuses, saying
  which, a report for another model, board, inputs or mode, and a file that
  is not a complete JSON object, or is of another format version. The file
  is left as it is.
* Without ``--resume``, a report of the same model on the same board is
  replaced (running the same validation again). Anything else -- another
  model's or board's report, or a file that is not a tinyedge report -- is
  refused unless ``--force`` is given: a report is never overwritten by
  accident.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tinyedge.errors import TinyEdgeError

REPORT_FORMAT = 3  # 2: oracle, second_opinion, per_layer; 3: run (inputs, per-layer sample),
#                    stack_bytes per sample, profile


@dataclass(frozen=True)
class RunIdentity:
    """What makes two validation runs the same run."""

    model: str            # file name, for messages
    model_sha256: str
    board: str
    inputs: str           # how the inputs were given, e.g. "--random 10 --seed 0" or "--data x.npz"
    count: int
    inputs_sha256: str    # over every input byte of every sample, in order
    per_layer_sample: int | None

    def run_dict(self) -> dict[str, Any]:
        """The ``run`` entry of a report."""
        return {"inputs": self.inputs, "count": self.count, "inputs_sha256": self.inputs_sha256,
                "per_layer_sample": self.per_layer_sample}


def inputs_sha256(samples: Sequence[Sequence[np.ndarray]]) -> str:
    h = hashlib.sha256()
    for sample in samples:
        for x in sample:
            h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


def _hint(force_ok: bool) -> str:
    return ("choose another --report, move the file away, or give --force to overwrite it" if force_ok
            else "run without --resume to start again (add --force to overwrite this file), or choose another --report")


def _load(path: Path, resume: bool) -> dict[str, Any]:
    """The report at ``path`` as a dict; a clear error for anything else."""
    what = "--resume" if resume else "--report"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TinyEdgeError(f"{what}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
                            _hint(not resume)) from None
    if not text.strip():
        raise TinyEdgeError(f"{what}: {path} is empty, not a tinyedge report", _hint(not resume))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TinyEdgeError(f"{what}: {path} is not valid JSON (truncated or damaged): {exc.msg} at line "
                            f"{exc.lineno} column {exc.colno}", _hint(not resume)) from None
    if not isinstance(data, dict):
        raise TinyEdgeError(f"{what}: {path} holds a JSON {type(data).__name__}, not a tinyedge report object",
                            _hint(not resume))
    if not isinstance(data.get("model_sha256"), str) or not isinstance(data.get("board"), str):
        raise TinyEdgeError(f"{what}: {path} is not a tinyedge validation report (no model_sha256/board)",
                            _hint(not resume))
    return data


def _model_of(data: dict[str, Any]) -> str:
    return f"'{data.get('model', '?')}' (SHA-256 {str(data['model_sha256'])[:12]}...)"


def check_existing_report(path: Path, ident: RunIdentity, resume: bool, force: bool) -> list[dict[str, Any]]:
    """Decide what to do with an existing report (module doc). Returns the samples
    to keep (as dicts, with ``resume``), or [] to start afresh; raises TinyEdgeError
    (the file untouched) when the report must not be resumed or overwritten."""
    if not path.exists():
        return []
    if not resume:
        if force:
            return []
        data = _load(path, resume=False)
        if data["model_sha256"] != ident.model_sha256 or data["board"] != ident.board:
            raise TinyEdgeError(
                f"--report {path} holds the report of another run: model {_model_of(data)} on {data['board']}, "
                f"not '{ident.model}' on {ident.board}", _hint(True))
        return []
    data = _load(path, resume=True)
    version = data.get("format_version")
    if version != REPORT_FORMAT:
        raise TinyEdgeError(f"--resume: {path} is a report of format version {version}, this tinyedge "
                            f"reads version {REPORT_FORMAT}", _hint(False))
    if data["model_sha256"] != ident.model_sha256:
        raise TinyEdgeError(f"--resume: {path} was written for model {_model_of(data)}, not '{ident.model}' "
                            f"(SHA-256 {ident.model_sha256[:12]}...)", _hint(False))
    if data["board"] != ident.board:
        raise TinyEdgeError(f"--resume: {path} was written for board {data['board']}, not {ident.board}",
                            _hint(False))
    run = data.get("run")
    if not isinstance(run, dict):
        raise TinyEdgeError(f"--resume: {path} does not say which inputs it was written for", _hint(False))
    if run.get("per_layer_sample") != ident.per_layer_sample:
        def mode(sample: Any) -> str:
            return "a sample-by-sample validation" if sample is None else f"--per-layer --sample {sample}"
        raise TinyEdgeError(f"--resume: {path} is the report of {mode(run.get('per_layer_sample'))}, "
                            f"not of {mode(ident.per_layer_sample)}", _hint(False))
    if run.get("count") != ident.count or run.get("inputs_sha256") != ident.inputs_sha256:
        raise TinyEdgeError(f"--resume: {path} was written for other inputs: {run.get('inputs')} "
                            f"({run.get('count')} samples), not {ident.inputs} ({ident.count} samples)",
                            _hint(False))
    samples = data.get("samples")
    if not isinstance(samples, list) or not all(isinstance(s, dict) and isinstance(s.get("index"), int)
                                                for s in samples):
        raise TinyEdgeError(f"--resume: {path} has a malformed 'samples' list", _hint(False))
    return samples
