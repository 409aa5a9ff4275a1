"""End-to-end analysis of one event (or any strain, or an injection): ``dingo_analyze``.

One function per step, in the order :func:`analyze` runs them:

1. :func:`load_analysis_network` - the network file (weights, metadata, prior, waveform model,
   embedded GNPE initialisation network), its sha256;
2. :func:`read_strain` - strain of every network detector around the trigger time (event
   catalogue files, ``--strain DET=FILE``, in data/, $DINGO_GW_DATA or --data-dir);
3. :func:`check_glitches` - loud transients in the analysis segment (outside the event itself)
   are gated (default), reported as an error, or ignored;
4. :func:`estimate_psds` - a PSD file given by the user, else the event's published PSD from the
   catalogue, else Welch on the off-source data (segments of T, or shorter if too few fit);
5. :func:`frequency_domain_data` - the analysis segment, Tukey-windowed, FFT'd (bilby convention
   dt·rfft), on the network's domain, and whitened as in training;
6. :func:`sample_proposal` - GNPE Gibbs sampling + the extended-space proposal, or direct NPE/FMPE
   sampling, with log q;
7. :func:`importance_sample_proposal` - exact likelihood × prior / q (phase recovered), evidence;
   parts of 5000 samples are checkpointed in ``<outdir>/.<label>.checkpoints`` so that a killed
   run, restarted with the same arguments, redoes only unfinished parts (removed at the end);
8. :func:`write_outputs` - ``<label>_result.json`` (or ``<label>_failed_proposal.json``) and
   ``<label>_corner.png``, written into the output folder only at the end.

Segment placement. The analysis segment of duration T = 1/Δf is [t - (T - p), t + p] around
the trigger time t, with p = 2 s for T >= 8 s and p = T/4 for shorter segments (DINGO's
[t - 6, t + 2] for 8 s), starting at the first sample at or after t - (T - p). Its Tukey window
has the roll-off the network was trained for (network metadata ``window.roll_off``; its mean
square is the domain's window factor), so whitened noise has unit variance as in training.
Data times are shifted so that the event time is the origin, as the network expects.

Reproducibility: torch's global generator and all numpy generators are seeded from ``seed``;
the same inputs, seed and thread settings give the same numbers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from dingo_gw.io.checksum import sha256_file  # noqa: F401 (re-exported for callers)
from dingo_gw.domain import FrequencyDomain, tukey_window_factor
from dingo_gw.errors import ConfigError, DataError, DomainMismatchError, FileFormatError
from dingo_gw.events import Event, get_event
from dingo_gw.inference.distance_recovery import DISTANCE_KEY, distance_recoverable
from dingo_gw.inference.flow_density import torch_threads
from dingo_gw.inference.gnpe_sampler import (
    DEFAULT_BATCH_SIZE, DEFAULT_GIBBS_ITERATIONS, DEFAULT_TIME_SPREAD, DirectSampler, GNPESampler, ProposalSamples,
)
from dingo_gw.inference.importance_sampling import (
    MIN_EFFECTIVE_SAMPLES, finalize, importance_sample, prior_support, weight_statistics,
)
from dingo_gw.inference.likelihood import GaussianLikelihood
from dingo_gw.inference.proposal_coordinates import ProposalCoordinates
from dingo_gw.inference.refine import DEFAULT_TARGET_EFFICIENCY, RefineSettings, best_sample, refine
from dingo_gw.io.datafind import find_data_file, search_dirs
from dingo_gw.io.strain import Strain, read_strain as read_strain_file
from dingo_gw.pipeline.network_input import EventInput, NetworkInput
from dingo_gw.priors import build_prior
from dingo_gw.results import Result

logger = logging.getLogger(__name__)

#: Where the shipped default network lives, inside a data folder.
DEFAULT_NETWORK = Path("networks") / "default" / "network.pt"
#: Time after the trigger in the analysis segment (s), for T >= 8 s (else T/4).
POST_TRIGGER = 2.0
#: Interval around the trigger (s before, s after) not searched for glitches: the signal itself.
GLITCH_EXCLUDE = (1.0, 0.5)
#: Minimum Welch segments for a PSD estimate with segments of T (shorter segments: twice as many).
MIN_WELCH_SEGMENTS = 4
#: Shortest Welch segment (s) tried when the off-source data are too short for segments of T.
MIN_WELCH_SEGMENT = 2.0
#: Gibbs chains used to fit the proxy density by default (at most the number of samples).
DEFAULT_GIBBS_CHAINS = 2000
#: Importance-sampled samples per checkpointed part (a killed run resumes from finished parts).
IS_PART_SIZE = 5000


# ---------------------------------------------------------------------------------------------
# settings
@dataclass
class AnalysisSettings:
    """What to analyse and how. Times are GPS seconds; files are paths.

    Data: ``event`` (catalogue name) or ``gps`` with ``strain_files`` (detector -> file), or
    ``injection`` ("prior", a JSON file or a mapping; simulated Gaussian noise). ``psd_files``:
    detector -> PSD text file (f, PSD [1/Hz]; multi-column files by detector name) or
    "design:<name>" (a LALSimulation design curve, injections). ``glitch``: gate | error | ignore.
    Sampling: ``num_samples`` proposal draws, ``gibbs_iterations``, ``gibbs_chains`` (chains fitting
    the GNPE proxy density; default min(num_samples, 2000)), ``exact_projection`` (no interpolated
    first layer), ``gnpe_init`` ("network": the embedded initialisation network, if any;
    "trigger": arrival times uniform in the trigger time ± ``time_spread`` s). Importance sampling:
    ``workers`` waveform processes, ``num_posterior_samples`` (default round(n_eff)). ``threads``:
    torch threads for network sampling (default 1: with other work on the cores, e.g. the
    waveform processes or other jobs, more threads were 2.5x slower on 2 cores; None: torch's
    default). ``is_parts``: importance sampling in this many parts (default: parts of IS_PART_SIZE
    samples); with ``save_proposal_only`` the analysis stops after network sampling and writes
    ``<label>_proposal.h5`` for part jobs on a cluster (:mod:`dingo_gw.inference.is_parts`).
    """

    event: str | None = None
    gps: float | None = None
    strain_files: dict[str, str] = field(default_factory=dict)
    psd_files: dict[str, str] = field(default_factory=dict)
    injection: str | Mapping | None = None
    network: str | None = None
    data_dirs: list[str] = field(default_factory=list)
    outdir: str = "."
    label: str | None = None
    num_samples: int = 20000
    seed: int = 0
    gibbs_iterations: int = DEFAULT_GIBBS_ITERATIONS
    gibbs_chains: int | None = None
    workers: int = 2
    batch_size: int = DEFAULT_BATCH_SIZE
    glitch: str = "gate"
    time_spread: float = DEFAULT_TIME_SPREAD
    gnpe_init: str = "network"
    exact_projection: bool = False
    num_posterior_samples: int | None = None
    post_trigger: float | None = None
    progress: bool = True
    corner: bool = True
    threads: int | None = 1
    is_parts: int | None = None
    save_proposal_only: bool = False
    refine: str = "auto"
    refine_efficiency: float = DEFAULT_TARGET_EFFICIENCY
    refine_particles: int = 4000
    refine_samples: int = 200000
    relative_binning: bool = True
    distance_marginalization: bool = True

    def check(self) -> None:
        given = [x for x in ("event", "injection") if getattr(self, x) is not None]
        if self.strain_files and self.event is None:
            given.append("strain")
        if len(given) != 1:
            raise ConfigError("give exactly one of --event NAME, --strain DET=FILE (with --gps) or --injection")
        if self.strain_files and self.gps is None and self.event is None:
            raise ConfigError("--strain needs --gps (the trigger time of the data)")
        if self.num_samples < 1:
            raise ConfigError(f"--num-samples must be >= 1, got {self.num_samples}")
        if self.gibbs_iterations < 1:
            raise ConfigError(f"--gibbs-iterations must be >= 1, got {self.gibbs_iterations}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {self.threads}")
        if self.gnpe_init not in ("network", "trigger"):
            raise ConfigError(f"GNPE initialisation must be 'network' or 'trigger', got {self.gnpe_init!r}")
        if not self.time_spread > 0:
            raise ConfigError(f"--time-spread must be > 0 s, got {self.time_spread}")
        if self.glitch not in ("gate", "error", "ignore"):
            raise ConfigError(f"glitch action must be gate, error or ignore, got {self.glitch!r}")
        if self.gps is not None and not math.isfinite(self.gps):
            raise ConfigError(f"--gps must be a finite GPS time, got {self.gps}")
        if self.is_parts is not None and self.is_parts < 1:
            raise ConfigError(f"--is-parts must be >= 1, got {self.is_parts}")
        if self.refine not in ("auto", "never"):
            raise ConfigError(f"refine must be 'auto' or 'never', got {self.refine!r}")
        if not 0 < self.refine_efficiency <= 1:
            raise ConfigError(f"--refine-efficiency must be in (0, 1], got {self.refine_efficiency}")
        if self.refine_particles < 100:
            raise ConfigError(f"--refine-particles must be >= 100, got {self.refine_particles}")
        if self.refine_samples < 1000:
            raise ConfigError(f"--refine-samples must be >= 1000, got {self.refine_samples}")
        if self.save_proposal_only and self.is_parts is None:
            raise ConfigError("saving the proposal for importance-sampling part jobs needs --is-parts N")


@dataclass
class AnalysisOutput:
    """What :func:`analyze` produced: the result, the proposal, the files written, timings (s), and the
    analysed data (FD strain, PSDs, whitened network input). ``result`` is None when only the proposal
    was saved (``save_proposal_only``; ``files["proposal"]``)."""

    result: Result | None
    proposal: ProposalSamples
    files: dict[str, Path]
    timings: dict[str, float]
    label: str
    event_data: "EventData | None" = None


# ---------------------------------------------------------------------------------------------
# 1. network
@dataclass
class AnalysisNetwork:
    """A loaded network file with what inference needs (see docs/models.md, docs/training.md)."""

    path: Path
    sha256: str
    model: object
    metadata: dict
    net_input: NetworkInput
    prior: object
    waveform: dict
    window_roll_off: float | None
    init_model: object | None = None
    init_input: NetworkInput | None = None

    @property
    def domain(self) -> FrequencyDomain:
        return self.net_input.domain

    @property
    def detectors(self) -> list[str]:
        return list(self.net_input.detectors)


def find_network(path: str | Path | None, data_dirs: Sequence[str | Path] | None = None) -> Path:
    """The network file to use: ``path``, else ``networks/default/network.pt`` in the data folders."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise DataError(f"network file not found: {p}")
        return p
    try:
        return find_data_file(DEFAULT_NETWORK, data_dirs)
    except DataError:
        dirs = ", ".join(str(d) for d in search_dirs(data_dirs))
        raise DataError(
            f"no --network given and the default network {DEFAULT_NETWORK} is not in the data folders ({dirs}); "
            "get the repository's data/networks/default/network.pt (it is committed with the code) or train one "
            "with `dingo_train <config>` (see docs/training.md) and pass --network FILE"
        ) from None


