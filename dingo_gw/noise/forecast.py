"""Parametric PSD model and PSD forecasting (after Wildberger et al. 2023).

Model of one PSD on [f_min, f_max]::

    S(f) = exp(b(ln f)) * (1 + sum_k L_k(f)),   L_k = A_k / (1 + ((f - f_k) / gamma_k)^2)

* broadband ``b``: natural cubic spline in ln f through ``num_nodes`` log-spaced nodes; the
  parameters are the values ln S_broadband at the nodes ("node space");
* spectral lines: Lorentzians with position f_k [Hz], half width gamma_k [Hz] and height A_k,
  averaged over each frequency bin (lines narrower than a bin then have a well-defined bin
  value and vanishing tails; for them only A_k gamma_k is constrained).

Fitting one PSD (:func:`fit_psd`): robust least squares of ln S for the nodes (Tukey
biweight, weak curvature penalty); lines where the residual exceeds a noise-aware threshold
(at least ``line_min_height`` times the broadband, and above what the input's Welch noise
reaches anywhere in the band with probability ``line_false_alarm``); each line refined by least
squares over every bin its tails reach; the broadband refitted with the lines divided out. For
a Welch input (K segments) ln S is first corrected by E[ln(estimate/true)], so the model
describes the true PSD.

Distribution per detector (:func:`learn_detector_model`): Gaussian in node space (covariance
shrunk towards a smooth target with correlation length ``correlation_length`` in ln f and
inflated by (1 + 1/n)), drawn as a multivariate Student-t with n - 1 degrees of freedom, the
predictive distribution when mean and covariance are estimated from n PSDs. Lines are clustered
by frequency across inputs; a cluster appears in a draw with its observed frequency and takes
the parameters (f, gamma, A) of one observed occurrence, resampled as a whole.

Draws (:func:`sample_psds`) are smooth model PSDs; with ``welch_segments`` K they are multiplied
by simulated K-segment Welch-median noise, scaled by the measured ratio of real to Gaussian
estimation scatter of the inputs, so they look like real K-segment estimates. Forecasting
(:func:`shift_toward`): the node mean is moved to the mean of the nodes of target PSDs (e.g. a
new observing run) and the targets' lines are always present.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError, FileFormatError
from dingo_gw.io.atomic import atomic_write, h5_writer
from dingo_gw.io.hdf5 import open_h5, read_json_attr, stamp, write_json_attr
from dingo_gw.io.strain import VALID_DETECTORS
from dingo_gw.noise.asd_dataset import ASDDataset, asd_dataset_writer, decode_strings, detector_groups, read_header
from dingo_gw.noise.config import PsdModelConfig
from dingo_gw.noise.psd import BELOW_FMIN, welch_log_noise, welch_median_tail

log = logging.getLogger(__name__)

KIND = "psd_model"
#: Seed of the fixed simulations that give Welch-noise statistics (bias, noise floor).
_STATS_SEED = 20230401


# --------------------------------------------------------------------------- model pieces


class _Grid:
    """Band frequencies of a domain and the spline basis for given nodes."""

    def __init__(self, domain: FrequencyDomain, node_frequencies: np.ndarray):
        from scipy.interpolate import CubicSpline

        self.domain = domain
        self.f = domain.frequencies[domain.min_index :]
        self.node_frequencies = np.asarray(node_frequencies, float)
        n = self.node_frequencies.size
        spline = CubicSpline(np.log(self.node_frequencies), np.eye(n), bc_type="natural", axis=0)
        self.basis = spline(np.log(self.f))  # (n_band, n_nodes), linear in node values

    def full(self, band_values: np.ndarray) -> np.ndarray:
        """Band values -> full grid with the placeholder below f_min."""
        band_values = np.atleast_2d(band_values)
        out = np.full((band_values.shape[0], len(self.domain)), BELOW_FMIN)
        out[:, self.domain.min_index :] = band_values
        return out


def node_frequencies(domain: FrequencyDomain, num_nodes: int) -> np.ndarray:
    """``num_nodes`` log-spaced node frequencies [Hz] from f_min to f_max."""
    f_lo = max(domain.f_min, domain.delta_f)
    return np.geomspace(f_lo, domain.f_max, num_nodes)


def line_profile(f: np.ndarray, lines: np.ndarray, df: float | None = None, rel_tol: float = 1e-5) -> np.ndarray:
    """Sum of Lorentzians A_k / (1 + ((f - f_k)/gamma_k)^2), averaged over each bin of width ``df``.

    ``f``: uniform grid [Hz] of bin centres (``df`` defaults to its spacing); ``lines``: rows
    (f_k, gamma_k, A_k). Averaging over the bin makes lines narrower than a bin well defined
    (their power A pi gamma is spread over the bin, and their tails A gamma^2/(f - f_k)^2
    vanish as gamma -> 0). Each line is evaluated only where it exceeds ``rel_tol``.
    """
    out = np.zeros_like(f, dtype=float)
    if len(lines) == 0 or f.size == 0:
        return out
    df = float(df if df is not None else f[1] - f[0])
    for f0, gamma, amp in np.asarray(lines, float):
        half = gamma * math.sqrt(max(amp / rel_tol, 1.0)) + df
        i0 = max(int((f0 - half - f[0]) / df), 0)
        i1 = min(int((f0 + half - f[0]) / df) + 2, f.size)
        if i1 > i0:
            out[i0:i1] += _bin_lorentzian(f[i0:i1], df, f0, gamma, amp)
    return out


def _peak_height(gamma: float, amp: float, df: float) -> float:
    """Bin-averaged value of a Lorentzian (gamma, amp) in the bin centred on its peak."""
    x = 0.5 * df / gamma
    return amp * math.atan(x) / x


def _bin_lorentzian(f: np.ndarray, df: float, f0: float, gamma: float, amp: float) -> np.ndarray:
    up = (f + 0.5 * df - f0) / gamma
    lo = (f - 0.5 * df - f0) / gamma
    return amp * gamma / df * (np.arctan(up) - np.arctan(lo))


@dataclass
class PsdFit:
    """Fitted parameters of one PSD.

    ``nodes``: ln S_broadband [ln(1/Hz)] at the node frequencies; ``lines``: (L, 3) array of
    (f_k [Hz], gamma_k [Hz], A_k); ``deviation``: median |ln(model / input)| over the band;
    ``noise_floor``: the same for a perfect model, from the input's Welch noise alone if the
    noise were Gaussian (0 for inputs that are not Welch estimates); ``scatter_ratio``: the
    5-95 % width of ln(input / model) over that of Gaussian Welch noise (NaN if not Welch).
    """

    nodes: np.ndarray
    lines: np.ndarray
    deviation: float = math.nan
    noise_floor: float = 0.0
    scatter_ratio: float = math.nan
    source: str = ""
    gps: float = math.nan
    welch_segments: int = 0
    segment_duration: float = math.nan


@lru_cache(maxsize=64)
def _welch_stats(num_segments: int, segment_duration: float, domain_key: tuple) -> tuple[float, float, float]:
    """(E[ln(estimate/true)], median |ln(estimate/true)|, :func:`_scatter` of the estimate) of a
    K-segment Welch median estimate of Gaussian noise (fixed-seed simulation)."""
    if num_segments <= 0:
        return 0.0, 0.0, math.nan
    domain = FrequencyDomain(*domain_key)
    lz = welch_log_noise(np.random.default_rng(_STATS_SEED), num_segments, segment_duration, domain, 8)
    scatter = float(np.median([_scatter(row, segment_duration, domain) for row in lz]))
    return float(lz.mean()), float(np.median(np.abs(lz))), scatter


def _scatter(log_ratio: np.ndarray, segment_duration: float, domain: FrequencyDomain) -> float:
    """5-95 % interval width of ln(estimate / model) at the independent bins of the Welch grid.

    This is the estimation noise at the quantiles the forecast is judged on; real estimates
    have heavier tails than Gaussian noise gives.
    """
    step = max(1, int(round(1.0 / (segment_duration * domain.delta_f)))) if np.isfinite(segment_duration) else 1
    q5, q95 = np.percentile(log_ratio[::step], [5, 95])
    return float(q95 - q5)


def _domain_key(domain: FrequencyDomain) -> tuple:
    return (domain.f_min, domain.f_max, domain.delta_f)


def _line_threshold(config: PsdModelConfig, num_segments: int, segment_duration: float, grid: _Grid) -> float:
    """Smallest PSD/broadband ratio counted as a line (noise-aware, see module docstring)."""
    ratio = config.line_min_height
    if num_segments <= 0:
        return ratio
    res = 1.0 / segment_duration if np.isfinite(segment_duration) else grid.domain.delta_f
    independent = max(1, int((grid.f[-1] - grid.f[0]) / res))
    p = config.line_false_alarm / independent
    hi = ratio
    while welch_median_tail(num_segments, hi) > p:
        hi *= 1.5
    lo = hi / 1.5 if hi > ratio else ratio
    for _ in range(40):  # bisection on the monotone tail
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if welch_median_tail(num_segments, mid) > p else (lo, mid)
    return max(ratio, hi)


def _robust_lstsq(basis: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, iters: int = 8) -> np.ndarray:
    """Least squares with Tukey-biweight reweighting (c = 4.685 robust sigma, sigma >= 0.05).

    A weak second-difference penalty on the node values keeps nodes whose bins were all
    down-weighted (e.g. under a wide line) from running away; the sigma floor keeps a
    noise-free input from down-weighting everything that is not fitted to round-off.
    """
    w = np.ones_like(y) if weights is None else weights.astype(float).copy()
    base = w.copy()
    n = basis.shape[1]
    d2 = np.diff(np.eye(n), 2, axis=0)
    penalty = d2.T @ d2
    beta = None
    for _ in range(iters):
        bw = basis * w[:, None]
        gram = basis.T @ bw
        beta = np.linalg.solve(gram + 1e-4 * np.trace(gram) / n * penalty, bw.T @ y)
        r = y - basis @ beta
        s = max(1.4826 * np.median(np.abs(r[base > 0] - np.median(r[base > 0]))), 0.05)
        u = r / (4.685 * s)
        w = base * np.where(np.abs(u) < 1, (1 - u**2) ** 2, 0.0)
    return beta


def _find_lines(f: np.ndarray, resid: np.ndarray, log_thr: float, res: float, max_lines: int) -> np.ndarray:
    """Initial (f0, gamma, A) of peaks of the residual ln(S / broadband) above ``log_thr``."""
    from scipy.signal import find_peaks

    peaks, props = find_peaks(resid, height=log_thr)
    if peaks.size == 0:
        return np.zeros((0, 3))
    order = np.argsort(props["peak_heights"])[::-1][:max_lines]
    lines = []
    df = f[1] - f[0]
    for p in np.sort(peaks[order]):
        amp = math.expm1(resid[p])
        half = math.log1p(amp / 2)
        left = p
        while left > 0 and resid[left - 1] > half:
            left -= 1
        right = p
        while right < resid.size - 1 and resid[right + 1] > half:
            right += 1
        gamma = max(0.5 * (right - left) * df, 0.25 * res)
        lines.append([f[p], gamma, amp])
    return np.asarray(lines, float)


def _fit_lines(f: np.ndarray, resid: np.ndarray, lines: np.ndarray, res: float, sweeps: int = 1) -> np.ndarray:
    """Refine lines by least squares of ln(1 + profile) against the residual ln(S / broadband).

    Lines are refined one at a time (tallest first) with the other lines' profile held fixed
    (``sweeps`` Gauss-Seidel passes). Each fit has 3 parameters: f_k, ln gamma_k and the log
    of the bin-averaged peak height (bounded near the observed peak, so a line cannot grow
    into a broad pedestal). gamma ranges from 1e-4 bins (a sinusoid) to max(4 resolution, 2 Hz).
    """
    if len(lines) == 0:
        return np.zeros((0, 3))
    params = np.array(lines, float)
    df = f[1] - f[0]
    gamma_lo, gamma_hi = 1e-4 * df, max(4.0 * res, 2.0)
    total = line_profile(f, params, df)
    for _ in range(sweeps):
        for k in np.argsort(params[:, 2])[::-1]:
            params[k] = _fit_one_line(f, df, resid, total, params[k], res, gamma_lo, gamma_hi)
    return params


def _line_residual(fw: np.ndarray, rw: np.ndarray, other: np.ndarray, df: float):
    """Residual ln(1 + other + line) - rw and its Jacobian in p = (f_k, ln gamma_k, ln peak_k).

    With x = df / (2 gamma) and c = peak / (2 atan x), the bin-averaged line is
    c (atan u+ - atan u-), u+- = (f +- df/2 - f_k) / gamma.
    """

    def parts(p):
        gamma = math.exp(p[1])
        x = 0.5 * df / gamma
        c = math.exp(p[2]) / (2.0 * math.atan(x))
        up, lo = (fw + 0.5 * df - p[0]) / gamma, (fw - 0.5 * df - p[0]) / gamma
        return gamma, x, c, up, lo, c * (np.arctan(up) - np.arctan(lo))

    def fun(p):
        return np.log1p(other + parts(p)[5]) - rw

    def jac(p):
        gamma, x, c, up, lo, line = parts(p)
        iu, il = 1.0 / (1.0 + up * up), 1.0 / (1.0 + lo * lo)
        d_f = c / gamma * (il - iu)
        d_lng = line * x / ((1.0 + x * x) * math.atan(x)) + c * (lo * il - up * iu)
        return np.stack([d_f, d_lng, line], axis=1) / (1.0 + other + line)[:, None]

    return fun, jac


def _fit_one_line(f, df, resid, total, line, res, gamma_lo, gamma_hi, tail_tol: float = 0.01) -> np.ndarray:
    """Least-squares refinement of one line; updates ``total`` (all lines' profile) in place.

    The fit uses every bin where the line's Lorentzian exceeds ``tail_tol`` of the broadband
    (and at least max(8 gamma, 20 resolution) around it), so tails the data do not show are
    penalised; if the solution's tails reach further, it is refitted on the wider window.
    """
    from scipy.optimize import least_squares

    f0, g, a = line
    ib = min(max(int(round((f0 - f[0]) / df)), 0), f.size - 1)
    peak = max(math.expm1(resid[ib]) - total[ib] + _bin_lorentzian(f[ib : ib + 1], df, f0, g, a)[0], 1e-3)
    lb = [f0 - res, math.log(gamma_lo), math.log(peak) - 4.0]
    ub = [f0 + res, math.log(gamma_hi), math.log(peak) + 1.5]
    x = np.clip([f0, math.log(g), math.log(peak)], np.nextafter(lb, np.inf), np.nextafter(ub, -np.inf))
    old = (f0, g, a)
    reach = max(8 * g, 20 * res, g * math.sqrt(a / tail_tol))
    for _ in range(3):
        lo, hi = max(int((f0 - reach - f[0]) / df), 0), min(int((f0 + reach - f[0]) / df) + 2, f.size)
        fw, rw = f[lo:hi], resid[lo:hi]
        other = np.clip(total[lo:hi] - _bin_lorentzian(fw, df, *old), 0.0, None)

        fun, jac = _line_residual(fw, rw, other, df)
        x = least_squares(fun, x, jac=jac, bounds=(lb, ub), max_nfev=40).x
        gamma = math.exp(x[1])
        new = (x[0], gamma, math.exp(x[2]) / _peak_height(gamma, 1.0, df))
        needed = max(8 * gamma, 20 * res, gamma * math.sqrt(new[2] / tail_tol))
        if needed <= reach * 1.01:
            break
        reach = needed
    # replace the old contribution by the new one wherever either is non-negligible
    span = max(reach, old[1] * math.sqrt(old[2] / 1e-5), new[1] * math.sqrt(new[2] / 1e-5))
    lo, hi = max(int((f0 - span - f[0]) / df), 0), min(int((f0 + span - f[0]) / df) + 2, f.size)
    total[lo:hi] += _bin_lorentzian(f[lo:hi], df, *new) - _bin_lorentzian(f[lo:hi], df, *old)
    return np.array(new)


def fit_psd(
    psd: np.ndarray,
    domain: FrequencyDomain,
    config: PsdModelConfig | None = None,
    welch_segments: int = 0,
    segment_duration: float = math.nan,
    source: str = "",
    gps: float = math.nan,
    grid: _Grid | None = None,
) -> PsdFit:
    """Fit the parametric model to one PSD [1/Hz] on ``domain``'s full grid.

    ``welch_segments`` / ``segment_duration``: how the PSD was estimated (K segments of that
    length [s]); 0 for smooth PSDs (published models, synthetic).
    """
    config = config or PsdModelConfig()
    grid = grid or _Grid(domain, node_frequencies(domain, config.num_nodes))
    band = np.asarray(psd, float)[domain.min_index :]
    if band.shape != grid.f.shape or not np.all(np.isfinite(band)) or np.any(band <= 0):
        raise DataError(f"{source or 'PSD'}: needs {grid.f.size} finite positive values in [f_min, f_max]")
    bias, floor, gauss_scatter = _welch_stats(int(welch_segments), float(segment_duration), _domain_key(domain))
    y = np.log(band) - bias
    res = max(domain.delta_f, 1.0 / segment_duration if welch_segments > 0 and np.isfinite(segment_duration) else 0.0)
    log_thr = math.log(_line_threshold(config, int(welch_segments), float(segment_duration), grid))
    # 1) robust broadband, 2) again without the bins near detected lines, 3) fit the lines on
    # that residual, 4) final broadband with the line profile divided out
    beta = _robust_lstsq(grid.basis, y)
    init = _find_lines(grid.f, y - grid.basis @ beta, log_thr, res, config.max_lines)
    keep = np.ones_like(y)
    for f0, gamma, _ in init:
        keep[np.abs(grid.f - f0) < max(3 * res, 4 * gamma)] = 0.0
    beta = _robust_lstsq(grid.basis, y, keep)
    resid = y - grid.basis @ beta
    lines = _fit_lines(grid.f, resid, _find_lines(grid.f, resid, log_thr, res, config.max_lines), res)
    if len(lines):  # keep lines whose bin-averaged peak stays significant after the refinement
        peak = np.array([_bin_lorentzian(np.array([l[0]]), domain.delta_f, *l)[0] for l in lines])
        lines = lines[peak >= 0.5 * (math.exp(log_thr) - 1)]
    profile = line_profile(grid.f, lines)
    beta = _robust_lstsq(grid.basis, y - np.log1p(profile))
    model = grid.basis @ beta + np.log1p(profile)
    deviation = float(np.median(np.abs(model - np.log(band))))
    ratio = _scatter(np.log(band) - model, segment_duration, domain) / gauss_scatter if welch_segments > 0 else math.nan
    return PsdFit(beta, lines, deviation, floor, ratio, source, gps, int(welch_segments), float(segment_duration))


def evaluate_fit(fit: PsdFit, domain: FrequencyDomain, node_f: np.ndarray) -> np.ndarray:
    """Model PSD [1/Hz] of ``fit`` on the full grid of ``domain`` (placeholder below f_min)."""
    grid = _Grid(domain, node_f)
    return grid.full(np.exp(grid.basis @ fit.nodes) * (1 + line_profile(grid.f, fit.lines)))[0]


# ----------------------------------------------------------------------- distribution


@dataclass
class LineCluster:
    """Lines at about the same frequency across inputs: ``presence`` probability and occurrences (f, gamma, A)."""

    frequency: float
    presence: float
    occurrences: np.ndarray


@dataclass
class DetectorModel:
    """Learned distribution of the model parameters of one detector."""

    detector: str
    node_frequencies: np.ndarray
    fits: list[PsdFit]
    mean: np.ndarray
    cov: np.ndarray
    clusters: list[LineCluster]
    shifted_to: list[str] = field(default_factory=list)
    #: Welch-noise scale of real estimates relative to Gaussian noise (median scatter ratio).
    noise_scale: float = 1.0
    #: The input ASDs [1/sqrt(Hz)] the fits were made from (for plots), shape (n, len(domain)).
    input_asds: np.ndarray | None = None


def _cluster_lines(fits: list[PsdFit], tol: float) -> list[LineCluster]:
    """Greedy clustering of all inputs' lines by frequency (tolerance ``tol`` Hz)."""
    rows = [(l[0], l[1], l[2], i) for i, fit in enumerate(fits) for l in fit.lines]
    rows.sort()
    groups: list[list] = []
    for row in rows:
        g = groups[-1] if groups else None
        if g is not None and row[0] - np.mean([r[0] for r in g]) <= tol and row[3] not in {r[3] for r in g}:
            g.append(row)
        else:
            groups.append([row])
    n = len(fits)
    return [
        LineCluster(float(np.mean([r[0] for r in g])), len(g) / n, np.array([r[:3] for r in g], float))
        for g in groups
    ]


def _line_tolerance(domain: FrequencyDomain, fits: list[PsdFit]) -> float:
    res = [1.0 / f.segment_duration for f in fits if f.welch_segments > 0 and np.isfinite(f.segment_duration)]
    return max([2 * domain.delta_f, *res])


def learn_detector_model(
    detector: str, fits: list[PsdFit], node_f: np.ndarray, domain: FrequencyDomain, config: PsdModelConfig
) -> DetectorModel:
    """Gaussian node distribution (shrunk covariance) and line clusters from ``fits``."""
    if len(fits) < 2:
        raise DataError(f"{detector}: need at least 2 fitted PSDs to learn a distribution, got {len(fits)}")
    nodes = np.stack([f.nodes for f in fits])
    n = nodes.shape[0]
    mean = nodes.mean(axis=0)
    sample = np.cov(nodes, rowvar=False, ddof=1)
    sd = np.sqrt(np.clip(np.diag(sample), 0, None))
    x = np.log(node_f)
    target = np.outer(sd, sd) * np.exp(-np.abs(x[:, None] - x[None, :]) / config.correlation_length)
    cov = ((1 - config.shrinkage) * sample + config.shrinkage * target) * (1 + 1 / n)
    ratios = [f.scatter_ratio for f in fits if np.isfinite(f.scatter_ratio)]
    noise_scale = float(np.median(ratios)) if ratios else 1.0
    return DetectorModel(
        detector, node_f, fits, mean, cov, _cluster_lines(fits, _line_tolerance(domain, fits)), noise_scale=noise_scale
    )


def shift_toward(model: DetectorModel, targets: list[PsdFit], domain: FrequencyDomain) -> DetectorModel:
    """Move the node mean to the mean of the targets' nodes; the targets' lines are always present."""
    if not targets:
        return model
    mean = np.mean([t.nodes for t in targets], axis=0)
    tol = _line_tolerance(domain, model.fits + targets)
    clusters = [replace(c) for c in model.clusters]
    for t_cluster in _cluster_lines(targets, tol):
        near = [c for c in clusters if abs(c.frequency - t_cluster.frequency) <= tol]
        for c in near:
            clusters.remove(c)
        clusters.append(LineCluster(t_cluster.frequency, 1.0, t_cluster.occurrences))
    clusters.sort(key=lambda c: c.frequency)
    return replace(model, mean=mean, clusters=clusters, shifted_to=[t.source for t in targets])


def sample_psds(
    model: DetectorModel,
    domain: FrequencyDomain,
    rng: np.random.Generator,
    n: int,
    welch_segments: int | None = None,
    segment_duration: float | None = None,
) -> np.ndarray:
    """``n`` synthetic PSDs [1/Hz] (n, len(domain)); with ``welch_segments`` K, as K-segment Welch estimates."""
    grid = _Grid(domain, model.node_frequencies)
    vals, vecs = np.linalg.eigh(model.cov)
    root = vecs * np.sqrt(np.clip(vals, 0, None))
    z = rng.standard_normal((n, model.mean.size))
    dof = len(model.fits) - 1
    if dof > 0:  # multivariate Student-t: predictive of a Gaussian whose mean and covariance are estimated
        z *= np.sqrt(dof / rng.chisquare(dof, size=(n, 1)))
    nodes = model.mean + z @ root.T
    log_psd = nodes @ grid.basis.T
    profile = np.zeros_like(log_psd)
    df = domain.delta_f
    for c in model.clusters:
        present = np.flatnonzero(rng.random(n) < c.presence)
        if present.size == 0:
            continue
        choice = rng.integers(0, len(c.occurrences), present.size)
        for j, occ in enumerate(c.occurrences):
            rows = present[choice == j]
            if rows.size == 0:
                continue
            reach = occ[1] * math.sqrt(max(occ[2] / 1e-5, 1.0)) + df
            lo = max(int((occ[0] - reach - grid.f[0]) / df), 0)
            hi = min(int((occ[0] + reach - grid.f[0]) / df) + 2, grid.f.size)
            if hi > lo:
                profile[rows, lo:hi] += _bin_lorentzian(grid.f[lo:hi], df, *occ)
    log_psd += np.log1p(profile)
    if welch_segments:
        seg = domain.duration if segment_duration is None else float(segment_duration)
        bias = _welch_stats(int(welch_segments), seg, _domain_key(domain))[0]
        noise = welch_log_noise(rng, int(welch_segments), seg, domain, n)
        log_psd += bias + model.noise_scale * (noise - bias)
    return grid.full(np.exp(log_psd))


# -------------------------------------------------------------------------- the model


@dataclass
class PsdModel:
    """Fitted parametric PSD model: per detector, the input fits and the learned distribution."""

    domain: FrequencyDomain
    detectors: dict[str, DetectorModel]
    settings: dict
    metadata: dict = field(default_factory=dict)

    def sample(self, rng, n: int, detector: str, welch_segments: int | None = None,
               segment_duration: float | None = None) -> np.ndarray:
        """``n`` synthetic PSDs [1/Hz] of ``detector`` on the full grid (see :func:`sample_psds`)."""
        if detector not in self.detectors:
            raise DataError(f"the PSD model has no {detector} (it has {', '.join(self.detectors)})")
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        return sample_psds(self.detectors[detector], self.domain, rng, n, welch_segments, segment_duration)

    def shifted(self, targets: dict[str, list[PsdFit]]) -> "PsdModel":
        """A model whose broadband distribution is centred on the targets' fits (per detector)."""
        dets = dict(self.detectors)
        for det, fits in targets.items():
            if det not in dets:
                raise DataError(f"target PSD for {det}, but the model has only {', '.join(self.detectors)}")
            dets[det] = shift_toward(dets[det], fits, self.domain)
        return PsdModel(self.domain, dets, self.settings, self.metadata)

    def fit_target(self, detector: str, psd: np.ndarray, source: str = "", welch_segments: int = 0,
                   segment_duration: float = math.nan) -> PsdFit:
        """Fit a target PSD with this model's nodes and settings."""
        if detector not in self.detectors:
            raise DataError(f"the PSD model has no {detector} (it has {', '.join(self.detectors)})")
        config = PsdModelConfig(**self.settings)
        grid = _Grid(self.domain, self.detectors[detector].node_frequencies)
        return fit_psd(psd, self.domain, config, welch_segments, segment_duration, source, grid=grid)


def fit_psd_model(dataset: ASDDataset, config: PsdModelConfig | None = None, progress: bool = True) -> PsdModel:
    """Fit every ASD of ``dataset`` and learn the per-detector distributions.

    Detectors with fewer than ``config.min_inputs`` ASDs are skipped with a warning (and
    listed in ``metadata['skipped']``); if none is left, DataError.
    """
    from tqdm import tqdm

    config = config or PsdModelConfig()
    domain = dataset.domain
    dets = config.detectors or dataset.detectors
    dataset.check_detectors(dets)
    node_f = node_frequencies(domain, config.num_nodes)
    grid = _Grid(domain, node_f)
    skipped = {d: dataset.num_asds(d) for d in dets if dataset.num_asds(d) < config.min_inputs}
    for d, k in skipped.items():
        log.warning("%s: only %d ASD(s), need >= %d to learn a distribution; skipped", d, k, config.min_inputs)
    dets = [d for d in dets if d not in skipped]
    if not dets:
        raise DataError(
            f"no detector has >= {config.min_inputs} ASDs to fit (have: "
            + ", ".join(f"{d}: {dataset.num_asds(d)}" for d in dataset.detectors) + ")"
        )
    total = sum(dataset.num_asds(d) for d in dets)
    models = {}
    with tqdm(total=total, desc="fitting PSDs", unit="PSD", disable=not progress) as bar:
        for det in dets:
            fits = []
            for i in range(dataset.num_asds(det)):
                fits.append(fit_psd(
                    dataset.psds(det)[i], domain, config, int(dataset.welch_segments[det][i]),
                    float(dataset.segment_durations[det][i]), dataset.sources[det][i],
                    float(dataset.gps_times[det][i]), grid,
                ))
                bar.update()
            models[det] = learn_detector_model(det, fits, node_f, domain, config)
            models[det].input_asds = dataset.asds[det]
    from dingo_gw.versions import package_versions

    metadata = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "skipped": skipped,
        "dataset_settings": dataset.settings,
    }
    return PsdModel(domain, models, config.model_dump(mode="json"), metadata)


