"""Jensen-Shannon divergence between two one-dimensional posteriors given as samples, and the value
sampling noise alone gives it.

Used to compare a dingo_gw posterior (importance-weighted samples) with another sampler's
(equal-weight samples, e.g. bilby + dynesty). Both are binned on common bins spanning the
0.5-99.5 % quantiles of the two; the divergence is in bits (log base 2: 0 identical, 1 disjoint).

Noise level. Two histograms p̂, q̂ estimated from finite samples of the *same* distribution have a
JS divergence > 0. To second order in the bin errors, JS ≈ Σ_i (p̂_i − q̂_i)² / (8 m_i) nats with
m = (p̂ + q̂) / 2, so its expectation is

    E[JS] ≈ Σ_i (Var p̂_i + Var q̂_i) / (8 ln 2 · m_i)  bits,

with Var q̂_i = q_i (1 − q_i) / n for n equal-weight samples and, for weighted samples with
normalised weights w̃_j (i.i.d. proposal draws; delta method), Var p̂_i = Σ_j w̃_j² (1[j ∈ i] − p_i)².
For equal sample sizes n and K bins this is ≈ (K − 1) / (4 ln 2 · n): twice the cruder
K / (8 ln 2 · n) quoted in some comparisons. :func:`js_noise_bits` evaluates it per parameter.
"""

from __future__ import annotations

import math

import numpy as np


def _wquantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][min(np.searchsorted(cw, q * cw[-1]), len(x) - 1)])


def _clean(x, wx, y):
    x, wx, y = np.asarray(x, float), np.asarray(wx, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(wx) & (wx > 0)
    return x[ok], wx[ok], y[np.isfinite(y)]


def _edges(x, wx, y, bins: int) -> np.ndarray | None:
    lo = min(np.quantile(y, 0.005), _wquantile(x, wx, 0.005))
    hi = max(np.quantile(y, 0.995), _wquantile(x, wx, 0.995))
    return np.linspace(lo, hi, bins + 1) if hi > lo else None


def common_edges(x, wx, y, bins: int) -> np.ndarray | None:
    """``bins + 1`` edges spanning the 0.5-99.5 % quantiles of both sample sets; None when both
    sit (nearly) at one value."""
    return _edges(*_clean(x, wx, y), bins)


def _binned(x, wx, y, bins: int):
    """Cleaned samples, common edges (None: both at one value) and both normalised histograms."""
    x, wx, y = _clean(x, wx, y)
    edges = _edges(x, wx, y, bins)
    if edges is None:
        return x, wx, y, None, None, None
    lo, hi = edges[0], edges[-1]
    p, _ = np.histogram(np.clip(x, lo, hi), edges, weights=wx)
    q, _ = np.histogram(np.clip(y, lo, hi), edges)
    return x, wx, y, edges, p / p.sum(), q / q.sum()


def js_divergence_bits(x, wx, y, bins: int = 40) -> float:
    """JS divergence [bits] of the weighted samples (x, wx) and the equal-weight samples y."""
    from scipy.spatial.distance import jensenshannon

    *_, edges, p, q = _binned(x, wx, y, bins)
    return 0.0 if edges is None else float(jensenshannon(p, q, base=2) ** 2)


def js_noise_bits(x, wx, y, bins: int = 40) -> float:
    """Expected JS divergence [bits] from sampling noise alone, for samples like (x, wx) and y on
    the bins :func:`js_divergence_bits` uses (module docstring: second-order expansion, delta
    method for the weighted set)."""
    x, wx, y, edges, p, q = _binned(x, wx, y, bins)
    if edges is None:
        return 0.0
    w = wx / wx.sum()
    idx = np.clip(np.searchsorted(edges, np.clip(x, edges[0], edges[-1]), side="right") - 1, 0, bins - 1)
    # Σ_j w_j² (1[j∈i] − p_i)² = Σ_{j∈i} w_j² (1 − 2 p_i) + p_i² Σ_j w_j²
    w2_in = np.bincount(idx, weights=w**2, minlength=bins)
    var_p = w2_in * (1 - 2 * p) + p**2 * np.sum(w**2)
    var_q = q * (1 - q) / len(y)
    m = (p + q) / 2
    keep = m > 0
    return float(np.sum((var_p + var_q)[keep] / m[keep]) / (8 * math.log(2)))