def _window_roll_off(meta: Mapping, domain: FrequencyDomain) -> float | None:
    """Tukey roll-off (s) the network was trained for: metadata ``window``, else from the window factor."""
    window = meta.get("window")
    if isinstance(window, Mapping) and window.get("roll_off"):
        return float(window["roll_off"])
    w = domain.window_factor
    if w >= 1.0 - 1e-12:
        return None
    # invert mean(tukey(n, α)²) = w for α (monotonic), n at 4096 Hz
    n = int(round(domain.duration * 4096))
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if tukey_window_factor(n, mid) > w:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi) * domain.duration / 2


def network_prior(meta: Mapping, source: str):
    """The bilby prior the network was trained with (metadata ``prior``, or intrinsic + extrinsic)."""
    spec = meta.get("prior")
    if not spec:
        spec = {**(meta.get("intrinsic_prior") or {}), **(meta.get("extrinsic_prior") or {})}
    if not spec:
        raise FileFormatError(f"{source}: the network metadata hold no prior (keys 'prior' or 'intrinsic_prior')")
    try:
        return build_prior(dict(spec))
    except ConfigError as e:
        raise FileFormatError(f"{source}: invalid prior in the network metadata ({e})") from None


def load_analysis_network(path: str | Path, device: str = "cpu") -> AnalysisNetwork:
    """Load a network file and everything inference needs from its metadata."""
    from dingo_gw.nn import load_network, model_from_dict

    path = Path(path)
    model, meta = load_network(path, device=device)
    net_input = NetworkInput.from_metadata(meta)
    waveform = meta.get("waveform") or {}
    if not waveform.get("approximant") or not waveform.get("f_ref"):
        raise FileFormatError(f"{path}: the network metadata name no waveform model (key 'waveform')")
    init_model = init_input = None
    init = meta.get("init_network")
    if net_input.proxies is not None and init:
        init_model = model_from_dict(init, source=f"{path} (embedded GNPE initialisation network)").to(device).eval()
        init_input = NetworkInput.from_metadata(init["metadata"])
        if list(init_input.detectors) != list(net_input.detectors):
            raise FileFormatError(f"{path}: the initialisation network's detectors differ from the network's")
    return AnalysisNetwork(
        path=path, sha256=sha256_file(path), model=model, metadata=meta, net_input=net_input,
        prior=network_prior(meta, str(path)), waveform=dict(waveform),
        window_roll_off=_window_roll_off(meta, net_input.domain), init_model=init_model, init_input=init_input,
    )


