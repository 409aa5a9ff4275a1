"""ASD datasets: many noise ASDs per detector on one frequency domain (HDF5 kind "asd_dataset").

In memory (:class:`ASDDataset`) and on disk the dataset holds

* ``domain``: the :class:`~dingo_gw.domain.FrequencyDomain`;
* ``asds[det]``: float64 array (N_det, len(domain)) of ASDs [1/sqrt(Hz)] on the full grid
  0..f_max; bins below f_min hold the placeholder 1.0 (:data:`~dingo_gw.noise.psd.BELOW_FMIN`);
* ``gps_times[det]``: the GPS time [s] each ASD describes (NaN for synthetic or unknown);
* ``sources[det]``: a short text per ASD saying where it came from;
* ``welch_segments[det]`` / ``segment_durations[det]``: for Welch estimates, the number of
  segments K and their length [s] (0 / NaN otherwise: published smooth PSDs, synthetic);
* ``settings``: how it was made (the config); ``metadata``: versions, input checksums, reports.

HDF5 layout: root attributes ``dingo_gw_kind = "asd_dataset"``, ``format_version`` and JSON
attributes ``domain``, ``settings``, ``metadata``; one group per detector with datasets
``asds``, ``gps_times``, ``sources``, ``welch_segments``, ``segment_durations``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import numpy as np

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError, FileFormatError
from dingo_gw.io.atomic import atomic_write, h5_writer
from dingo_gw.io.checksum import sha256_file
from dingo_gw.io.hdf5 import open_h5, read_json_attr, stamp, write_json_attr
from dingo_gw.io.strain import VALID_DETECTORS, check_detector
from dingo_gw.noise.psd import BELOW_FMIN

log = logging.getLogger(__name__)

KIND = "asd_dataset"


@dataclass
class ASDDataset:
    """ASDs per detector on one domain; see the module docstring for the fields."""

    domain: FrequencyDomain
    asds: dict[str, np.ndarray]
    gps_times: dict[str, np.ndarray]
    sources: dict[str, list[str]]
    settings: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    welch_segments: dict[str, np.ndarray] = field(default_factory=dict)
    segment_durations: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        if not self.asds:
            raise DataError("an ASD dataset needs at least one detector")
        for name in ("asds", "gps_times", "sources", "welch_segments", "segment_durations"):
            setattr(self, name, dict(getattr(self, name)))  # never modify the caller's dicts
        n_f, k = len(self.domain), self.domain.min_index
        for det in list(self.asds):
            check_detector(det)
            a = np.array(self.asds[det], dtype=np.float64, ndmin=2)
            if a.shape[1] != n_f or a.shape[0] == 0:
                raise DataError(
                    f"ASDs of {det} have shape {a.shape}; expected (N >= 1, {n_f}) for the domain "
                    f"0..{self.domain.f_max} Hz step {self.domain.delta_f} Hz"
                )
            band = a[:, k:]
            if not np.all(np.isfinite(band)) or np.any(band <= 0):
                raise DataError(f"ASDs of {det} hold non-positive or non-finite values in [f_min, f_max]")
            a[:, :k] = BELOW_FMIN
            n = a.shape[0]
            self.asds[det] = a
            self.gps_times[det] = _vector(self.gps_times.get(det), n, np.nan, float, f"gps_times of {det}")
            self.sources[det] = [str(s) for s in self.sources.get(det, [""] * n)]
            if len(self.sources[det]) != n:
                raise DataError(f"sources of {det}: {len(self.sources[det])} entries for {n} ASDs")
            self.welch_segments[det] = _vector(self.welch_segments.get(det), n, 0, int, f"welch_segments of {det}")
            self.segment_durations[det] = _vector(
                self.segment_durations.get(det), n, np.nan, float, f"segment_durations of {det}"
            )

    @property
    def detectors(self) -> list[str]:
        """Detectors in the dataset (in the order H1, L1, V1, K1)."""
        return [d for d in VALID_DETECTORS if d in self.asds]

    def num_asds(self, detector: str) -> int:
        return int(self.asds[detector].shape[0])

    def psds(self, detector: str) -> np.ndarray:
        """PSDs [1/Hz] = ASD^2 of ``detector`` (below f_min: 1.0)."""
        return self.asds[detector] ** 2

    def check_domain(self, domain: FrequencyDomain) -> None:
        """DomainMismatchError unless the dataset lives on ``domain`` (same f_min, f_max, delta_f)."""
        FrequencyDomain.check_same_grid(domain, self.domain, what="ASD dataset")

    def check_detectors(self, detectors: Iterable[str]) -> None:
        """DataError unless every detector in ``detectors`` has ASDs here."""
        missing = [d for d in detectors if d not in self.asds]
        if missing:
            raise DataError(f"ASD dataset has no ASDs for {', '.join(missing)} (it has {', '.join(self.detectors)})")

    def sample(self, rng, n: int, detectors: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Draw ``n`` ASDs per detector uniformly with replacement, independently per detector.

        ``rng``: numpy Generator, integer seed, or torch.Generator. Returns det -> (n, len(domain)).
        """
        dets = list(detectors) if detectors is not None else self.detectors
        self.check_detectors(dets)
        out = {}
        for det in dets:
            idx = _randint(rng, self.num_asds(det), n)
            out[det] = self.asds[det][idx]
        return out

    def subset(self, detectors: Iterable[str]) -> "ASDDataset":
        """The same dataset restricted to ``detectors``."""
        dets = list(detectors)
        self.check_detectors(dets)
        return ASDDataset(
            self.domain, {d: self.asds[d] for d in dets}, {d: self.gps_times[d] for d in dets},
            {d: self.sources[d] for d in dets}, dict(self.settings), dict(self.metadata),
            {d: self.welch_segments[d] for d in dets}, {d: self.segment_durations[d] for d in dets},
        )


