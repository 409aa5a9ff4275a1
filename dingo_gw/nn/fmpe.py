"""FMPE (flow matching posterior estimation, Dax et al. 2023): a learned vector field.

Probability path θ_t = (1 - (1 - σ_min) t) θ_0 + t θ_1, θ_0 ~ N(0, I), θ_1 ~ posterior; the
network v(θ_t, t, context) regresses onto u = θ_1 - (1 - σ_min) θ_0 (loss: mean squared error
over batch and dimensions), with t = U^(1/(1+α)) favouring t -> 1. Sampling integrates
dθ/dt = v from t = 0 to 1; log q comes from the divergence (:mod:`dingo_gw.nn.ode`). The context
enters through per-block gates and an input term computed once per context and cached across
all ODE evaluations.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dingo_gw.config import parse_config
from dingo_gw.nn.config import FieldConfig, ModelConfig, ODEConfig
from dingo_gw.nn.layers import DenseResidualNet
from dingo_gw.nn.ode import cnf_log_prob, cnf_sample, cnf_sample_and_log_prob
from dingo_gw.nn.posterior import PosteriorModel


class VectorField(nn.Module):
    """v(θ, t, context): residual MLP on [θ, time embedding], gated by the context."""

    def __init__(self, theta_dim: int, context_dim: int, config: FieldConfig):
        super().__init__()
        self.theta_dim = theta_dim
        self.n_time = config.time_features
        self.register_buffer("time_freqs", math.pi * torch.arange(1, self.n_time + 1, dtype=torch.float32))
        self.net = DenseResidualNet(
            theta_dim + 1 + 2 * self.n_time,
            config.hidden_dims,
            theta_dim,
            act=config.activation,
            dropout=config.dropout,
            layer_norm=config.layer_norm,
            context_dim=context_dim,
        )

    def embed_time(self, t: torch.Tensor, n: int) -> torch.Tensor:
        """[t, sin(πkt), cos(πkt)]_{k=1..K}, shape (n, 1 + 2K); t is 0-d or (n,)."""
        t = t.to(self.time_freqs.dtype).reshape(-1, 1).expand(n, 1)
        arg = t * self.time_freqs
        return torch.cat([t, torch.sin(arg), torch.cos(arg)], dim=-1)

    def context_cache(self, context: torch.Tensor):
        return self.net.context_cache(context)

    def forward(self, t: torch.Tensor, theta: torch.Tensor, context: torch.Tensor | None = None,
                cache=None) -> torch.Tensor:
        x = torch.cat([theta, self.embed_time(t, theta.shape[0]).to(theta.dtype)], dim=-1)
        return self.net(x, context, cache)


class FMPE(PosteriorModel):
    """Embedding + flow-matching vector field; ODE solver options from ``config.field.ode``."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.field = VectorField(self.theta_dim, self.context_dim, config.field)
        self.sigma_min = config.field.sigma_min
        self.time_prior_exponent = config.field.time_prior_exponent

    def sample_times(self, n: int, device, dtype) -> torch.Tensor:
        """Training times t = U^(1/(1+α)) (n,)."""
        return torch.rand(n, device=device, dtype=dtype) ** (1.0 / (1.0 + self.time_prior_exponent))

    def loss_from_context(self, theta, context):
        t = self.sample_times(theta.shape[0], theta.device, theta.dtype)
        theta0 = torch.randn_like(theta)
        tt = t.unsqueeze(-1)
        theta_t = (1 - (1 - self.sigma_min) * tt) * theta0 + tt * theta
        target = theta - (1 - self.sigma_min) * theta0
        v = self.field(t, theta_t, context)
        return ((v - target) ** 2).mean()

    # -- ODE-based methods ----------------------------------------------------------------
    def _ode(self, ode) -> ODEConfig:
        if ode is None:
            return self.config.field.ode
        return ode if isinstance(ode, ODEConfig) else parse_config(dict(ode), ODEConfig, source="ode options")

    def _field_fn(self, context: torch.Tensor):
        cache = self.field.context_cache(context)
        return lambda t, theta: self.field(t, theta, cache=cache)

    def sample_from_context(self, context, num_samples: int, ode: ODEConfig | dict | None = None):
        """(B, S, D) samples; ``ode`` overrides the configured solver."""
        B = context.shape[0]
        ctx = context.repeat_interleave(num_samples, dim=0)
        theta0 = torch.randn(B * num_samples, self.theta_dim, device=context.device, dtype=context.dtype)
        theta = cnf_sample(self._field_fn(ctx), theta0, self._ode(ode))
        return theta.view(B, num_samples, self.theta_dim)

    def sample_and_log_prob_from_context(self, context, num_samples: int, ode: ODEConfig | dict | None = None):
        B = context.shape[0]
        ctx = context.repeat_interleave(num_samples, dim=0)
        theta0 = torch.randn(B * num_samples, self.theta_dim, device=context.device, dtype=context.dtype)
        theta, log_prob = cnf_sample_and_log_prob(self._field_fn(ctx), theta0, self._ode(ode))
        return theta.view(B, num_samples, self.theta_dim), log_prob.view(B, num_samples)

    def log_prob_from_context(self, theta, context, ode: ODEConfig | dict | None = None):
        return cnf_log_prob(self._field_fn(context), theta, self._ode(ode))