# ---------------------------------------------------------------------------------------------
# 2. strain
def post_trigger(domain: FrequencyDomain, override: float | None = None) -> float:
    """Seconds of the analysis segment after the trigger time (see the module docstring)."""
    if override is not None:
        if not 0 < override < domain.duration:
            raise ConfigError(f"post-trigger time must be in (0, {domain.duration}) s, got {override}")
        return float(override)
    return POST_TRIGGER if domain.duration >= 8.0 else domain.duration / 4.0


def resolve_strain_files(strain_files: Mapping[str, str], data_dirs) -> dict[str, Path]:
    """Paths of user-given strain files (absolute, relative to the working folder, or in a data
    folder); DataError naming the file and the folders looked in."""
    from dingo_gw.io.strain import check_detector

    out = {}
    for det, name in strain_files.items():
        check_detector(det)
        p = Path(name).expanduser()
        out[det] = p if p.is_file() else find_data_file(name, data_dirs, base_dir=Path.cwd())
    return out


def strain_paths(event: Event | None, given: Mapping[str, Path], data_dirs, network_detectors: Sequence[str]):
    """Strain file per network detector: the given files, else the event's; clear errors on gaps."""
    available = set(given) | (set(event.detectors) if event is not None else set())
    missing = [d for d in network_detectors if d not in available]
    if missing:
        where = f"event {event.name} was observed by {', '.join(event.detectors)}" if event is not None else \
            f"strain was given for {', '.join(given) or 'no detector'}"
        raise DomainMismatchError(f"the network needs data of {', '.join(network_detectors)}, but {where}")
    return {det: given[det] if det in given else event.strain_path(det, data_dirs) for det in network_detectors}


def read_strain(paths: Mapping[str, Path], span: tuple[float, float]) -> dict[str, Strain]:
    """Read each detector's file (GWOSC HDF5/ASCII/frames); the whole file is kept (for PSDs)."""
    out = {}
    for det, path in paths.items():
        s = read_strain_file(path, det)
        if s.t0 > span[0] + 1e-9 or s.t_end < span[1] - 1e-9:
            raise DataError(
                f"{path}: its {det} strain covers GPS [{s.t0:.3f}, {s.t_end:.3f}], which does not contain the "
                f"analysis segment [{span[0]:.3f}, {span[1]:.3f}]"
            )
        out[det] = s
    return out


def segment_of(strain: Strain, gps: float, domain: FrequencyDomain, post: float) -> tuple[int, int]:
    """Sample indices [i0, i1) of the analysis segment in ``strain`` (see the module docstring)."""
    fs = strain.sample_rate
    if fs < 2 * domain.f_max - 1e-9:
        raise DomainMismatchError(
            f"{strain.source or strain.detector}: sample rate {fs:g} Hz is below 2 f_max = {2 * domain.f_max:g} Hz "
            "of the network's domain"
        )
    n = domain.duration * fs
    if abs(n - round(n)) > 1e-6:
        raise DomainMismatchError(
            f"{strain.source}: a {domain.duration:g} s segment is not a whole number of samples at {fs:g} Hz"
        )
    i0 = strain.index(gps - (domain.duration - post))
    i1 = i0 + int(round(n))
    if i0 < 0 or i1 > strain.num_samples:
        raise DataError(
            f"{strain.source or strain.detector}: covers GPS [{strain.t0:.3f}, {strain.t_end:.3f}] but the network's "
            f"{domain.duration:g} s analysis segment needs [{gps - domain.duration + post:.3f}, {gps + post:.3f}]"
        )
    return i0, i1


# ---------------------------------------------------------------------------------------------
# 3. glitches
def check_glitches(strains: Mapping[str, Strain], gps: float, segment: tuple[float, float], action: str):
    """Loud transients in the analysis segment, outside [gps - 1, gps + 0.5] (the signal).

    ``action``: "gate" (inverse Tukey gate, as LVK analyses do), "error" (DataError) or "ignore"
    (logged). Returns (strains, report dict per detector).
    """
    from dingo_gw.noise.glitch import find_glitches, gate

    out, report = {}, {}
    exclude = (gps - GLITCH_EXCLUDE[0], gps + GLITCH_EXCLUDE[1])
    for det, s in strains.items():
        lo, hi = max(s.t0, segment[0] - 4.0), min(s.t_end, segment[1] + 4.0)
        if hi - lo < 8.0:  # whitening for the search needs >= 8 s
            lo, hi = max(s.t0, min(lo, hi - 8.0)), min(s.t_end, max(hi, lo + 8.0))
        if hi - lo < 8.0:
            logger.warning("%s: less than 8 s of data, no glitch search", det)
            out[det], report[det] = s, {"searched": False}
            continue
        part = s.crop(lo, hi)
        found = [g for g in find_glitches(part, exclude=exclude) if segment[0] <= g.time <= segment[1]]
        report[det] = {"searched": True, "action": action,
                       "glitches": [{"time": g.time, "snr": g.snr} for g in found]}
        if found:
            listing = ", ".join(f"GPS {g.time:.3f} ({g.snr:.1f} sigma)" for g in found)
            if action == "error":
                raise DataError(f"{s.source or det}: loud transient(s) in the analysis segment: {listing}")
            if action == "gate":
                logger.warning("%s: gating glitch(es) in the analysis segment: %s", det, listing)
                s = gate(s, [g.time for g in found])
            else:
                logger.warning("%s: glitch(es) in the analysis segment left in the data: %s", det, listing)
        out[det] = s
    return out, report


# ---------------------------------------------------------------------------------------------
# 4. PSDs
def _read_psd_spec(spec: str, det: str, domain: FrequencyDomain, data_dirs) -> tuple[np.ndarray, dict]:
    """PSD from "design:<name>" or a text file (two columns, or a multi-column file by detector)."""
    from dingo_gw.noise.psd import BELOW_FMIN, read_psd_file

    if spec.startswith("design:"):
        from dingo_gw.design_curves import design_psd

        name = spec.split(":", 1)[1]
        psd = design_psd(name, domain.frequencies, fill_below=domain.f_min)
        psd[~domain.mask] = BELOW_FMIN
        return psd, {"source": "design curve", "name": name}
    path = find_data_file(spec, data_dirs)
    try:
        first = np.loadtxt(path, comments="#", max_rows=1, ndmin=2)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read PSD file {path}: {e}") from None
    column = det if first.shape[1] > 2 else None
    info = {"source": "file", "path": str(path), "sha256": sha256_file(path)}
    return read_psd_file(path, domain, "psd", column), info


