"""Shared test fixtures: paths to the project's data and the shared GWOSC files."""

import os
from pathlib import Path

# Multi-threaded OpenBLAS slows QR/SVD by orders of magnitude when the cores are busy with
# worker processes; must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_GWOSC = ROOT.parent / "shared" / "data" / "gwosc"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return ROOT / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # Tests run on 2 cores next to worker processes: one torch thread avoids oversubscription
    # (setting OMP_NUM_THREADS here would be too late, torch is already imported).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
