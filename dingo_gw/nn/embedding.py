"""Embedding network: whitened FD strain + ASD of each detector -> context vector.

Input (B, n_det, n_channels, n_bins) with channels [Re d, Im d, asd_ref/ASD] (see
:mod:`dingo_gw.pipeline.network_input`). First layer: for each detector a separate linear map
of all its channels onto 2·n_basis features; initialised from a complex SVD basis V_I
(n_bins, n_basis) of whitened waveforms it returns [Re(d·V_I), Im(d·V_I)], the coefficients
of the data in that basis (the ASD channel starts with zero weights). Then residual MLP blocks
down to ``output_dim``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dingo_gw.errors import ConfigError, DataError
from dingo_gw.nn.config import EmbeddingConfig
from dingo_gw.nn.layers import DenseResidualNet


class DetectorProjection(nn.Module):
    """Per-detector linear layer: (B, n_det, n_channels, n_bins) -> (B, n_det · 2 n_basis)."""

    def __init__(self, n_detectors: int, n_channels: int, n_bins: int, n_basis: int):
        super().__init__()
        self.n_detectors, self.n_channels, self.n_bins, self.n_basis = n_detectors, n_channels, n_bins, n_basis
        n_in = n_channels * n_bins
        bound = 1.0 / math.sqrt(n_in)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(n_detectors, n_in, 2 * n_basis).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_detectors, 1, 2 * n_basis).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        x = x.reshape(B, self.n_detectors, self.n_channels * self.n_bins).transpose(0, 1)
        out = torch.baddbmm(self.bias, x, self.weight)  # (n_det, B, 2 n_basis)
        return out.transpose(0, 1).reshape(B, -1)

    @torch.no_grad()
    def init_from_basis(self, V: torch.Tensor) -> None:
        """Set weights so that the output is [Re(d·V_I), Im(d·V_I)] for complex data d = Re + i Im.

        ``V``: (n_det, n_bins, n_basis) complex, or a list of (n_bins, n_basis). Columns beyond
        those given (if V has fewer than n_basis) keep their random initialisation.
        """
        if isinstance(V, (list, tuple)):
            V = torch.stack([torch.as_tensor(v) for v in V])
        V = torch.as_tensor(V)
        if self.n_channels < 2:
            raise ConfigError("SVD initialisation needs at least the Re and Im input channels")
        if V.ndim != 3 or V.shape[0] != self.n_detectors or V.shape[1] != self.n_bins or V.shape[2] > self.n_basis:
            raise DataError(
                f"SVD basis has shape {tuple(V.shape)}; expected ({self.n_detectors}, {self.n_bins}, <= {self.n_basis})"
            )
        n, nb, k = self.n_bins, self.n_basis, V.shape[2]
        Vr, Vi = V.real.to(self.weight.dtype), V.imag.to(self.weight.dtype)
        w = self.weight
        w[:, :, :k] = 0.0
        w[:, :, nb:nb + k] = 0.0
        # real part of d·V: Re·Vr - Im·Vi; imaginary part: Re·Vi + Im·Vr
        w[:, 0:n, :k] = Vr
        w[:, n:2 * n, :k] = -Vi
        w[:, 0:n, nb:nb + k] = Vi
        w[:, n:2 * n, nb:nb + k] = Vr
        self.bias[:, :, :k] = 0.0
        self.bias[:, :, nb:nb + k] = 0.0


class EmbeddingNet(nn.Module):
    """DetectorProjection followed by a DenseResidualNet to ``output_dim`` features."""

    def __init__(self, config: EmbeddingConfig):
        super().__init__()
        if config.n_detectors is None or config.n_bins is None:
            raise ConfigError("embedding: n_detectors and n_bins must be set")
        self.config = config
        self.projection = DetectorProjection(config.n_detectors, config.n_channels, config.n_bins, config.n_basis)
        self.resnet = DenseResidualNet(
            config.n_detectors * 2 * config.n_basis,
            config.hidden_dims,
            config.output_dim,
            act=config.activation,
            dropout=config.dropout,
            layer_norm=config.layer_norm,
        )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c = self.config
        return (c.n_detectors, c.n_channels, c.n_bins)

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise DataError(f"network input has shape {tuple(x.shape[1:])}; this network expects {self.input_shape}")
        return self.resnet(self.projection(x))


def svd_basis(whitened: torch.Tensor, n_basis: int) -> torch.Tensor:
    """First ``n_basis`` right-singular vectors V (n_bins, n_basis) of complex data (N, n_bins).

    With X = U S V^H, the coefficients of a row d are d·V (the convention of
    :meth:`DetectorProjection.init_from_basis`).
    """
    whitened = torch.as_tensor(whitened)
    if not whitened.is_complex() or whitened.ndim != 2:
        raise DataError(f"svd_basis needs complex (N, n_bins) data, got {whitened.dtype} {tuple(whitened.shape)}")
    if whitened.shape[0] < n_basis:
        raise DataError(f"svd_basis: {whitened.shape[0]} waveforms are fewer than n_basis = {n_basis}")
    _, _, Vh = torch.linalg.svd(whitened, full_matrices=False)
    return Vh[:n_basis].conj().T.contiguous()


def projection_basis(signals: torch.Tensor, n_basis: int) -> torch.Tensor:
    """Per-detector SVD bases (n_det, n_bins, n_basis) of whitened signals (N, n_det, n_bins).

    Typical use: ``V = projection_basis(pipeline.whitened_signals(N, gen), cfg.n_basis)`` then
    ``model.embedding.projection.init_from_basis(V)``.
    """
    signals = torch.as_tensor(signals)
    if signals.ndim != 3:
        raise DataError(f"projection_basis needs (N, n_det, n_bins) signals, got shape {tuple(signals.shape)}")
    return torch.stack([svd_basis(signals[:, i], n_basis) for i in range(signals.shape[1])])
