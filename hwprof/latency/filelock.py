"""One writer per table: an advisory lock file beside it while a build writes it.

Two builds into the same ``--out`` would each merge their rows into the table
they read at the start and the last writer would win, dropping the other's
rows. The second build is refused at once instead, with a message naming the
holder, before it measures anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from hwprof.errors import UserError


class TableBusy(UserError):
    """Another process is writing the table."""


def lock_path(table: Path) -> Path:
    return table.with_name(table.name + ".lock")


def _acquire(path: Path) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise TableBusy(f"another build (pid {holder}) is writing {path.name[:-5]}; wait for "
                            f"it to finish, or write to another --out") from None
        try:  # the holder before us may have removed the file we opened: lock the live one
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return fd
        os.close(fd)


@contextlib.contextmanager
def table_lock(table: str | os.PathLike) -> Iterator[None]:
    """Hold the table's lock for the block; refuse at once when another process holds it."""
    path = lock_path(Path(table))
    fd = _acquire(path)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
