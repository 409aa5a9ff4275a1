"""Training data of a run: the bank, the ASD datasets, the train/validation split, pipelines.

The bank is read once (SVD coefficients of a compressed bank, decompressed per batch, or the
full h+/h× arrays) and held on the training device, or, with ``data.bank_in_memory: false``,
stays on disk and is read per batch in whole HDF5 chunks (:class:`DiskPolarizationSource`). ASD datasets are read on first use and must
share the bank's frequency grid (DomainMismatchError otherwise). The domain gets the window
factor of the Tukey window that inference applies to event strain (``data.window_roll_off``).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import OrderedDict
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
        """The ASD datasets at ``paths`` combined, checked against the bank's domain and detectors.

        A dataset may hold some of the detectors only (e.g. synthetic H1/L1 next to measured V1);
        every detector must have ASDs in at least one of them. ASDs are drawn per detector.
        """
        key = tuple(paths)
        if key not in self._asds:
            wanted = list(self.config.data.detectors)
            parts = []
            for p in paths:
                ds = load_asd_dataset(p)
                # the bank's grid is the reference: "delta_f = <ASD's> Hz, expected <bank's> Hz"
                self.domain.check_same_grid(ds.domain, what=f"ASD dataset {p} (vs the bank {self.config.data.bank})")
                held = [d for d in wanted if d in ds.detectors]
                if not held:
                    raise DataError(f"{p}: ASD dataset has none of the detectors {', '.join(wanted)} "
                                    f"(it has {', '.join(ds.detectors)})")
                parts.append(ds.subset(held))
            combined = parts[0] if len(parts) == 1 else combine_asd_datasets(parts)
            missing = [d for d in wanted if d not in combined.detectors]
            if missing:
                raise DataError(f"no ASD dataset has ASDs for {', '.join(missing)} "
                                f"(datasets: {', '.join(str(p) for p in paths)})")
            self._asds[key] = combined
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
            extrinsic_prior=d.training_prior_spec(), gnpe=gnpe,
            standardization=None if c is None else c.standardization,
            proxy_standardization=None if c is None else c.proxy_standardization,
            asd_reference=None if c is None else c.asd_reference,
            dtype=dtype, stats_samples=d.standardization_samples,
            stats_seed=seeds.derive_seed(self.config.seed, seeds.STANDARDIZATION, seeds.JOBS[job]),
        )

    # -- indices ------------------------------------------------------------------------
    def epoch_order(self, job: str, epoch: int) -> torch.Tensor:
        """Training indices in the shuffled order of ``epoch`` (seeded by seed, job, epoch): a
        uniform permutation, or, for a bank on disk, the chunk-aligned order of
        :func:`chunk_window_order`."""
        g = seeds.generator(seeds.derive_seed(self.config.seed, seeds.SHUFFLE, seeds.JOBS[job], epoch))
        if isinstance(self.polarizations, DiskPolarizationSource):
            return chunk_window_order(self.train_indices, self.polarizations.chunk_rows,
                                      self.config.data.disk_shuffle_window, g)
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


def chunk_window_order(indices: torch.Tensor, chunk_rows: int, window: int, generator: torch.Generator) -> torch.Tensor:
    """A shuffled order of bank ``indices`` for reading from disk: the HDF5 chunks (``chunk_rows``
    consecutive rows each) are put in random order, cut into windows of ``window`` chunks, and
    the rows of each window are shuffled together. Every index appears once per epoch, as with a
    uniform permutation, but consecutive batches read from the same few chunks (each chunk is
    read about once per epoch with a cache of 2 windows); rows of chunks far apart in the
    shuffled chunk order never share a batch."""
    chunk = torch.div(indices, chunk_rows, rounding_mode="floor")
    chunks, position = torch.unique(chunk, return_inverse=True)  # position: index of each row's chunk
    rank = torch.empty(len(chunks), dtype=torch.float64)
    rank[torch.randperm(len(chunks), generator=generator)] = torch.arange(len(chunks), dtype=torch.float64)
    key = torch.div(rank[position], window, rounding_mode="floor") + torch.rand(len(indices), generator=generator,
                                                                                dtype=torch.float64)
    return indices[torch.argsort(key)]


class DiskPolarizationSource:
    """h+/h× of a bank that stays on disk: rows are read from its HDF5 file per batch.

    The same interface as :class:`dingo_gw.pipeline.PolarizationSource` (``get_stacked(idx)`` ->
    (B, 2, n_band) complex64 on ``device``, on the band f >= f_min). Reads are whole HDF5 chunks of
    the bank (``chunk_rows`` rows of both polarisations, ~1 MiB each) through an LRU cache of
    ``cache_chunks`` chunks; SVD coefficients are decompressed per batch with the same basis and
    the same product as in memory, so batches equal the in-memory ones bit for bit. Memory: the
    cache (cache_chunks x 2 x ~1 MiB), the SVD basis (n_freq x n complex64) and the parameters
    (N x ~20 float64, held by the pipeline); the waveforms stay on disk. Each process (DDP rank)
    opens the file read-only on first use; rows with NaN or infinite values are a DataError.
    """

    mode = "disk"

    def __init__(self, bank, device="cpu", cache_chunks: int = 32):
        import h5py

        self.path = bank.path
        self.domain = bank.domain
        self.device = torch.device(device)
        self.dtype = torch.complex64
        self.cache_chunks = max(1, int(cache_chunks))
        self._group = "coefficients" if bank.svd is not None else "waveforms"
        self._min_index = bank.domain.min_index
        self._basis_h = None
        if bank.svd is not None:  # V^H / w on the band, exactly as PolarizationSource.from_svd makes it
            empty = np.zeros((0, bank.svd.size), dtype=np.complex64)
            template = PolarizationSource.from_svd(empty, empty, bank.svd.V, bank.domain, device=self.device,
                                                   weights=getattr(bank.svd, "weights", None))
            self._basis_h = template._basis_h
        with h5py.File(self.path, "r") as f:
            ds = f[self._group]["h_plus"]
            self._rows, self._width = ds.shape
            self.chunk_rows = int(ds.chunks[0]) if ds.chunks else min(self._rows, 1024)
        self._file = None
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.chunk_reads = 0  # number of chunks read from disk (for tests and diagnostics)

    def __len__(self) -> int:
        return self._rows

    @property
    def n_band(self) -> int:
        return self._basis_h.shape[-1] if self._basis_h is not None else self._width - self._min_index

    def to(self, device) -> "DiskPolarizationSource":
        """A copy producing batches on ``device`` (self if already there)."""
        device = torch.device(device)
        if device == self.device:
            return self
        other = copy.copy(self)
        other.device = device
        other._basis_h = None if self._basis_h is None else self._basis_h.to(device)
        other._file, other._cache, other._lock, other.chunk_reads = None, OrderedDict(), threading.Lock(), 0
        return other

    def _chunk(self, c: int) -> np.ndarray:
        """Rows of chunk ``c`` as (rows, 2, width) complex64 (cached)."""
        import h5py

        if c in self._cache:
            self._cache.move_to_end(c)
            return self._cache[c]
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        a, b = c * self.chunk_rows, min((c + 1) * self.chunk_rows, self._rows)
        try:
            block = np.stack([self._file[self._group][pol][a:b] for pol in ("h_plus", "h_cross")], axis=1)
        except (OSError, KeyError) as e:
            raise DataError(f"cannot read rows {a}..{b} of {self.path}: file is corrupt ({e})") from None
        if not np.isfinite(block.view(np.float32)).all():
            raise DataError(f"{self.path}: {self._group} rows {a}..{b} contain NaN or infinite values")
        self.chunk_reads += 1
        self._cache[c] = block
        while len(self._cache) > self.cache_chunks:
            self._cache.popitem(last=False)
        return block

    def get_stacked(self, idx: torch.Tensor) -> torch.Tensor:
        """[h+, h×] of bank entries ``idx`` (B,): (B, 2, n_band) complex64 on ``device``."""
        rows = idx.detach().cpu().numpy().astype(np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self._rows):
            raise IndexError(f"bank rows {rows.min()}..{rows.max()} outside 0..{self._rows - 1}")
        chunk = rows // self.chunk_rows
        out = np.empty((len(rows), 2, self._width), dtype=np.complex64)
        with self._lock:
            for c in np.unique(chunk):
                sel = chunk == c
                out[sel] = self._chunk(int(c))[rows[sel] - c * self.chunk_rows]
        h = torch.from_numpy(out).to(self.device)
        if self._basis_h is not None:
            return h @ self._basis_h
        return h[..., self._min_index:].contiguous()

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.get_stacked(idx)
        return h[:, 0], h[:, 1]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._cache.clear()


def load_training_data(config: TrainConfig, device: torch.device) -> TrainingData:
    """Read the bank onto ``device``, split it, and check the main ASD dataset(s)."""
    d = config.data
    bank = load_bank(d.bank)
    domain = bank.domain
    domain = FrequencyDomain(domain.f_min, domain.f_max, domain.delta_f, window_factor(domain, d.window_roll_off))
    log.info("bank %s: %d waveforms, %s, %s%s", d.bank, len(bank), bank.approximant,
             f"SVD n={bank.svd.size}" if bank.svd is not None and not d.decompress_bank else "arrays",
             "" if d.bank_in_memory else ", read from disk per batch")
    if not d.bank_in_memory:
        polarizations = DiskPolarizationSource(bank, device, cache_chunks=2 * d.disk_shuffle_window)
    elif d.decompress_bank and bank.svd is not None:
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