def welch_psd(strain: Strain, domain: FrequencyDomain, segment: tuple[float, float], roll_off: float | None):
    """Welch PSD of the off-source data (the analysis segment excluded; glitches excluded).

    Segments of T = 1/Δf if at least 4 fit, else the longest of T/2, T/4, ... (>= 2 s) with at
    least 8 segments (interpolated onto the domain, as for the training ASD datasets).
    """
    from dingo_gw.noise.psd import estimate_psd_report, segment_starts

    durations, d = [], domain.duration
    while d >= min(MIN_WELCH_SEGMENT, domain.duration) - 1e-9:
        durations.append(d)
        d /= 2
    for i, d in enumerate(durations):
        need = MIN_WELCH_SEGMENTS if i == 0 else 2 * MIN_WELCH_SEGMENTS
        if segment_starts(strain, d, 0.0, [segment]).size < need:
            continue
        r = min(roll_off if roll_off else 0.4, d / 2)
        try:
            est = estimate_psd_report(strain, domain, exclude=segment, roll_off=r, segment_duration=d,
                                      min_segments=need)
        except DataError:
            continue  # glitches took segments away: try shorter ones
        return est.psd, {**est.to_dict(), "strain": est.source, "source": "welch"}
    raise DataError(
        f"{strain.source or strain.detector}: too little off-source data for a Welch PSD "
        f"({strain.duration:g} s in total, analysis segment excluded); pass --psd {strain.detector}=FILE"
    )


def estimate_psds(strains: Mapping[str, Strain] | None, domain: FrequencyDomain, segment: tuple[float, float] | None,
                  psd_files: Mapping[str, str], event: Event | None, data_dirs, roll_off: float | None,
                  detectors: Sequence[str]):
    """PSD (1/Hz, on the domain's full grid) and its description, per detector.

    Priority: ``psd_files`` (user) > the event's published PSD from the catalogue > Welch.
    """
    psds, info = {}, {}
    for det in detectors:
        if det in psd_files:
            psds[det], info[det] = _read_psd_spec(psd_files[det], det, domain, data_dirs)
            continue
        published = event.psd_paths(det, data_dirs) if event is not None else []
        if published:
            from dingo_gw.noise.psd import read_psd_file

            path, ref = published[0]
            psds[det] = read_psd_file(path, domain, ref.kind, ref.column)
            info[det] = {"source": "published", "path": str(path), "sha256": sha256_file(path),
                         "description": ref.description}
            continue
        if strains is None:
            raise ConfigError(f"no PSD for {det}: pass --psd {det}=FILE (or {det}=design:<name>)")
        psds[det], info[det] = welch_psd(strains[det], domain, segment, roll_off)
    for det, psd in psds.items():
        band = psd[domain.mask]
        if not (np.all(np.isfinite(band)) and np.all(band > 0)):
            raise DataError(f"PSD of {det} is not positive and finite on {domain.f_min}-{domain.f_max} Hz")
    return psds, info


# ---------------------------------------------------------------------------------------------
# 5. frequency-domain data
@dataclass
class EventData:
    """FD strain of the analysis segment (full grid, dt·rfft) per detector, its PSDs, the whitened
    network input, the segment start (GPS s) and the domain of the data (window factor of the
    window actually applied)."""

    strain: dict[str, np.ndarray]
    psds: dict[str, np.ndarray]
    event_input: EventInput
    trigger_time: float
    segment_start: float
    domain: FrequencyDomain
    info: dict = field(default_factory=dict)


def segment_fd(strains: Mapping[str, Strain], detectors: Sequence[str], domain: FrequencyDomain, gps: float,
               post: float, roll_off: float | None) -> tuple[dict[str, np.ndarray], float, FrequencyDomain]:
    """(FD strain dt·rfft of the Tukey-windowed analysis segment on the domain's grid per detector,
    segment start in GPS s, the domain with the window factor of the applied window)."""
    from scipy.signal.windows import tukey

    alpha = 0.0 if not roll_off else 2 * roll_off / domain.duration
    if alpha > 1:
        raise DomainMismatchError(f"window roll-off {roll_off} s is longer than half the {domain.duration:g} s segment")
    fd, starts, factors = {}, {}, {}
    for det in detectors:
        s = strains[det]
        i0, i1 = segment_of(s, gps, domain, post)
        window = tukey(i1 - i0, alpha)
        factors[det] = float(np.mean(window**2))
        fd[det] = (np.fft.rfft(s.data[i0:i1] * window) / s.sample_rate)[: len(domain)].copy()
        starts[det] = s.t0 + i0 / s.sample_rate
    start = starts[detectors[0]]
    if max(abs(v - start) for v in starts.values()) > 1e-6:
        raise DataError(f"the detectors' analysis segments start at different GPS times: {starts}")
    factor = float(np.mean(list(factors.values())))
    return fd, float(start), FrequencyDomain(domain.f_min, domain.f_max, domain.delta_f, factor)


def frequency_domain_data(strains: Mapping[str, Strain], psds: Mapping[str, np.ndarray], network: AnalysisNetwork,
                          gps: float, post: float) -> EventData:
    """Window (Tukey, the network's roll-off), FFT and whiten the analysis segment of each detector."""
    domain = network.domain
    fd, start, data_domain = segment_fd(strains, network.detectors, domain, gps, post, network.window_roll_off)
    if abs(data_domain.window_factor - domain.window_factor) > 1e-3:
        logger.warning("data window factor %.5f differs from the network's %.5f", data_domain.window_factor,
                       domain.window_factor)
    asds = {d: np.sqrt(psds[d]) for d in network.detectors}
    event_input = network.net_input.event_input(fd, asds, segment_start=start - gps, dtype=torch.complex128)
    info = {"segment": [start, start + domain.duration],
            "window": {"type": "tukey", "roll_off": network.window_roll_off,
                       "window_factor": data_domain.window_factor}}
    return EventData(fd, dict(psds), event_input, float(gps), start, data_domain, info)


#: Published PSDs used for injections when no --psd is given (an O1 noise curve of H1 and L1).
INJECTION_PSD_EVENT = "GW150914"


