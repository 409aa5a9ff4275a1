"""Shared test fixtures: paths to the project's data and the shared GWOSC files."""

from pathlib import Path

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
