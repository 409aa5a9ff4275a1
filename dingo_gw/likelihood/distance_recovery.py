"""Recover the luminosity distance for importance sampling, as bilby's distance marginalisation does.

Polarisations scale as 1/d_L, so with r = d_ref / d_L the waveform at any distance is r times the
waveform h_ref at the reference distance d_ref (the prior's minimum; r in [d_ref/d_max, 1]). With
κ = |Σ_I (d_I|h_I,ref)| and ρ² = Σ_I <h_I,ref, h_I,ref> from one waveform at (d_ref, φ = 0), the
likelihood marginalised over a uniform phase (:mod:`~dingo_gw.likelihood.phase_recovery`) is

    log L_φ(r) = log N - ρ² r² / 2 + log I0(κ r),

so the conditional posterior of the distance given the other parameters θ is known up to its
normalisation, p(r | θ) ∝ π_r(r) L_φ(r) with π_r(r) = π(d_ref / r) d_ref / r². :class:`DistanceRecovery`
draws r from a density q(r | θ) that interpolates log p(r | θ) linearly between ``num_nodes`` nodes
spread over the ±``width`` standard deviations around the likelihood peak r* = κ / ρ² (clipped to
the prior; all of it when the signal is weak). q is exactly normalised and sampled exactly (an
exponential in each cell), so importance weights π L / (q(θ) q(r | θ) q(φ | θ, r)) stay exact;
its deviation from p is second order in the cell width (≲ 0.01 in log density), so the weights
are those of a proposal of θ alone with the distance and phase marginalised — the proposal no
longer has to follow the distance–inclination degeneracy.

Distances are in Mpc; log densities are per Mpc.
"""

from __future__ import annotations

import numpy as np
from scipy.special import i0e, logsumexp

from dingo_gw.errors import ConfigError

#: Nodes of the interpolated conditional density per sample.
NUM_NODES = 129
#: Half-width of the node window in likelihood standard deviations 1/ρ.
WINDOW_WIDTH = 10.0
#: Interpolated log densities are floored at (row maximum - LOG_FLOOR), so cells stay finite.
LOG_FLOOR = 700.0
DISTANCE_KEY = "luminosity_distance"