def injection_psds(psd_files: Mapping[str, str], domain: FrequencyDomain, detectors: Sequence[str], data_dirs):
    """PSDs of an injection: ``psd_files`` (files or design:<name>), else the published GW150914 PSDs."""
    ref = get_event(INJECTION_PSD_EVENT)
    missing = [d for d in detectors if d not in psd_files and d not in ref.detectors]
    if missing:
        raise ConfigError(f"injection: no default PSD for {', '.join(missing)}; "
                          "pass --psd DET=FILE or DET=design:<name>")
    use_ref = any(d not in psd_files for d in detectors)
    return estimate_psds(None, domain, None, psd_files, ref if use_ref else None, data_dirs, None, detectors)


def injection_data(network: AnalysisNetwork, settings: AnalysisSettings, gps: float, generator, psds, seed: int):
    """Simulated event (signal + Gaussian noise) on the network's domain; returns (EventData, params)."""
    from dingo_gw.inference.injection import injection_parameters, simulate_injection

    params = injection_parameters(settings.injection, network.prior, gps, seed=seed)
    data, snr = simulate_injection(params, network.detectors, generator, psds, gps,
                                   np.random.default_rng([seed, 11]))
    asds = {d: np.sqrt(psds[d]) for d in network.detectors}
    event_input = network.net_input.event_input(data, asds, segment_start=0.0, dtype=torch.complex128)
    info = {"injection": {"parameters": params, "optimal_snr": snr,
                          "network_optimal_snr": float(np.sqrt(sum(v**2 for v in snr.values())))}}
    return EventData(data, dict(psds), event_input, float(gps), float(gps), network.domain, info), params


# ---------------------------------------------------------------------------------------------
# 6. network sampling
def _time_range(prior) -> tuple[float, float]:
    p = prior.get("geocent_time") if prior is not None else None
    lo, hi = getattr(p, "minimum", None), getattr(p, "maximum", None)
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return (-0.1, 0.1)
    return (float(lo), float(hi))


def check_sky_rotation(network: AnalysisNetwork, event_time: float) -> None:
    """A network used at another time than its reference time rotates ra: its prior must be uniform on [0, 2π)."""
    import bilby

    from dingo_gw.detectors import gmst

    if "ra" not in network.net_input.inference_parameters or "ra" not in network.prior:
        return
    if abs(gmst(event_time) - network.net_input.network.gmst_ref) < 1e-12:
        return
    p = network.prior["ra"]
    if not (type(p) is bilby.core.prior.Uniform and abs(p.minimum) < 1e-12 and abs(p.maximum - 2 * math.pi) < 1e-9):
        raise ConfigError(f"the network's ra prior {p!r} is not uniform on [0, 2π): it cannot analyse data at another "
                          "sidereal time than its reference time")


def sample_proposal(network: AnalysisNetwork, event: EventData, settings: AnalysisSettings) -> ProposalSamples:
    """Proposal samples with log q: GNPE (Gibbs + extended space) or direct sampling."""
    import bilby

    check_sky_rotation(network, event.trigger_time)
    n = settings.num_samples
    fixed = {k: float(p.peak) for k, p in network.prior.items() if isinstance(p, bilby.core.prior.DeltaFunction)}
    if network.net_input.proxies is None:
        sampler = DirectSampler(network.model, network.net_input, event.event_input, event.trigger_time,
                                settings.batch_size)
        return sampler.sample(n, with_log_prob=True)
    init = None
    if network.init_model is not None and settings.gnpe_init == "network":
        init = DirectSampler(network.init_model, network.init_input, event.event_input, event.trigger_time,
                             settings.batch_size)
    sampler = GNPESampler(
        network.model, network.net_input, event.event_input, event.trigger_time, init=init,
        time_spread=settings.time_spread, batch_size=settings.batch_size, exact=settings.exact_projection,
        time_range=_time_range(network.prior), fixed=fixed,
    )
    chains = settings.gibbs_chains or min(n, DEFAULT_GIBBS_CHAINS)
    proposal = sampler.sample_with_log_prob(n, settings.gibbs_iterations, num_chains=chains, seed=settings.seed,
                                            progress=settings.progress)
    proposal.info["initialisation"] = "init network" if init is not None else \
        f"trigger time ± {settings.time_spread} s"
    return proposal


def complete_from_prior(proposal: ProposalSamples, prior, rng: np.random.Generator) -> list[str]:
    """Draw prior parameters the network does not infer (other than the phase) from their prior.

    q(θ_net, θ_rest) = q(θ_net | d) π(θ_rest) is an exact proposal: log π(θ_rest) is added to
    log q. Only independent one-dimensional priors not involved in the prior's constraints
    (masses) can be completed this way. Returns the completed names. The luminosity distance of a
    network that does not infer it is left to importance sampling, which draws it with the phase
    from its conditional posterior (distance marginalisation, exact weights) when the prior allows.
    """
    import bilby

    recovered = {"phase"}
    if "phase" not in proposal.samples and distance_recoverable(prior):
        recovered.add(DISTANCE_KEY)
    has_constraints = any(isinstance(p, bilby.core.prior.Constraint) for p in prior.values())
    mass_keys = {"chirp_mass", "mass_ratio", "mass_1", "mass_2", "total_mass", "symmetric_mass_ratio"}
    done = []
    n = len(proposal)
    for key, p in prior.items():
        if key in proposal.samples or key in recovered or isinstance(
                p, (bilby.core.prior.Constraint, bilby.core.prior.DeltaFunction)):
            continue
        if isinstance(p, bilby.core.prior.JointPrior) or (has_constraints and key in mass_keys):
            raise ConfigError(f"the network does not infer {key}, and its prior cannot be sampled on its own")
        u = rng.uniform(size=n)
        x = np.asarray(p.rescale(u), dtype=float)
        proposal.samples[key] = x
        proposal.log_prob = proposal.log_prob + np.asarray(p.ln_prob(x), dtype=float)
        done.append(key)
    return done


