"""Project directories: a failed build names the compiler's first error, generating
again removes tinyedge's own stale files and nothing else, and two runs sharing a
directory take turns."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from clitools import assert_one_line_error, run_cli
from conftest import require_tool, shared_model

from tinyedge.errors import TinyEdgeError
from tinyedge.lock import LOCK_NAME, project_lock

HELLO = str(shared_model("hello_world_int8"))


def _tools() -> None:
    for tool in ("arm-none-eabi-gcc", "make"):
        require_tool(tool)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hello_world generated and built for mps2-an386 once; tests copy it."""
    _tools()
    work = tmp_path_factory.mktemp("projects")
    assert run_cli("generate", HELLO, "--board", "mps2-an386", "-o", "fw", cwd=work).returncode == 0
    assert run_cli("build", "fw", cwd=work).returncode == 0
    return work / "fw"


def copy_project(src: Path, dst: Path) -> Path:
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)   # mtimes kept: make stays incremental
    return dst


# ---- builds say what broke ---------------------------------------------------------

def test_compile_error_is_the_compilers_first_diagnostic(built: Path, tmp_path: Path) -> None:
    fw = copy_project(built, tmp_path / "fw")
    net = fw / "network.c"
    lines = net.read_text().splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("void te_network_run(void)"))
    lines.insert(at + 2, "    int unused_here;")        # -Werror=unused-variable
    net.write_text("\n".join(lines) + "\n")
    proc = run_cli("build", "fw", cwd=tmp_path)
    line = assert_one_line_error(proc, f"network.c:{at + 3}:9: error: unused variable 'unused_here'",
                                 "build/make.log")
    assert "arm-none-eabi-gcc" not in line and "-mcpu" not in line     # not the command line
    log = (fw / "build" / "make.log").read_text()
    assert "unused_here" in log and "-Werror" in log    # the whole output is kept


def test_link_error_is_named(built: Path, tmp_path: Path) -> None:
    fw = copy_project(built, tmp_path / "fw")
    net = fw / "network.c"
    text = net.read_text().replace("void te_network_run(void)\n{\n",
                                   "void te_missing_kernel(void);\nvoid te_network_run(void)\n{\n"
                                   "    te_missing_kernel();\n")
    assert "te_missing_kernel();" in text
    net.write_text(text)
    proc = run_cli("build", "fw", cwd=tmp_path)
    assert_one_line_error(proc, "undefined reference to `te_missing_kernel'")


# ---- generating again into a project directory -----------------------------------------

def test_regenerating_removes_stale_files_and_keeps_the_users(built: Path, tmp_path: Path) -> None:
    """mps2-an386 -> netduinoplus2 -> mps2-an385 in one directory: the previous board's
    UART driver goes (it would be linked beside the new one), files the user added or
    changed stay, and each build links objects made for the current core only."""
    fw = copy_project(built, tmp_path / "fw")
    (fw / "NOTES.md").write_text("mine\n")
    (fw / "board" / "extra.h").write_text("/* mine */\n")
    files = json.loads((fw / "tinyedge.json").read_text())["files"]
    assert "board/uart_cmsdk.c" in files and "NOTES.md" not in files

    proc = run_cli("generate", HELLO, "--board", "netduinoplus2", "-o", "fw", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (fw / "board" / "uart_cmsdk.c").exists() and (fw / "board" / "uart_stm32.c").exists()
    assert (fw / "NOTES.md").read_text() == "mine\n" and (fw / "board" / "extra.h").read_text() == "/* mine */\n"
    assert run_cli("build", "fw", cwd=tmp_path).returncode == 0

    (fw / "board" / "uart_stm32.c").write_text((fw / "board" / "uart_stm32.c").read_text() + "/* my fix */\n")
    proc = run_cli("generate", HELLO, "--board", "mps2-an385", "-o", "fw", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "kept" in proc.stderr and "uart_stm32.c" in proc.stderr      # the user changed it: kept, said
    assert (fw / "board" / "uart_stm32.c").read_text().endswith("/* my fix */\n")
    (fw / "board" / "uart_stm32.c").unlink()
    build = run_cli("build", "fw", cwd=tmp_path)
    assert build.returncode == 0, build.stderr                  # M4F objects are not linked into M3 firmware
    assert "-mcpu=cortex-m3" in (fw / "build" / "make.log").read_text()


# ---- two runs, one directory ---------------------------------------------------------

_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tinyedge.lock import project_lock
    with project_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def hold_lock(project: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(project), str(seconds)], text=True,
                            stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_build_waits_for_the_first(built: Path, tmp_path: Path) -> None:
    fw = copy_project(built, tmp_path / "fw")
    holder = hold_lock(fw, 2.0)
    start = time.monotonic()
    proc = run_cli("build", "fw", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start >= 1.5            # it waited for the holder
    assert "waiting for another tinyedge run (pid" in proc.stderr and str(fw.name) in proc.stderr
    holder.wait(timeout=10)


def test_lock_wait_is_bounded(tmp_path: Path) -> None:
    holder = hold_lock(tmp_path, 30.0)
    try:
        with pytest.raises(TinyEdgeError, match=r"still in use by another tinyedge run \(pid \d+.*after 0.5 s"):
            with project_lock(tmp_path, wait=0.5, log=lambda _m: None):
                pass
    finally:
        holder.kill()
        holder.wait()
    with project_lock(tmp_path, wait=0.5):     # the kernel freed it with its holder
        with project_lock(tmp_path):           # and it is re-entrant within a process
            assert (tmp_path / LOCK_NAME).exists()


@pytest.mark.parametrize("manifest", ['{"board": "mps2-an386", ', "[1]", '{"model_sha256": "ab"}'])
def test_a_damaged_manifest_is_a_user_error(tmp_path: Path, manifest: str) -> None:
    """build and flash read DIR/tinyedge.json: damaged, it is named, not a traceback."""
    (tmp_path / "fw").mkdir()
    (tmp_path / "fw" / "tinyedge.json").write_text(manifest)
    for args in (["build", "fw"], ["flash", "fw", "--probe", "gdb://127.0.0.1:9"]):
        assert_one_line_error(run_cli(*args, cwd=tmp_path), "fw/tinyedge.json", "generate the project again")


def test_a_killed_compiler_is_named_not_makes_waiting_line() -> None:
    """make.log of a build whose cc1 was killed (captured from a real run): the
    driver's fatal error says what broke; "Waiting for unfinished jobs" does not."""
    from tinyedge.build import first_diagnostic

    log = ("make: Entering directory '/tmp/p'\n"
           "arm-none-eabi-gcc -mcpu=cortex-m4 -c runtime/te_activations.c -o build/obj/runtime/te_activations.o\n"
           "arm-none-eabi-gcc: fatal error: Killed signal terminated program cc1\n"
           "compilation terminated.\n"
           "make: *** [Makefile:53: build/obj/runtime/te_activations.o] Error 1\n"
           "make: *** Waiting for unfinished jobs....\n"
           "make: Leaving directory '/tmp/p'\n")
    assert first_diagnostic(log) == "arm-none-eabi-gcc: fatal error: Killed signal terminated program cc1"
