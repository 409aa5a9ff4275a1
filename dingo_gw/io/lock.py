"""Exclusive locks on outputs: one process at a time writes a bank, a dataset or a run folder.

:func:`output_lock` holds ``fcntl.flock`` on a lock file (``.<name>.lock`` next to a file, or
inside a folder) for the duration of a block; the file records the holder's pid. A second
process gets one clear DataError line. The operating system releases the lock when the holder
dies (even by SIGKILL); the file itself is removed on exit and a stale one is simply reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from dingo_gw.errors import DataError


def lock_path(output: str | Path, folder: bool = False) -> Path:
    """The lock file of ``output``: ``.<name>.lock`` beside a file, ``.dingo_gw.lock`` in a folder."""
    output = Path(output)
    return output / ".dingo_gw.lock" if folder else output.with_name(f".{output.name}.lock")


@contextlib.contextmanager
def output_lock(output: str | Path, folder: bool = False, lock: str | Path | None = None):
    """Hold an exclusive lock on ``output`` (its folder must exist) for the block; DataError
    "... is being written by another process (pid N)" if another process holds it.
    ``lock`` overrides the lock file (default :func:`lock_path`)."""
    path = Path(lock) if lock is not None else lock_path(output, folder)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise DataError(f"cannot lock {output}: {path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataError(f"{output} is being written by another process (pid {pid}); "
                            f"wait for it to finish or stop it") from None
        try:  # the holder before us may have removed the file after we opened it: lock the current one
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        with contextlib.suppress(OSError):  # the pid is for the message only (and the disk may be full)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