# ---------------------------------------------------------------------------------------------
# 7. importance sampling
def importance_sample_proposal(proposal: ProposalSamples, prior, likelihood, seed: int = 0, workers: int = 1,
                               checkpoint_dir: str | Path | None = None, num_parts: int = 1, progress: bool = False,
                               num_posterior_samples: int | None = None,
                               min_n_eff: float = MIN_EFFECTIVE_SAMPLES,
                               part_files: Mapping[int, str | Path] | None = None) -> Result:
    """Importance-sample the accepted proposal samples; rejected ones count with weight zero.

    Rejected samples (outside the GNPE kernel, the network's ra range or the prior's support:
    zero weight by construction) are not passed to the likelihood; they stay in the result's
    weighted samples (in the proposal's order) with log_likelihood and log_prior NaN ("not
    evaluated"), log_proposal +inf, log_weights -inf and a NaN phase, so that n, the evidence
    (mean of all n weights) and the efficiency n_eff / n count every proposal draw.
    """
    import bilby

    support = prior_support(proposal.samples, prior)
    acc = np.asarray(proposal.accepted, dtype=bool) & support
    n, n_acc = len(acc), int(acc.sum())
    if n_acc == 0:
        return _all_rejected(proposal, support, likelihood, prior)
    result = importance_sample(
        proposal.subset(acc), proposal.log_prob[acc], prior, likelihood, seed=seed, workers=workers,
        checkpoint_dir=checkpoint_dir, num_parts=num_parts, progress=progress,
        num_posterior_samples=num_posterior_samples,
        min_n_eff=min_n_eff, part_files=part_files,
    )
    meta = result.meta_data
    meta["num_network_samples"] = n
    meta["num_rejected_proposals"] = n - n_acc
    meta["num_outside_prior"] = int(np.count_nonzero(~support))
    if n_acc == n:
        return result
    trigger = float(getattr(likelihood, "trigger_time", 0.0))
    samples = {}
    for k, v in result.samples.items():
        if k in proposal.samples:
            x = np.asarray(proposal.samples[k], dtype=float).copy()
            if k == "geocent_time":
                x = x + trigger  # the result holds GPS times
        elif isinstance(prior.get(k), bilby.core.prior.DeltaFunction):
            x = np.full(n, float(prior[k].peak))
        else:
            x = np.full(n, np.nan)  # recovered parameters (the phase) are not drawn for rejected samples
        x[acc] = v
        samples[k] = x
    lw = _scatter(result.log_weights, acc, -np.inf)
    stats = weight_statistics(lw)
    meta.update({"num_proposal_samples": n, "sample_efficiency": stats["sample_efficiency"],
                 "n_eff": stats["n_eff"]})
    reason = result.failure_reason
    if not result.ok and stats["n_eff"] < min_n_eff:
        reason = (f"n_eff = {stats['n_eff']:.2f} < {min_n_eff:g} (sample efficiency "
                  f"{100 * stats['sample_efficiency']:.3g} % of {n} network samples, {n - n_acc} of them outside the "
                  "GNPE kernel, ra range or prior): the proposal does not cover the posterior")
    return Result(
        samples=samples, log_weights=lw, log_evidence=stats["log_evidence"],
        log_evidence_err=stats["log_evidence_err"], log_noise_evidence=result.log_noise_evidence,
        log_bayes_factor=stats["log_evidence"] - result.log_noise_evidence,
        meta_data=meta, posterior=result.posterior,
        log_likelihood=_scatter(result.log_likelihood, acc, np.nan),
        log_prior=_scatter(result.log_prior, acc, np.nan),
        log_proposal=_scatter(result.log_proposal, acc, np.inf),
        priors=result.priors, status=result.status, failure_reason=reason,
    )


def _all_rejected(proposal: ProposalSamples, support: np.ndarray, likelihood, prior) -> Result:
    """The failed-proposal result when no network sample can carry weight."""
    from dingo_gw.results import STATUS_FAILED

    n = len(proposal)
    trigger = float(getattr(likelihood, "trigger_time", 0.0))
    samples = {k: np.asarray(v, dtype=float) + (trigger if k == "geocent_time" else 0.0)
               for k, v in proposal.samples.items()}
    reason = (f"all {n} network samples have weight zero ({int(np.count_nonzero(~support))} outside the prior, the "
              "others outside the GNPE kernel or the network's ra range): the network does not describe these data")
    logger.warning("importance sampling: failed proposal: %s", reason)
    nan = np.full(n, np.nan)
    return Result(
        samples=samples, log_weights=np.full(n, -np.inf), log_evidence=-np.inf, log_evidence_err=np.nan,
        log_noise_evidence=float(likelihood.log_noise_evidence()), log_bayes_factor=-np.inf,
        meta_data={"sample_efficiency": 0.0, "n_eff": 0.0, "num_proposal_samples": n, "num_network_samples": n,
                   "num_rejected_proposals": n, "num_outside_prior": int(np.count_nonzero(~support))},
        log_likelihood=nan, log_prior=nan,
        log_proposal=np.where(np.isnan(proposal.log_prob), np.inf, proposal.log_prob),
        priors=prior, status=STATUS_FAILED, failure_reason=reason,
    )


#: Refinement starts from a mixture fitted to the network samples: at least this many per refined parameter.
MIN_REFINE_SAMPLES_PER_DIM = 10


def needs_refinement(result: Result, target_efficiency: float) -> bool:
    """True when the network proposal's sample efficiency is below ``target_efficiency``."""
    eff = float(result.meta_data.get("sample_efficiency", 0.0) or 0.0)
    return not eff >= target_efficiency