def _vector(v, n: int, fill, dtype, what: str) -> np.ndarray:
    if v is None:
        return np.full(n, fill, dtype=dtype)
    v = np.asarray(v, dtype=dtype).reshape(-1)
    if v.size != n:
        raise DataError(f"{what}: {v.size} entries for {n} ASDs")
    return v


def _randint(rng, high: int, n: int) -> np.ndarray:
    if isinstance(rng, (int, np.integer)) or rng is None:
        rng = np.random.default_rng(rng)
    if hasattr(rng, "integers"):
        return rng.integers(0, high, size=n)
    import torch

    if isinstance(rng, torch.Generator):
        return torch.randint(0, high, (n,), generator=rng).numpy()
    raise DataError(f"sample: rng must be a numpy Generator, an int seed or a torch.Generator, got {type(rng).__name__}")


def combine_asd_datasets(datasets: list[ASDDataset], settings: dict | None = None) -> ASDDataset:
    """Concatenate datasets on the same domain (per detector); DomainMismatchError otherwise."""
    if not datasets:
        raise DataError("no ASD datasets to combine")
    domain = datasets[0].domain
    for ds in datasets[1:]:
        ds.check_domain(domain)
    dets = [d for d in VALID_DETECTORS if any(d in ds.asds for ds in datasets)]

    def cat(attr, det):
        parts = [getattr(ds, attr)[det] for ds in datasets if det in ds.asds]
        return np.concatenate(parts) if attr != "sources" else [s for p in parts for s in p]

    return ASDDataset(
        domain,
        {d: cat("asds", d) for d in dets},
        {d: cat("gps_times", d) for d in dets},
        {d: cat("sources", d) for d in dets},
        settings if settings is not None else {"combined": [ds.settings for ds in datasets]},
        {"combined_from": [ds.metadata for ds in datasets]},
        {d: cat("welch_segments", d) for d in dets},
        {d: cat("segment_durations", d) for d in dets},
    )


# ------------------------------------------------------------------------------ HDF5 I/O


class AsdDatasetWriter:
    """Append ASDs per detector to an open HDF5 file (used inside :func:`asd_dataset_writer`)."""

    def __init__(self, f, domain: FrequencyDomain):
        self._f, self._domain = f, domain

    def add(
        self,
        detector: str,
        asds: np.ndarray,
        gps_times: np.ndarray | None = None,
        sources: list[str] | None = None,
        welch_segments: np.ndarray | None = None,
        segment_durations: np.ndarray | None = None,
    ) -> None:
        """Append a block of ASDs of ``detector`` (same validation as :class:`ASDDataset`)."""
        block = ASDDataset(
            self._domain, {detector: asds}, {detector: gps_times} if gps_times is not None else {},
            {detector: sources} if sources is not None else {},
            welch_segments={detector: welch_segments} if welch_segments is not None else {},
            segment_durations={detector: segment_durations} if segment_durations is not None else {},
        )
        n, n_f = block.asds[detector].shape
        g = self._f.require_group(detector)
        columns = {
            "asds": (block.asds[detector], (None, n_f), np.float64),
            "gps_times": (block.gps_times[detector], (None,), np.float64),
            "sources": (np.array(block.sources[detector], dtype=object), (None,), _str_dtype()),
            "welch_segments": (block.welch_segments[detector], (None,), np.int64),
            "segment_durations": (block.segment_durations[detector], (None,), np.float64),
        }
        for name, (values, maxshape, dtype) in columns.items():
            if name not in g:
                chunks = (min(max(n, 1), 64), n_f) if name == "asds" else True
                g.create_dataset(name, data=values, maxshape=maxshape, dtype=dtype, chunks=chunks)
            else:
                ds = g[name]
                old = ds.shape[0]
                ds.resize(old + n, axis=0)
                ds[old:] = values


