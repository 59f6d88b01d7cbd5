"""A report is never destroyed, and the device must be what we think it is.

The report under test is written by a real run (hello_world in QEMU). Every
refusal is checked to leave the file byte for byte as it was, to come before
anything is generated or built, and to say what differs.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from clitools import assert_one_line_error, run_cli
from conftest import require_tool, shared_model
from modelpatch import with_weight_changed

from tinyedge import procs
from tinyedge.errors import TinyEdgeError

pytestmark = pytest.mark.emulator
BOARD = "mps2-an386"
HELLO = shared_model("hello_world_int8")


def validate(*args: str, cwd: Path, model: Path = HELLO, board: str = BOARD):  # type: ignore[no-untyped-def]
    return run_cli("validate", str(model), "--board", board, "--emulator", "qemu", *args, cwd=cwd)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project built for hello_world, a report of 3 random samples, and another model."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        require_tool(tool)
    work = tmp_path_factory.mktemp("reports")
    proc = validate("--random", "3", "--report", "hello.json", "--project", "fw", cwd=work)
    assert proc.returncode == 0, proc.stderr
    (work / "other.tflite").write_bytes(with_weight_changed(HELLO.read_bytes()))
    return work


@pytest.fixture
def report(work: Path, tmp_path: Path) -> Path:
    """A fresh copy of the run's report, in a directory of its own."""
    copy = tmp_path / "report.json"
    shutil.copy(work / "hello.json", copy)
    return copy