def refine_result(result: Result, proposal: ProposalSamples, prior, likelihood, settings: AnalysisSettings) -> Result:
    """Refine the network proposal with the likelihood (:mod:`dingo_gw.inference.refine`: SMC from a
    mixture fitted to the network samples, then importance sampling of a flow + Student-t mixture
    fitted to the particles, with correction kernels). The returned Result is that importance
    sampling, with the network proposal's statistics and each step recorded in
    ``meta_data["refinement"]``."""
    import bilby

    trigger = float(getattr(likelihood, "trigger_time", 0.0))
    usable = np.asarray(proposal.accepted, dtype=bool) & prior_support(proposal.samples, prior)
    # the phase, and with distance marginalisation the distance, are recovered (drawn from their conditional
    # posterior) rather than refined
    recovered = ("phase", DISTANCE_KEY) if settings.distance_marginalization and distance_recoverable(prior) else (
        "phase",)
    initial = {k: v for k, v in proposal.subset(usable).items() if k not in recovered}
    keys = [k for k in proposal.samples if k in prior and k not in recovered
            and not isinstance(prior[k], (bilby.core.prior.DeltaFunction, bilby.core.prior.Constraint))]
    coords = ProposalCoordinates(prior, keys, list(likelihood.detectors), trigger)
    network_stage = {k: result.meta_data.get(k) for k in ("n_eff", "sample_efficiency", "num_proposal_samples",
                                                           "num_rejected_proposals", "num_outside_prior")}
    network_stage.update(log_evidence=result.log_evidence, log_evidence_err=result.log_evidence_err,
                         status=result.status)
    needed = MIN_REFINE_SAMPLES_PER_DIM * coords.dim
    if int(usable.sum()) < needed:
        reason = (f"only {int(usable.sum())} network samples inside the prior, refinement needs >= {needed}: "
                  "the network does not fit these data")
        logger.warning("refinement skipped: %s", reason)
        result.meta_data["refinement"] = {"status": "skipped", "reason": reason, "network_proposal": network_stage}
        return result
    logger.info("network proposal: efficiency %.3g %% (n_eff %.1f) < %.3g %%: refining it with the likelihood "
                "(SMC, then importance sampling of a fitted proposal)", 100 * float(network_stage["sample_efficiency"] or 0.0),
                float(network_stage["n_eff"] or 0.0), 100 * settings.refine_efficiency)
    t0 = time.perf_counter()
    fiducial = None
    if settings.relative_binning and np.isfinite(np.asarray(result.log_likelihood, dtype=float)).any():
        # the network sample of largest likelihood (phase recovered); geocent_time relative to the trigger
        relative = {k: np.asarray(v, dtype=float) - (trigger if k == "geocent_time" else 0.0)
                    for k, v in result.samples.items()}
        fiducial = best_sample(relative, np.asarray(result.log_likelihood, dtype=float))
    out = refine(initial, coords, prior, likelihood, RefineSettings(
        num_samples=settings.refine_samples, num_particles=settings.refine_particles, workers=settings.workers,
        seed=settings.seed, progress=settings.progress, relative_binning=settings.relative_binning),
        fiducial=fiducial)
    refined = finalize(out.weighted, float(likelihood.log_noise_evidence()), trigger, prior, seed=settings.seed,
                       num_posterior_samples=settings.num_posterior_samples, elapsed=time.perf_counter() - t0)
    refined.meta_data["recovered_parameters"] = result.meta_data.get("recovered_parameters", [])
    refined.meta_data["refinement"] = {
        "status": "done",
        "method": "tempered SMC from the network samples, then importance sampling of a neural spline flow + "
                  "Student-t mixture fitted to the particles, with correction kernels where they fall short"
                  + (" (relative-binning likelihood; exact for the samples of largest weight)" if fiducial else "")
                  + ("; distance and phase drawn from their conditional posterior (marginalised)"
                     if DISTANCE_KEY in recovered else "; phase drawn from its conditional posterior"),
        "recovered_parameters": list(recovered), "network_proposal": network_stage, "stages": out.stages,
        "num_likelihood_evaluations": int(out.num_likelihood_evaluations + (network_stage["num_proposal_samples"] or 0)),
        "final_proposal": out.proposal.to_dict(),
    }
    return refined


def _scatter(values, acc: np.ndarray, fill: float) -> np.ndarray:
    """Array of len(acc): ``values`` at the accepted positions, ``fill`` elsewhere."""
    out = np.full(len(acc), fill)
    if values is not None:
        out[acc] = np.asarray(values, dtype=float)
    return out


# ---------------------------------------------------------------------------------------------
# 8. outputs
def prepare_outdir(outdir: str | Path) -> Path:
    """Create ``outdir`` (and parents) if needed; DataError if it cannot be written."""
    outdir = Path(outdir).expanduser()
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create output folder {outdir}: {e.strerror or e}") from None
    if not outdir.is_dir():
        raise DataError(f"output path {outdir} is not a folder")
    if not os.access(outdir, os.W_OK | os.X_OK):
        raise DataError(f"output folder {outdir} is not writable")
    return outdir


def write_outputs(result: Result, outdir: Path, label: str, corner: bool = True) -> dict[str, Path]:
    """Write the result file and the corner plot into a staging folder, then move both into
    ``outdir`` (each file appears complete; nothing is left behind on failure)."""
    from dingo_gw.plots import corner_plot
    from dingo_gw.results import add_derived_parameters

    outdir = prepare_outdir(outdir)
    staging = outdir / f".{label}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    files = {}
    try:
        path = result.save(staging, label)
        files["result"] = path
        if corner:
            title = f"{label}: n_eff = {result.n_eff:.0f}, efficiency = {100 * result.sample_efficiency:.2f} %"
            if not result.ok:
                title = f"{label}: FAILED PROPOSAL (network samples only)"
            weights = result.weights if result.ok else np.zeros(result.num_samples)  # no posterior to show
            with np.errstate(invalid="ignore", divide="ignore"):  # derived masses of rejected samples
                derived = add_derived_parameters(result.samples)
            refined = (result.meta_data.get("refinement") or {}).get("status") == "done"
            files["corner"] = corner_plot(derived, weights, staging / f"{label}_corner.png", title=title,
                                          proposal_label="refined proposal" if refined else "network proposal")
        final = {}
        for key, p in files.items():
            target = outdir / p.name
            os.replace(p, target)
            final[key] = target
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the whole analysis
def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


