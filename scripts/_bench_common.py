"""Helpers shared by the side-by-side benchmarks (scripts/bench_vs_dingo.py, bench_vs_bilby.py).

Not part of the package: subprocess timing, one-line failures, YAML output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


class BenchError(Exception):
    """A benchmark cannot run; the message is printed as one line and the script exits with ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def run_cli(main) -> int:
    """Run ``main()``; a BenchError (or a DingoError) becomes one line on stderr and its exit code."""
    from dingo_gw.errors import DingoError

    try:
        return main() or 0
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except DingoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


@dataclass
class Timed:
    """A finished command: wall time [s], exit code, captured output."""

    wall: float
    returncode: int
    stdout: str
    stderr: str

    def check(self, what: str) -> "Timed":
        """BenchError naming ``what`` and the last line of stderr when the command failed."""
        if self.returncode != 0:
            lines = [ln for ln in (self.stderr or self.stdout).strip().splitlines() if ln.strip()]
            raise BenchError(f"{what} failed (exit {self.returncode}): {lines[-1] if lines else 'no output'}")
        return self


def timed_run(cmd: list[str], env: dict | None = None, cwd: str | Path | None = None,
              log: Path | None = None) -> Timed:
    """Run ``cmd`` to completion, measuring its wall time; output is captured (and written to ``log``)."""
    t0 = time.perf_counter()
    p = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if log is not None:
        log.write_text(f"$ {' '.join(map(str, cmd))}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}")
    return Timed(wall, p.returncode, p.stdout, p.stderr)


def thread_env(threads: int, extra: dict | None = None) -> dict:
    """The current environment with every thread pool (OpenMP, MKL, OpenBLAS) set to ``threads``."""
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[key] = str(threads)
    env.update(extra or {})
    return env


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def console_script(name: str, python: str | Path) -> Path | None:
    """The console script ``name`` installed next to the interpreter ``python`` (a venv's bin/)."""
    p = Path(python).parent / name
    return p if p.exists() else None


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"
