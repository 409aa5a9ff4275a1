"""Power spectral densities: Welch estimates from strain, PSD/ASD text files, matching to a domain.

Conventions
-----------
* PSDs are one-sided, in 1/Hz; ASD = sqrt(PSD) in 1/sqrt(Hz).
* A PSD "on a domain" is an array of ``len(domain)`` values on the full grid 0..f_max (step
  delta_f). Bins below ``f_min`` hold the placeholder :data:`BELOW_FMIN` = 1.0 (never used:
  data below f_min are zero); bins in [f_min, f_max] are finite and > 0.
* Welch estimate: non-overlapping (by default) segments of ``segment_duration`` seconds
  (default: the analysis duration T = 1/delta_f, as DINGO), each Tukey-windowed with a roll-off
  of ``roll_off`` seconds per side (alpha = 2 roll_off / segment_duration) and mean-subtracted;
  periodograms are normalised by sum(w^2) so the estimate is the true PSD independent of the
  window; the median over segments is divided by the median bias of K exponential variables
  (:func:`median_bias`), so that it is unbiased for Gaussian noise. Segments that overlap the
  excluded interval (the event) or a detected glitch are not used.
* When ``segment_duration`` differs from the domain's T, the estimate (grid 1/segment_duration)
  is interpolated linearly in log PSD onto the domain grid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError, DomainMismatchError
from dingo_gw.io.strain import Strain, check_detector
from dingo_gw.noise.glitch import DEFAULT_HALF_WIDTH, DEFAULT_TAPER, DEFAULT_THRESHOLD, GlitchReport, handle_glitches

#: Placeholder PSD/ASD value in bins below f_min.
BELOW_FMIN = 1.0
#: Default minimum number of Welch segments for an estimate.
DEFAULT_MIN_SEGMENTS = 4


def tukey_alpha(roll_off: float, duration: float) -> float:
    """Tukey shape parameter for a roll-off of ``roll_off`` seconds per side on ``duration`` seconds."""
    if not roll_off >= 0:
        raise DataError(f"Tukey roll-off must be >= 0 s, got {roll_off}")
    alpha = 2.0 * roll_off / duration
    if alpha > 1.0:
        raise DataError(f"Tukey roll-off {roll_off} s is longer than half of the {duration} s segment")
    return alpha


def median_bias(n: int) -> float:
    """E[median of n iid Exp(1)] (numpy's median: mean of the two middle values for even n).

    Order statistic k of n exponentials has mean sum_{j=n-k+1}^{n} 1/j. A Welch median of
    n periodograms divided by this is an unbiased PSD estimate for Gaussian noise.
    """
    if n < 1:
        raise ValueError("median_bias needs n >= 1")

    def order_mean(k: int) -> float:
        return float(np.sum(1.0 / np.arange(n - k + 1, n + 1)))

    if n % 2:
        return order_mean((n + 1) // 2)
    return 0.5 * (order_mean(n // 2) + order_mean(n // 2 + 1))


@dataclass
class PsdEstimate:
    """A Welch PSD estimate on a domain, with what went into it."""

    psd: np.ndarray
    domain: FrequencyDomain
    detector: str
    num_segments: int
    segment_duration: float
    segment_starts: np.ndarray
    settings: dict
    glitches: GlitchReport | None = None
    source: str = ""
    #: GPS intervals [s] excluded from the estimate (event, glitches).
    excluded: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able summary (no arrays except segment start times)."""
        return {
            "detector": self.detector,
            "source": self.source,
            "num_segments": self.num_segments,
            "segment_duration": self.segment_duration,
            "segment_starts": [float(t) for t in self.segment_starts],
            "excluded": [list(map(float, i)) for i in self.excluded],
            "glitches": self.glitches.to_dict() if self.glitches else None,
            **self.settings,
        }


def _merge_intervals(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted((float(a), float(b)) for a, b in intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def segment_starts(
    strain: Strain, segment_duration: float, overlap: float = 0.0, exclude: list[tuple[float, float]] | None = None
) -> np.ndarray:
    """Start indices of Welch segments that lie entirely outside the excluded GPS intervals.

    Segments are laid out from the start of each allowed stretch with stride
    ``(1 - overlap) * segment_duration``.
    """
    if not 0 <= overlap < 1:
        raise DataError(f"Welch overlap must be in [0, 1), got {overlap}")
    fs = strain.sample_rate
    n = int(round(segment_duration * fs))
    if abs(n - segment_duration * fs) > 1e-6 * fs or n < 2:
        raise DataError(f"Welch segment of {segment_duration} s is not a whole number of samples at {fs:g} Hz")
    stride = max(1, int(round(n * (1 - overlap))))
    # allowed stretches in sample indices
    cuts = [(strain.index(a), strain.index(b)) for a, b in _merge_intervals(exclude or [])]
    stretches, pos = [], 0
    for a, b in cuts:
        if a > pos:
            stretches.append((pos, min(a, strain.num_samples)))
        pos = max(pos, b)
    if pos < strain.num_samples:
        stretches.append((pos, strain.num_samples))
    starts = [s for a, b in stretches for s in range(max(a, 0), b - n + 1, stride)]
    return np.asarray(starts, dtype=int)


def welch_periodograms(strain: Strain, starts: np.ndarray, segment_duration: float, roll_off: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided periodograms [1/Hz] of the Tukey-windowed, mean-subtracted segments.

    Returns (frequencies [Hz], array of shape (num_segments, num_frequencies)). Each is
    normalised by fs * sum(w^2), as scipy.signal.welch with scaling='density'.
    """
    from scipy.signal.windows import tukey

    fs = strain.sample_rate
    n = int(round(segment_duration * fs))
    window = tukey(n, tukey_alpha(roll_off, segment_duration))
    segs = np.stack([strain.data[s : s + n] for s in starts])
    segs = (segs - segs.mean(axis=1, keepdims=True)) * window
    spec = np.abs(np.fft.rfft(segs, axis=1)) ** 2 / (fs * np.sum(window**2))
    spec[:, 1:] *= 2.0
    if n % 2 == 0:
        spec[:, -1] /= 2.0  # Nyquist bin is not doubled
    return np.fft.rfftfreq(n, 1.0 / fs), spec


def estimate_psd_report(
    strain: Strain,
    domain: FrequencyDomain,
    exclude: tuple[float, float] | None = None,
    roll_off: float = 0.4,
    *,
    segment_duration: float | None = None,
    overlap: float = 0.0,
    average: str = "median",
    min_segments: int = DEFAULT_MIN_SEGMENTS,
    glitch_action: str = "exclude",
    glitch_threshold: float = DEFAULT_THRESHOLD,
    gate_half_width: float = DEFAULT_HALF_WIDTH,
    gate_taper: float = DEFAULT_TAPER,
) -> PsdEstimate:
    """Welch PSD of ``strain`` on ``domain``, excluding the GPS interval ``exclude`` [s].

    See the module docstring for the conventions. Glitches outside ``exclude`` are detected
    (threshold in sigma of whitened strain) and, by ``glitch_action``: 'exclude' (segments
    touching them are dropped; default), 'gate' (inverse-Tukey gated first), 'error', 'ignore'.
    DataError if the sample rate is below 2 f_max, or fewer than ``min_segments`` segments remain.
    """
    what = strain.source or f"{strain.detector} strain"
    seg = float(domain.duration if segment_duration is None else segment_duration)
    if not seg > 0:
        raise DataError(f"Welch segment duration must be > 0 s, got {seg}")
    if strain.sample_rate < 2 * domain.f_max - 1e-9:
        raise DataError(
            f"{what}: sample rate {strain.sample_rate:g} Hz is below 2 f_max = {2 * domain.f_max:g} Hz of the domain"
        )
    if average not in ("median", "mean"):
        raise DataError(f"unknown Welch average {average!r}; use 'median' or 'mean'")
    if min_segments < 1:
        raise DataError(f"min_segments must be >= 1, got {min_segments}")
    if exclude is not None and not exclude[1] > exclude[0]:
        raise DataError(f"excluded interval must have end > start, got {tuple(exclude)}")
    tukey_alpha(roll_off, seg)
    if strain.duration < seg:
        raise DataError(f"{what}: {strain.duration:g} s of data is shorter than one {seg:g} s Welch segment")

    data, report = handle_glitches(
        strain, glitch_action, glitch_threshold, exclude, gate_half_width, gate_taper,
        band=(max(domain.f_min, 10.0), min(domain.f_max, 1000.0)),
    )
    excluded = ([tuple(exclude)] if exclude is not None else []) + (
        report.intervals if glitch_action == "exclude" else []
    )
    starts = segment_starts(data, seg, overlap, excluded)
    if starts.size < min_segments:
        raise DataError(
            f"{what}: too little data for a PSD: {starts.size} Welch segment(s) of {seg:g} s outside "
            f"the excluded interval(s) {_merge_intervals(excluded)}, need >= {min_segments} "
            "(use more data or shorter segments)"
        )
    freqs, spec = welch_periodograms(data, starts, seg, roll_off)
    if average == "median":
        est = np.median(spec, axis=0) / median_bias(starts.size)
    else:
        est = np.mean(spec, axis=0)
    psd = psd_to_domain(freqs, est, domain, what=f"Welch PSD of {what}")
    settings = {
        "method": "welch", "average": average, "roll_off": float(roll_off), "overlap": float(overlap),
        "window": "tukey", "tukey_alpha": tukey_alpha(roll_off, seg),
    }
    return PsdEstimate(
        psd=psd, domain=domain, detector=strain.detector, num_segments=int(starts.size),
        segment_duration=seg, segment_starts=data.t0 + starts / data.sample_rate, settings=settings,
        glitches=report, source=strain.source, excluded=_merge_intervals(excluded),
    )


def estimate_psd(
    strain: Strain,
    domain: FrequencyDomain,
    exclude: tuple[float, float] | None = None,
    roll_off: float = 0.4,
    **kwargs,
) -> np.ndarray:
    """Welch PSD [1/Hz] of ``strain`` on ``domain`` (see :func:`estimate_psd_report` for options)."""
    return estimate_psd_report(strain, domain, exclude, roll_off, **kwargs).psd


def psd_to_domain(
    frequencies: np.ndarray, psd: np.ndarray, domain: FrequencyDomain, what: str = "PSD"
) -> np.ndarray:
    """Match a PSD given at ``frequencies`` [Hz] onto ``domain``'s full grid.

    log(PSD) is interpolated linearly in f (so values at frequencies on the domain grid are
    taken as they are). The source must cover [f_min, f_max]; a
    shortfall of at most one source bin at either end (e.g. GWTC-1 files that stop at
    f_max - delta_f) is filled with the nearest value. Below f_min: :data:`BELOW_FMIN`.
    """
    f = np.asarray(frequencies, dtype=float)
    p = np.asarray(psd, dtype=float)
    if f.ndim != 1 or p.shape != f.shape or f.size < 2:
        raise DataError(f"{what}: frequencies and values must be 1-D arrays of equal length >= 2")
    if not np.all(np.isfinite(f)) or np.any(np.diff(f) <= 0):
        raise DataError(f"{what}: frequencies must be finite and strictly increasing")
    target = domain.frequencies[domain.min_index :]
    step = float(np.median(np.diff(f)))
    tol = 1e-6 * domain.delta_f
    if f[0] > domain.f_min + step + tol or f[-1] < domain.f_max - step - tol:
        raise DomainMismatchError(
            f"{what} covers {f[0]:.10g}-{f[-1]:.10g} Hz, but the domain needs {domain.f_min:.10g}-{domain.f_max:.10g} Hz"
        )
    band = (f >= target[0] - step - tol) & (f <= target[-1] + step + tol)
    if not np.all(np.isfinite(p[band])) or np.any(p[band] <= 0):
        bad = f[band][~(np.isfinite(p[band]) & (p[band] > 0))]
        raise DataError(f"{what}: {bad.size} non-positive or non-finite value(s) in band (first at {bad[0]:g} Hz)")
    # at source frequencies that are on the domain grid this returns the source value itself
    values = np.exp(np.interp(target, f[band], np.log(p[band])))  # constant beyond the ends
    out = np.full(len(domain), BELOW_FMIN)
    out[domain.min_index :] = values
    return out


# ------------------------------------------------------------------------ PSD / ASD files

_DETECTOR_ALIASES = {
    "H1": ("h1", "hanford", "lho"),
    "L1": ("l1", "livingston", "llo"),
    "V1": ("v1", "virgo"),
    "K1": ("k1", "kagra"),
}


def _column_for_detector(header: str, detector: str, ncols: int, path: Path) -> int:
    names = [c for c in re.split(r"\t|\s{2,}|,", header.lstrip("#").strip()) if c.strip()]
    if len(names) != ncols:
        names = header.lstrip("#").split()
    hits = [i for i, c in enumerate(names) if any(a in c.lower() for a in _DETECTOR_ALIASES[detector])]
    if len(hits) != 1 or hits[0] == 0:
        raise DataError(
            f"{path.name}: cannot find the {detector} column in the header {header.strip()!r}; pass column=<index>"
        )
    return hits[0]


def load_psd_text(path: str | Path, kind: str = "psd", column: str | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a text PSD/ASD file -> (frequencies [Hz], PSD [1/Hz]).

    ``kind``: 'psd' if the values are a PSD [1/Hz], 'asd' if an ASD [1/sqrt(Hz)] (squared on
    read). Two columns (f, value) need no ``column``. Files with several value columns (e.g.
    the GWTC-1 release: f, H1, L1[, V1]) need ``column``: a detector name matched against the
    header (H1/Hanford, L1/Livingston, V1/Virgo, K1/KAGRA) or the column index (0 = frequency).
    """
    path = Path(path)
    if kind not in ("psd", "asd"):
        raise DataError(f"PSD file kind must be 'psd' or 'asd', got {kind!r}")
    if not path.is_file():
        raise DataError(f"PSD file not found: {path}")
    header = ""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("#"):
                    header = line
                    continue
                break
        table = np.loadtxt(path, comments="#", dtype=float, ndmin=2)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        first = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise DataError(f"cannot read PSD file {path.name}: {first}") from None
    if table.shape[0] < 2 or table.shape[1] < 2:
        raise DataError(f"{path.name}: expected at least 2 rows and 2 columns (f, {kind}), got shape {table.shape}")
    ncols = table.shape[1]
    if column is None:
        if ncols != 2:
            raise DataError(
                f"{path.name} has {ncols - 1} value columns; choose one with column=<detector or index>"
            )
        col = 1
    elif isinstance(column, str) and not column.isdigit():
        check_detector(column)
        col = _column_for_detector(header, column, ncols, path)
    else:
        col = int(column)
        if not 1 <= col < ncols:
            raise DataError(f"{path.name}: column {col} does not exist (value columns are 1..{ncols - 1})")
    f, v = table[:, 0], table[:, col]
    if not np.all(np.isfinite(v)):
        raise DataError(f"{path.name}: column {col} holds NaN or inf values")
    return f, (v**2 if kind == "asd" else v)


def read_psd_file(
    path: str | Path, domain: FrequencyDomain, kind: str = "psd", column: str | int | None = None
) -> np.ndarray:
    """PSD [1/Hz] from a text file (see :func:`load_psd_text`), matched onto ``domain`` (:func:`psd_to_domain`)."""
    f, p = load_psd_text(path, kind, column)
    return psd_to_domain(f, p, domain, what=f"PSD file {Path(path).name}")


# ------------------------------------------------------- statistics of Welch median estimates


def welch_log_noise(
    rng: np.random.Generator, num_segments: int, segment_duration: float | None, domain: FrequencyDomain, n: int
) -> np.ndarray:
    """ln(estimate / true PSD) of ``n`` simulated Welch median estimates on the band of ``domain``.

    For Gaussian noise each periodogram bin is PSD x Exp(1); the estimate is the median of
    ``num_segments`` of them divided by :func:`median_bias`. The estimate lives on the grid
    1/segment_duration and is interpolated (linearly in log) onto the domain as in
    :func:`estimate_psd`. Returns shape (n, number of bins with f >= f_min).
    """
    target = domain.frequencies[domain.min_index :]
    seg = domain.duration if segment_duration is None or not np.isfinite(segment_duration) else segment_duration
    step = 1.0 / seg
    coarse = np.arange(np.floor(target[0] / step), np.ceil(target[-1] / step) + 1) * step
    lz = np.log(_median_of_exponentials(rng, num_segments, (n, coarse.size)) / median_bias(num_segments))
    if coarse.size == target.size and np.allclose(coarse, target):
        return lz
    return np.stack([np.interp(target, coarse, row) for row in lz])


def _median_of_exponentials(rng: np.random.Generator, k_total: int, shape: tuple) -> np.ndarray:
    """Samples of numpy's median of ``k_total`` iid Exp(1), drawn exactly without the k_total draws.

    Order statistic k of K exponentials is -ln(1 - U) with U ~ Beta(k, K - k + 1), and the
    next one adds an independent Exp(1) / (K - k) (Renyi's representation).
    """
    k = (k_total + 1) // 2
    lower = -np.log1p(-rng.beta(k, k_total - k + 1, size=shape))
    if k_total % 2:
        return lower
    return lower + 0.5 * rng.exponential(size=shape) / (k_total - k)


def welch_median_tail(num_segments: int, ratio: float) -> float:
    """Upper bound on P(Welch median estimate / true PSD > ratio) for one bin of Gaussian noise.

    The median of K exponentials is at most their order statistic k = K//2 + 1, and
    P(X_(k) > x) = P(Binomial(K, e^-x) >= K - k + 1) exactly.
    """
    from scipy.stats import binom

    k = num_segments // 2 + 1
    x = ratio * median_bias(num_segments)
    return float(binom.sf(num_segments - k, num_segments, np.exp(-x)))
