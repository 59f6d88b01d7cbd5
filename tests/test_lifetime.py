"""Every child process dies with tinyedge: signals sent to the real CLI mid-run.

Each case starts `tinyedge validate ... --emulator qemu` (or `build`, or
`convert`) as a subprocess in a session of its own, waits until the child it
is about (QEMU, make and its compilers, the converter's Python) is running,
sends a signal, and checks by pid that every process tinyedge had started is
gone (or a zombie: dead, waiting to be reaped). Other processes are never
touched: only the pids found below the CLI's own pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable

import pytest

from conftest import require_tool, shared_model

pytestmark = pytest.mark.emulator
BOARD = "mps2-an386"
MODEL = shared_model("hello_world_int8")


# ---- /proc helpers ------------------------------------------------------------

def _stat(pid: int) -> tuple[str, str, int] | None:
    """(comm, state, ppid) of a live process, None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    state, ppid = text[text.rindex(")") + 2:].split()[:2]
    return comm, state, int(ppid)


def descendants(root: int) -> dict[int, str]:
    """pid -> comm of every live process below ``root``."""
    children: dict[int, list[int]] = {}
    comms: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[1] != "Z":
                children.setdefault(st[2], []).append(int(entry))
                comms[int(entry)] = st[0]
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = comms[child]
            todo.append(child)
    return found


def gone(pid: int) -> bool:
    st = _stat(pid)
    return st is None or st[1] in ("Z", "X")


