"""Atomic file writes: a temporary file beside the target, fsync, rename, fsync the folder.

A reader (or a build killed half-way) only ever sees the old file or the new
one, never a partial write. A new file gets the mode the umask gives (like
``open(path, "w")``); a rewritten file keeps its mode.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Callable

from hwprof.errors import UserError


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], *, binary: bool = True,
                 error: type[UserError] = UserError) -> None:
    """Call ``write(f)`` on a temporary file, then atomically put it at ``path``.

    A folder that cannot be created or written is ``error`` with the reason;
    anything ``write`` raises removes the temporary file and propagates.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise error(f"{path} is a directory; give a file name")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise error(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            os.fchmod(f.fileno(), file_mode(path))
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dfd = os.open(parent, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename is done anyway
        return
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def file_mode(path: Path) -> int:
    """The permission bits ``path`` has now, or those a new file gets under the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda f: f.write(text), binary=False)
