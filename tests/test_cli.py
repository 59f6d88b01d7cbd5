"""The CLI's error paths: one line + hint, no traceback, non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tflite

from clitools import assert_clean_error, run_cli
from conftest import shared_model
from modelpatch import with_opcode

from tinyedge.errors import InternalError


@pytest.fixture(scope="module")
def unsupported_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hello_world with its FULLY_CONNECTED turned into SKIP_GRAM, an op tinyedge does not run."""
    data = with_opcode(shared_model("hello_world_int8").read_bytes(), 0, tflite.BuiltinOperator.SKIP_GRAM)
    p = tmp_path_factory.mktemp("bad") / "skipgram.tflite"
    p.write_bytes(data)
    return p


def test_inspect_missing_file(tmp_path: Path) -> None:
    assert_clean_error(run_cli("inspect", str(tmp_path / "missing.tflite")), "not found")


def test_inspect_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(shared_model("kws_ref_model").read_bytes()[:5000])
    assert_clean_error(run_cli("inspect", str(bad)), "corrupt")


def test_generate_not_a_model(tmp_path: Path) -> None:
    bad = tmp_path / "notes.tflite"
    bad.write_text("just text")
    assert_clean_error(run_cli("generate", str(bad), "--board", "mps2-an386", "-o", str(tmp_path / "p")),
                       "not a tflite model")


def test_unsupported_op_named_at_inspect(unsupported_model: Path) -> None:
    proc = run_cli("inspect", str(unsupported_model))
    assert proc.returncode == 1
    assert "SKIP_GRAM" in proc.stdout and "unsupported" in proc.stdout
    assert "FULLY_CONNECTED" in proc.stdout  # the supported-op list is printed


def test_unsupported_op_named_at_generate(unsupported_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "proj"
    proc = run_cli("generate", str(unsupported_model), "--board", "mps2-an386", "-o", str(out))
    assert_clean_error(proc, "SKIP_GRAM", "op 0")
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert not out.exists()  # nothing written on failure


def test_unknown_board(tmp_path: Path) -> None:
    proc = run_cli("generate", str(shared_model("hello_world_int8")), "--board", "no-such-board", "-o",
                   str(tmp_path / "p"))
    assert_clean_error(proc, "no-such-board", "mps2-an386")


def test_build_not_a_project(tmp_path: Path) -> None:
    assert_clean_error(run_cli("build", str(tmp_path)), "not a tinyedge project")


def test_generate_refuses_to_clobber(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    proc = run_cli("generate", str(shared_model("hello_world_int8")), "--board", "mps2-an386", "-o", str(tmp_path))
    assert_clean_error(proc, "refusing")
    assert (tmp_path / "precious.txt").read_text() == "mine"


def test_inspect_json_reports_fit() -> None:
    proc = run_cli("inspect", str(shared_model("kws_ref_model")), "--board", "mps2-an386", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["fit"]["fits"] is True
    assert d["total_macs"] > 2_000_000  # MODELS.md: 2.66 M MACs
    assert d["param_bytes"] > 0 and d["arena_bytes"] > 0


def test_inspect_says_which_kernel_set_its_figures_are_for() -> None:
    """The arena and weights depend on the kernel set: inspect names it -- the board's
    best by default, portable without a board, and the one asked for with --kernels."""
    model = str(shared_model("kws_ref_model"))
    sets = {}
    for extra in ([], ["--board", "mps2-an386"], ["--kernels", "mve"], ["--board", "mps2-an386", "--kernels",
                                                                         "portable"]):
        proc = run_cli("inspect", model, "--json", *extra)
        assert proc.returncode == 0, proc.stderr
        sets[" ".join(extra)] = json.loads(proc.stdout)["kernels"]
    assert sets == {"": "portable", "--board mps2-an386": "dsp", "--kernels mve": "mve",
                    "--board mps2-an386 --kernels portable": "portable"}
    proc = run_cli("inspect", model, "--board", "mps2-an386")
    assert "with the dsp kernels" in proc.stdout


def test_inspect_json_microbit_does_not_fit_vww() -> None:
    proc = run_cli("inspect", str(shared_model("vww_96_int8")), "--board", "microbit", "--json")
    if "no-such" in proc.stderr or "unknown board" in proc.stderr.lower():
        pytest.fail("microbit board file missing")
    d = json.loads(proc.stdout)
    assert d["fit"]["verdict"] == "does not fit" and d["fit"]["fits"] is False
    assert "RAM" in d["fit"]["reason"] and "16384" in d["fit"]["reason"]  # the microbit has 16 KiB of RAM


def test_validate_needs_a_target() -> None:
    proc = run_cli("validate", str(shared_model("hello_world_int8")), "--board", "mps2-an386", "--random", "1")
    assert proc.returncode == 2 and "--emulator" in proc.stderr


def test_ops_lists_registry() -> None:
    proc = run_cli("ops", "--json")
    assert proc.returncode == 0
    ops = json.loads(proc.stdout)
    for name in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D",
                 "RESHAPE", "SOFTMAX", "ADD", "QUANTIZE", "DEQUANTIZE"):
        assert name in ops


def test_validate_refuses_a_model_that_cannot_fit(tmp_path: Path) -> None:
    """The fit check's lower bound fails validate before anything is compiled."""
    proc = run_cli("validate", str(shared_model("vww_96_int8")), "--board", "microbit", "--emulator", "qemu",
                   "--random", "1", "--project", str(tmp_path / "fw"), cwd=tmp_path)
    assert_clean_error(proc, "does not fit microbit", "RAM")
    assert not (tmp_path / "fw").exists()


@pytest.mark.parametrize("exc", [InternalError("the lowering lost op 3", "what the compiler said"),
                                 IndexError("list index out of range")])
def test_a_bug_shows_its_traceback_and_asks_for_a_report(monkeypatch: pytest.MonkeyPatch,
                                                         exc: Exception) -> None:
    """Our own bugs are not user errors: traceback, the request to report, exit 70."""
    from click.testing import CliRunner

    import tinyedge.compiler
    from tinyedge.cli import main
    from tinyedge.errors import INTERNAL_ERROR_EXIT

    def broken(*_args: object, **_kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(tinyedge.compiler, "compile", broken)
    result = CliRunner().invoke(main, ["inspect", str(shared_model("hello_world_int8"))])
    assert result.exit_code == INTERNAL_ERROR_EXIT == 70
    out = result.output
    assert "Traceback (most recent call last)" in out and "internal error:" in out
    assert "please report it" in out and "error: " not in out.replace("internal error: ", "")
    if isinstance(exc, InternalError):
        assert "the lowering lost op 3" in out and "what the compiler said" in out
    else:
        assert "IndexError: list index out of range" in out
