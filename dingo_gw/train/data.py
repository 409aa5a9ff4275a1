"""Training data of a run: the bank, the ASD datasets, the train/validation split, pipelines.

The bank is read once (SVD coefficients of a compressed bank, decompressed per batch, or the
full h+/h× arrays) and held on the training device. ASD datasets are read on first use and must
share the bank's frequency grid (DomainMismatchError otherwise). The domain gets the window
factor of the Tukey window that inference applies to event strain (``data.window_roll_off``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from dingo_gw.domain import FrequencyDomain, tukey_window_factor
from dingo_gw.errors import ConfigError, DataError
from dingo_gw.noise.asd_dataset import ASDDataset, combine_asd_datasets, load_asd_dataset
from dingo_gw.pipeline import DataPipeline, GNPESettings, PolarizationSource, Standardization
from dingo_gw.train import seeds
from dingo_gw.train.config import TrainConfig
from dingo_gw.waveforms import load_bank

log = logging.getLogger(__name__)

#: Sampling rate (Hz) assumed for the event strain when computing the Tukey window factor
#: (GWOSC's 4 kHz files; the factor 1 - 5α/8 + O(1/n) hardly depends on it).
WINDOW_SAMPLING_RATE = 4096.0


def window_factor(domain: FrequencyDomain, roll_off: float | None) -> float:
    """Mean square of a Tukey window with ``roll_off`` seconds per side on T = 1/delta_f."""
    if roll_off is None or roll_off == 0:
        return 1.0
    alpha = 2.0 * roll_off / domain.duration
    if alpha > 1:
        raise ConfigError(
            f"data.window_roll_off = {roll_off} s is longer than half of the {domain.duration:g} s segment"
        )
    return tukey_window_factor(int(round(domain.duration * WINDOW_SAMPLING_RATE)), alpha)


@dataclass
class Conventions:
    """What a network's inputs and outputs mean, fixed at the start of a job: standardisation of
    θ and GNPE proxies, and the ASD reference of the third input channel."""

    standardization: Standardization
    proxy_standardization: Standardization | None
    asd_reference: dict[str, float]

    @classmethod
    def of(cls, pipe: DataPipeline) -> "Conventions":
        inp = pipe.input
        return cls(inp.theta_standardization, inp.proxy_standardization, dict(inp.asd_reference))

    def to_dict(self) -> dict:
        return {
            "standardization": self.standardization.to_dict(),
            "proxy_standardization": None if self.proxy_standardization is None
            else self.proxy_standardization.to_dict(),
            "asd_reference": {k: float(v) for k, v in self.asd_reference.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Conventions":
        p = d.get("proxy_standardization")
        return cls(Standardization.from_dict(d["standardization"]),
                   None if p is None else Standardization.from_dict(p), dict(d["asd_reference"]))


@dataclass
class TrainingData:
    """Bank waveforms and parameters on the device, the split, and ASD datasets by file list."""

    config: TrainConfig
    domain: FrequencyDomain
    polarizations: PolarizationSource
    parameters: dict[str, np.ndarray]
    bank_metadata: dict
    train_indices: torch.Tensor
    val_indices: torch.Tensor
    _asds: dict = field(default_factory=dict)

    @property
    def bank_size(self) -> int:
        return len(self.polarizations)

    # -- ASDs ---------------------------------------------------------------------------
    def asd_dataset(self, paths: Sequence[str]) -> ASDDataset:
        """The ASD datasets at ``paths`` combined, checked against the bank's domain and detectors."""
        key = tuple(paths)
        if key not in self._asds:
            parts = []
            for p in paths:
                ds = load_asd_dataset(p)
                # the bank's grid is the reference: "delta_f = <ASD's> Hz, expected <bank's> Hz"
                self.domain.check_same_grid(ds.domain, what=f"ASD dataset {p} (vs the bank {self.config.data.bank})")
                try:
                    ds.check_detectors(self.config.data.detectors)
                except DataError as e:
                    raise DataError(f"{p}: {e}") from None
                parts.append(ds.subset(self.config.data.detectors))
            self._asds[key] = parts[0] if len(parts) == 1 else combine_asd_datasets(parts)
        return self._asds[key]

    # -- pipelines ----------------------------------------------------------------------
    def pipeline(self, job: str, asd_paths: Sequence[str], conventions: Conventions | None = None,
                 dtype=torch.float32) -> DataPipeline:
        """The DataPipeline of ``job`` ("main": configured parameters and GNPE; "init": the
        detector times {det}_time without GNPE) with the ASDs of ``asd_paths``. Without
        ``conventions`` the standardisation is estimated (seeded) and the ASD reference is the
        median ASD of these datasets."""
        d = self.config.data
        if job == "main":
            gnpe = self.config.model.gnpe
            gnpe = None if gnpe is None else GNPESettings(kernel=gnpe.kernel, relative=gnpe.relative)
            names = list(d.inference_parameters)
        else:
            gnpe, names = None, [f"{det}_time" for det in d.detectors]
        asds = self.asd_dataset(asd_paths)
        c = conventions
        return DataPipeline(
            domain=self.domain, detectors=d.detectors, ref_time=d.ref_time, polarizations=self.polarizations,
            parameters=self.parameters, asds=asds.asds, inference_parameters=names,
            extrinsic_prior=d.extrinsic_prior, gnpe=gnpe,
            standardization=None if c is None else c.standardization,
            proxy_standardization=None if c is None else c.proxy_standardization,
            asd_reference=None if c is None else c.asd_reference,
            dtype=dtype, stats_samples=d.standardization_samples,
            stats_seed=seeds.derive_seed(self.config.seed, seeds.STANDARDIZATION, seeds.JOBS[job]),
        )

    # -- indices ------------------------------------------------------------------------
    def epoch_order(self, job: str, epoch: int) -> torch.Tensor:
        """Training indices in the shuffled order of ``epoch`` (seeded by seed, job, epoch)."""
        g = seeds.generator(seeds.derive_seed(self.config.seed, seeds.SHUFFLE, seeds.JOBS[job], epoch))
        return self.train_indices[torch.randperm(len(self.train_indices), generator=g)]

    # -- metadata -----------------------------------------------------------------------
    def intrinsic_prior(self) -> dict[str, str]:
        return dict((self.bank_metadata.get("config") or {}).get("prior") or {})

    def describe(self) -> dict:
        """Bank and ASD description for the network file."""
        md = self.bank_metadata
        svd = md.get("svd") or None
        return {
            "bank": {
                "path": self.config.data.bank,
                "num_waveforms": self.bank_size,
                "approximant": md.get("approximant"),
                "f_ref": md.get("f_ref"),
                "f_start": md.get("f_start"),
                "seed": md.get("seed"),
                "svd_size": None if svd is None else svd.get("size"),
                "versions": md.get("versions"),
            },
            "waveform": {"approximant": md.get("approximant"), "f_ref": md.get("f_ref"),
                         "f_start": md.get("f_start")},
            "window": {"type": "tukey", "roll_off": self.config.data.window_roll_off,
                       "sampling_rate": WINDOW_SAMPLING_RATE, "window_factor": self.domain.window_factor}
            if self.config.data.window_roll_off else None,
            "split": {"train": len(self.train_indices), "validation": len(self.val_indices)},
        }