class DistanceRecovery:
    """Draws d_L (Mpc) from the interpolated conditional posterior given reference overlaps.

    ``prior``: the bilby prior of ``luminosity_distance`` (finite minimum > 0 and maximum).
    """

    def __init__(self, prior, num_nodes: int = NUM_NODES, width: float = WINDOW_WIDTH):
        if not _positive_finite_range(prior):
            raise ConfigError("distance recovery: the luminosity_distance prior needs a finite range with minimum > 0")
        lo, hi = float(prior.minimum), float(prior.maximum)
        self.prior, self.num_nodes, self.width = prior, int(num_nodes), float(width)
        self.d_ref = lo
        # r strictly inside the prior's closed interval, where its density is positive
        self.r_min, self.r_max = (lo / hi) * (1 + 1e-12), 1.0 - 1e-12

    def _log_prior_r(self, r: np.ndarray) -> np.ndarray:
        d = self.d_ref / r
        with np.errstate(divide="ignore"):
            return np.asarray(self.prior.ln_prob(d), dtype=float).reshape(r.shape) + np.log(self.d_ref) - 2 * np.log(r)

    def nodes(self, kappa: np.ndarray, rho2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nodes r (n, K) and log π_r(r) + log L_φ(r) - log N there (floored)."""
        kappa, rho2 = np.asarray(kappa, dtype=float), np.asarray(rho2, dtype=float)
        strong = rho2 > 0
        safe = np.where(strong, rho2, 1.0)
        peak, sigma = kappa / safe, 1.0 / np.sqrt(safe)
        lo = np.where(strong, np.clip(peak - self.width * sigma, self.r_min, self.r_max), self.r_min)
        hi = np.where(strong, np.clip(peak + self.width * sigma, self.r_min, self.r_max), self.r_max)
        # a peak far outside the prior: the window next to the nearer bound
        empty = ~(hi > lo)
        below = empty & (peak < self.r_min)
        above = empty & ~below
        lo, hi = np.where(below, self.r_min, lo), np.where(below, np.minimum(self.r_min + 2 * self.width * sigma,
                                                                             self.r_max), hi)
        lo, hi = np.where(above, np.maximum(self.r_max - 2 * self.width * sigma, self.r_min), lo), np.where(
            above, self.r_max, hi)
        t = np.linspace(0.0, 1.0, self.num_nodes)
        r = lo[:, None] + (hi - lo)[:, None] * t[None, :]
        x = kappa[:, None] * r
        log_g = self._log_prior_r(r) - 0.5 * rho2[:, None] * r**2 + np.log(i0e(x)) + x
        log_g = np.where(np.isfinite(log_g), log_g, -np.inf)
        return r, np.maximum(log_g, log_g.max(axis=1, keepdims=True) - LOG_FLOOR)

    def _cells(self, kappa, rho2):
        r, log_g = self.nodes(kappa, rho2)
        step = r[:, 1:] - r[:, :-1]
        rise = log_g[:, 1:] - log_g[:, :-1]  # change of the log density across each cell
        log_mass = log_g[:, :-1] + np.log(step) + _log_expm1_ratio(rise)
        return r, log_g, step, rise, log_mass, logsumexp(log_mass, axis=1)

    def log_marginal(self, kappa: np.ndarray, rho2: np.ndarray) -> np.ndarray:
        """log ∫ π_r(r) L_φ(r) dr - log N (the interpolated integral; for checks)."""
        return self._cells(kappa, rho2)[-1]

    def draw(self, kappa: np.ndarray, rho2: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One draw per sample: (d_L in Mpc, log q(d_L | θ) per Mpc)."""
        r_nodes, log_g, step, rise, log_mass, log_z = self._cells(kappa, rho2)
        n = len(r_nodes)
        cdf = np.cumsum(np.exp(log_mass - log_z[:, None]), axis=1)
        cell = np.minimum(np.sum(cdf < rng.random(n)[:, None] * cdf[:, -1:], axis=1), cdf.shape[1] - 1)
        rows = np.arange(n)
        x, v = rise[rows, cell], rng.random(n)
        frac = _exponential_quantile(x, v)
        r = r_nodes[rows, cell] + frac * step[rows, cell]
        log_q_r = log_g[rows, cell] + x * frac - log_z
        d = self.d_ref / r
        return d, log_q_r + np.log(self.d_ref) - 2 * np.log(d)


def _log_expm1_ratio(x: np.ndarray) -> np.ndarray:
    """log((e^x - 1) / x), stable for all x (x/2 near 0)."""
    ax = np.abs(x)
    small = ax < 1e-8
    safe = np.where(small, 1.0, ax)
    # (e^x - 1)/x = e^{max(x,0)} (1 - e^{-|x|}) / |x|
    value = np.maximum(x, 0.0) + np.log(-np.expm1(-safe)) - np.log(safe)
    return np.where(small, 0.5 * x, value)


def _exponential_quantile(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Quantile v of the density ∝ e^{x t} on t in [0, 1]."""
    small = np.abs(x) < 1e-8
    safe = np.where(small, 1.0, x)
    pos = safe > 0
    # x > 0: 1 + log(v + (1 - v) e^{-x}) / x;  x < 0: log(1 - v + v e^{x}) / x
    with np.errstate(over="ignore"):
        t_pos = 1.0 + np.log(v + (1 - v) * np.exp(-np.where(pos, safe, 0.0))) / safe
        t_neg = np.log1p(v * np.expm1(np.where(pos, 0.0, safe))) / safe
    t = np.where(small, v, np.where(pos, t_pos, t_neg))
    return np.clip(t, 0.0, 1.0)


def _positive_finite_range(p) -> bool:
    lo, hi = getattr(p, "minimum", None), getattr(p, "maximum", None)
    return lo is not None and hi is not None and 0 < lo < hi < np.inf


def distance_recoverable(prior) -> bool:
    """True when ``prior`` (bilby PriorDict) samples the distance on a finite range with minimum > 0."""
    import bilby

    p = prior.get(DISTANCE_KEY) if hasattr(prior, "get") else None
    return not isinstance(p, (type(None), bilby.core.prior.DeltaFunction, bilby.core.prior.Constraint)) and (
        _positive_finite_range(p))


def with_reference_distance(params: dict, recovery: DistanceRecovery | None) -> dict:
    """``params`` (dict of arrays) with luminosity_distance = d_ref when it is to be recovered."""
    if recovery is None:
        return params
    n = len(next(iter(params.values())))
    return dict(params, **{DISTANCE_KEY: np.full(n, recovery.d_ref)})