@contextlib.contextmanager
def _step(timings: dict, name: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - t0


class _HeldWarnings(logging.Filter):
    """Keeps the WARNING records of the loggers it is attached to, logged as INFO meanwhile."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            self.records.append(logging.makeLogRecord(record.__dict__))
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


@contextlib.contextmanager
def _hold_warnings(enabled: bool, *names: str):
    """Within the block, log the WARNINGs of the loggers ``names`` as INFO and collect them (list of
    records; :func:`_release_warnings` logs them as WARNINGs after all). The network proposal's warnings
    (failed proposal, heavy tails) are held while a refinement may still follow and replace its result."""
    held = _HeldWarnings()
    loggers = [logging.getLogger(n) for n in names] if enabled else []
    for lg in loggers:
        lg.addFilter(held)
    try:
        yield held.records
    finally:
        for lg in loggers:
            lg.removeFilter(held)


def _release_warnings(records: Sequence[logging.LogRecord]) -> None:
    for record in records:
        logging.getLogger(record.name).handle(record)


def default_label(settings: AnalysisSettings, event: Event | None, gps: float) -> str:
    if settings.label:
        return settings.label
    if event is not None:
        return event.name
    if settings.injection is not None:
        return "injection"
    return f"GPS{gps:.2f}".replace(".", "_")


def analyze(settings: AnalysisSettings, network: AnalysisNetwork | None = None,
            generator=None) -> AnalysisOutput:
    """Run every step for ``settings``; see the module docstring. Files are written at the end.

    ``network``: an already loaded network (a service keeps it warm; ``settings.network`` is then
    not read); ``generator``: a :class:`~dingo_gw.waveforms.WaveformGenerator` of that network
    (:func:`network_generator`) whose worker pool is kept open across calls (not closed here).
    """
    settings.check()
    with torch_threads(settings.threads):
        return _analyze(settings, network, generator)


def network_generator(network: AnalysisNetwork):
    """The waveform generator of the network's model on its domain (LALSimulation)."""
    from dingo_gw.waveforms import WaveformGenerator

    return WaveformGenerator(network.waveform["approximant"], network.domain, float(network.waveform["f_ref"]),
                             network.waveform.get("f_start"))


def _analyze(settings: AnalysisSettings, network: AnalysisNetwork | None = None, generator=None) -> AnalysisOutput:
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    data_dirs = settings.data_dirs or None
    event = get_event(settings.event) if settings.event is not None else None
    outdir = prepare_outdir(settings.outdir)
    given_strain = resolve_strain_files(settings.strain_files, data_dirs)
    network_path = find_network(settings.network, data_dirs) if network is None else None
    _seed_everything(settings.seed)

    with _step(timings, "load_network"):
        if network is None:
            network = load_analysis_network(network_path)
    domain = network.domain
    gps = float(settings.gps) if settings.gps is not None else (
        event.gps if event is not None else network.net_input.ref_time)
    label = default_label(settings, event, gps)
    post = post_trigger(domain, settings.post_trigger)
    own_generator = generator is None
    if own_generator:
        generator = network_generator(network)
    extra_meta: dict = {}
    injection_params = None
    try:
        if settings.injection is not None:
            with _step(timings, "psd"):
                psds, psd_info = injection_psds(settings.psd_files, domain, network.detectors, data_dirs)
            with _step(timings, "data"):
                event_data, injection_params = injection_data(network, settings, gps, generator, psds, settings.seed)
            extra_meta.update(event_data.info)
        else:
            segment = (gps - (domain.duration - post), gps + post)
            with _step(timings, "read_strain"):
                paths = strain_paths(event, given_strain, data_dirs, network.detectors)
                strains = read_strain(paths, segment)
                for det, s in strains.items():
                    segment_of(s, gps, domain, post)  # sampling rate, duration
            with _step(timings, "glitches"):
                strains, glitch_report = check_glitches(strains, gps, segment, settings.glitch)
            with _step(timings, "psd"):
                psds, psd_info = estimate_psds(strains, domain, segment, settings.psd_files, event, data_dirs,
                                               network.window_roll_off, network.detectors)
            with _step(timings, "data"):
                event_data = frequency_domain_data(strains, psds, network, gps, post)
            extra_meta.update(event_data.info)
            extra_meta["strain_files"] = {d: {"path": str(p), "sha256": sha256_file(p)} for d, p in paths.items()}
            extra_meta["glitches"] = glitch_report

        with _step(timings, "sampling"):
            proposal = sample_proposal(network, event_data, settings)
            completed = complete_from_prior(proposal, network.prior, np.random.default_rng([settings.seed, 3]))
        if settings.save_proposal_only:  # importance sampling runs in part jobs (dingo_gw.inference.is_parts)
            from dingo_gw.inference.is_parts import save_proposal

            meta = run_metadata(settings, label, event, gps, network, psd_info, proposal, completed, extra_meta)
            path = save_proposal(outdir / f"{label}_proposal.h5", proposal, event_data, network, settings, label,
                                 meta, injection_params, timings)
            return AnalysisOutput(None, proposal, {"proposal": path}, timings, label, event_data)

        refine_auto = settings.refine == "auto"
        with _step(timings, "importance_sampling"), _hold_warnings(
                refine_auto, logger.name, "dingo_gw.inference.importance_sampling") as held:
            likelihood = GaussianLikelihood(event_data.strain, event_data.psds, event_data.domain, generator,
                                            event_data.trigger_time, time_origin=event_data.segment_start)
            checkpoints = outdir / f".{label}.checkpoints"
            result = importance_sample_proposal(
                proposal, network.prior, likelihood, seed=settings.seed, workers=settings.workers,
                checkpoint_dir=checkpoints,
                num_parts=settings.is_parts or max(1, math.ceil(proposal.num_accepted / IS_PART_SIZE)),
                progress=settings.progress, num_posterior_samples=settings.num_posterior_samples,
            )
        if refine_auto and needs_refinement(result, settings.refine_efficiency):
            with _step(timings, "refinement"):
                result = refine_result(result, proposal, network.prior, likelihood, settings)
        if result.meta_data.get("refinement", {}).get("status") != "done":
            _release_warnings(held)  # the network proposal's result stands, and so do its warnings
    finally:
        if own_generator:
            generator.close()

    if injection_params is not None:
        inj = dict(injection_params)
        inj["geocent_time"] = inj["geocent_time"] + gps
        result.injection_parameters = inj
    meta = result.meta_data
    meta.update(run_metadata(settings, label, event, gps, network, psd_info, proposal, completed, extra_meta))
    meta["timings"] = dict(timings, total=time.perf_counter() - t_start)  # before writing the files
    with _step(timings, "write"):
        files = write_outputs(result, outdir, label, corner=settings.corner)
    shutil.rmtree(outdir / f".{label}.checkpoints", ignore_errors=True)  # finished: no resume needed
    timings["total"] = time.perf_counter() - t_start
    return AnalysisOutput(result, proposal, files, timings, label, event_data)


def run_metadata(settings: AnalysisSettings, label: str, event: Event | None, gps: float, network: AnalysisNetwork,
                 psd_info: dict, proposal: ProposalSamples, completed: list[str], extra_meta: dict) -> dict:
    """What the result's meta_data record about the run besides the importance-sampling numbers."""
    return {
        "label": label, "event": event.name if event is not None else None, "trigger_time": gps,
        "detectors": network.detectors, "network": {"path": str(network.path), "sha256": network.sha256},
        "psd": psd_info, "sampler": {k: v for k, v in proposal.info.items() if k != "gibbs_trace"},
        "gibbs_trace": proposal.info.get("gibbs_trace"), "completed_from_prior": completed,
        "seed": settings.seed, "num_samples_requested": settings.num_samples,
        "waveform": network.waveform, "domain": network.domain.to_dict(), **extra_meta,
    }


def summary_text(out: AnalysisOutput) -> str:
    """The printed summary: table of medians and 90 % intervals, timings, files."""
    lines = [out.result.summary_table()]
    meta = out.result.meta_data
    rejected = meta.get("num_rejected_proposals", 0)
    if rejected:
        lines.append(f"{rejected} of {meta.get('num_network_samples')} network samples rejected before importance "
                     f"sampling (weight zero: {meta.get('num_outside_prior', 0)} outside the prior, the others outside "
                     "the GNPE kernel or the network's ra range)")
    lines.append("timings [s]: " + ", ".join(f"{k} {v:.1f}" for k, v in out.timings.items()))
    for kind, path in out.files.items():
        lines.append(f"{kind}: {path}")
    return "\n".join(lines)


