"""Atomic file writes: write to a temporary name in the same folder, rename on success.

No reader ever sees a half-written file, and a failed or killed write leaves nothing at the
final path (a stale ``.tmp`` file at most, removed on the next attempt).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dingo_gw.errors import DataError


def temporary_path(path: str | Path) -> Path:
    """The temporary name used while writing ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp")


def check_writable(path: str | Path) -> Path:
    """Return ``path`` as a Path; DataError if its folder is missing or not writable."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DataError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise DataError(f"cannot write {path}: folder {parent} is not writable")
    if path.is_dir():
        raise DataError(f"cannot write {path}: it is a folder")
    return path


@contextlib.contextmanager
def atomic_write(path: str | Path, tmp: str | Path | None = None):
    """Context manager yielding a temporary Path; renamed to ``path`` if the block succeeds.

    ``tmp`` overrides the temporary name (default :func:`temporary_path`).

    >>> with atomic_write("bank.h5") as tmp:
    ...     write_everything(tmp)
    """
    path = check_writable(path)
    tmp = temporary_path(path) if tmp is None else Path(tmp)
    if tmp.exists():
        tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
