"""Shared console-script plumbing: one clear error line and exit status 2 for user errors."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

from dingo_gw.errors import DataError, DingoError


def run_main(func):
    """Decorator for ``main(argv=None)``: DingoError -> 'error: ...' on stderr and exit 2.

    KeyboardInterrupt exits with 130 (resumable work has already been saved).
    """

    @functools.wraps(func)
    def wrapper(argv=None):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
        logging.getLogger("bilby").setLevel(logging.WARNING)
        try:
            result = func(argv)
        except DingoError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted; finished work is saved, rerun with --resume to continue", file=sys.stderr)
            sys.exit(130)
        sys.exit(int(result or 0))

    return wrapper


def ensure_parent(path: str | Path) -> Path:
    """Create the parent folder of an output path; DataError if that is impossible."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create folder {path.parent} for {path.name}: {e.strerror}") from None
    return path
