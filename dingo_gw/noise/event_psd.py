"""PSDs of an analysis (1/Hz, on the network domain's full grid), per detector.

Priority: a PSD file given by the user (or "design:<name>", a LALSimulation design curve) > the
event's published PSD from the catalogue > Welch on the off-source data (segments of T = 1/Δf, or
shorter if too few fit; the analysis segment excluded). Injections use the given files, else the
published GW150914 PSDs.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DataError
from dingo_gw.events import Event, get_event
from dingo_gw.io.checksum import sha256_file
from dingo_gw.io.datafind import find_data_file
from dingo_gw.io.strain import Strain


#: Minimum Welch segments for a PSD estimate with segments of T (shorter segments: twice as many).
MIN_WELCH_SEGMENTS = 4


#: Shortest Welch segment (s) tried when the off-source data are too short for segments of T.
MIN_WELCH_SEGMENT = 2.0


#: Published PSDs used for injections when no --psd is given (an O1 noise curve of H1 and L1).
INJECTION_PSD_EVENT = "GW150914"


def read_psd_spec(spec: str, det: str, domain: FrequencyDomain, data_dirs) -> tuple[np.ndarray, dict]:
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
        with open(path, encoding="utf-8") as f:
            first = next((ln.split() for ln in f if ln.strip() and not ln.lstrip().startswith("#")), [])
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read PSD file {path}: {e}") from None
    column = det if len(first) > 2 else None
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
            psds[det], info[det] = read_psd_spec(psd_files[det], det, domain, data_dirs)
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


def injection_psds(psd_files: Mapping[str, str], domain: FrequencyDomain, detectors: Sequence[str], data_dirs):
    """PSDs of an injection: ``psd_files`` (files or design:<name>), else the published GW150914 PSDs."""
    ref = get_event(INJECTION_PSD_EVENT)
    missing = [d for d in detectors if d not in psd_files and d not in ref.detectors]
    if missing:
        raise ConfigError(f"injection: no default PSD for {', '.join(missing)}; "
                          "pass --psd DET=FILE or DET=design:<name>")
    use_ref = any(d not in psd_files for d in detectors)
    return estimate_psds(None, domain, None, psd_files, ref if use_ref else None, data_dirs, None, detectors)
