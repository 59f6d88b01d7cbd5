"""Everything a user gives is checked before any work: bad output paths, counts,
timeouts and data end in one error line and a hint, exit 1, no traceback, and
nothing is generated, built or started (no project directory, no report)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from clitools import assert_one_line_error, run_cli
from conftest import shared_model

HELLO = str(shared_model("hello_world_int8"))   # input [1, 1] int8
VALIDATE = ["validate", HELLO, "--board", "mps2-an386", "--emulator", "qemu"]


def assert_no_work(cwd: Path, *paths: Path) -> None:
    assert not (cwd / "tinyedge_build").exists()
    for p in paths:
        assert not p.exists(), p


# ---- output paths -------------------------------------------------------------

def test_report_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    proc = run_cli(*VALIDATE, "--random", "2", "--report", "out", cwd=tmp_path)
    assert_one_line_error(proc, "--report out is a directory")
    assert_no_work(tmp_path)


def test_report_with_a_missing_parent(tmp_path: Path) -> None:
    proc = run_cli(*VALIDATE, "--random", "2", "--report", "nowhere/r.json", cwd=tmp_path)
    assert_one_line_error(proc, "the directory nowhere does not exist", "mkdir -p nowhere")
    assert_no_work(tmp_path, tmp_path / "nowhere")


def test_report_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    proc = run_cli(*VALIDATE, "--random", "2", "--report", "afile/r.json", cwd=tmp_path)
    assert_one_line_error(proc, "afile is not a directory")
    assert_no_work(tmp_path)


def test_project_with_a_missing_parent(tmp_path: Path) -> None:
    proc = run_cli(*VALIDATE, "--random", "2", "--project", "a/b/fw", cwd=tmp_path)
    assert_one_line_error(proc, "--project", "the directory a/b does not exist")
    assert_no_work(tmp_path, tmp_path / "a")


def test_generate_into_a_file(tmp_path: Path) -> None:
    (tmp_path / "fw").write_text("not a directory")
    proc = run_cli("generate", HELLO, "--board", "mps2-an386", "-o", "fw", cwd=tmp_path)
    assert_one_line_error(proc, "-o fw exists and is not a directory")


def test_generate_with_a_missing_parent(tmp_path: Path) -> None:
    proc = run_cli("generate", HELLO, "--board", "mps2-an386", "-o", "x/y/fw", cwd=tmp_path)
    assert_one_line_error(proc, "the directory x/y does not exist")
    assert_no_work(tmp_path, tmp_path / "x")


def test_bench_outdir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "results").write_text("x")
    proc = run_cli("bench", HELLO, "--outdir", "results", cwd=tmp_path)
    assert_one_line_error(proc, "--outdir results exists and is not a directory")
    assert_no_work(tmp_path)


def test_convert_output_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "m.keras").write_bytes(b"x")
    np.save(tmp_path / "c.npy", np.zeros((2, 3), np.float32))
    proc = run_cli("convert", "m.keras", "-o", str(tmp_path), "--calibration", "c.npy", cwd=tmp_path)
    assert_one_line_error(proc, "is a directory")


@pytest.mark.parametrize("err,words", [(errno.EROFS, "it is on a read-only file system"), (errno.EACCES, "permission denied"),
                                       (errno.ENOSPC, "the disk is full")])
def test_unwritable_output_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int,
                                     words: str) -> None:
    """A directory we cannot write in (read-only mount, permissions, full disk): found by
    creating a file there, before any work. The failure is injected into that one call
    (root may write anywhere, and mounting needs privileges)."""
    from tinyedge.cli import main

    real = tempfile.mkstemp
    target = tmp_path / "ro"
    target.mkdir()

    def mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        if Path(str(kwargs.get("dir", ""))).resolve() == target.resolve():
            raise OSError(err, os.strerror(err))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("tinyedge.outputs.tempfile.mkstemp", mkstemp)
    monkeypatch.chdir(tmp_path)
    for args in (["generate", HELLO, "--board", "mps2-an386", "-o", "ro/fw"],
                 [*VALIDATE, "--random", "1", "--report", "ro/report.json"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert f"cannot write in ro: {words}" in result.output and "Traceback" not in result.output
    assert list(target.iterdir()) == []


# ---- counts and limits ----------------------------------------------------------

@pytest.mark.parametrize("args,needle", [
    (["--random", "0"], "--random 0: the number of random samples must be at least 1"),
    (["--random", "-4"], "--random -4"),
    (["--random", "2", "--timeout", "0"], "--timeout 0: must be a positive number of seconds"),
    (["--random", "2", "--timeout", "-1"], "--timeout -1"),
    (["--random", "2", "--timeout", "nan"], "--timeout nan"),
    (["--random", "2", "--per-layer", "--sample", "-1"], "--sample -1: sample numbers start at 0"),
    (["--random", "2", "--seed", "-1"], "--seed -1: the seed must be 0 or more"),
])
def test_bad_counts(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = run_cli(*VALIDATE, *args, cwd=tmp_path)
    assert_one_line_error(proc, needle)
    assert_no_work(tmp_path, tmp_path / "report.json")


@pytest.mark.parametrize("model,count,needle", [
    (HELLO, "1000000000000", "--random 1000000000000: at most 100,000 random samples"),
    (str(shared_model("vww_96_int8")), "50000", "--random 50000: at most 38,836 random samples of this model's "
                                                "27,648-byte input"),
])
def test_random_count_beyond_memory(tmp_path: Path, model: str, count: str, needle: str) -> None:
    """Refused at once: the samples used to be made first, until the memory ran out."""
    proc = run_cli("validate", model, "--board", "mps2-an386", "--emulator", "qemu", "--random", count,
                   cwd=tmp_path, timeout=60)
    assert_one_line_error(proc, needle)
    assert_no_work(tmp_path, tmp_path / "report.json")


def test_missing_serial_port_before_the_build(tmp_path: Path) -> None:
    proc = run_cli("validate", HELLO, "--board", "mps2-an386", "--port", str(tmp_path / "ttyNONE"),
                   "--random", "1", cwd=tmp_path)
    assert_one_line_error(proc, "ttyNONE: no such serial port", "tinyedge devices")
    assert_no_work(tmp_path, tmp_path / "report.json")


# ---- bench: every model, board and kernel set, and the baselines, before any build -----

@pytest.mark.parametrize("args,needle", [
    ([HELLO, "missing.tflite"], "model file not found: missing.tflite"),
    ([HELLO, str(shared_model("vww_96_int8")), "--board", "mps2-an386", "--board", "microbit"],
     "vww_96_int8.tflite does not fit microbit"),
    ([HELLO, "--baselines", "broken.json"], "--baselines broken.json: is not valid JSON"),
    ([HELLO, "--baselines", "list.json"], "--baselines list.json: is not a baselines file"),
    ([HELLO, "--baselines", "."], "--baselines .: is a directory"),
])
def test_bench_checks_before_any_build(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "broken.json").write_text('{"results": [')
    (tmp_path / "list.json").write_text("[1, 2]")
    proc = run_cli("bench", *args, "-o", "out", "--workdir", "work", cwd=tmp_path)
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


# ---- data ---------------------------------------------------------------------

def test_nan_in_validation_data_names_file_sample_and_count(tmp_path: Path) -> None:
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(8, 1)
    x[3, 0] = np.nan
    x[5, 0] = np.nan
    np.save(tmp_path / "data.npy", x)
    proc = run_cli(*VALIDATE, "--data", "data.npy", cwd=tmp_path)
    line = assert_one_line_error(proc, "data.npy", "2 nan value(s)", "in 2 of 8 sample(s)", "first in sample 3")
    assert "pickle" not in line.lower()
    assert_no_work(tmp_path, tmp_path / "report.json")


def test_inf_in_an_npz(tmp_path: Path) -> None:
    x = np.zeros((4, 1), np.float32)
    x[2, 0] = np.inf
    np.savez(tmp_path / "data.npz", x=x)
    assert_one_line_error(run_cli(*VALIDATE, "--data", "data.npz", cwd=tmp_path),
                          "data.npz: array 'x' holds 1 infinite value(s)", "first in sample 2")


def test_nan_in_calibration_data_before_tensorflow(tmp_path: Path) -> None:
    (tmp_path / "m.keras").write_bytes(b"x")
    c = np.zeros((3, 2, 2), np.float32)
    c[1, 1, 0] = np.nan
    np.save(tmp_path / "calib.npy", c)
    proc = run_cli("convert", "m.keras", "-o", "m.tflite", "--calibration", "calib.npy", cwd=tmp_path)
    assert_one_line_error(proc, "calib.npy", "1 nan value(s)", "first at index [1, 1, 0]")


def test_text_file_named_npy(tmp_path: Path) -> None:
    (tmp_path / "data.npy").write_text("0.1, 0.2\n0.3, 0.4\n")
    line = assert_one_line_error(run_cli(*VALIDATE, "--data", "data.npy", cwd=tmp_path),
                                 "data.npy is not a .npy file: it looks like text")
    assert "pickle" not in line.lower()


def test_empty_npy(tmp_path: Path) -> None:
    (tmp_path / "data.npy").write_bytes(b"")
    assert_one_line_error(run_cli(*VALIDATE, "--data", "data.npy", cwd=tmp_path), "it is empty")


def test_pickled_objects_are_named_as_such(tmp_path: Path) -> None:
    np.save(tmp_path / "data.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert_one_line_error(run_cli(*VALIDATE, "--data", "data.npy", cwd=tmp_path),
                          "holds python objects (a pickled object array)")


# ---- a model that cannot fit ------------------------------------------------------

def test_inspect_board_fails_for_a_model_that_does_not_fit(tmp_path: Path) -> None:
    proc = run_cli("inspect", str(shared_model("vww_96_int8")), "--board", "microbit", cwd=tmp_path)
    assert proc.returncode == 1 and "does not fit" in proc.stdout and "Traceback" not in proc.stderr


def test_generate_fails_for_a_model_that_does_not_fit(tmp_path: Path) -> None:
    proc = run_cli("generate", str(shared_model("vww_96_int8")), "--board", "microbit", "-o", "fw", cwd=tmp_path)
    assert_one_line_error(proc, "vww_96_int8.tflite does not fit microbit", "RAM")
    assert not (tmp_path / "fw").exists()


# ---- files that are not regular files: a FIFO blocks, a device never ends -------------

@pytest.mark.parametrize("what", ["model", "data", "report"])
def test_fifo_is_refused_not_waited_on(tmp_path: Path, what: str) -> None:
    """A FIFO read would wait for a writer forever; replacing one (as a report) would
    remove it. Each is refused at once, with the kind of file named."""
    fifo = tmp_path / {"model": "m.tflite", "data": "d.npy", "report": "r.json"}[what]
    os.mkfifo(fifo)
    model = str(fifo) if what == "model" else HELLO
    args = {"model": ["--random", "1"], "data": ["--data", str(fifo)], "report": ["--random", "1", "--force",
                                                                                   "--report", str(fifo)]}[what]
    proc = run_cli("validate", model, "--board", "mps2-an386", "--emulator", "qemu", *args, cwd=tmp_path, timeout=60)
    assert_one_line_error(proc, f"{fifo.name} is a FIFO (named pipe), not a regular file")
    assert fifo.is_fifo()
    assert not (tmp_path / "tinyedge_build").exists()


def test_a_fifo_to_convert_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "m.keras")
    np.save(tmp_path / "c.npy", np.zeros((2, 1), np.float32))
    proc = run_cli("convert", "m.keras", "-o", "m.tflite", "--calibration", "c.npy", cwd=tmp_path, timeout=60)
    assert_one_line_error(proc, "model m.keras is a FIFO (named pipe), not a regular file")


def test_a_device_as_model_is_refused(tmp_path: Path) -> None:
    """/dev/zero never ends: read whole, it filled the memory."""
    assert_one_line_error(run_cli("inspect", "/dev/zero", cwd=tmp_path, timeout=60),
                          "model /dev/zero is a character device, not a regular file")


def test_project_that_holds_the_users_files_is_left_alone(tmp_path: Path) -> None:
    """Refused before any work, and nothing written in it (not even the lock file)."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    proc = run_cli(*VALIDATE, "--random", "1", "--project", "mine", cwd=tmp_path)
    assert_one_line_error(proc, "mine is not empty and not a tinyedge project", "directory for --project")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    assert "generating" not in proc.stdout
    assert_no_work(tmp_path, tmp_path / "report.json")
