"""Atomic file writes: write to a temporary name in the same folder, rename on success.

No reader ever sees a half-written file, and a failed or killed write leaves nothing at the
final path (a stale ``.tmp`` file at most, removed on the next attempt). A write that fails
(disk full, file too large, I/O error) raises DataError with one line and removes the
temporary file. Output paths must be regular files or not exist: device nodes, FIFOs, sockets
and folders are refused (:func:`check_output_path`).

HDF5 files are written through :func:`h5_writer`: the HDF5 library crashes (SIGSEGV) when the
disk fills up under it while it flushes, so it writes through a Python file object that takes
the failure and reports it after the library has closed the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from dingo_gw.errors import DataError

#: errno values of a write that failed for lack of room or a broken device.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


def temporary_path(path: str | Path) -> Path:
    """The temporary name used while writing ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp")


def check_output_path(path: str | Path, folder: bool = False) -> Path:
    """``path`` as a Path; DataError unless it does not exist or is a regular file (``folder``:
    a folder). Device nodes, FIFOs and sockets are never replaced or written into."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # creating it will tell
        return path
    except OSError as e:
        raise DataError(f"cannot use {path} as output: {e.strerror or e}") from None
    if folder and not stat.S_ISDIR(mode):
        raise DataError(f"cannot use {path} as output folder: it is {_kind(mode)}")
    if not folder and not stat.S_ISREG(mode):
        raise DataError(f"cannot write {path}: it is {_kind(mode)}, not a regular file")
    return path


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "not a regular file"


def check_writable(path: str | Path) -> Path:
    """Return ``path`` as a Path; DataError if its folder is missing or not writable, or if
    ``path`` exists and is not a regular file."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DataError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise DataError(f"cannot write {path}: folder {parent} is not writable")
    return check_output_path(path)


def write_failed(path: str | Path, e: OSError) -> DataError:
    """The one-line error of a failed write of ``path``."""
    reason = e.strerror or (str(e).splitlines() or [type(e).__name__])[0]
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = f"disk full ({reason})"
    return DataError(f"writing {path} failed: {reason}; the partial file was removed")


@contextlib.contextmanager
def atomic_write(path: str | Path, tmp: str | Path | None = None):
    """Context manager yielding a temporary Path; renamed to ``path`` if the block succeeds.

    ``tmp`` overrides the temporary name (default :func:`temporary_path`). An OSError in the
    block becomes a DataError (:func:`write_failed`); the temporary file is removed on any error.

    >>> with atomic_write("bank.h5") as tmp:
    ...     write_everything(tmp)
    """
    path = check_writable(path)
    tmp = temporary_path(path) if tmp is None else Path(tmp)
    check_output_path(tmp)
    if tmp.exists():
        tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise write_failed(path, e) from None
        raise


class _GuardedFile:
    """A binary file for h5py's file-object driver that never lets a failed write reach the
    HDF5 library: the first OSError is kept (later writes are dropped) and raised by the owner."""

    def __init__(self, path: Path, mode: str):
        self.raw = open(path, mode, buffering=0)
        self.error: OSError | None = None

    def readinto(self, buffer):
        return self.raw.readinto(buffer)

    def read(self, size=-1):
        return self.raw.read(size)

    def seek(self, offset, whence=os.SEEK_SET):
        return self.raw.seek(offset, whence)

    def tell(self):
        return self.raw.tell()

    def write(self, data):
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(view):
                    done += self.raw.write(view[done:])
                return done
            except OSError as e:
                self.error = e
        self.raw.seek(len(view), os.SEEK_CUR)
        return len(view)

    def truncate(self, size=None):
        if self.error is None:
            try:
                return self.raw.truncate(size)
            except OSError as e:
                self.error = e
        return size

    def flush(self):
        pass  # unbuffered

    def close(self):
        self.raw.close()


def h5_writer(path: str | Path, mode: str = "w"):
    """An ``h5py.File`` opened for writing (``mode`` "w" or "r+") whose write failures raise a
    clean OSError from :meth:`check` and :meth:`close` instead of crashing the HDF5 library."""
    import h5py

    class GuardedH5File(h5py.File):
        def check(self) -> None:
            """Raise the first failed write (OSError), if any."""
            if self._guard.error is not None:
                raise self._guard.error

        def close(self) -> None:
            if self.id.valid:
                super().close()
                self._guard.close()
                self.check()

    guard = _GuardedFile(Path(path), {"w": "w+b", "r+": "r+b"}[mode])
    try:
        f = GuardedH5File(guard, mode)
    except BaseException:
        guard.close()
        raise
    f._guard = guard
    return f


def close_quietly(f) -> None:
    """Close an h5py file after another error; its own errors no longer matter."""
    with contextlib.suppress(Exception):
        f.close()


def save_torch(obj, path: str | Path) -> None:
    """``torch.save(obj, path)`` through memory, so that a failed write raises a clean OSError
    (torch's own file writer reports it as an opaque RuntimeError)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with open(path, "wb") as fh:
        fh.write(buffer.getbuffer())


def prepare_outdir(outdir: str | Path) -> Path:
    """Create ``outdir`` (and parents) if needed; DataError if it cannot be written."""
    outdir = Path(outdir).expanduser()
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create output folder {outdir}: {e.strerror or e}") from None
    if not outdir.is_dir():
        raise DataError(f"output path {outdir} is not a folder")
    if not os.access(outdir, os.W_OK | os.X_OK):
        raise DataError(f"output folder {outdir} is not writable")
    return outdir
