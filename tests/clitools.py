"""Running the real CLI in tests, and what a user error must look like."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinyedge.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def assert_clean_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    text = proc.stderr.lower()
    assert "error:" in text
    for n in needles:
        assert n.lower() in text, proc.stderr


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A user error as the issue asks: exit 1, one "error:" line and a "hint:" line,
    no traceback, and nothing else on stderr. Returns the error line."""
    assert_clean_error(proc, *needles)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), proc.stderr
    return lines[0]
