"""Common interface of the posterior networks (NPE flow, FMPE): embedding + density model.

Every model takes the network inputs of :mod:`dingo_gw.pipeline`: ``data`` (B, n_det, 3, n_bins)
and ``proxies`` (B, P) (standardised GNPE context; P = 0 / None without GNPE), and works with
standardised parameters θ (B, D). The context vector is [embedding(data), proxies].

- ``model(theta, data, proxies)`` == ``model.loss(...)``: the scalar training loss (so the
  trainer can wrap the model in DistributedDataParallel);
- ``sample(data, proxies, num_samples)`` -> (B, S, D);
- ``sample_and_log_prob(...)`` -> ((B, S, D), (B, S)) with log q of standardised θ;
- ``log_prob(theta, data, proxies)`` -> (B,); a data batch of 1 is broadcast to all θ.

The ``*_from_context`` variants skip the embedding for callers that reuse a context.
Randomness (FMPE training times/noise, sampling) uses torch's global generator.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from dingo_gw.errors import DataError
from dingo_gw.nn.config import ModelConfig
from dingo_gw.nn.embedding import EmbeddingNet


class PosteriorModel(nn.Module, abc.ABC):
    """Base class: builds the embedding and handles contexts; subclasses add the density."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.check_complete()
        self.config = config
        self.theta_dim = config.theta_dim
        self.proxy_dim = config.proxy_dim
        self.embedding = EmbeddingNet(config.embedding)
        self.context_dim = self.embedding.output_dim + self.proxy_dim

    @property
    def model_config(self) -> dict:
        """Plain-dict architecture description (rebuild with dingo_gw.nn.build_model)."""
        return self.config.model_dump()

    def set_projection_trainable(self, trainable: bool) -> None:
        """Freeze or unfreeze the first (SVD-initialised) embedding layer."""
        for p in self.embedding.projection.parameters():
            p.requires_grad_(trainable)

    # -- context ------------------------------------------------------------------------
    def context(self, data: torch.Tensor, proxies: torch.Tensor | None = None) -> torch.Tensor:
        """Context (B, context_dim) = [embedding(data), proxies]."""
        emb = self.embedding(data)
        if self.proxy_dim == 0:
            if proxies is not None and proxies.numel() > 0:
                raise DataError("this network takes no GNPE proxies")
            return emb
        if proxies is None or proxies.shape != (emb.shape[0], self.proxy_dim):
            got = None if proxies is None else tuple(proxies.shape)
            raise DataError(f"this network needs GNPE proxies of shape ({emb.shape[0]}, {self.proxy_dim}), got {got}")
        return torch.cat([emb, proxies.to(emb.dtype)], dim=-1)

    def _check_theta(self, theta: torch.Tensor) -> None:
        if theta.ndim != 2 or theta.shape[1] != self.theta_dim:
            raise DataError(f"theta has shape {tuple(theta.shape)}; expected (B, {self.theta_dim})")

    # -- public API ---------------------------------------------------------------------
    def forward(self, theta: torch.Tensor, data: torch.Tensor, proxies: torch.Tensor | None = None) -> torch.Tensor:
        return self.loss(theta, data, proxies)

    def loss(self, theta: torch.Tensor, data: torch.Tensor, proxies: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar training loss averaged over the batch."""
        self._check_theta(theta)
        return self.loss_from_context(theta, self.context(data, proxies))

    def sample(self, data: torch.Tensor, proxies: torch.Tensor | None = None, num_samples: int = 1,
               **kwargs) -> torch.Tensor:
        """Standardised samples (B, num_samples, D), B = batch of data/proxies."""
        with torch.no_grad():
            return self.sample_from_context(self.context(data, proxies), num_samples, **kwargs)

    def sample_and_log_prob(self, data: torch.Tensor, proxies: torch.Tensor | None = None, num_samples: int = 1,
                            **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples (B, S, D) and their log densities (B, S) (in standardised θ)."""
        with torch.no_grad():
            return self.sample_and_log_prob_from_context(self.context(data, proxies), num_samples, **kwargs)

    def log_prob(self, theta: torch.Tensor, data: torch.Tensor, proxies: torch.Tensor | None = None,
                 **kwargs) -> torch.Tensor:
        """log q(θ | data) (B,) of standardised θ (B, D); data/proxies of batch 1 are broadcast."""
        self._check_theta(theta)
        context = self.context(data, proxies)
        if context.shape[0] == 1 and theta.shape[0] != 1:
            context = context.expand(theta.shape[0], -1)
        elif context.shape[0] != theta.shape[0]:
            raise DataError(f"log_prob: {theta.shape[0]} theta rows but {context.shape[0]} data rows")
        return self.log_prob_from_context(theta, context, **kwargs)

    # -- implemented by subclasses ------------------------------------------------------
    @abc.abstractmethod
    def loss_from_context(self, theta: torch.Tensor, context: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def sample_from_context(self, context: torch.Tensor, num_samples: int, **kwargs) -> torch.Tensor: ...

    @abc.abstractmethod
    def sample_and_log_prob_from_context(self, context: torch.Tensor, num_samples: int,
                                         **kwargs) -> tuple[torch.Tensor, torch.Tensor]: ...

    @abc.abstractmethod
    def log_prob_from_context(self, theta: torch.Tensor, context: torch.Tensor, **kwargs) -> torch.Tensor: ...
