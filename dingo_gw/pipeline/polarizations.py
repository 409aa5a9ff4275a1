"""Bank polarisations held on the training device, restricted to the analysis band.

Either the full complex arrays h+/h× or SVD coefficients with a basis V, decompressed per
batch as h ≈ (c @ V^H) / w (coefficients c = (w h) @ V, V of shape (n_freq, n_basis) with
orthonormal columns, optional whitening weights w(f) > 0 on the band, as in
:mod:`dingo_gw.waveforms.svd`; w = 1 when the basis is of unwhitened waveforms). 1/w is folded
into the basis once. Waveforms are strain at the bank's reference distance and zero time shift.
"""

from __future__ import annotations

import numpy as np
import torch

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError, DomainMismatchError


def _as_tensor(x, dtype, device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(x), device=device).to(dtype)


def _check_finite(x: torch.Tensor, what: str):
    if not torch.isfinite(torch.view_as_real(x) if x.is_complex() else x).all():
        raise DataError(f"{what} contains NaN or infinite values")


class PolarizationSource:
    """Indexable h+/h× on the band f >= f_min: ``get(idx)`` -> ((B, n_band), (B, n_band))."""

    def __init__(self, domain: FrequencyDomain, *, h=None, coefficients=None, basis_h=None):
        """Use the constructors :meth:`from_arrays` / :meth:`from_svd`."""
        self.domain = domain
        self.mode = "arrays" if coefficients is None else "svd"
        self._h = h  # (N, 2, n_band) complex: [h+, h×]
        self._coefficients = coefficients  # (N, 2, n_basis) complex
        self._basis_h = basis_h  # (n_basis, n_band) complex: V^H on the band

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, h_plus, h_cross, domain: FrequencyDomain, device="cpu", dtype=torch.complex64):
        """From (N, n_freq) complex arrays on the full grid 0..f_max (or already on the band)."""
        hp, hc = (_as_tensor(a, dtype, device) for a in (h_plus, h_cross))
        if hp.shape != hc.shape or hp.ndim != 2:
            raise DataError(f"h_plus {tuple(hp.shape)} and h_cross {tuple(hc.shape)} must both be (N, n_freq)")
        hp, hc = _band(hp, domain, "h_plus"), _band(hc, domain, "h_cross")
        _check_finite(hp, "h_plus")
        _check_finite(hc, "h_cross")
        return cls(domain, h=torch.stack([hp, hc], dim=1).contiguous())

    @classmethod
    def from_svd(cls, coefficients_plus, coefficients_cross, basis, domain: FrequencyDomain, device="cpu",
                 dtype=torch.complex64, weights=None):
        """From SVD coefficients (N, n_basis) of h+ and h×, the basis V (n_freq, n_basis) and the
        whitening weights w (n_freq,) used for compression (None: w = 1)."""
        cp, cc = (_as_tensor(a, dtype, device) for a in (coefficients_plus, coefficients_cross))
        V = _as_tensor(basis, dtype, device)
        if V.ndim != 2:
            raise DataError(f"SVD basis must be (n_freq, n_basis), got shape {tuple(V.shape)}")
        if cp.shape != cc.shape or cp.ndim != 2 or cp.shape[1] != V.shape[1]:
            raise DataError(
                f"SVD coefficients {tuple(cp.shape)}/{tuple(cc.shape)} do not match basis {tuple(V.shape)}"
            )
        V = _band(V.T, domain, "SVD basis").T
        if weights is not None:
            w = _band(torch.as_tensor(np.asarray(weights), dtype=torch.float64), domain, "SVD weights")
            if not (torch.isfinite(w).all() and (w > 0).all()):
                raise DataError("SVD whitening weights must be finite and > 0 for f >= f_min")
            V = V / w.to(device=V.device, dtype=V.real.dtype).unsqueeze(-1)  # (V/w)^H = V^H / w (w real)
        _check_finite(cp, "SVD coefficients (plus)")
        _check_finite(cc, "SVD coefficients (cross)")
        coeff = torch.stack([cp, cc], dim=1)  # (N, 2, n)
        return cls(domain, coefficients=coeff.contiguous(), basis_h=V.conj().T.contiguous())

    @classmethod
    def from_bank(cls, bank, device="cpu", dtype=torch.complex64, decompress: bool = False):
        """From a waveform bank object (``dingo_gw.waveforms.load_bank``): SVD coefficients of a
        compressed bank (decompressed per batch), unless ``decompress`` or it is uncompressed."""
        svd = getattr(bank, "svd", None)
        if svd is not None and not decompress:
            return cls.from_svd(bank.coefficients("h_plus"), bank.coefficients("h_cross"), svd.V, bank.domain,
                                device=device, dtype=dtype, weights=getattr(svd, "weights", None))
        return cls.from_arrays(bank.h_plus, bank.h_cross, bank.domain, device=device, dtype=dtype)

    # -- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return (self._h if self.mode == "arrays" else self._coefficients).shape[0]

    @property
    def n_band(self) -> int:
        return self._h.shape[-1] if self.mode == "arrays" else self._basis_h.shape[-1]

    @property
    def device(self) -> torch.device:
        return (self._h if self.mode == "arrays" else self._coefficients).device

    @property
    def dtype(self) -> torch.dtype:
        return (self._h if self.mode == "arrays" else self._coefficients).dtype

    def to(self, device) -> "PolarizationSource":
        """A copy on ``device`` (self if already there)."""
        device = torch.device(device)
        if device == self.device:
            return self
        if self.mode == "arrays":
            return PolarizationSource(self.domain, h=self._h.to(device))
        return PolarizationSource(self.domain, coefficients=self._coefficients.to(device),
                                  basis_h=self._basis_h.to(device))

    def get_stacked(self, idx: torch.Tensor) -> torch.Tensor:
        """[h+, h×] of bank entries ``idx`` (B,): (B, 2, n_band) complex, contiguous."""
        idx = idx.to(self.device)
        if self.mode == "arrays":
            return self._h.index_select(0, idx)
        return self._coefficients.index_select(0, idx) @ self._basis_h

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h+ and h× of bank entries ``idx`` (B,), each (B, n_band) complex."""
        h = self.get_stacked(idx)
        return h[:, 0], h[:, 1]


def _band(x: torch.Tensor, domain: FrequencyDomain, what: str) -> torch.Tensor:
    """Restrict the last axis to f >= f_min; accepts the full grid or the band already."""
    n_full, n_band = len(domain), len(domain) - domain.min_index
    if x.shape[-1] == n_full:
        return x[..., domain.min_index:]
    if x.shape[-1] == n_band:
        return x
    raise DomainMismatchError(
        f"{what} has {x.shape[-1]} frequency bins; the domain has {n_full} (0..{domain.f_max} Hz in steps "
        f"of {domain.delta_f} Hz) or {n_band} in the band f >= {domain.f_min} Hz"
    )
