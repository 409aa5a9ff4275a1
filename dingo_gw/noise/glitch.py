"""Loud transients (glitches): detection by whitened amplitude, and gating.

Detection: the strain is whitened by its own robust PSD (Welch median, 2 s Hann segments),
band-passed to ``band`` (default 20-1000 Hz) and normalised by the robust standard deviation
(1.4826 x median absolute deviation), so stationary Gaussian noise gives unit-variance
samples whose maximum over 32 s is ~5 sigma (~5.5 over 1024 s). Samples above ``threshold``
sigma, grouped into clusters, are glitches; each is reported at its peak.

Gating: as LVK analyses do (PyCBC autogating), the data are multiplied by an inverse Tukey
window: zero within ``half_width`` seconds of the glitch, rising back to one over ``taper``
seconds on each side (cosine taper).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from dingo_gw.errors import DataError
from dingo_gw.io.strain import Strain

log = logging.getLogger(__name__)

#: Default detection threshold [sigma of whitened, band-passed strain]. For Gaussian noise the
#: chance that any sample exceeds it is ~1e-4 per 32 s and ~0.4 % per 1024 s (20-1000 Hz).
DEFAULT_THRESHOLD = 6.0
#: Default gate: zero within +-0.25 s of the glitch, 0.25 s cosine tapers (PyCBC autogating defaults).
DEFAULT_HALF_WIDTH = 0.25
DEFAULT_TAPER = 0.25
GLITCH_ACTIONS = ("exclude", "gate", "error", "ignore")


@dataclass(frozen=True)
class Glitch:
    """A loud transient: GPS ``time`` [s] of the peak and its whitened amplitude ``snr`` [sigma]."""

    detector: str
    time: float
    snr: float

    def interval(self, half_width: float = DEFAULT_HALF_WIDTH, taper: float = DEFAULT_TAPER) -> tuple[float, float]:
        """GPS interval [s] affected by a gate around the glitch (zeroed part plus tapers)."""
        w = half_width + taper
        return (self.time - w, self.time + w)


@dataclass
class GlitchReport:
    """What glitch handling found and did: ``action`` taken and the GPS ``intervals`` it removed."""

    action: str
    threshold: float
    glitches: list[Glitch] = field(default_factory=list)
    intervals: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "action": self.action,
            "threshold": self.threshold,
            "glitches": [{"detector": g.detector, "time": g.time, "snr": g.snr} for g in self.glitches],
            "intervals": [list(i) for i in self.intervals],
        }


def whitened_amplitude(
    strain: Strain, band: tuple[float, float] = (20.0, 1000.0), psd_segment: float = 2.0
) -> np.ndarray:
    """Whitened, band-passed strain in units of its robust standard deviation (one value per sample).

    The first and last ``psd_segment`` seconds are affected by the taper and the whitening
    filter; :func:`find_glitches` ignores them.
    """
    from scipy.signal import welch
    from scipy.signal.windows import tukey

    fs, x = strain.sample_rate, strain.data
    f_lo, f_hi = band
    if not (0 < f_lo < f_hi):
        raise DataError(f"glitch band must satisfy 0 < f_lo < f_hi, got {band}")
    if f_hi > fs / 2:
        raise DataError(f"glitch band upper edge {f_hi} Hz is above the Nyquist frequency {fs / 2} Hz")
    nseg = int(round(psd_segment * fs))
    if x.size < 4 * nseg:
        raise DataError(
            f"{strain.source or strain.detector}: {strain.duration:g} s of data is too short to whiten "
            f"for glitch detection (need >= {4 * psd_segment:g} s)"
        )
    f_w, p_w = welch(x, fs=fs, window="hann", nperseg=nseg, noverlap=nseg // 2, average="median")
    n = x.size
    taper = tukey(n, min(1.0, 2 * 0.5 * fs / n))
    freqs = np.fft.rfftfreq(n, 1 / fs)
    xf = np.fft.rfft((x - x.mean()) * taper)
    asd = np.sqrt(np.interp(freqs, f_w, p_w))
    # smooth band edges (2 Hz cosine ramps) to limit ringing of the band-pass
    ramp = 2.0
    gain = np.clip(np.minimum((freqs - f_lo) / ramp + 0.5, (f_hi - freqs) / ramp + 0.5), 0.0, 1.0)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    with np.errstate(divide="ignore", invalid="ignore"):
        wf = np.where(asd > 0, xf * gain / asd, 0.0)
    y = np.fft.irfft(wf, n)
    edge = nseg
    core = y[edge:-edge]
    sigma = 1.4826 * np.median(np.abs(core - np.median(core)))
    if not sigma > 0:
        raise DataError(f"{strain.source or strain.detector}: whitened data are identically zero")
    return y / sigma


def find_glitches(
    strain: Strain,
    threshold: float = DEFAULT_THRESHOLD,
    band: tuple[float, float] = (20.0, 1000.0),
    exclude: tuple[float, float] | None = None,
    psd_segment: float = 2.0,
    cluster_gap: float = 0.1,
) -> list[Glitch]:
    """Transients whose whitened amplitude exceeds ``threshold`` sigma, one per cluster.

    ``exclude``: GPS interval [s] not searched (e.g. around the event itself). Samples within
    ``psd_segment`` seconds of either end are not searched (whitening edge effects).
    Clusters are runs of loud samples separated by less than ``cluster_gap`` seconds.
    """
    w = np.abs(whitened_amplitude(strain, band, psd_segment))
    fs = strain.sample_rate
    searchable = np.zeros(w.size, bool)
    edge = int(round(psd_segment * fs))
    searchable[edge:-edge] = True
    if exclude is not None:
        t = strain.times
        searchable &= ~((t >= exclude[0]) & (t < exclude[1]))
    loud = np.flatnonzero(searchable & (w > threshold))
    glitches: list[Glitch] = []
    if loud.size == 0:
        return glitches
    breaks = np.flatnonzero(np.diff(loud) > cluster_gap * fs)
    for run in np.split(loud, breaks + 1):
        peak = run[np.argmax(w[run])]
        glitches.append(Glitch(strain.detector, float(strain.t0 + peak / fs), float(w[peak])))
    return glitches


def gate_window(
    strain: Strain, times: list[float], half_width: float = DEFAULT_HALF_WIDTH, taper: float = DEFAULT_TAPER
) -> np.ndarray:
    """Product of inverse Tukey windows: 0 within ``half_width`` [s] of each time, cosine tapers of ``taper`` [s]."""
    if half_width < 0 or taper < 0:
        raise DataError(f"gate half_width and taper must be >= 0 s, got {half_width}, {taper}")
    t = strain.times
    window = np.ones(strain.num_samples)
    for tc in times:
        d = np.abs(t - tc)
        w = np.ones_like(d)
        w[d <= half_width] = 0.0
        ramp = (d > half_width) & (d < half_width + taper)
        if taper > 0:
            w[ramp] = 0.5 - 0.5 * np.cos(np.pi * (d[ramp] - half_width) / taper)
        window *= w
    return window


def gate(
    strain: Strain, times: list[float], half_width: float = DEFAULT_HALF_WIDTH, taper: float = DEFAULT_TAPER
) -> Strain:
    """Strain multiplied by inverse Tukey gates around the GPS ``times`` [s]."""
    return Strain(
        strain.detector, strain.t0, strain.sample_rate,
        strain.data * gate_window(strain, times, half_width, taper), strain.source,
    )


def handle_glitches(
    strain: Strain,
    action: str = "exclude",
    threshold: float = DEFAULT_THRESHOLD,
    exclude: tuple[float, float] | None = None,
    half_width: float = DEFAULT_HALF_WIDTH,
    taper: float = DEFAULT_TAPER,
    band: tuple[float, float] = (20.0, 1000.0),
) -> tuple[Strain, GlitchReport]:
    """Detect glitches outside ``exclude`` and act on them; every glitch is logged and reported.

    ``action``: 'exclude' returns the strain unchanged and the intervals a PSD estimate must
    skip; 'gate' returns gated strain; 'error' raises DataError; 'ignore' skips the search.
    """
    if action not in GLITCH_ACTIONS:
        raise DataError(f"unknown glitch action {action!r}; use one of {', '.join(GLITCH_ACTIONS)}")
    report = GlitchReport(action, float(threshold))
    if action == "ignore":
        return strain, report
    f_hi = min(band[1], 0.5 * strain.sample_rate * 0.98)
    report.glitches = find_glitches(strain, threshold, (band[0], f_hi), exclude)
    if not report.glitches:
        return strain, report
    what = strain.source or strain.detector
    listing = ", ".join(f"GPS {g.time:.3f} ({g.snr:.1f} sigma)" for g in report.glitches)
    if action == "error":
        raise DataError(f"{what}: loud transient(s) above {threshold:g} sigma: {listing}")
    report.intervals = [g.interval(half_width, taper) for g in report.glitches]
    verb = "gated" if action == "gate" else "excluded from the PSD estimate"
    log.warning("%s: glitch(es) %s: %s", what, verb, listing)
    if action == "gate":
        strain = gate(strain, [g.time for g in report.glitches], half_width, taper)
    return strain, report