def refused(proc, report: Path, before: bytes, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert_one_line_error(proc, *needles)
    assert report.read_bytes() == before           # untouched
    assert sorted(p.name for p in report.parent.iterdir()) == ["report.json"]   # nothing built, no temp file


# ---- --resume against another run's or a damaged report ---------------------------

@pytest.mark.parametrize("args,model,board,needles", [
    (["--random", "3"], "other", BOARD, ["--resume", "was written for model 'hello_world_int8.tflite'",
                                          "not 'other.tflite'"]),
    (["--random", "3"], "hello", "mps2-an385", ["was written for board mps2-an386, not mps2-an385"]),
    (["--random", "4"], "hello", BOARD, ["other inputs: --random 3 --seed 0 (3 samples), "
                                         "not --random 4 --seed 0 (4 samples)"]),
    (["--random", "3", "--seed", "1"], "hello", BOARD, ["other inputs", "not --random 3 --seed 1"]),
    (["--random", "3", "--per-layer"], "hello", BOARD, ["is the report of a sample-by-sample validation, "
                                                        "not of --per-layer --sample 0"]),
])
def test_resume_refuses_another_run(work: Path, report: Path, args: list[str], model: str, board: str,
                                    needles: list[str]) -> None:
    before = report.read_bytes()
    path = HELLO if model == "hello" else work / "other.tflite"
    proc = validate(*args, "--resume", "--report", str(report), "--project", str(report.parent / "fw"),
                    cwd=report.parent, model=path, board=board)
    refused(proc, report, before, *needles)


def test_resume_refuses_other_data(work: Path, report: Path) -> None:
    import numpy as np

    np.save(report.parent / "d.npy", np.zeros((3, 1), np.float32))
    before = report.read_bytes()
    proc = validate("--data", str(report.parent / "d.npy"), "--resume", "--report", str(report),
                    "--project", str(report.parent / "fw"), cwd=work)
    assert_one_line_error(proc, "other inputs: --random 3 --seed 0 (3 samples), not --data d.npy (3 samples)")
    assert report.read_bytes() == before


@pytest.mark.parametrize("damage,needle", [
    (lambda b: b[: len(b) // 2], "is not valid JSON (truncated or damaged)"),
    (lambda b: b"", "is empty, not a tinyedge report"),
    (lambda b: b"[1, 2, 3]\n", "holds a JSON list, not a tinyedge report object"),
    (lambda b: b'{"results": []}\n', "is not a tinyedge validation report"),
    (lambda b: json.dumps({**json.loads(b), "format_version": 2}).encode(),
     "is a report of format version 2, this tinyedge reads version 3"),
    (lambda b: b"\xff\xfe binary", "cannot read"),
    # a hand-edited sample: refused before the build, not a traceback after it
    (lambda b: json.dumps({**json.loads(b), "samples": [{**json.loads(b)["samples"][0], "ticks": "x"}]}).encode(),
     "sample 0 is malformed (field(s) ticks"),
    (lambda b: json.dumps({**json.loads(b), "samples": [{**json.loads(b)["samples"][0], "extra": 1}]}).encode(),
     "sample 0 is malformed (field(s) extra"),
])
def test_resume_refuses_a_damaged_report(work: Path, report: Path, damage, needle: str) -> None:  # type: ignore[no-untyped-def]
    report.write_bytes(damage(report.read_bytes()))
    before = report.read_bytes()
    proc = validate("--random", "3", "--resume", "--report", str(report), "--project", str(report.parent / "fw"),
                    cwd=work)
    line = assert_one_line_error(proc, needle)
    assert "--resume" in line and report.read_bytes() == before


# ---- without --resume: never overwrite another run's report by accident -------------

def test_another_models_report_is_not_overwritten(work: Path, report: Path) -> None:
    before = report.read_bytes()
    proc = validate("--random", "2", "--report", str(report), "--project", str(report.parent / "fw"),
                    cwd=work, model=work / "other.tflite")
    refused(proc, report, before, "holds the report of another run: model 'hello_world_int8.tflite'",
            "on mps2-an386, not 'other.tflite' on mps2-an386", "--force")


def test_a_file_that_is_no_report_is_not_overwritten(work: Path, tmp_path: Path) -> None:
    precious = tmp_path / "report.json"
    precious.write_text('{"my": "data"}\n')
    proc = validate("--random", "2", "--report", str(precious), "--project", str(tmp_path / "fw"), cwd=work)
    refused(proc, precious, b'{"my": "data"}\n', "is not a tinyedge validation report", "--force")


def test_force_overwrites_and_the_same_run_replaces(work: Path, tmp_path: Path) -> None:
    """--force replaces another model's report; a report of the same model and board
    (here with another sample count) is replaced without it."""
    import subprocess

    shutil.copy(work / "hello.json", tmp_path / "r.json")
    subprocess.run(["cp", "-a", str(work / "fw"), str(tmp_path / "fw")], check=True)   # kept incremental
    proc = validate("--random", "2", "--report", "r.json", "--project", "fw", "--force", cwd=tmp_path,
                    model=work / "other.tflite")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["model"] == "other.tflite" and len(data["samples"]) == 2 and data["all_exact"]
    proc = validate("--random", "1", "--report", "r.json", "--project", "fw", cwd=tmp_path,
                    model=work / "other.tflite")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["run"]["count"] == 1


# ---- a full disk mid-run --------------------------------------------------------

def test_full_disk_mid_run_keeps_the_last_complete_report(work: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The third write of the report fails with ENOSPC (injected into its flush to
    disk, where a full disk shows): a clear error, the second write's report intact,
    no temporary file, QEMU stopped."""
    from tinyedge import outputs, validate
    from tinyedge.pipeline import validate_model

    written: list[bytes] = []
    real_write, real_fsync = outputs.write_atomic, os.fsync

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write(path: Path, data: str | bytes, what: str = "", durable: bool = True) -> None:
        if len(written) == 2:
            monkeypatch.setattr(outputs.os, "fsync", full_disk)
        try:
            real_write(path, data, what, durable)
        finally:
            monkeypatch.setattr(outputs.os, "fsync", real_fsync)
        written.append(data.encode() if isinstance(data, str) else data)

    monkeypatch.setattr(validate, "write_atomic", write)
    report = tmp_path / "report.json"
    with pytest.raises(TinyEdgeError, match=r"cannot write the report .*: the disk is full; the previous file "
                                            r"is intact") as err:
        validate_model(HELLO, BOARD, emulator="qemu", port=None, data=None, n_random=5, seed=0,
                       report_path=report, project=work / "fw")
    assert "free some disk space" in err.value.hint
    assert len(written) == 2 and report.read_bytes() == written[1]
    data = json.loads(report.read_text())
    assert data["samples"] and data["complete"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert not [p for p in procs.live() if p.poll() is None]


def test_sigkill_while_writing_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A process killed with SIGKILL in the middle of writing a large report leaves the
    previous report or the new one, and nothing else: the file being written has no
    name until the instant it is renamed into place."""
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "report.json"
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys\n"
        "from pathlib import Path\n"
        "from tinyedge.outputs import write_atomic\n"
        "p = Path(sys.argv[1]); i = 0\n"
        "while True:\n"
        "    i += 1; write_atomic(p, str(i) * 20_000_000, 'the report')\n"
        "    print(i, flush=True)\n"), str(target)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    child.stdout.readline()       # one write is complete; the next is under way
    time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    assert set(target.read_text()) <= set("0123456789") and len(target.read_text()) % 20_000_000 == 0


def test_without_o_tmpfile_a_named_file_is_used_and_removed_on_error(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the OS has no O_TMPFILE, the temporary file is a named one: written and
    renamed, or removed when the write fails (here: the disk fills up)."""
    from tinyedge import outputs

    monkeypatch.delattr(outputs.os, "O_TMPFILE", raising=False)
    target = tmp_path / "r.json"
    outputs.write_atomic(target, "one", "the report")
    assert target.read_text() == "one"

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.os, "fsync", full_disk)
    with pytest.raises(TinyEdgeError, match="the disk is full; the previous file is intact"):
        outputs.write_atomic(target, "two", "the report")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"] and target.read_text() == "one"


# ---- the device is what we think it is ------------------------------------------------

def test_firmware_for_another_board_is_refused(work: Path, tmp_path: Path) -> None:
    """Firmware built for mps2-an385 (Cortex-M3) runs on QEMU's mps2-an386 machine, and
    must not be validated (and measured) as mps2-an386: refused from its project's
    manifest before QEMU starts and, for an ELF outside its project, from HELLO."""
    proc = run_cli("generate", str(HELLO), "--board", "mps2-an385", "-o", "fw385", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert run_cli("build", "fw385", cwd=tmp_path).returncode == 0
    proc = validate("--random", "1", "--firmware", "fw385", cwd=tmp_path)
    assert_one_line_error(proc, "firmware fw385/build/firmware.elf was built for mps2-an385", "not for mps2-an386",
                          "--board mps2-an385")
    assert "validating" not in proc.stdout
    shutil.copy(tmp_path / "fw385" / "build" / "firmware.elf", tmp_path / "bare.elf")
    proc = validate("--random", "1", "--firmware", "bare.elf", cwd=tmp_path)
    assert_one_line_error(proc, "the device runs firmware built for mps2-an385 (cortex-m3), "
                                "not for mps2-an386 (cortex-m4)", "--board mps2-an385")
    assert not (tmp_path / "report.json").exists()


def test_firmware_of_another_model_is_named(work: Path, tmp_path: Path) -> None:
    """Read from the ELF (te_model_sha256, te_model_name) before QEMU starts."""
    proc = validate("--random", "1", "--firmware", str(work / "fw"), cwd=tmp_path, model=work / "other.tflite")
    assert_one_line_error(proc, "was built for 'hello_world_int8' (SHA-256 505ee4fae7fa...), not 'other' "
                                "(SHA-256 ")
    assert "validating" not in proc.stdout


def test_firmware_built_with_other_kernels_is_refused(work: Path, tmp_path: Path) -> None:
    """fw was built with the board's default (dsp) kernels; --kernels portable asks for others."""
    proc = validate("--random", "1", "--firmware", str(work / "fw"), "--kernels", "portable", cwd=tmp_path)
    assert_one_line_error(proc, "was built with the dsp kernels, not --kernels portable")


def test_report_records_the_firmware_kernel_set(work: Path, tmp_path: Path) -> None:
    """A generated firmware's set, a prebuilt one's from its project's manifest, and
    "unknown" for an ELF with no project beside it -- never the set --kernels auto would
    pick now."""
    assert json.loads((work / "hello.json").read_text())["kernels"] == "dsp"
    proc = validate("--random", "1", "--firmware", str(work / "fw"), "--report", "a.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "as built (dsp kernels)" in proc.stdout
    assert json.loads((tmp_path / "a.json").read_text())["kernels"] == "dsp"
    shutil.copy(work / "fw" / "build" / "firmware.elf", tmp_path / "bare.elf")
    proc = validate("--random", "1", "--firmware", "bare.elf", "--report", "b.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "kernel set unknown" in proc.stdout
    assert json.loads((tmp_path / "b.json").read_text())["kernels"] == "unknown"


@pytest.mark.parametrize("size", [100, 3000])
def test_truncated_firmware_is_a_user_error(work: Path, tmp_path: Path, size: int) -> None:
    (tmp_path / "cut.elf").write_bytes((work / "fw" / "build" / "firmware.elf").read_bytes()[:size])
    proc = validate("--random", "1", "--firmware", "cut.elf", cwd=tmp_path)
    assert_one_line_error(proc, "cut.elf is a damaged or truncated ELF file")