def wait_for(what: str, cond: Callable[[], object], timeout: float) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def assert_all_gone(pids: dict[int, str], timeout: float = 8.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not all(gone(p) for p in pids):
        time.sleep(0.05)
    left = {p: c for p, c in pids.items() if not gone(p)}
    assert not left, f"still running after tinyedge ended: {left}"


def cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """The real CLI in a session of its own (so that a 'terminal' signal can go to its group)."""
    return subprocess.Popen([sys.executable, "-m", "tinyedge.cli", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        require_tool(tool)
    work = tmp_path_factory.mktemp("lifetime")
    subprocess.run([sys.executable, "-m", "tinyedge.cli", "generate", str(MODEL), "--board", BOARD, "-o", "fw"],
                   cwd=work, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "tinyedge.cli", "build", "fw"], cwd=work, check=True,
                   capture_output=True)
    return work


# ---- QEMU under validate --------------------------------------------------------

def _start_validation(workdir: Path, report: Path) -> tuple[subprocess.Popen[str], int]:
    proc = cli("validate", str(MODEL), "--board", BOARD, "--emulator", "qemu", "--random", "5000",
               "--project", str(workdir / "fw"), "--report", str(report), cwd=workdir)

    def qemu() -> int | None:
        return next((p for p, c in descendants(proc.pid).items() if c.startswith("qemu-system")), None)

    def one_sample_done() -> bool:
        try:
            return len(json.loads(report.read_text())["samples"]) >= 1
        except (OSError, ValueError):
            return False

    pid = wait_for("QEMU to start", qemu, 60)
    wait_for("the first sample in the report", one_sample_done, 60)   # mid-run
    assert isinstance(pid, int) and proc.poll() is None
    return proc, pid


@pytest.mark.parametrize("sig,to_group,code", [
    pytest.param(signal.SIGINT, True, 130, id="SIGINT"),     # Ctrl-C in a terminal: the foreground group
    pytest.param(signal.SIGTERM, False, 143, id="SIGTERM"),  # a cancelled CI job
    pytest.param(signal.SIGHUP, True, 129, id="SIGHUP"),     # the terminal or ssh session closed
    pytest.param(signal.SIGKILL, False, -9, id="SIGKILL"),   # no handler: the watchdog, the parent-death signal
])
def test_signal_mid_validation_stops_qemu(workdir: Path, tmp_path: Path, sig: int, to_group: bool,
                                          code: int) -> None:
    report = tmp_path / "report.json"
    proc, qemu_pid = _start_validation(workdir, report)
    started = descendants(proc.pid)
    (os.killpg if to_group else os.kill)(proc.pid, sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    if sig != signal.SIGKILL:
        assert "Traceback" not in stderr and "interrupted" in stderr, stderr
    assert_all_gone({qemu_pid: "qemu-system-arm", **started})
    # the report is whole (atomic writes), and no temporary file is left beside it
    data = json.loads(report.read_text())
    assert data["samples"] and data["complete"] is False
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


# ---- make and its compilers under build ----------------------------------------

def test_sigterm_mid_build_stops_make_and_compilers(tmp_path: Path) -> None:
    for tool in ("arm-none-eabi-gcc", "make"):
        require_tool(tool)
    model = shared_model("vww_96_int8")   # a large model_data.c: the compilers run for seconds
    subprocess.run([sys.executable, "-m", "tinyedge.cli", "generate", str(model), "--board", BOARD, "-o", "fw"],
                   cwd=tmp_path, check=True, capture_output=True)
    proc = cli("build", "fw", cwd=tmp_path)

    def compiling() -> dict[int, str]:
        below = descendants(proc.pid)
        return below if any(c.startswith(("cc1", "arm-none-eabi-gc", "as")) for c in below.values()) else {}

    started = wait_for("a compiler under make", compiling, 60)
    assert isinstance(started, dict) and "make" in started.values()
    os.kill(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "Traceback" not in stderr, stderr
    assert_all_gone(started)
    # make deleted what it was writing: the next build links a good firmware
    again = subprocess.run([sys.executable, "-m", "tinyedge.cli", "build", "fw"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


# ---- the converter's child Python ----------------------------------------------

def test_sigkill_mid_convert_stops_the_converter_child(tmp_path: Path) -> None:
    import numpy as np

    (tmp_path / "model.keras").write_bytes(b"not really a model: the child dies importing TensorFlow first")
    np.save(tmp_path / "calib.npy", np.zeros((2, 4), np.float32))
    proc = cli("convert", "model.keras", "-o", "out.tflite", "--calibration", "calib.npy", cwd=tmp_path)

    def child() -> dict[int, str]:
        return {p: c for p, c in descendants(proc.pid).items() if c.startswith("python")}

    started = wait_for("the converter's child process", child, 60)
    assert isinstance(started, dict)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert_all_gone(started)


# ---- each mechanism on its own (tinyedge.procs) ----------------------------------

_SPAWNER = textwrap.dedent("""
    import sys, threading, time
    from tinyedge import procs
    # From a thread other than the main one: no parent-death signal, the watchdog alone.
    def spawn():
        procs.popen(["sh", "-c", "sleep 300 & sleep 300"])
    t = threading.Thread(target=spawn)
    t.start(); t.join()
    print("ready", flush=True)
    time.sleep(300)
""")


def test_watchdog_stops_a_whole_group_when_tinyedge_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no handler to run and, for a child started outside the main
    thread, no parent-death signal: the watchdog alone stops the child's group,
    grandchildren included."""
    proc = subprocess.Popen([sys.executable, "-c", _SPAWNER], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1], start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    wait_for("both sleeps", lambda: list(descendants(proc.pid).values()).count("sleep") == 2, 10)
    below = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert_all_gone(below)


def test_parent_death_signal_alone(tmp_path: Path) -> None:
    """With the watchdog killed first, the parent-death signal still stops a child
    started from the main thread."""
    code = textwrap.dedent("""
        import os, signal, time
        from tinyedge import procs
        procs.popen(["sleep", "300"])
        os.kill(procs._watchdog.pid, signal.SIGKILL)
        procs._watchdog.wait()
        print("ready", flush=True)
        time.sleep(300)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1], start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    wait_for("the sleep", lambda: list(descendants(proc.pid).values()) == ["sleep"], 10)
    below = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert_all_gone(below, timeout=2.0)