# ------------------------------------------------------------------------------- file I/O


def save_psd_model(model: PsdModel, path: str | Path) -> Path:
    """Write the model (HDF5 kind "psd_model", atomic): settings, fits and learned distribution."""
    import h5py

    with atomic_write(path) as tmp:
        with h5_writer(tmp) as f:
            stamp(f, KIND)
            write_json_attr(f, "domain", model.domain.to_dict())
            write_json_attr(f, "settings", model.settings)
            write_json_attr(f, "metadata", model.metadata)
            for det, m in model.detectors.items():
                g = f.create_group(det)
                g["node_frequencies"] = m.node_frequencies
                g["nodes"] = np.stack([fit.nodes for fit in m.fits])
                g["lines"] = np.array(
                    [[i, *l] for i, fit in enumerate(m.fits) for l in fit.lines], float
                ).reshape(-1, 4)
                for key in ("deviation", "noise_floor", "scatter_ratio", "gps", "welch_segments", "segment_duration"):
                    g[key] = np.array([getattr(fit, key) for fit in m.fits])
                g["sources"] = np.array([fit.source for fit in m.fits], dtype=h5py.string_dtype())
                if m.input_asds is not None:
                    g["input_asds"] = m.input_asds
                d = g.create_group("distribution")
                d["mean"], d["cov"] = m.mean, m.cov
                d["cluster_frequency"] = np.array([c.frequency for c in m.clusters])
                d["cluster_presence"] = np.array([c.presence for c in m.clusters])
                d["occurrences"] = np.array(
                    [[j, *o] for j, c in enumerate(m.clusters) for o in c.occurrences], float
                ).reshape(-1, 4)
                write_json_attr(g, "shifted_to", m.shifted_to)
                g.attrs["noise_scale"] = m.noise_scale
    return Path(path)


