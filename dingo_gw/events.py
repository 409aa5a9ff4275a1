"""Event catalogue: GWTC-1 events (and GW190521) -> GPS time, detectors, data files.

GPS times are geocentre reference times from GWOSC [s]. ``strain_files`` lists the 32 s
GWOSC files shipped in the project's ``data/`` folder (other files named the GWOSC way are
found through :func:`dingo_gw.io.datafind.find_strain_file` in ``--data-dir`` or
``$DINGO_GW_DATA``); ``psd_files`` lists published PSDs shipped in ``data/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from dingo_gw.errors import DataError
from dingo_gw.io.datafind import find_data_file, find_strain_file
from dingo_gw.io.strain import check_detector


@dataclass(frozen=True)
class PsdFileRef:
    """A published PSD file: ``path`` relative to a data folder, ``kind`` 'psd'|'asd', ``column``."""

    path: str
    kind: str = "psd"
    column: str | int | None = None
    description: str = ""


@dataclass(frozen=True)
class Event:
    """One gravitational-wave event. ``gps`` is the geocentre reference time [GPS s]."""

    name: str
    gps: float
    detectors: tuple[str, ...]
    run: str
    strain_files: dict[str, str] = field(default_factory=dict)
    psd_files: dict[str, tuple[PsdFileRef, ...]] = field(default_factory=dict)
    #: GPS times [s] of known loud transients near the event, per detector.
    known_glitches: dict[str, tuple[float, ...]] = field(default_factory=dict)
    notes: str = ""
    #: Detector-frame chirp mass estimate [Msun] that picks the network: the published median of
    #: the source-frame chirp mass times (1 + median redshift), rounded (GWTC-1, Table III;
    #: GW190521: GWTC-2). Only a selection hint, not a result.
    chirp_mass: float | None = None

    def _check(self, detector: str) -> None:
        check_detector(detector)
        if detector not in self.detectors:
            raise DataError(f"{self.name} was observed by {', '.join(self.detectors)}, not {detector}")

    def strain_path(self, detector: str, data_dirs: str | Path | Iterable | None = None) -> Path:
        """Strain file of ``detector`` for this event: the shipped file, else any GWOSC file covering ``gps``."""
        self._check(detector)
        if detector in self.strain_files:
            try:
                return find_data_file(self.strain_files[detector], data_dirs)
            except DataError:
                pass
        return find_strain_file(detector, self.gps, data_dirs)

    def psd_paths(self, detector: str, data_dirs: str | Path | Iterable | None = None) -> list[tuple[Path, PsdFileRef]]:
        """Published PSD files of ``detector`` that are present in the data folders."""
        self._check(detector)
        out = []
        for ref in self.psd_files.get(detector, ()):
            try:
                out.append((find_data_file(ref.path, data_dirs), ref))
            except DataError:
                continue
        return out

    def available(self, data_dirs: str | Path | Iterable | None = None) -> dict[str, Path | None]:
        """Per detector, the strain file found (None if no file is present)."""
        out: dict[str, Path | None] = {}
        for det in self.detectors:
            try:
                out[det] = self.strain_path(det, data_dirs)
            except DataError:
                out[det] = None
        return out


_GWTC1_150914 = "psd/GWTC-1/GWTC1_GW150914_PSDs.dat"
_LFI = "psd/lfi-gw_GW150914/PSD_{}.txt"
_GWTC1_DESC = "GWTC-1 PSD release (BayesWave median PSD), 20-1023.875 Hz"
_LFI_DESC = "lfi-gw Welch PSD: median of 128 non-overlapping 8 s Tukey(0.4 s) segments before the event"

EVENTS: dict[str, Event] = {
    e.name: e
    for e in [
        Event(
            "GW150914", 1126259462.4, ("H1", "L1"), "O1",
            strain_files={"H1": "H-H1_LOSC_4_V2-1126259446-32.hdf5", "L1": "L-L1_LOSC_4_V2-1126259446-32.hdf5"},
            psd_files={
                "H1": (PsdFileRef(_GWTC1_150914, "psd", "H1", _GWTC1_DESC), PsdFileRef(_LFI.format("H1"), "psd", None, _LFI_DESC)),
                "L1": (PsdFileRef(_GWTC1_150914, "psd", "L1", _GWTC1_DESC), PsdFileRef(_LFI.format("L1"), "psd", None, _LFI_DESC)),
            }, chirp_mass=31.2,
        ),
        Event(
            "GW151012", 1128678900.4, ("H1", "L1"), "O1",
            strain_files={"H1": "H-H1_LOSC_4_V2-1128678884-32.hdf5", "L1": "L-L1_LOSC_4_V2-1128678884-32.hdf5"},
            notes="formerly LVT151012; weak (network SNR ~ 10)", chirp_mass=18.4,
        ),
        Event(
            "GW151226", 1135136350.6, ("H1", "L1"), "O1",
            strain_files={"H1": "H-H1_LOSC_4_V2-1135136334-32.hdf5", "L1": "L-L1_LOSC_4_V2-1135136334-32.hdf5"}, chirp_mass=9.7,
        ),
        Event(
            "GW170104", 1167559936.6, ("H1", "L1"), "O2",
            strain_files={"H1": "H-H1_LOSC_4_V1-1167559920-32.hdf5", "L1": "L-L1_LOSC_4_V1-1167559920-32.hdf5"},
            notes="only LOSC_4_V1 files available offline; their timing could not be cross-checked", chirp_mass=25.7,
        ),
        Event("GW170608", 1180922494.5, ("H1", "L1"), "O2", chirp_mass=8.5),
        Event("GW170729", 1185389807.3, ("H1", "L1", "V1"), "O2", chirp_mass=52.7),
        Event("GW170809", 1186302519.8, ("H1", "L1", "V1"), "O2", chirp_mass=29.9),
        Event(
            "GW170814", 1186741861.5, ("H1", "L1", "V1"), "O2",
            strain_files={
                "H1": "H-H1_GWOSC_4KHZ_R1-1186741846-32.txt",
                "L1": "L-L1_GWOSC_4KHZ_R1-1186741846-32.txt",
                "V1": "V-V1_GWOSC_4KHZ_R1-1186741846-32.txt",
            },
            known_glitches={"L1": (1186741855.769,)},
            notes="L1 has a loud short transient (12 sigma whitened) at GPS 1186741855.769, 5.73 s before "
            "the merger, inside an 8 s window [t-6, t+2]: gate it or use a later window", chirp_mass=27.0,
        ),
        Event("GW170817", 1187008882.4, ("H1", "L1", "V1"), "O2", notes="binary neutron star", chirp_mass=1.198),
        Event("GW170818", 1187058327.1, ("H1", "L1", "V1"), "O2", chirp_mass=31.8),
        Event("GW170823", 1187529256.5, ("H1", "L1"), "O2", chirp_mass=39.4),
        Event(
            "GW190521", 1242442967.4, ("H1", "L1", "V1"), "O3a",
            strain_files={
                "H1": "H-H1_GWOSC_4KHZ_R1-1242442952-32.txt",
                "L1": "L-L1_GWOSC_4KHZ_R1-1242442952-32.txt",
                "V1": "V-V1_GWOSC_4KHZ_R1-1242442952-32.txt",
            },
            notes="O3a; analysed by the high-mass network; its V1 noise trains the H1+L1+V1 networks",
            chirp_mass=103.8,
        ),
    ]
}

_ALIASES = {"LVT151012": "GW151012"}


def list_events() -> list[str]:
    """Names of all catalogued events, in time order."""
    return sorted(EVENTS, key=lambda n: EVENTS[n].gps)


def get_event(name: str) -> Event:
    """The catalogue entry of ``name`` (case-insensitive); DataError listing known events."""
    key = str(name).strip().upper()
    key = _ALIASES.get(key, key)
    if key not in EVENTS:
        raise DataError(f"unknown event {name!r}; known events: {', '.join(list_events())}")
    return EVENTS[key]
