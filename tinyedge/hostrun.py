"""Run a generated network on the host: the fast path to compare with the oracle.

The generated network.c and the runtime are plain C99, so the same files that
go into the firmware compile with the host's gcc. ``HostNetwork`` generates
them into a work directory, compiles once, and runs any number of samples
through one process (host/host_main.c's stdin/stdout protocol).

Kernel sets (tinyedge/kernels.py): the portable set, and the dsp set, whose
intrinsics arm_dsp/te_dsp.h emulates on the host from the Arm ARM's
pseudocode, build here; Helium kernels run only on an M55 (QEMU mps3-an547).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from tinyedge import kernels as kernel_sets
from tinyedge import procs
from tinyedge.build import first_diagnostic
from tinyedge.codegen.network import render_network_files, write_files
from tinyedge.compiler import CompiledNetwork, compile
from tinyedge.errors import InternalError, TinyEdgeError
from tinyedge.model import Graph, load_model
from tinyedge.model.ir import DTYPES
from tinyedge.resources import templates_dir

HOST_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]


def _np_dtype(dtype: str) -> np.dtype:
    return np.dtype(next(nt for n, nt in DTYPES.values() if n == dtype))


def runtime_files(kernels: str = "portable") -> dict[str, str]:
    """A kernel set's library as a project holds it, flat (one file per name,
    tinyedge.kernels.runtime_files): ``runtime/<name>`` -> text."""
    return {f"runtime/{name}": src.read_text() for name, src in sorted(kernel_sets.runtime_files(kernels).items())}


def copy_runtime(outdir: Path, kernels: str = "portable") -> None:
    """Sync a kernel set's library into a work directory's runtime/: copy what
    changed, drop what the set does not have, leave the rest untouched (mtimes
    kept so incremental builds stay incremental)."""
    files = runtime_files(kernels)
    write_files(outdir, files)
    for stale in (outdir / "runtime").iterdir():
        if f"runtime/{stale.name}" not in files and stale.is_file():
            stale.unlink()


def cache_root() -> Path:
    return Path(os.environ.get("TINYEDGE_CACHE", Path.home() / ".cache" / "tinyedge"))


def _compiler_identity(cc_path: str) -> bytes:
    st = os.stat(cc_path)
    ident = f"{cc_path}|{st.st_size}|{st.st_mtime_ns}".encode()
    if st.st_size < 1 << 20:  # a wrapper script: its text matters (e.g. extra -D flags)
        ident += Path(cc_path).read_bytes()
    return ident


def _require_host_set(kernels: str) -> None:
    if kernels not in kernel_sets.HOST_SETS:
        raise TinyEdgeError(f"the {kernels} kernels do not run on the host",
                            f"run them on their core (QEMU mps3-an547 for mve); on the host use "
                            f"{' or '.join(kernel_sets.HOST_SETS)}")


def runtime_objects(cc: str, kernels: str = "portable") -> list[Path]:
    """A kernel set's runtime compiled for the host, once per (sources, flags,
    compiler): cached under $TINYEDGE_CACHE (default ~/.cache/tinyedge), safe
    to share between concurrent processes (built aside, then renamed into place)."""
    _require_host_set(kernels)
    cc_path = shutil.which(cc)
    if cc_path is None:
        raise TinyEdgeError(f"host C compiler '{cc}' not found", "sudo apt-get install gcc")
    files = kernel_sets.runtime_files(kernels)
    h = hashlib.sha256(" ".join(HOST_CFLAGS).encode() + _compiler_identity(cc_path))
    for name, f in files.items():
        h.update(name.encode() + b"\0" + f.read_bytes())
    cache = cache_root() / "host-runtime" / h.hexdigest()[:20]
    if not (cache / "done").exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache.parent, prefix="tmp-"))
        try:
            # the set's files side by side, as in a generated project's runtime/
            copy_runtime(tmp, kernels)
            src = tmp / "runtime"
            c_files = [str(src / name) for name in files if name.endswith(".c")]
            proc = procs.run([cc_path, *HOST_CFLAGS, f"-I{src}", "-c", *c_files], cwd=tmp,
                             capture_output=True, text=True)
            if proc.returncode != 0:
                raise InternalError(f"host build of the runtime failed: {first_diagnostic(proc.stderr)}",
                                    proc.stderr)
            shutil.rmtree(src)
            (tmp / "done").write_text("")
            try:
                os.rename(tmp, cache)
            except OSError:  # another process finished first: use its copy
                pass
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return sorted(cache.glob("*.o"))


class HostNetwork:
    """A network compiled for the host, ready to run samples.

    ``kernels``: the kernel set to lower a graph for (default portable); a
    CompiledNetwork brings its own. ``implementations``: whose kernel files to
    build it with (default: the set it was lowered for); "portable" runs the
    portable reference of every kernel a dsp lowering chose, the same calls and
    constants (what the tests check those references with)."""

    def __init__(self, model: CompiledNetwork | Graph | str | Path, workdir: str | Path, cc: str = "cc",
                 kernels: str | None = None, implementations: str | None = None) -> None:
        if isinstance(model, CompiledNetwork):
            if kernels is not None and kernels != model.kernels:
                raise ValueError(f"the network was lowered for the {model.kernels} kernels, not {kernels}")
            self.net = model
        else:
            self.net = compile(model if isinstance(model, Graph) else load_model(model), kernels=kernels or "portable")
        impl = implementations or self.net.kernels
        _require_host_set(impl)
        self.graph = self.net.graph
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        name = Path(self.graph.source).stem if self.graph.source != "<bytes>" else "model"
        write_files(self.workdir, render_network_files(self.net, name))
        copy_runtime(self.workdir, impl)
        host = self.workdir / "host"
        host.mkdir(exist_ok=True)
        shutil.copy(templates_dir() / "host" / "host_main.c", host / "host_main.c")
        self.exe = self.workdir / "network_host"
        objects = [str(o) for o in runtime_objects(cc, impl)]
        cmd = [cc, *HOST_CFLAGS, "-Iruntime", "-I.", "network.c", "model_data.c", "host/host_main.c",
               *objects, "-o", "network_host", "-lm"]
        proc = procs.run(cmd, cwd=self.workdir, capture_output=True, text=True)
        if proc.returncode != 0:
            raise InternalError(f"host build of the generated network failed: {first_diagnostic(proc.stderr)}",
                                f"in {self.workdir}: {' '.join(cmd)}\n{proc.stderr}")
        self.compile_log = proc.stderr

    def run_many(self, samples: Sequence[Sequence[np.ndarray]]) -> list[list[np.ndarray]]:
        """Run many samples in one process; each sample is a list of input arrays."""
        g = self.graph
        ins = g.input_tensors
        outs = g.output_tensors
        payload = bytearray()
        for sample in samples:
            for t, x in zip(ins, sample, strict=True):
                arr = np.ascontiguousarray(np.asarray(x, dtype=_np_dtype(t.dtype)))
                if arr.size != t.size:
                    raise TinyEdgeError(f"input {t.name} needs {t.size} values, got {arr.size}",
                                        f"shape the data as {list(t.shape)}")
                payload += arr.tobytes()
        proc = procs.run([str(self.exe)], input=bytes(payload), capture_output=True)
        if proc.returncode != 0:
            raise InternalError(f"host network exited with {proc.returncode}", proc.stderr.decode(errors="replace"))
        per_sample = sum(t.nbytes for t in outs)
        data = proc.stdout
        if len(data) != per_sample * len(samples):
            raise InternalError(f"host network wrote {len(data)} bytes, expected {per_sample * len(samples)}")
        results: list[list[np.ndarray]] = []
        pos = 0
        for _ in samples:
            row = []
            for t in outs:
                row.append(np.frombuffer(data[pos : pos + t.nbytes], dtype=_np_dtype(t.dtype))
                           .reshape(t.shape).copy())
                pos += t.nbytes
            results.append(row)
        return results

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.run_many([inputs])[0]


def run_on_host(model: CompiledNetwork | Graph | str | Path, inputs: Sequence[np.ndarray], workdir: str | Path) -> list[np.ndarray]:
    return HostNetwork(model, workdir).run(inputs)
