"""Shared test fixtures: paths to the project's data and the shared GWOSC files."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_GWOSC = ROOT.parent / "shared" / "data" / "gwosc"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return ROOT / "data"


@pytest.fixture(autouse=True)
def _few_threads(monkeypatch):
    # Tests run on 2 cores next to other work: keep torch/BLAS from oversubscribing.
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