def _str_dtype():
    import h5py

    return h5py.string_dtype()


@contextlib.contextmanager
def asd_dataset_writer(path: str | Path, domain: FrequencyDomain, settings: dict, metadata: dict):
    """Write an ASD dataset block by block; the file appears at ``path`` only when complete."""
    import h5py

    with atomic_write(path) as tmp:
        with h5_writer(tmp) as f:
            stamp(f, KIND)
            write_json_attr(f, "domain", domain.to_dict())
            write_json_attr(f, "settings", settings)
            write_json_attr(f, "metadata", metadata)
            writer = AsdDatasetWriter(f, domain)
            yield writer
            if not any(d in f for d in VALID_DETECTORS):
                raise DataError(f"no ASDs were written to {path}")


def save_asd_dataset(dataset: ASDDataset, path: str | Path) -> Path:
    """Write ``dataset`` to ``path`` (HDF5, atomic)."""
    with asd_dataset_writer(path, dataset.domain, dataset.settings, dataset.metadata) as w:
        for det in dataset.detectors:
            w.add(det, dataset.asds[det], dataset.gps_times[det], dataset.sources[det],
                  dataset.welch_segments[det], dataset.segment_durations[det])
    return Path(path)


def read_header(f) -> tuple[FrequencyDomain, dict, dict]:
    """(domain, settings, metadata) stored as JSON attributes of an open noise HDF5 file."""
    return (FrequencyDomain.from_dict(read_json_attr(f, "domain")), read_json_attr(f, "settings", {}),
            read_json_attr(f, "metadata", {}))


def detector_groups(f, path: str | Path):
    """Yield (detector, group) for the top-level groups of an open noise HDF5 file;
    FileFormatError for a group that is not a detector name."""
    for det in f:
        if det not in VALID_DETECTORS:
            raise FileFormatError(f"{path}: unexpected group {det!r} (not a detector)")
        yield det, f[det]


