"""A tiny GNPE network (2 s, 20-128 Hz, IMRPhenomD, H1 + L1) trained here in ~10 s, and helpers
to run the real ``dingo_serve`` in a subprocess on a free loopback port."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dingo_gw.config import parse_config
from dingo_gw.design_curves import design_asd
from dingo_gw.domain import FrequencyDomain
from dingo_gw.noise.asd_dataset import ASDDataset, save_asd_dataset
from dingo_gw.train.config import parse_train_config
from dingo_gw.train.run import train
from dingo_gw.waveforms import generate_bank
from dingo_gw.waveforms.config import BankConfig

DOMAIN = {"f_min": 20.0, "f_max": 128.0, "delta_f": 0.5}
PHASE = "Uniform(minimum=0.0, maximum=6.283185307179586, boundary='periodic')"
NO_SPIN = {"a_1": 0.0, "a_2": 0.0, "tilt_1": 0.0, "tilt_2": 0.0, "phi_12": 0.0, "phi_jl": 0.0}
GW150914_GPS = 1126259462.4
ROOT = Path(__file__).resolve().parents[2]


def build_tiny_network(folder: Path) -> Path:
    """A direct NPE network for (chirp_mass, luminosity_distance, ra, dec) trained in ~15 s: bank of
    3000 IMRPhenomD waveforms (mass ratio 0.8, theta_jn 0.4, no spins), ASD dataset of scaled
    design curves, arrival time 0 and psi 0.7 fixed (the approach of
    tests/inference/test_inference_analyze.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    domain = FrequencyDomain(**DOMAIN)
    rng = np.random.default_rng(0)
    asd = design_asd("aLIGOZeroDetHighPower", domain.frequencies, fill_below=20.0)
    save_asd_dataset(ASDDataset(domain, asds={k: asd[None] * rng.uniform(1, 3, (20, 1)) for k in ("H1", "L1")},
                                gps_times={}, sources={}), folder / "asd.h5")
    prior = {"chirp_mass": "bilby.gw.prior.UniformInComponentsChirpMass(minimum=25.0, maximum=35.0)",
             "mass_ratio": 0.8, **NO_SPIN, "theta_jn": 0.4, "phase": PHASE}
    bank = parse_config({"domain": DOMAIN, "waveform": {"approximant": "IMRPhenomD", "f_ref": 20.0}, "prior": prior,
                         "num_samples": 3000, "seed": 2, "chunk_size": 500,
                         "compression": {"svd": {"size": 16, "num_training_samples": 300,
                                                 "num_validation_samples": 50}}}, BankConfig)
    generate_bank(bank, folder / "bank.h5", progress=False)
    cfg = {
        "data": {"bank": str(folder / "bank.h5"), "asd_dataset": str(folder / "asd.h5"), "detectors": ["H1", "L1"],
                 "inference_parameters": ["chirp_mass", "luminosity_distance", "ra", "dec"],
                 "window_roll_off": 0.4, "validation_fraction": 0.1, "standardization_samples": 2000,
                 "extrinsic_prior": {"luminosity_distance": "Uniform(minimum=200.0, maximum=1500.0)",
                                     "geocent_time": 0.0, "psi": 0.7,
                                     "ra": "Uniform(minimum=0.0, maximum=6.283185307179586, boundary='periodic')",
                                     "dec": "Cosine(minimum=-1.5707963267948966, maximum=1.5707963267948966)"}},
        "model": {"type": "npe", "embedding": {"n_basis": 8, "hidden_dims": [64, 32], "output_dim": 16},
                  "flow": {"transforms": 3, "bins": 8, "hidden_features": [32, 32]}},
        "training": {"svd_samples": 200, "stages": [{"epochs": 6, "batch_size": 128,
                                                      "optimizer": {"name": "adam", "lr": 2e-3},
                                                      "scheduler": {"name": "cosine", "min_lr": 1e-4}}]},
        "local": {"device": "cpu", "num_threads": 1, "progress": False}, "seed": 1,
        "output_dir": str(folder / "train"),
    }
    return Path(train(parse_train_config(cfg)).network)


@pytest.fixture(scope="session")
def tiny_network(tmp_path_factory) -> Path:
    return build_tiny_network(tmp_path_factory.mktemp("serve_network"))


class ServiceProcess:
    """``python -m dingo_gw.cli.serve --config FILE`` in a subprocess (port 0: a free loopback port)."""

    def __init__(self, config: Path, state_dir: Path):
        self.config, self.state_dir = config, state_dir
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 90.0) -> "ServiceProcess":
        endpoint = self.state_dir / "endpoint.json"
        if endpoint.exists():
            endpoint.unlink()
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.log = open(self.config.with_suffix(".log"), "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "dingo_gw.cli.serve", "--config", str(self.config)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
        t0 = time.monotonic()
        while not endpoint.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"dingo_serve exited with {self.proc.returncode}: "
                                   f"{self.config.with_suffix('.log').read_text()[-2000:]}")
            if time.monotonic() - t0 > timeout:
                self.kill()
                raise RuntimeError("dingo_serve did not start in time")
            time.sleep(0.1)
        info = json.loads(endpoint.read_text())
        assert info["pid"] == self.proc.pid
        self.url = info["url"]
        return self

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        if getattr(self, "log", None):
            self.log.close()


@pytest.fixture(scope="session")
def service_process():
    """The ServiceProcess class (test modules here are not a package, so no direct import)."""
    return ServiceProcess
