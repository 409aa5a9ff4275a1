"""Typed configuration of the posterior networks (pydantic, unknown keys forbidden).

A :class:`ModelConfig` fully determines the network architecture; it is stored in the network
file and :func:`dingo_gw.nn.build_model` rebuilds the network from it. The data-dependent sizes
(``theta_dim``, ``proxy_dim``, ``embedding.n_detectors``, ``embedding.n_bins``) are usually left
out of a user's YAML and filled in with :func:`complete_model_config`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dingo_gw.config import ConfigModel, parse_config
from dingo_gw.errors import ConfigError

Activation = Literal["elu", "relu", "gelu", "silu", "tanh", "leaky_relu"]


class EmbeddingConfig(ConfigModel):
    """Embedding network: per-detector linear projection, then residual MLP blocks.

    ``n_basis`` complex basis vectors per detector (the projection outputs 2·n_basis reals per
    detector); one residual block per entry of ``hidden_dims``; ``output_dim`` context features.
    """

    n_detectors: int | None = Field(default=None, gt=0)
    n_channels: int = Field(default=3, gt=0)
    n_bins: int | None = Field(default=None, gt=0)
    n_basis: int = Field(default=64, gt=0)
    hidden_dims: list[int] = Field(default_factory=lambda: [512, 256, 128], min_length=1)
    output_dim: int = Field(default=128, gt=0)
    activation: Activation = "elu"
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    layer_norm: bool = True


class FlowConfig(ConfigModel):
    """NPE density estimator: a conditional rational-quadratic neural spline flow (zuko).

    ``kind``: "coupling" (fast sampling; masks are random half splits drawn from ``seed``) or
    "autoregressive" (MAF ordering alternating, ~n_features× slower to sample).
    """

    kind: Literal["coupling", "autoregressive"] = "coupling"
    transforms: int = Field(default=6, gt=0)
    bins: int = Field(default=8, gt=1)
    hidden_features: list[int] = Field(default_factory=lambda: [256, 256], min_length=1)
    activation: Activation = "elu"
    seed: int = 0


class ODEConfig(ConfigModel):
    """ODE solver for FMPE sampling / log-density (torchdiffeq).

    Adaptive methods ("dopri5", "bosh3", "adaptive_heun", "dopri8") use rtol/atol; fixed-step
    methods ("euler", "midpoint", "rk4") take ``steps`` equal steps from t = 0 to 1.
    """

    method: Literal["dopri5", "dopri8", "bosh3", "adaptive_heun", "euler", "midpoint", "rk4"] = "dopri5"
    steps: int = Field(default=20, gt=0)
    rtol: float = Field(default=1e-5, gt=0)
    atol: float = Field(default=1e-6, gt=0)

    @property
    def adaptive(self) -> bool:
        return self.method not in ("euler", "midpoint", "rk4")


class FieldConfig(ConfigModel):
    """FMPE vector field v(θ_t, t, context): residual MLP with context-gated (GLU) blocks.

    ``time_features``: K in the time embedding [t, sin(πkt), cos(πkt)]_{k=1..K};
    ``sigma_min``: width of the path's end point; ``time_prior_exponent`` α: training times are
    t = u^(1/(1+α)), u ~ U(0, 1) (α = 0 uniform, α > 0 favours t -> 1).
    """

    hidden_dims: list[int] = Field(default_factory=lambda: [256] * 6, min_length=1)
    time_features: int = Field(default=8, ge=0)
    activation: Activation = "gelu"
    layer_norm: bool = True
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    sigma_min: float = Field(default=1e-4, gt=0.0, lt=1.0)
    time_prior_exponent: float = Field(default=1.0, ge=0.0)
    ode: ODEConfig = Field(default_factory=ODEConfig)


class ModelConfig(ConfigModel):
    """A posterior network: embedding + NPE flow or FMPE vector field."""

    type: Literal["npe", "fmpe"]
    theta_dim: int | None = Field(default=None, gt=0)
    proxy_dim: int = Field(default=0, ge=0)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    flow: FlowConfig = Field(default_factory=FlowConfig)
    field: FieldConfig = Field(default_factory=FieldConfig)

    def check_complete(self) -> None:
        """ConfigError unless the data-dependent sizes are set."""
        missing = [
            name
            for name, value in (
                ("theta_dim", self.theta_dim),
                ("embedding.n_detectors", self.embedding.n_detectors),
                ("embedding.n_bins", self.embedding.n_bins),
            )
            if value is None
        ]
        if missing:
            raise ConfigError(f"model config: {', '.join(missing)} not set (use complete_model_config)")


def parse_model_config(config: dict | ModelConfig, source: str = "model config") -> ModelConfig:
    """Validate a dict into a ModelConfig (ConfigError naming the key on problems)."""
    if isinstance(config, ModelConfig):
        return config
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(config).__name__}")
    return parse_config(config, ModelConfig, source=source)


def complete_model_config(config: dict | ModelConfig, *, theta_dim: int, proxy_dim: int,
                          input_shape: tuple[int, int, int]) -> dict:
    """Fill in data-dependent sizes; ``input_shape`` = (n_detectors, n_channels, n_bins).

    Returns a plain dict (as stored in the network file).
    """
    cfg = parse_model_config(config).model_copy(deep=True)
    n_det, n_ch, n_bins = (int(x) for x in input_shape)
    cfg.theta_dim = int(theta_dim)
    cfg.proxy_dim = int(proxy_dim)
    cfg.embedding.n_detectors = n_det
    cfg.embedding.n_channels = n_ch
    cfg.embedding.n_bins = n_bins
    cfg = parse_model_config(cfg.model_dump())  # re-validate
    return cfg.model_dump()