def load_psd_model(path: str | Path) -> PsdModel:
    """Read a model written by :func:`save_psd_model`; FileFormatError if damaged."""
    path = Path(path)
    with open_h5(path, KIND) as f:
        try:
            domain, settings, metadata = read_header(f)
            dets = {}
            for det, g in detector_groups(f, path):
                nodes, lines = g["nodes"][()], g["lines"][()]
                sources = decode_strings(g["sources"][()])
                fits = [
                    PsdFit(
                        nodes[i], lines[lines[:, 0] == i, 1:], float(g["deviation"][i]),
                        float(g["noise_floor"][i]), float(g["scatter_ratio"][i]), sources[i], float(g["gps"][i]),
                        int(g["welch_segments"][i]), float(g["segment_duration"][i]),
                    )
                    for i in range(nodes.shape[0])
                ]
                d = g["distribution"]
                occ = d["occurrences"][()]
                clusters = [
                    LineCluster(float(fr), float(p), occ[occ[:, 0] == j, 1:])
                    for j, (fr, p) in enumerate(zip(d["cluster_frequency"][()], d["cluster_presence"][()]))
                ]
                dets[det] = DetectorModel(
                    det, g["node_frequencies"][()], fits, d["mean"][()], d["cov"][()], clusters,
                    read_json_attr(g, "shifted_to", []), float(g.attrs["noise_scale"]),
                    g["input_asds"][()] if "input_asds" in g else None,
                )
        except FileFormatError:
            raise
        except Exception as e:  # damaged file: h5py / json / shape errors
            raise FileFormatError(f"{path}: corrupt PSD model ({e.__class__.__name__})") from None
    if not dets:
        raise FileFormatError(f"{path}: the PSD model holds no detector")
    return PsdModel(domain, dets, settings, metadata)


