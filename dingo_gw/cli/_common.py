"""Shared console-script plumbing: one clear error line and exit status 2 for user errors,
clean stops on SIGINT/SIGTERM, checked and locked output paths, range-checked numbers."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import math
import signal
import sys
import threading
from pathlib import Path

from dingo_gw.errors import DataError, DingoError
from dingo_gw.io.atomic import WRITE_ERRNOS, check_output_path
from dingo_gw.io.lock import output_lock


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM: unwinds like Ctrl-C (pools stopped, files closed)."""


#: Signals received by :func:`_raise_terminated` in this process.
_RECEIVED: list[int] = []


def _raise_terminated(signum, frame):
    _RECEIVED.append(signum)
    raise Terminated(signum)


def _quiet_after_sigterm(unraisable):
    """sys.unraisablehook while SIGTERM unwinds: a C library that was calling back into Python (h5py's
    file-object driver) reports the interruption as an unraisable error; it is the stop, not a fault."""
    if not _RECEIVED:
        sys.__unraisablehook__(unraisable)


def run_main(func):
    """Decorator for ``main(argv=None)``: DingoError -> 'error: ...' on stderr and exit 2.

    SIGTERM unwinds like Ctrl-C. KeyboardInterrupt exits with 130 (SIGTERM: 143; resumable work
    has already been saved). A write that fails for lack of room or a broken device (OSError
    ENOSPC, EDQUOT, EFBIG, EROFS, EIO) is also one error line with exit status 2.
    """

    @functools.wraps(func)
    def wrapper(argv=None):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
        logging.getLogger("bilby").setLevel(logging.WARNING)
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
        previous_hook, sys.unraisablehook = sys.unraisablehook, _quiet_after_sigterm
        try:
            result = func(argv)
        except DingoError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as e:
            what = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
            print(f"interrupted ({what}); finished work is saved, rerun with --resume to continue", file=sys.stderr)
            sys.exit(143 if isinstance(e, Terminated) else 130)
        except OSError as e:
            if e.errno not in WRITE_ERRNOS:
                raise
            where = f" ({e.filename})" if e.filename else ""
            print(f"error: cannot write{where}: {e.strerror or e}", file=sys.stderr)
            sys.exit(2)
        except Exception:
            if not _RECEIVED:
                raise
            # SIGTERM arrived while a C extension ran Python code (h5py's file-object driver): the library
            # reports it as its own error (e.g. SystemError); it is still the stop
            print("interrupted (SIGTERM); finished work is saved, rerun with --resume to continue", file=sys.stderr)
            sys.exit(143)
        finally:
            if not _RECEIVED:  # after SIGTERM the quiet hook stays for the interpreter's shutdown
                sys.unraisablehook = previous_hook
            if main_thread:
                signal.signal(signal.SIGTERM, previous)
        sys.exit(int(result or 0))

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the commands' convention for bad arguments: one ``error:`` line, exit 2."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def ensure_parent(path: str | Path) -> Path:
    """Create the parent folder of an output path; DataError if that is impossible or if the
    path exists and is not a regular file."""
    path = check_output_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create folder {path.parent} for {path.name}: {e.strerror}") from None
    return path


@contextlib.contextmanager
def created_folders(folder: str | Path):
    """Create ``folder`` and its missing parents (DataError if impossible); if the block fails,
    remove again those created here that it left empty."""
    folder = Path(folder)
    missing = []
    parent = folder
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create output folder {folder}: {e.strerror or e}") from None
    try:
        yield folder
    except BaseException:
        for created in missing:  # deepest first
            with contextlib.suppress(OSError):
                created.rmdir()
        raise


@contextlib.contextmanager
def output_file(path: str | Path, lock: bool = True):
    """An output file for the block: a regular file or nothing (else DataError), its missing
    folders created (removed again if the block fails), and locked against other writers."""
    path = check_output_path(Path(path).expanduser())
    with created_folders(path.parent):
        if not lock:
            yield path
            return
        with output_lock(path):
            yield path


@contextlib.contextmanager
def output_dir(path: str | Path, lock: bool = True):
    """An output folder for the block: a folder or nothing (else DataError), created (and
    removed again if the block fails and leaves it empty), locked against other writers."""
    path = check_output_path(Path(path).expanduser(), folder=True)
    with created_folders(path):
        if not lock:
            yield path
            return
        with output_lock(path, folder=True):
            yield path


def number(kind: type, low=None, high=None, low_open: bool = False):
    """argparse type: an int or float ``kind`` in [low, high] (``low_open``: (low, high]); floats
    must be finite. The error names the allowed range."""
    name = "an integer" if kind is int else "a number"

    def fmt(v) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"

    if low is not None and high is not None:
        allowed = f"in {'(' if low_open else '['}{fmt(low)}, {fmt(high)}]"
    elif low is not None:
        allowed = f"{'>' if low_open else '>='} {fmt(low)}"
    else:
        allowed = f"<= {fmt(high)}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
        ok = (math.isfinite(value) and (low is None or (value > low if low_open else value >= low))
              and (high is None or value <= high))
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {name} {allowed}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


#: Bounds shared by the commands.
SEED = number(int, 0, 2**32 - 1)
WORKERS = number(int, 1, 1024)
