"""Fixtures for the training tests: a tiny IMRPhenomPv2 bank (generated with the waveforms API),
a tiny ASD dataset of scaled design curves on the same domain, and configs/train_tiny.yaml
pointed at them."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dingo_gw.config import parse_config
from dingo_gw.design_curves import design_asd
from dingo_gw.domain import FrequencyDomain

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = ROOT / "configs" / "train_tiny.yaml"

#: 4 s segments, 20-128 Hz: 433 bins in the band (fast), long enough for the default prior.
DOMAIN = FrequencyDomain(20.0, 128.0, 0.25)


def make_asd_dataset(path: Path, domain: FrequencyDomain, n: int = 5, seed: int = 0) -> Path:
    from dingo_gw.noise.asd_dataset import ASDDataset, save_asd_dataset

    rng = np.random.default_rng(seed)
    base = design_asd("aLIGOZeroDetHighPower", domain.frequencies, fill_below=domain.f_min)
    asds = {d: np.stack([base * s for s in rng.uniform(0.8, 1.5, n)]) for d in ("H1", "L1")}
    return save_asd_dataset(ASDDataset(domain, asds, {}, {}), path)


@pytest.fixture(scope="session")
def asd_file():
    """asd_file(path, domain) -> an ASD dataset of scaled design curves on ``domain``."""
    return make_asd_dataset


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory):
    """(bank path, ASD dataset path) on DOMAIN: 300 waveforms (SVD-compressed to 40 basis vectors, as
    banks for training usually are), 5 ASDs per detector."""
    from dingo_gw.waveforms import BankConfig, generate_bank

    folder = tmp_path_factory.mktemp("tiny_data")
    cfg = parse_config({
        "domain": {"f_min": DOMAIN.f_min, "f_max": DOMAIN.f_max, "delta_f": DOMAIN.delta_f},
        "waveform": {"approximant": "IMRPhenomPv2", "f_ref": 20.0},
        "prior": "default", "num_samples": 300, "seed": 3,
        "compression": {"svd": {"size": 40, "num_training_samples": 250, "num_validation_samples": 50}},
    }, BankConfig)
    bank = folder / "bank.h5"
    generate_bank(cfg, bank, progress=False)
    asd = make_asd_dataset(folder / "asd.h5", DOMAIN)
    return bank, asd


@pytest.fixture(scope="session")
def config_writer(tiny_files):
    """config_writer(folder, name, **section_updates) -> path of configs/train_tiny.yaml with the tiny
    data, output_dir folder/<name>, and ``updates`` merged into its sections (dicts merge, else
    replace)."""

    def write(folder: Path, name: str = "run", **updates) -> Path:
        cfg = yaml.safe_load(TINY_CONFIG.read_text())
        cfg["data"]["bank"], cfg["data"]["asd_dataset"] = str(tiny_files[0]), str(tiny_files[1])
        cfg["output_dir"] = name
        for key, value in updates.items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key].update(value)
            else:
                cfg[key] = value
        path = Path(folder) / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    return write


@pytest.fixture
def write_config(config_writer, tmp_path):
    """write_config(name, **section_updates): config_writer into this test's tmp_path."""
    return lambda name="run", **updates: config_writer(tmp_path, name, **updates)


@pytest.fixture
def two_gloo_processes():
    """Runs ``torchrun --standalone --nproc_per_node 2 -m dingo_gw.cli.train CFG`` (CPU, gloo), one thread each."""
    return _two_gloo_processes


def _two_gloo_processes(cfg: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "dingo_gw.cli.train", str(cfg)],
        capture_output=True, text=True, timeout=240, env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=cwd,
    )