def write_synthetic_asd_dataset(
    model: PsdModel,
    path: str | Path,
    num_samples: int,
    seed: int | None = None,
    welch_segments: int | None = None,
    segment_duration: float | None = None,
    chunk: int = 500,
    progress: bool = True,
    source: str = "psd_model",
) -> Path:
    """Draw ``num_samples`` ASDs per detector and write them as an ASD dataset (block-wise, atomic)."""
    from tqdm import tqdm

    if num_samples < 1:
        raise DataError(f"number of samples must be >= 1, got {num_samples}")
    rng = np.random.default_rng(seed)
    settings = {
        "synthetic": True, "model_settings": model.settings, "num_samples": int(num_samples), "seed": seed,
        "welch_segments": welch_segments, "segment_duration": segment_duration,
        "shifted_to": {d: m.shifted_to for d, m in model.detectors.items()},
    }
    metadata = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_metadata": model.metadata, "source": source,
    }
    with asd_dataset_writer(path, model.domain, settings, metadata) as w:
        with tqdm(total=num_samples * len(model.detectors), desc="synthetic ASDs", unit="ASD",
                  disable=not progress) as bar:
            for det in model.detectors:
                done = 0
                while done < num_samples:
                    k = min(chunk, num_samples - done)
                    psds = model.sample(rng, k, det, welch_segments, segment_duration)
                    w.add(
                        det, np.sqrt(psds), np.full(k, np.nan),
                        [f"synthetic:{source}:{det}:{done + i}" for i in range(k)],
                        np.full(k, welch_segments or 0),
                        np.full(k, segment_duration if segment_duration else np.nan),
                    )
                    done += k
                    bar.update(k)
    return Path(path)


