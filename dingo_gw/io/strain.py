"""Read real detector strain offline: GWOSC HDF5, GWOSC ASCII and frame files.

A :class:`Strain` is one contiguous, uniformly sampled, finite stretch of one detector's
strain: ``t0`` is the GPS time [s] of the first sample, ``sample_rate`` is in Hz, and
``data`` is dimensionless float64 strain. Readers refuse anything else with one
:class:`~dingo_gw.errors.DataError` line: NaNs, gaps or missing samples, disagreements
between the file name and the file's own header, detector names other than H1/L1/V1/K1,
a file of one detector read as another, corrupt or truncated files.

GWOSC file names follow ``X-DET_DESCRIPTION-GPSSTART-DURATION.ext`` (e.g.
``H-H1_LOSC_4_V2-1126259446-32.hdf5``); the GPS start and detector of a header-less ASCII
file come from its name. ``meta/UTCstart`` of the tutorial-era HDF5 files is wrong by 1-2 s
and is never used (see data/README.md).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from dingo_gw.errors import DataError

#: Detector names dingo_gw accepts.
VALID_DETECTORS = ("H1", "L1", "V1", "K1")
#: Observatory letter that starts a GWOSC file name, per detector.
OBSERVATORY = {"H1": "H", "L1": "L", "V1": "V", "K1": "K"}

_GWOSC_NAME = re.compile(
    r"^(?P<obs>[A-Z])-(?P<det>[A-Z][A-Z0-9])_(?P<desc>[^-]+)-(?P<gps>\d+)-(?P<dur>\d+)"
    r"\.(?P<ext>hdf5|h5|txt\.gz|txt|gwf)$"
)
#: Relative tolerance (in samples) for time alignment checks.
_ALIGN_TOL = 1e-3


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{e.__class__.__name__}: {text.splitlines()[0]}" if text else e.__class__.__name__


def check_detector(name: str, what: str = "detector") -> str:
    """Return ``name`` if it is one of H1, L1, V1, K1; DataError otherwise."""
    if name not in VALID_DETECTORS:
        raise DataError(f"unknown {what} {name!r}; valid detectors: {', '.join(VALID_DETECTORS)}")
    return name


@dataclass(frozen=True)
class GwoscFileName:
    """The parts of a GWOSC file name ``X-DET_DESCRIPTION-GPSSTART-DURATION.ext``."""

    observatory: str
    detector: str
    description: str
    gps_start: int
    duration: int
    extension: str

    @property
    def gps_end(self) -> int:
        return self.gps_start + self.duration

    def covers(self, gps: float) -> bool:
        """True if GPS time ``gps`` lies in [start, start + duration)."""
        return self.gps_start <= gps < self.gps_end

    @property
    def sample_rate_hint(self) -> float | None:
        """Sample rate [Hz] implied by the description (``4KHZ``, ``LOSC_16``, ...), if any."""
        m = re.search(r"(?:^|_)(\d+)KHZ(?:_|$)", self.description) or re.search(
            r"(?:^|_)[LG]OSC_(\d+)(?:_|$)", self.description
        )
        return float(int(m.group(1)) * 1024) if m else None

    @property
    def release_rank(self) -> tuple[int, int]:
        """Preference among releases of the same data: (R-release, then V-version), higher is better.

        GWTC-1 ``R1`` releases and LOSC ``V2`` files carry the final calibration; the GW150914
        LOSC 4 kHz ``V1`` files are ~1.8 ms off (data/README.md), so higher versions win.
        """
        r = re.search(r"(?:^|_)R(\d+)(?:_|$)", self.description)
        v = re.search(r"(?:^|_)V(\d+)(?:_|$)", self.description)
        return (int(r.group(1)) if r else 0, int(v.group(1)) if v else 0)


def parse_gwosc_filename(path: str | Path) -> GwoscFileName | None:
    """Parse a GWOSC-style file name; None if the name does not follow the convention."""
    m = _GWOSC_NAME.match(Path(path).name)
    if not m:
        return None
    return GwoscFileName(
        observatory=m["obs"],
        detector=m["det"],
        description=m["desc"],
        gps_start=int(m["gps"]),
        duration=int(m["dur"]),
        extension=m["ext"],
    )


@dataclass(frozen=True, eq=False)
class Strain:
    """Contiguous strain of one detector: first sample at GPS ``t0`` [s], ``sample_rate`` [Hz]."""

    detector: str
    t0: float
    sample_rate: float
    data: np.ndarray
    source: str = field(default="")

    def __post_init__(self):
        check_detector(self.detector)
        data = np.asarray(self.data, dtype=np.float64)
        what = self.source or f"{self.detector} strain"
        if data.ndim != 1 or data.size == 0:
            raise DataError(f"{what}: strain must be a non-empty 1-D array, got shape {data.shape}")
        if not (np.isfinite(self.sample_rate) and self.sample_rate > 0):
            raise DataError(f"{what}: sample rate must be > 0 Hz, got {self.sample_rate}")
        if not np.isfinite(self.t0):
            raise DataError(f"{what}: start time is not finite ({self.t0})")
        bad = ~np.isfinite(data)
        if bad.any():
            first = self.t0 + np.argmax(bad) / self.sample_rate
            raise DataError(
                f"{what}: {int(bad.sum())} NaN/inf samples (first at GPS {first:.4f}); "
                "GWOSC marks missing data with NaN, use a clean stretch"
            )
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "t0", float(self.t0))
        object.__setattr__(self, "sample_rate", float(self.sample_rate))

    @property
    def num_samples(self) -> int:
        return int(self.data.size)

    @property
    def dt(self) -> float:
        """Sample spacing [s]."""
        return 1.0 / self.sample_rate

    @property
    def duration(self) -> float:
        """Length [s] = number of samples / sample rate."""
        return self.num_samples / self.sample_rate

    @property
    def t_end(self) -> float:
        """GPS time [s] just after the last sample (t0 + duration)."""
        return self.t0 + self.duration

    @property
    def times(self) -> np.ndarray:
        """GPS time [s] of every sample."""
        return self.t0 + np.arange(self.num_samples) / self.sample_rate

    def index(self, gps: float) -> int:
        """Index of the first sample at or after GPS time ``gps`` (within a tiny tolerance)."""
        return int(np.ceil((gps - self.t0) * self.sample_rate - _ALIGN_TOL))

    def crop(self, t_start: float, t_end: float) -> "Strain":
        """Samples with GPS time in [t_start, t_end); DataError if outside the data."""
        i0, i1 = _span_indices(self.t0, self.sample_rate, self.num_samples, t_start, t_end, self._name())
        return Strain(self.detector, self.t0 + i0 / self.sample_rate, self.sample_rate, self.data[i0:i1], self.source)

    def _name(self) -> str:
        return self.source or f"{self.detector} strain"


def _span_indices(t0: float, fs: float, n: int, t_start: float, t_end: float, what: str) -> tuple[int, int]:
    """Sample indices [i0, i1) of the GPS interval [t_start, t_end) in data starting at t0."""
    if not t_end > t_start:
        raise DataError(f"crop of {what}: need t_end > t_start, got [{t_start}, {t_end}]")
    tol = _ALIGN_TOL / fs
    if t_start < t0 - tol or t_end > t0 + n / fs + tol:
        raise DataError(f"crop of {what}: [{t_start}, {t_end}] is not inside the data [{t0}, {t0 + n / fs}]")
    i0 = max(int(np.ceil((t_start - t0) * fs - _ALIGN_TOL)), 0)
    i1 = min(int(np.ceil((t_end - t0) * fs - _ALIGN_TOL)), n)
    if i1 <= i0:
        raise DataError(f"crop of {what}: [{t_start}, {t_end}] holds no samples")
    return i0, i1


def join_strains(strains: list[Strain]) -> Strain:
    """Concatenate contiguous strain pieces of one detector; DataError on gaps or overlaps."""
    if not strains:
        raise DataError("no strain to join")
    strains = sorted(strains, key=lambda s: s.t0)
    first = strains[0]
    for prev, cur in zip(strains[:-1], strains[1:]):
        if cur.detector != first.detector:
            raise DataError(f"cannot join strain of {first.detector} and {cur.detector}")
        if cur.sample_rate != first.sample_rate:
            raise DataError(
                f"cannot join strain sampled at {first.sample_rate} Hz and {cur.sample_rate} Hz"
            )
        offset = (cur.t0 - prev.t_end) * first.sample_rate
        if abs(offset) > _ALIGN_TOL:
            kind = "gap" if offset > 0 else "overlap"
            raise DataError(
                f"{first.detector} strain is not contiguous: {kind} of {abs(cur.t0 - prev.t_end):.6g} s "
                f"at GPS {prev.t_end:.4f} ({prev.source or '?'} -> {cur.source or '?'})"
            )
    data = np.concatenate([s.data for s in strains])
    return Strain(first.detector, first.t0, first.sample_rate, data, " + ".join(s.source for s in strains))


# ---------------------------------------------------------------------------------- readers


def read_strain(
    path: str | Path,
    detector: str | None = None,
    *,
    channel: str | None = None,
    span: tuple[float, float] | None = None,
) -> Strain:
    """Read one strain file: GWOSC HDF5 (.hdf5/.h5), GWOSC ASCII (.txt/.txt.gz), or frame (.gwf).

    ``detector``: if given, the file must belong to that detector (an L1 file read as H1 is
    an error). ``channel``: frame channel (needed only if a frame file holds several).
    ``span``: optional GPS interval [start, end) to keep; the NaN check applies to it only,
    so a clean stretch of a long GWOSC file with NaN-marked gaps elsewhere can be used.
    """
    path = Path(path)
    if detector is not None:
        check_detector(detector, "requested detector")
    if not path.is_file():
        raise DataError(f"strain file not found: {path}")
    name = parse_gwosc_filename(path)
    if name is not None:
        check_detector(name.detector, f"detector in file name {path.name}:")
        if OBSERVATORY[name.detector] != name.observatory:
            raise DataError(
                f"{path.name}: observatory letter {name.observatory!r} does not match detector {name.detector}"
            )
        if detector is not None and name.detector != detector:
            raise DataError(f"{path.name} holds {name.detector} strain, but {detector} was requested")
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".txt.gz") else path.suffix
    readers = {".hdf5": _read_gwosc_hdf5, ".h5": _read_gwosc_hdf5, ".txt": _read_gwosc_ascii,
               ".txt.gz": _read_gwosc_ascii, ".gwf": _read_frame}
    if suffix not in readers:
        raise DataError(f"{path.name}: unknown strain file type {suffix!r} (use .hdf5, .h5, .txt, .txt.gz or .gwf)")
    det, t0, fs, data = readers[suffix](path, name, detector, channel)
    if detector is not None and det != detector:
        raise DataError(f"{path.name} holds {det} strain, but {detector} was requested")
    if span is not None:
        i0, i1 = _span_indices(t0, fs, data.size, span[0], span[1], str(path))
        t0, data = t0 + i0 / fs, data[i0:i1]
    return Strain(det, t0, fs, data, str(path))


def _check_against_name(path: Path, name: GwoscFileName | None, det: str, t0: float, n: int, fs: float) -> None:
    """The file name (if GWOSC-style) must agree with the header: detector, start, length."""
    if name is None:
        return
    if det != name.detector:
        raise DataError(f"{path.name}: header says detector {det}, file name says {name.detector}")
    if abs(t0 - name.gps_start) * fs > _ALIGN_TOL:
        raise DataError(f"{path.name}: data start at GPS {t0:.6f}, but the file name says {name.gps_start}")
    expected = name.duration * fs
    if abs(n - expected) > _ALIGN_TOL:
        raise DataError(
            f"{path.name}: {n} samples, but the file name says {name.duration} s x {fs:g} Hz = "
            f"{expected:.0f} (truncated file or missing samples)"
        )


def _read_gwosc_hdf5(path: Path, name: GwoscFileName | None, detector: str | None, channel: str | None):
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError:
        raise DataError(f"cannot read {path.name}: not a valid HDF5 file or truncated") from None
    with f:
        if "strain/Strain" not in f:
            raise DataError(f"{path.name} is not a GWOSC strain file: no strain/Strain dataset")
        ds = f["strain/Strain"]
        try:
            data = np.asarray(ds[()], dtype=np.float64)
            spacing = float(ds.attrs["Xspacing"])
            xstart = float(ds.attrs["Xstart"])
            meta = f.get("meta")
            gps_start = float(meta["GPSstart"][()]) if meta is not None and "GPSstart" in meta else xstart
            dur = float(meta["Duration"][()]) if meta is not None and "Duration" in meta else None
            det = meta["Detector"][()] if meta is not None and "Detector" in meta else None
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise DataError(f"cannot read {path.name}: corrupt or truncated GWOSC HDF5 ({_first_line(e)})") from None
    if isinstance(det, bytes):
        det = det.decode()
    if det is None:
        det = name.detector if name is not None else detector
    if det is None:
        raise DataError(f"{path.name}: cannot tell the detector (no meta/Detector, no GWOSC file name)")
    det = str(det)
    check_detector(det, f"detector in {path.name}:")
    if not spacing > 0:
        raise DataError(f"{path.name}: invalid sample spacing Xspacing = {spacing}")
    fs = 1.0 / spacing
    if abs(xstart - gps_start) * fs > _ALIGN_TOL:
        raise DataError(f"{path.name}: strain Xstart {xstart} disagrees with meta/GPSstart {gps_start}")
    if dur is not None and abs(data.size - dur * fs) > _ALIGN_TOL:
        raise DataError(
            f"{path.name}: {data.size} samples, but meta/Duration says {dur:g} s x {fs:g} Hz "
            "(truncated file or missing samples)"
        )
    _check_against_name(path, name, det, gps_start, data.size, fs)
    return det, gps_start, fs, data


_HEADER_START = re.compile(r"starting\s+GPS\s+([0-9.]+)\s+duration\s+([0-9.]+)", re.I)
_HEADER_RATE = re.compile(r"([0-9.]+)\s+samples\s+per\s+second", re.I)
_HEADER_DET = re.compile(r"\bfor\s+([A-Z][A-Z0-9])\b")


def _read_gwosc_ascii(path: Path, name: GwoscFileName | None, detector: str | None, channel: str | None):
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    header: list[str] = []
    try:
        with opener(path, "rt") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                header.append(line)
        data = np.loadtxt(path, comments="#", dtype=np.float64, ndmin=2)
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path.name}: corrupt ASCII strain ({_first_line(e)})") from None
    hdr = " ".join(header)
    m_start, m_rate = _HEADER_START.search(hdr), _HEADER_RATE.search(hdr)
    # "# Gravitational wave strain for GW170814_R1 for H1": the detector is the last "for XX".
    det = next((d for d in reversed(_HEADER_DET.findall(hdr)) if d in VALID_DETECTORS), None)
    if det is None:
        det = name.detector if name is not None else detector
    if det is None:
        raise DataError(f"{path.name}: cannot tell the detector (no header, no GWOSC file name)")
    check_detector(det, f"detector in {path.name}:")

    if data.shape[1] == 2:  # (GPS time, strain) columns: sampling must be uniform
        times, values = data[:, 0], data[:, 1]
        if values.size < 2:
            raise DataError(f"{path.name}: fewer than 2 samples")
        steps = np.diff(times)
        dt = np.median(steps)
        if not dt > 0 or np.any(np.abs(steps - dt) > 1e-3 * dt):
            i = int(np.argmax(np.abs(steps - dt)))
            raise DataError(f"{path.name}: samples are not uniformly spaced (gap or jump after GPS {times[i]:.6f})")
        fs, t0, data = 1.0 / dt, float(times[0]), values
        if m_start and abs(float(m_start.group(1)) - t0) * fs > _ALIGN_TOL:
            raise DataError(f"{path.name}: header start {m_start.group(1)} disagrees with the first time stamp {t0}")
    elif data.shape[1] == 1:
        data = data[:, 0]
        if m_start:
            t0, duration = float(m_start.group(1)), float(m_start.group(2))
        elif name is not None:
            t0, duration = float(name.gps_start), float(name.duration)
        else:
            raise DataError(
                f"{path.name}: no header and the name does not follow the GWOSC convention "
                "X-DET_DESCRIPTION-GPSSTART-DURATION.txt, so its GPS start is unknown"
            )
        if m_rate:
            fs = float(m_rate.group(1))
        elif name is not None and name.sample_rate_hint:
            fs = name.sample_rate_hint
        else:
            fs = data.size / duration
        if abs(data.size - duration * fs) > _ALIGN_TOL:
            raise DataError(
                f"{path.name}: {data.size} samples, but {duration:g} s x {fs:g} Hz = {duration * fs:.0f} "
                "expected (truncated file or missing samples)"
            )
    else:
        raise DataError(f"{path.name}: expected 1 column (strain) or 2 (GPS time, strain), found {data.shape[1]}")
    _check_against_name(path, name, det, t0, data.size, fs)
    return det, t0, fs, np.ascontiguousarray(data)


def _read_frame(path: Path, name: GwoscFileName | None, detector: str | None, channel: str | None):
    try:
        from gwpy.io.gwf import get_channel_names
        from gwpy.timeseries import TimeSeries

        if channel is None:
            names = list(get_channel_names(str(path)))
            strain_like = [c for c in names if "STRAIN" in c.upper()] or names
            if detector is not None:
                strain_like = [c for c in strain_like if c.startswith(f"{detector}:")] or strain_like
            if len(strain_like) != 1:
                raise DataError(
                    f"{path.name}: say which frame channel to read (channel=...); found: {', '.join(names) or 'none'}"
                )
            channel = strain_like[0]
        ts = TimeSeries.read(str(path), channel)
    except DataError:
        raise
    except Exception as e:  # gwpy/lalframe raise many types for corrupt or unreadable frames
        raise DataError(f"cannot read frame file {path.name} (channel {channel}): {_first_line(e)}") from None
    det = channel.split(":", 1)[0] if ":" in channel else (name.detector if name else detector)
    if det is None:
        raise DataError(f"{path.name}: cannot tell the detector of channel {channel!r}")
    check_detector(det, f"detector of channel {channel!r} in {path.name}:")
    fs = float(ts.sample_rate.value)
    t0 = float(ts.t0.value)
    data = np.asarray(ts.value, dtype=np.float64)
    _check_against_name(path, name, det, t0, data.size, fs)
    return det, t0, fs, data


def fetch_open_data(
    detector: str,
    t0: float,
    t1: float,
    *,
    sample_rate: float = 4096,
    host: str = "https://gwosc.org",
    timeout: float = 10.0,
) -> Strain:
    """Download strain [t0, t1) from GWOSC through gwpy (optional online path, no caching).

    Raises DataError with one line when GWOSC cannot be reached (e.g. no network) or the
    data are not available. Everything else in dingo_gw works offline.
    """
    check_detector(detector)
    if not t1 > t0:
        raise DataError(f"fetch_open_data: need t1 > t0, got [{t0}, {t1}]")
    hostname = urlparse(host).hostname or host
    try:
        socket.create_connection((hostname, 443), timeout=timeout).close()
    except OSError as e:
        raise DataError(
            f"cannot fetch {detector} data from GWOSC: {hostname} is unreachable ({e.__class__.__name__}); "
            "work offline with files in data/, $DINGO_GW_DATA or --data-dir"
        ) from None
    try:
        from gwpy.timeseries import TimeSeries

        ts = TimeSeries.fetch_open_data(
            detector, t0, t1, sample_rate=sample_rate, host=host, cache=False, timeout=timeout
        )
    except Exception as e:  # network and server errors come in many types
        raise DataError(f"cannot fetch {detector} data [{t0}, {t1}) from GWOSC: {_first_line(e)}") from None
    return Strain(detector, float(ts.t0.value), float(ts.sample_rate.value), np.asarray(ts.value), f"GWOSC {host}")