def decompressed_source(bank, device, chunk: int = 4096) -> PolarizationSource:
    """h+/h× of an SVD-compressed bank as complex64 arrays on the band, decompressed chunk by
    chunk into one preallocated tensor (peak memory: the result plus one chunk)."""
    k = bank.domain.min_index
    n_band = len(bank.domain) - k
    h = torch.empty((len(bank), 2, n_band), dtype=torch.complex64, device=device)
    for a in range(0, len(bank), chunk):
        b = min(a + chunk, len(bank))
        rows = bank.read_chunk(a, b)
        for i, pol in enumerate(("h_plus", "h_cross")):
            part = torch.from_numpy(np.ascontiguousarray(rows[pol][:, k:]))
            if not torch.isfinite(torch.view_as_real(part)).all():
                raise DataError(f"{bank.path}: {pol} rows {a}..{b} contain NaN or infinite values")
            h[a:b, i] = part.to(device)
    return PolarizationSource(bank.domain, h=h)


def load_training_data(config: TrainConfig, device: torch.device) -> TrainingData:
    """Read the bank onto ``device``, split it, and check the main ASD dataset(s)."""
    d = config.data
    bank = load_bank(d.bank)
    domain = bank.domain
    domain = FrequencyDomain(domain.f_min, domain.f_max, domain.delta_f, window_factor(domain, d.window_roll_off))
    log.info("bank %s: %d waveforms, %s, %s", d.bank, len(bank), bank.approximant,
             f"SVD n={bank.svd.size}" if bank.svd is not None and not d.decompress_bank else "arrays")
    if d.decompress_bank and bank.svd is not None:
        polarizations = decompressed_source(bank, device)
    else:
        polarizations = PolarizationSource.from_bank(bank, device=device)
    parameters = dict(bank.parameters)
    metadata = dict(bank.metadata)
    del bank  # frees decompressed arrays held by the bank object

    n = len(polarizations)
    n_val = int(round(d.validation_fraction * n))
    if d.validation_fraction > 0:
        n_val = max(n_val, 1)
    if n - n_val < 1:
        raise DataError(f"bank {d.bank} has {n} waveforms: too few to hold out {n_val} for validation")
    g = seeds.generator(seeds.derive_seed(config.seed, seeds.SPLIT))
    perm = torch.randperm(n, generator=g)
    val, train = perm[:n_val].sort().values, perm[n_val:].sort().values
    data = TrainingData(config, domain, polarizations, parameters, metadata, train, val)
    data.asd_dataset(d.asd_datasets)  # fail early on a missing or mismatched ASD dataset
    return data
