"""Where tinyedge writes: paths checked before any work, files written atomically.

Every command checks its output paths (``--report``, ``-o``, ``--project``,
``--outdir``, ...) before it loads a model, builds or starts an emulator:
a path that is a directory where a file is wanted (or the reverse), whose
parent directory does not exist, that cannot be written, or that is on a
read-only file system ends in one error line and a hint.

Files are written with :func:`write_atomic`: into a temporary file beside the
target, flushed to the disk, then renamed over it. A reader never sees half a
file, an interrupted or failed write (a full disk included) leaves the
previous file as it was, and no temporary file is left behind. On Linux the
temporary file has no name while it is written (``O_TMPFILE``) and gets one
only for the instant between ``linkat`` and ``rename``, so even SIGKILL in
the middle of writing a large report leaves nothing behind; elsewhere it is a
named file that is removed on every error.
"""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from pathlib import Path

from tinyedge.errors import TinyEdgeError
from tinyedge.infiles import special_kind

_TMP_SUFFIX = ".tmp"


def _why(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "it is on a read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    return exc.strerror or str(exc)


def _probe_dir(directory: Path, option: str, target: Path) -> None:
    """Create and remove a file in ``directory``: the one reliable test that we
    can write there (``os.access`` says yes to root on a read-only mount)."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".tinyedge-probe-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise TinyEdgeError(f"{option} {target}: cannot write in {directory}: {_why(exc)}",
                            f"choose a {option} in a directory you can write to") from None


def _nearest_existing(path: Path) -> Path:
    return next((p for p in (path, *path.parents) if p.exists()), Path("."))


def check_output_file(path: Path, option: str) -> None:
    """``path`` can be written as a file: not a directory, its parent exists and is writable."""
    if path.is_dir():
        raise TinyEdgeError(f"{option} {path} is a directory, not a file",
                            f"give a file name, e.g. {option} {path / 'out.json'}" if option == "--report"
                            else f"give a file name inside it for {option}")
    kind = special_kind(path)
    if kind is not None:   # replacing it would not write into it: it would be gone (/dev/null, a FIFO)
        raise TinyEdgeError(f"{option} {path} is {kind}, not a regular file",
                            f"give a file name for {option}")
    parent = path.parent
    if not parent.exists():
        raise TinyEdgeError(f"{option} {path}: the directory {parent} does not exist",
                            f"create it first (mkdir -p {parent}) or choose another {option}")
    if not parent.is_dir():
        raise TinyEdgeError(f"{option} {path}: {parent} is not a directory", f"choose another {option}")
    if path.exists() and not os.access(path, os.W_OK):
        raise TinyEdgeError(f"{option} {path} exists and cannot be written (permission denied)",
                            f"choose another {option}, or make the file writable")
    _probe_dir(parent, option, path)


def check_output_dir(path: Path, option: str, create_parents: bool = False) -> None:
    """``path`` can be used as an output directory: it is one (or can be created:
    its parent exists, or with ``create_parents`` its nearest existing ancestor is
    a directory), and it is writable."""
    if path.exists() and not path.is_dir():
        raise TinyEdgeError(f"{option} {path} exists and is not a directory", f"choose another {option}")
    if path.is_dir():
        _probe_dir(path, option, path)
        return
    parent = path.parent
    if not parent.exists() and not create_parents:
        raise TinyEdgeError(f"{option} {path}: the directory {parent} does not exist",
                            f"create it first (mkdir -p {parent}) or choose another {option}")
    base = _nearest_existing(parent)
    if not base.is_dir():
        raise TinyEdgeError(f"{option} {path}: {base} is not a directory", f"choose another {option}")
    _probe_dir(base, option, path)


def _mode_for(path: Path) -> int:
    """The target's permissions when it exists, else what a new file gets (0666 & ~umask)."""
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_all(fd: int, raw: bytes, durable: bool) -> None:
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view):]
    if durable:
        os.fsync(fd)


def _write_unnamed(path: Path, raw: bytes, durable: bool) -> bool:
    """Write through an unnamed O_TMPFILE file, then name it and rename it over
    ``path``. False when the file system (or OS) has no O_TMPFILE."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return False
    try:
        fd = os.open(path.parent, flag | os.O_WRONLY, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return False
        raise
    name: str | None = None
    try:
        _write_all(fd, raw, durable)
        os.fchmod(fd, _mode_for(path))
        name = str(path.parent / f".{path.name}.{secrets.token_hex(4)}{_TMP_SUFFIX}")
        # linkat(AT_SYMLINK_FOLLOW) on the /proc link names the open file; os.link
        # calls linkat (not link) only when given a directory fd
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.link(f"/proc/self/fd/{fd}", os.path.basename(name), dst_dir_fd=dir_fd, follow_symlinks=True)
        except OSError as exc:
            name = None
            if exc.errno in (errno.ENOENT, errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP):
                return False  # no /proc, or a file system that cannot do it: a named file instead
            raise
        finally:
            os.close(dir_fd)
        os.replace(name, path)
        name = None
    finally:
        os.close(fd)
        if name is not None:
            try:
                os.unlink(name)
            except OSError:
                pass
    return True


def write_atomic(path: Path, data: str | bytes, what: str = "", durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (module doc). An OSError (a full
    disk, a read-only file system) becomes a TinyEdgeError that says the previous
    file is intact. ``durable``: flush to the disk before the rename, so that even
    a power cut leaves the old or the new file (reports); generated sources, which
    are made again in a moment, skip it."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else bytes(data)
    tmp: str | None = None
    try:
        if _write_unnamed(path, raw, durable):
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
        try:
            _write_all(fd, raw, durable)
        finally:
            os.close(fd)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        kept = "; the previous file is intact" if path.exists() else ""
        raise TinyEdgeError(f"cannot write {what or path} ({path}): {_why(exc)}{kept}",
                            "free some disk space and run again" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                            else "check that the directory exists and can be written") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
