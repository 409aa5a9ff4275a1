"""Strain of an event for analysis: the files, the analysis segment, glitch gating, the windowed FFT.

Segment placement. The analysis segment of duration T = 1/Δf is [t - (T - p), t + p] around the
trigger time t (GPS s), with p = 2 s for T >= 8 s and p = T/4 for shorter segments (DINGO's
[t - 6, t + 2] for 8 s), starting at the first sample at or after t - (T - p)
(:func:`analysis_segment`, the one place of this formula). Its Tukey window has the roll-off the
network was trained for; FD strain is dt·rfft (bilby's convention) on the domain's full grid.
Loud transients in the segment, outside the signal itself, are gated, refused or left in.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DataError, DomainMismatchError
from dingo_gw.events import Event
from dingo_gw.io.datafind import find_data_file
from dingo_gw.io.strain import Strain, read_strain as read_strain_file

logger = logging.getLogger(__name__)


#: Time after the trigger in the analysis segment (s), for T >= 8 s (else T/4).
POST_TRIGGER = 2.0


#: Interval around the trigger (s before, s after) not searched for glitches: the signal itself.
GLITCH_EXCLUDE = (1.0, 0.5)


def post_trigger(domain: FrequencyDomain, override: float | None = None) -> float:
    """Seconds of the analysis segment after the trigger time (see the module docstring)."""
    if override is not None:
        if not 0 < override < domain.duration:
            raise ConfigError(f"post-trigger time must be in (0, {domain.duration}) s, got {override}")
        return float(override)
    return POST_TRIGGER if domain.duration >= 8.0 else domain.duration / 4.0


def analysis_segment(gps: float, domain: FrequencyDomain, post: float) -> tuple[float, float]:
    """GPS (start, end) of the analysis segment [t - (T - p), t + p] (see the module docstring)."""
    return (gps - (domain.duration - post), gps + post)


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
    start, end = analysis_segment(gps, domain, post)
    i0 = strain.index(start)
    i1 = i0 + int(round(n))
    if i0 < 0 or i1 > strain.num_samples:
        raise DataError(
            f"{strain.source or strain.detector}: covers GPS [{strain.t0:.3f}, {strain.t_end:.3f}] but the network's "
            f"{domain.duration:g} s analysis segment needs [{start:.3f}, {end:.3f}]"
        )
    return i0, i1


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
