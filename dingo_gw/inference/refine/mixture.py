"""Gaussian mixtures with full covariances, fitted by (weighted) expectation-maximisation.

Used as the density q(t̂) of GNPE proxies (:mod:`dingo_gw.inference.sampling.gnpe_sampler`) and as the
adaptive proposals of :mod:`dingo_gw.inference.refine.refine`. Pure numpy, float64. Densities are in
the units of the data they were fitted to.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, logsumexp

from dingo_gw.errors import DataError


class GaussianMixture:
    """Σ_k w_k N(x; μ_k, Σ_k) in D dimensions, stored on standardised data z = (x - shift) / scale.

    :meth:`fit` chooses the number of components by the Bayesian information criterion;
    :meth:`widened` adds broader copies of the components (a defensive mixture for importance
    sampling).
    """

    def __init__(self, weights, means, covariances, shift, scale, dof: float | None = None):
        self.dof = None if dof is None else float(dof)
        self.weights = np.asarray(weights, dtype=float)
        self.weights = self.weights / self.weights.sum()
        self.means = np.asarray(means, dtype=float)  # (K, D), standardised units
        self.covariances = np.asarray(covariances, dtype=float)  # (K, D, D)
        self.shift = np.asarray(shift, dtype=float)
        self.scale = np.asarray(scale, dtype=float)
        self._chol = np.linalg.cholesky(self.covariances)

    @property
    def num_components(self) -> int:
        return len(self.weights)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    # -- densities ------------------------------------------------------------------------
    @staticmethod
    def _component_log_pdf(z, means, chol, dof: float | None = None):
        """Per-component log-density (N, K) at standardised z (N, D): Gaussian N(μ_k, Σ_k), or with
        ``dof`` the multivariate Student t with ν = dof and scale matrix Σ_k."""
        inv = np.linalg.inv(chol)
        dim = z.shape[1]
        out = np.empty((len(z), len(means)))
        for k in range(len(means)):
            m = np.sum(((z - means[k]) @ inv[k].T) ** 2, axis=-1)  # |L_k^-1 (z - μ_k)|²
            out[:, k] = -np.sum(np.log(np.diag(chol[k]))) + (
                -0.5 * m if dof is None else -0.5 * (dof + dim) * np.log1p(m / dof))
        if dof is None:
            return out - 0.5 * dim * math.log(2 * math.pi)
        return out + gammaln(0.5 * (dof + dim)) - gammaln(0.5 * dof) - 0.5 * dim * math.log(dof * math.pi)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log q(x) (N,) for x (N, D) in the data's units."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        z = (x - self.shift) / self.scale
        comp = self._component_log_pdf(z, self.means, self._chol, self.dof)
        return logsumexp(comp + np.log(self.weights), axis=1) - np.sum(np.log(self.scale))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws (n, D) in the data's units."""
        k = rng.choice(self.num_components, size=n, p=self.weights)
        eps = rng.standard_normal((n, self.dim))
        if self.dof is not None:
            eps *= np.sqrt(self.dof / rng.chisquare(self.dof, size=n))[:, None]
        z = self.means[k] + np.einsum("nij,nj->ni", self._chol[k], eps)
        return self.shift + self.scale * z

    def student_t(self, dof: float) -> "GaussianMixture":
        """The same mixture with multivariate Student-t components (ν = ``dof``, scale matrices = the
        covariances): heavier tails, for importance-sampling proposals."""
        if not dof > 0:
            raise DataError(f"Student t mixture: dof must be > 0, got {dof}")
        return GaussianMixture(self.weights, self.means, self.covariances, self.shift, self.scale, dof)

    def widened(self, fraction: float, factor: float) -> "GaussianMixture":
        """(1 - fraction) · self + fraction · self with every covariance times factor²."""
        if not (0.0 <= fraction < 1.0 and factor > 0):
            raise DataError(f"widened mixture: need 0 <= fraction < 1 and factor > 0, got {fraction}, {factor}")
        if fraction == 0.0:
            return self
        return GaussianMixture(
            np.concatenate([(1 - fraction) * self.weights, fraction * self.weights]),
            np.concatenate([self.means, self.means]),
            np.concatenate([self.covariances, factor**2 * self.covariances]),
            self.shift, self.scale, self.dof,
        )

    def to_dict(self) -> dict:
        return {
            "kind": "gaussian_mixture", "weights": self.weights.tolist(), "means": self.means.tolist(),
            "covariances": self.covariances.tolist(), "shift": self.shift.tolist(), "scale": self.scale.tolist(),
            "dof": self.dof,
        }

    # -- fitting --------------------------------------------------------------------------
    @classmethod
    def fit(cls, x: np.ndarray, rng: np.random.Generator, max_components: int = 8, max_iter: int = 200,
            tol: float = 1e-5, reg: float = 1e-6, sample_weights: np.ndarray | None = None) -> "GaussianMixture":
        """Fit by EM for K = 1, 2, ... components (k-means++ starts; until max_components or the BIC
        rose twice in a row) and keep the one with the lowest BIC. EM stops when the mean
        log-likelihood per sample improves by less than ``tol``. ``reg`` (in units of the data's
        variance) is added to every covariance. ``sample_weights`` (N,) >= 0: a weighted fit (the
        effective sample size (Σw)²/Σw² replaces N in the BIC and the sample-size checks)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        n, dim = x.shape
        w = np.ones(n) if sample_weights is None else np.asarray(sample_weights, dtype=float).reshape(-1)
        if len(w) != n or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise DataError("Gaussian mixture: sample weights must be finite, >= 0 and not all zero")
        keep = w > 0
        x, w = x[keep], w[keep] / w[keep].mean()
        n = len(x)
        n_eff = w.sum() ** 2 / np.sum(w**2)
        if n_eff < 2 * (dim + 1) or not np.all(np.isfinite(x)):
            raise DataError(f"Gaussian mixture: need >= {2 * (dim + 1)} finite (effective) samples, got {n_eff:.1f}")
        shift = np.average(x, axis=0, weights=w)
        scale = np.sqrt(np.average((x - shift) ** 2, axis=0, weights=w))
        scale = np.where(scale > 0, scale, 1.0)
        z = (x - shift) / scale
        best, best_bic, worse = None, np.inf, 0
        for k in range(1, max_components + 1):
            if (k > 1 and n_eff < 10 * k * (dim + 1)) or worse >= 2:
                break
            fitted = cls._em(z, w, k, rng, max_iter, tol, reg)
            if fitted is None:
                continue
            weights, means, covs, loglik = fitted
            n_par = (k - 1) + k * dim + k * dim * (dim + 1) / 2
            bic = -2.0 * loglik * (n_eff / n) + n_par * math.log(n_eff)
            if bic < best_bic:
                best, best_bic, worse = (weights, means, covs), bic, 0
            else:
                worse += 1
        if best is None:
            raise DataError("Gaussian mixture: the fit failed (degenerate samples)")
        weights, means, covs = best
        return cls(weights, means, covs, shift, scale)

    @classmethod
    def _em(cls, z, w, k, rng, max_iter, tol, reg):
        n, dim = z.shape
        means = _kmeans_plus_plus(z, w, k, rng)
        for _ in range(10):  # a few weighted Lloyd iterations
            labels = np.argmin(((z[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
            means = np.stack([np.average(z[labels == j], axis=0, weights=w[labels == j])
                              if np.any(labels == j) else means[j] for j in range(k)])
        resp = np.zeros((n, k))
        resp[np.arange(n), labels] = 1.0
        previous = -np.inf
        eye = np.eye(dim)
        for _ in range(max_iter):
            r = resp * w[:, None]
            nk = r.sum(0)
            if np.any(nk < dim + 1):
                return None
            weights = nk / nk.sum()
            means = (r.T @ z) / nk[:, None]
            covs = np.empty((k, dim, dim))
            for j in range(k):
                d = z - means[j]
                covs[j] = (r[:, j, None] * d).T @ d / nk[j] + reg * eye
            try:
                chol = np.linalg.cholesky(covs)
            except np.linalg.LinAlgError:
                return None
            comp = cls._component_log_pdf(z, means, chol) + np.log(weights)
            norm = logsumexp(comp, axis=1)
            resp = np.exp(comp - norm[:, None])
            loglik = float(np.dot(w, norm))
            if loglik - previous < tol * n:
                break
            previous = loglik
        return weights, means, covs, loglik


def _kmeans_plus_plus(z: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    p0 = w / w.sum()
    centers = [z[rng.choice(len(z), p=p0)]]
    for _ in range(1, k):
        d2 = w * np.min(((z[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        p = d2 / d2.sum() if d2.sum() > 0 else p0
        centers.append(z[rng.choice(len(z), p=p)])
    return np.asarray(centers)


class DensitySum:
    """Σ_j a_j q_j(x) of densities with ``log_prob`` and ``sample`` (same space)."""

    def __init__(self, weights, densities):
        self.weights = np.asarray(weights, dtype=float) / np.sum(weights)
        self.densities = list(densities)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        return logsumexp(np.stack([np.log(a) + d.log_prob(x) for a, d in zip(self.weights, self.densities)]), axis=0)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        which = rng.choice(len(self.densities), size=n, p=self.weights)
        out = np.empty((n, self.densities[0].dim))
        for j, d in enumerate(self.densities):
            m = which == j
            if m.any():
                out[m] = d.sample(int(m.sum()), rng)
        return out

    @property
    def dim(self) -> int:
        return self.densities[0].dim

    def to_dict(self) -> dict:
        return {"kind": "sum", "weights": self.weights.tolist(), "densities": [d.to_dict() for d in self.densities]}


class KernelMixture:
    """Σ_k w_k N(x; c_k, h² Σ): Gaussian kernels of one shared covariance h² Σ at centres c_k (K, D).

    Used by :mod:`dingo_gw.inference.refine.refine` to put proposal mass where a fitted density falls short
    of the target at its own particles. ``prune``: keep the fewest centres carrying this fraction of
    the weight, and at most ``max_kernels`` of them (the density stays normalised: the kept weights
    are renormalised). ``info``: a record
    returned by :meth:`to_dict`. Densities are in the units of the centres.
    """

    def __init__(self, centres, weights, covariance, bandwidth: float, prune: float = 0.999,
                 max_kernels: int | None = None, info: dict | None = None):
        c = np.atleast_2d(np.asarray(centres, dtype=float))
        w = np.asarray(weights, dtype=float).reshape(-1)
        if len(w) != len(c) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise DataError("kernel mixture: weights must be finite, >= 0 and not all zero")
        if not bandwidth > 0:
            raise DataError(f"kernel mixture: bandwidth must be > 0, got {bandwidth}")
        order = np.argsort(-w)
        keep = order[:int(np.searchsorted(np.cumsum(w[order]) / w.sum(), prune) + 1)][:max_kernels]
        self.centres, self.weights = c[keep], w[keep] / w[keep].sum()
        self.bandwidth = float(bandwidth)
        self._chol = np.linalg.cholesky(np.asarray(covariance, dtype=float)) * self.bandwidth
        self._inv = np.linalg.inv(self._chol)
        self._origin = self.weights @ self.centres  # whitened coordinates are centred here (fewer round-off digits)
        self._p = (self.centres - self._origin) @ self._inv.T
        self._bias = np.log(self.weights) - 0.5 * np.sum(self._p**2, axis=1)
        self._norm = -0.5 * self.dim * math.log(2 * math.pi) - np.sum(np.log(np.diag(self._chol)))
        self.info = dict(info or {})

    @property
    def dim(self) -> int:
        return self.centres.shape[1]

    @property
    def num_kernels(self) -> int:
        return len(self.weights)

    def log_prob(self, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """log q(x) (N,) for x (N, D): -|y|²/2 + log Σ_k exp(log w_k - |p_k|²/2 + y·p_k) in whitened units."""
        y = (np.atleast_2d(np.asarray(x, dtype=float)) - self._origin) @ self._inv.T
        out = np.empty(len(y))
        for a in range(0, len(y), chunk):
            yb = y[a:a + chunk]
            # log-sum-exp in place: one (chunk, K) buffer instead of scipy's temporaries (~3x faster here)
            s = yb @ self._p.T
            s += self._bias
            m = s.max(axis=1)
            s -= m[:, None]
            np.exp(s, out=s)
            out[a:a + chunk] = np.log(s.sum(axis=1)) + m - 0.5 * np.sum(yb**2, axis=1)
        return out + self._norm

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.choice(self.num_kernels, size=n, p=self.weights)
        return self.centres[k] + rng.standard_normal((n, self.dim)) @ self._chol.T

    def to_dict(self) -> dict:
        return dict(self.info, kind="kernel_mixture", num_kernels=self.num_kernels, bandwidth=self.bandwidth)