# ------------------------------------------------------------------------------- plot


def plot_asd_bands(
    domain: FrequencyDomain,
    real: dict[str, np.ndarray],
    synthetic: dict[str, np.ndarray],
    path: str | Path,
    title: str = "",
    fits: dict[str, np.ndarray] | None = None,
) -> Path:
    """PNG overlaying real ASDs (lines) on synthetic percentile bands (5-95 %, 25-75 %, median).

    ``real`` / ``synthetic`` / ``fits``: det -> (N, len(domain)) ASDs [1/sqrt(Hz)].
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dets = [d for d in VALID_DETECTORS if d in real or d in synthetic]
    f = domain.frequencies[domain.min_index :]
    fig, axes = plt.subplots(len(dets), 1, figsize=(9, 3.6 * len(dets)), squeeze=False)
    for ax, det in zip(axes[:, 0], dets):
        if det in synthetic:
            s = synthetic[det][:, domain.min_index :]
            p5, p25, p50, p75, p95 = np.percentile(s, [5, 25, 50, 75, 95], axis=0)
            ax.fill_between(f, p5, p95, color="tab:blue", alpha=0.2, lw=0, label=f"synthetic 5-95 % ({len(s)})")
            ax.fill_between(f, p25, p75, color="tab:blue", alpha=0.35, lw=0, label="synthetic 25-75 %")
            ax.plot(f, p50, color="tab:blue", lw=0.8, label="synthetic median")
        if det in real:
            for i, a in enumerate(real[det]):
                ax.plot(f, a[domain.min_index :], color="k", lw=0.4, alpha=0.6, label="real" if i == 0 else None)
        if fits and det in fits:
            for i, a in enumerate(fits[det]):
                ax.plot(f, a[domain.min_index :], color="tab:red", lw=0.5, alpha=0.8, label="fit" if i == 0 else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(f[0], f[-1])
        ax.set_ylabel(f"{det} ASD [1/sqrt(Hz)]")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("frequency [Hz]")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