def decode_strings(values) -> list[str]:
    """HDF5 string dataset values (bytes or str) as Python strings."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def load_asd_dataset(path: str | Path) -> ASDDataset:
    """Read an ASD dataset; FileFormatError with one line if it is missing, corrupt or inconsistent."""
    path = Path(path)
    with open_h5(path, KIND) as f:
        try:
            domain, settings, metadata = read_header(f)
            fields = {k: {} for k in ("asds", "gps_times", "sources", "welch_segments", "segment_durations")}
            for det, g in detector_groups(f, path):
                for k in fields:
                    if k not in g:
                        raise FileFormatError(f"{path}: {det}/{k} is missing")
                fields["asds"][det] = g["asds"][()]
                fields["gps_times"][det] = g["gps_times"][()]
                fields["sources"][det] = decode_strings(g["sources"][()])
                fields["welch_segments"][det] = g["welch_segments"][()]
                fields["segment_durations"][det] = g["segment_durations"][()]
        except FileFormatError:
            raise
        except Exception as e:  # h5py / json / domain errors on damaged files
            raise FileFormatError(f"{path}: corrupt ASD dataset ({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    try:
        return ASDDataset(domain, settings=settings, metadata=metadata, **fields)
    except DataError as e:
        raise FileFormatError(f"{path}: {e}") from None


# ----------------------------------------------------------------- building from a config


def build_asd_dataset(config, data_dirs=None, base_dir: str | Path | None = None, progress: bool = True) -> ASDDataset:
    """Estimate/read every input of an :class:`~dingo_gw.noise.config.AsdDatasetConfig`.

    Strain inputs give one Welch PSD each (event window or ``exclude`` left out, glitches
    handled as configured); PSD files are matched onto the domain. File names are resolved
    relative to ``base_dir`` (the config's folder), then in the data folders.
    """
    from tqdm import tqdm

    from dingo_gw.events import get_event
    from dingo_gw.io.datafind import find_data_file
    from dingo_gw.io.strain import parse_gwosc_filename, read_strain
    from dingo_gw.noise.psd import estimate_psd_report, read_psd_file

    domain = config.domain.build()
    est = config.psd_estimation
    wanted = set(config.detectors) if config.detectors else set(VALID_DETECTORS)
    jobs: list[tuple] = []  # ("strain", path, det, exclude, gps, label) | ("psd", path, det, cfg, gps, label)
    for src in config.strain:
        event = get_event(src.event) if src.event else None
        if src.file is not None:
            path = find_data_file(src.file, data_dirs, base_dir)
            name = parse_gwosc_filename(path)
            det = src.detectors[0] if src.detectors else (name.detector if name else None)
            if det is None:
                raise DataError(f"{path.name}: say which detector it holds (detectors: [..]) ")
            pairs = [(path, det)]
        else:
            dets = src.detectors or list(event.detectors)
            pairs = []
            for det in dets:
                try:
                    pairs.append((event.strain_path(det, data_dirs), det))
                except DataError:
                    if src.detectors:
                        raise
                    log.info("%s: no %s strain file found, skipped", event.name, det)
        for path, det in pairs:
            if det not in wanted:
                continue
            if src.exclude is not None:
                exclude = tuple(src.exclude)
            elif event is not None:
                exclude = (event.gps - est.event_window[0], event.gps + est.event_window[1])
            else:
                exclude = None
            gps = event.gps if event is not None else None
            label = f"{path.name}" + (f" ({event.name})" if event else "")
            jobs.append(("strain", path, det, exclude, gps, label))
    for src in config.psd_files:
        path = find_data_file(src.file, data_dirs, base_dir)
        gps = src.gps if src.gps is not None else (get_event(src.event).gps if src.event else None)
        for det in src.detectors:
            if det in wanted:
                label = f"{src.file}" + (f" [{det}]" if len(src.detectors) > 1 else "")
                jobs.append(("psd", path, det, src, gps, label))
    if not jobs:
        raise DataError("the config selects no inputs (check 'detectors')")

    asds: dict[str, list] = {}
    cols = {k: {} for k in ("gps_times", "sources", "welch_segments", "segment_durations")}
    reports: dict[str, list] = {}
    checksums: dict[str, str] = {}
    for kind, path, det, extra, gps, label in tqdm(jobs, desc="ASDs", unit="input", disable=not progress):
        checksums.setdefault(str(path.name), sha256_file(path))
        if kind == "strain":
            strain = read_strain(path, det)
            rep = estimate_psd_report(
                strain, domain, extra, est.roll_off, segment_duration=est.segment_duration,
                overlap=est.overlap, average=est.average, min_segments=est.min_segments,
                glitch_action=est.glitch_action, glitch_threshold=est.glitch_threshold,
                gate_half_width=est.gate_half_width, gate_taper=est.gate_taper,
            )
            psd, k, seg = rep.psd, rep.num_segments, rep.segment_duration
            if gps is None:
                gps = strain.t0 + strain.duration / 2
            report = {"input": label, **rep.to_dict()}
        else:
            column = det if _num_value_columns(path) > 1 else None
            psd = read_psd_file(path, domain, extra.kind, column)
            k = extra.welch_segments or 0
            seg = extra.segment_duration if extra.segment_duration is not None else math.nan
            report = {"input": label, "kind": extra.kind, "column": column}
        asds.setdefault(det, []).append(np.sqrt(psd))
        cols["gps_times"].setdefault(det, []).append(np.nan if gps is None else gps)
        cols["sources"].setdefault(det, []).append(label)
        cols["welch_segments"].setdefault(det, []).append(k)
        cols["segment_durations"].setdefault(det, []).append(seg)
        reports.setdefault(det, []).append(report)

    from dingo_gw.versions import package_versions

    metadata = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "inputs_sha256": checksums,
        "reports": reports,
    }
    return ASDDataset(
        domain, {d: np.stack(v) for d, v in asds.items()}, cols["gps_times"], cols["sources"],
        settings=config.model_dump(mode="json"), metadata=metadata,
        welch_segments=cols["welch_segments"], segment_durations=cols["segment_durations"],
    )


def _num_value_columns(path: Path) -> int:
    with open(path) as fh:
        for line in fh:
            if line.strip() and not line.startswith("#"):
                return len(line.split()) - 1
    return 0
