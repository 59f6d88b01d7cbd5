"""Every shared reference model, generated and compiled for the host, is
bit-exact with the oracle, TensorFlow Lite Micro, on random inputs and the
extremes of the input range (host-C tier), with every kernel set that runs on
the host (conftest.HOST_KERNEL_VARIANTS: the portable kernels, the arm_dsp
kernels the Cortex-M4/M7/M33/M55 builds run, with emulated intrinsics, and the
dsp lowering on the portable reference kernels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import HOST_KERNEL_VARIANTS, MODEL_NAMES, host_network, shared_model
from tinyedge.model import load_model
from tinyedge.oracle import Oracle
from tinyedge.pipeline import random_samples

N_SAMPLES = 20


@pytest.mark.parametrize("variant", sorted(HOST_KERNEL_VARIANTS))
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shared_model_bit_exact_on_host(name: str, variant: str, tmp_path: Path) -> None:
    graph = load_model(shared_model(name))
    host = host_network(graph, tmp_path / name, variant)
    oracle = Oracle(graph.model_bytes)
    samples = random_samples(graph, N_SAMPLES, seed=1234)
    # the extremes of the input range too: all-min and all-max inputs
    for fill in (np.iinfo(np.int8).min, np.iinfo(np.int8).max):
        samples.append([np.full(t.shape, fill, dtype=np.int8) for t in graph.input_tensors])
    got = host.run_many(samples)
    mismatched = []
    for i, (sample, outs) in enumerate(zip(samples, got, strict=True)):
        want = oracle.run(sample)
        for o, w in zip(outs, want, strict=True):
            if not np.array_equal(o, w):
                diff = np.abs(o.astype(int) - w.astype(int))
                mismatched.append((i, int(np.count_nonzero(diff)), int(diff.max())))
    assert not mismatched, f"{name} ({variant}): samples (index, values differing, max diff): {mismatched}"


def test_generation_is_reproducible(tmp_path: Path) -> None:
    from tinyedge.boards import load_board
    from tinyedge.codegen.project import generate_project
    from tinyedge.compiler import compile

    graph = load_model(shared_model("kws_ref_model"))
    board = load_board("mps2-an386")
    a = generate_project(compile(graph, board), tmp_path / "a").path
    b = generate_project(compile(load_model(shared_model("kws_ref_model")), board), tmp_path / "b").path
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 10
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    # and no absolute paths or timestamps leak into the project
    for rel in files_a:
        assert str(tmp_path) not in (a / rel).read_text(errors="replace"), rel


def test_network_c_names_where_numbers_come_from(tmp_path: Path) -> None:
    from tinyedge.boards import load_board
    from tinyedge.codegen.project import generate_project
    from tinyedge.compiler import compile

    graph = load_model(shared_model("kws_ref_model"))
    p = generate_project(compile(graph, load_board("mps2-an386")), tmp_path / "p").path
    text = (p / "network.c").read_text()
    assert graph.sha256 in text
    assert text.count("/* ---- op ") == len(graph.operators)
    assert "te_network_run" in text
    header = (p / "model_data.c").read_text()
    assert graph.sha256 in header and "aligned(16)" in header
