"""SVD compression of frequency-domain waveforms and its noise-weighted mismatch.

A basis ``V`` (n_freq, n) of (optionally) whitened waveforms: with whitening weights
w(f) = 1 / (ASD(f) * domain.noise_std) on [f_min, f_max] (w = 1 without whitening), a waveform
h (row vector) has coefficients c = (w h) V* and is reconstructed as h = (c V^T) / w. Rows of V
outside [f_min, f_max] are zero. V is fitted by a randomized SVD (Halko, Martinsson & Tropp 2011)
that streams the training set in blocks, so memory is O((n_train + n_freq) * n), not the
training matrix.

The mismatch of an approximation h' of h is 1 - <h, h'> / (|h| |h'|) with the noise-weighted
inner product <a, b> = 4 delta_f Re sum_f a* b / S_n(f) over [f_min, f_max].
"""

from __future__ import annotations

from typing import Callable, Iterable

import h5py
import numpy as np

from dingo_gw.design_curves import design_asd
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, FileFormatError

#: Design ASD that weights mismatches when the basis is not whitened.
DEFAULT_MISMATCH_ASD = "aLIGOZeroDetHighPower"

#: Percentiles of the mismatch distribution stored in bank metadata.
MISMATCH_PERCENTILES = (50, 90, 99)


class SVDBasis:
    """Reduced basis ``V`` (n_freq, n) complex128 of waveforms whitened by the design ASD ``whiten``."""

    def __init__(self, V: np.ndarray, domain: FrequencyDomain, whiten: str | None = None,
                 singular_values: np.ndarray | None = None):
        V = np.asarray(V, dtype=np.complex128)
        if V.ndim != 2 or V.shape[0] != len(domain):
            raise ValueError(f"SVD basis must have shape ({len(domain)}, n), got {V.shape}")
        self.V = V
        self.domain = domain
        self.whiten = whiten
        self.singular_values = None if singular_values is None else np.asarray(singular_values, dtype=float)
        self.weights = whitening_weights(domain, whiten)

    @property
    def size(self) -> int:
        """Number n of basis vectors."""
        return self.V.shape[1]

    def compress(self, h: np.ndarray) -> np.ndarray:
        """Coefficients (..., n) complex128 of waveforms h (..., n_freq)."""
        return (np.asarray(h) * self.weights) @ self.V

    def decompress(self, c: np.ndarray) -> np.ndarray:
        """Waveforms (..., n_freq) complex128 from coefficients c (..., n); zero outside the band."""
        a = np.asarray(c) @ self.V.conj().T
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.weights > 0, a / np.where(self.weights > 0, self.weights, 1.0), 0.0)

    def write(self, group: h5py.Group) -> None:
        group.create_dataset("V", data=self.V)
        if self.singular_values is not None:
            group.create_dataset("singular_values", data=self.singular_values)
        group.attrs["whiten"] = self.whiten or ""

    @classmethod
    def read(cls, group: h5py.Group, domain: FrequencyDomain) -> "SVDBasis":
        try:
            V = group["V"][()]
            sv = group["singular_values"][()] if "singular_values" in group else None
            whiten = group.attrs.get("whiten", "")
        except (KeyError, OSError) as e:
            raise FileFormatError(f"{group.file.filename}: SVD basis is missing or unreadable ({e})") from None
        if isinstance(whiten, bytes):
            whiten = whiten.decode()
        try:
            return cls(V, domain, whiten or None, sv)
        except ValueError as e:
            raise FileFormatError(f"{group.file.filename}: {e}") from None


def whitening_weights(domain: FrequencyDomain, whiten: str | None) -> np.ndarray:
    """w(f) = 1 / (ASD(f) * noise_std) on [f_min, f_max] (1 if ``whiten`` is None), 0 elsewhere."""
    band = domain.mask & (domain.frequencies <= domain.f_max)
    w = np.zeros(len(domain))
    if whiten is None:
        w[band] = 1.0
    else:
        w[band] = 1.0 / (design_asd(whiten, domain.frequencies[band]) * domain.noise_std)
    return w


def fit_svd(
    blocks: Callable[[], Iterable[np.ndarray]],
    domain: FrequencyDomain,
    size: int,
    whiten: str | None = None,
    power_iterations: int = 3,
    oversampling: int | None = None,
    seed: int = 0,
) -> SVDBasis:
    """Fit an SVD basis of ``size`` vectors to training waveforms.

    ``blocks()`` yields the training waveforms (k, n_freq) in blocks, the same rows in the same
    order on every call (it is called 2 + 2 * power_iterations times). Randomized SVD with
    ``size + oversampling`` probe vectors and power iterations; deterministic for a given seed.
    """
    weights = whitening_weights(domain, whiten)
    band = weights > 0
    n_band = int(band.sum())

    def whitened():
        for block in blocks():
            yield np.asarray(block, dtype=np.complex128)[:, band] * weights[band]

    if size > n_band:
        raise ConfigError(f"SVD size {size} exceeds the number of frequency bins in [f_min, f_max] ({n_band})")
    probes = min(n_band, size + (oversampling if oversampling is not None else max(30, size // 2)))
    rng = np.random.default_rng(seed)
    omega = rng.standard_normal((n_band, probes)) + 1j * rng.standard_normal((n_band, probes))

    def times(matrix):  # A @ matrix, (num_rows, probes)
        return np.concatenate([a @ matrix for a in whitened()], axis=0)

    def adjoint_times(q):  # A^H @ q, (n_band, probes)
        out = np.zeros((n_band, q.shape[1]), dtype=np.complex128)
        start = 0
        for a in whitened():
            out += a.conj().T @ q[start:start + len(a)]
            start += len(a)
        return out

    y = times(omega)
    if size > len(y):
        raise ConfigError(f"SVD size {size} exceeds the number of training vectors ({len(y)})")
    q, _ = np.linalg.qr(y)
    for _ in range(power_iterations):
        z, _ = np.linalg.qr(adjoint_times(q))
        q, _ = np.linalg.qr(times(z))
    # B = Q^H A = W S V^H has A's right singular vectors V: the left ones of B^H = A^H Q.
    u, s, _ = np.linalg.svd(adjoint_times(q), full_matrices=False)
    V = np.zeros((len(domain), size), dtype=np.complex128)
    V[band] = u[:, :size]
    return SVDBasis(V, domain, whiten, s[:size])


def mismatch(h: np.ndarray, h_approx: np.ndarray, domain: FrequencyDomain, asd_name: str = DEFAULT_MISMATCH_ASD) -> np.ndarray:
    """1 - <h, h'> / (|h| |h'|) per row, noise-weighted with design ASD ``asd_name`` on [f_min, f_max]."""
    w = whitening_weights(domain, asd_name)
    band = w > 0
    a = np.asarray(h, dtype=np.complex128)[..., band] * w[band]
    b = np.asarray(h_approx, dtype=np.complex128)[..., band] * w[band]
    inner = np.sum(a.conj() * b, axis=-1).real
    norms = np.sqrt(np.sum(np.abs(a) ** 2, axis=-1) * np.sum(np.abs(b) ** 2, axis=-1))
    return 1.0 - inner / norms


def mismatch_summary(values: np.ndarray) -> dict:
    """Percentiles (50, 90, 99), max and mean of mismatches, and how many there are."""
    values = np.asarray(values, dtype=float).ravel()
    out = {f"p{p}": float(np.percentile(values, p)) for p in MISMATCH_PERCENTILES}
    out.update(max=float(values.max()), mean=float(values.mean()), num=int(values.size))
    return out
