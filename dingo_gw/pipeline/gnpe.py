"""GNPE arrival-time proxies (Dax et al. 2022): kernel, data shifts, network context.

For detector arrival times t_I (s, relative to the reference time) the proxies are
t̂_I = t_I + ε_I with ε_I ~ U(-κ, κ) (κ = ``kernel``, default 1 ms). Each detector's data is
shifted by -t̂_I (multiplied by exp(+2πi f t̂_I)), so the network sees residual shifts
t_I - t̂_I = -ε_I only, and is conditioned on the proxies.

``relative=True`` (default, DINGO's "exact global equivariance"): the context holds
t̂_I - t̂_ref for the detectors after the first one (ref = first detector), and every time
parameter (geocent_time, {det}_time) is inferred relative to t̂_ref. The network is then
exactly invariant to a common time translation. ``relative=False``: the context holds all
t̂_I as they are, time parameters are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dingo_gw.detectors import SUPPORTED_DETECTORS
from dingo_gw.errors import ConfigError


@dataclass(frozen=True)
class GNPESettings:
    """GNPE time-proxy settings: kernel half-width in seconds, relative proxies or not."""

    kernel: float = 1e-3
    relative: bool = True

    def __post_init__(self):
        if not (self.kernel > 0 and self.kernel < 0.1):
            raise ConfigError(f"gnpe.kernel must be in (0, 0.1) s, got {self.kernel}")

    def to_dict(self) -> dict:
        return {"kernel": float(self.kernel), "relative": bool(self.relative)}

    @classmethod
    def from_dict(cls, d: dict | None) -> "GNPESettings | None":
        if d is None:
            return None
        unknown = set(d) - {"kernel", "relative"}
        if unknown:
            raise ConfigError(f"gnpe: unknown key(s) {', '.join(sorted(unknown))}")
        return cls(kernel=float(d.get("kernel", 1e-3)), relative=bool(d.get("relative", True)))


def is_time_parameter(name: str) -> bool:
    """geocent_time and detector arrival times ({det}_time) are shifted by GNPE."""
    return name == "geocent_time" or name in {f"{d}_time" for d in SUPPORTED_DETECTORS}


class GNPETimeProxies:
    """Samples proxies and maps them to the network context for a list of detectors."""

    def __init__(self, detectors: list[str], settings: GNPESettings):
        self.detectors = list(detectors)
        self.settings = settings
        if settings.relative:
            self.names = tuple(f"{d}_time_proxy" for d in self.detectors[1:])
        else:
            self.names = tuple(f"{d}_time_proxy" for d in self.detectors)

    @property
    def kernel(self) -> float:
        return self.settings.kernel

    def sample(self, arrival_times: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Proxies t̂ = t + ε, ε ~ U(-κ, κ) i.i.d., same shape as ``arrival_times`` (..., n_det)."""
        u = torch.rand(
            arrival_times.shape, generator=generator, dtype=arrival_times.dtype, device=arrival_times.device
        )
        return arrival_times + self.kernel * (2.0 * u - 1.0)

    def context(self, proxies: torch.Tensor) -> torch.Tensor:
        """Context values (..., n_proxy) from proxies (..., n_det): relative or as they are."""
        if self.settings.relative:
            return proxies[..., 1:] - proxies[..., :1]
        return proxies

    def reference_shift(self, proxies: torch.Tensor) -> torch.Tensor:
        """Amount (...,) subtracted from time parameters: t̂_ref if relative, else 0."""
        if self.settings.relative:
            return proxies[..., 0]
        return torch.zeros_like(proxies[..., 0])
