"""Shared fixtures: paths to the reference models and tool availability."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tinyedge.hostrun import HostNetwork
from tinyedge.model import Graph

ROOT = Path(__file__).resolve().parent.parent
# The public reference models (MLPerf Tiny + TFLM hello_world, Apache-2.0),
# copied unchanged from ../shared/models with their provenance note.
SHARED_MODELS = ROOT / "tests" / "data" / "models"
MODEL_NAMES = ["hello_world_int8", "kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8"]


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.fail(f"reference model missing: {path}")
    return path


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return SHARED_MODELS


def require_tool(tool: str) -> None:
    """The suite installs its tools (scripts/test.sh); a missing one is a failure, not a skip."""
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} not found: run scripts/test.sh, which installs it")


# Host builds of the kernel sets (tinyedge/kernels.py), by test id: (the set the network
# is lowered for, whose kernel files it is built with). "dsp" runs the arm_dsp kernels
# with arm_dsp/te_dsp.h's emulated intrinsics; "dsp-portable-impl" runs the portable
# reference of every kernel (and constant layout) the dsp lowering chose, and
# "mve-portable-impl" that of the mve lowering's (the Helium kernels themselves run
# only in QEMU on the M55: tests/test_qemu_conv_fc.py, tests/test_qemu_board_models.py).
HOST_KERNEL_VARIANTS: dict[str, tuple[str, str]] = {
    "portable": ("portable", "portable"),
    "dsp": ("dsp", "dsp"),
    "dsp-portable-impl": ("dsp", "portable"),
    "mve-portable-impl": ("mve", "portable"),
}


def host_network(graph: Graph, workdir: Path, variant: str) -> HostNetwork:
    """A HostNetwork of ``graph`` for one of HOST_KERNEL_VARIANTS."""
    kernels, impl = HOST_KERNEL_VARIANTS[variant]
    return HostNetwork(graph, workdir, kernels=kernels, implementations=impl)
