"""Affine standardisation of parameter vectors: x_std = (x - mean) / std, per named component."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from dingo_gw.errors import ConfigError, FileFormatError


class Standardization:
    """Means and standard deviations of named quantities, applied to (..., n) tensors.

    The order of ``keys`` is the order of the last axis. ``log_det`` is log|d x_std / d x| =
    -sum(log std), so a density of standardised values converts as
    log q(x) = log q_std(x_std) + log_det.
    """

    def __init__(self, keys: Sequence[str], mean: Mapping[str, float], std: Mapping[str, float]):
        self.keys = tuple(keys)
        try:
            self.mean = np.array([float(mean[k]) for k in self.keys], dtype=np.float64)
            self.std = np.array([float(std[k]) for k in self.keys], dtype=np.float64)
        except KeyError as e:
            raise ConfigError(f"standardisation: no mean/std for parameter {e.args[0]!r}") from None
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.std)) and np.all(self.std > 0)):
            bad = [k for k, m, s in zip(self.keys, self.mean, self.std) if not (np.isfinite(m) and s > 0)]
            raise ConfigError(f"standardisation: invalid mean/std for {', '.join(bad)} (need finite, std > 0)")
        self._cache: dict = {}

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_samples(cls, samples: Mapping[str, np.ndarray | torch.Tensor], keys: Sequence[str]) -> "Standardization":
        """Means and stds estimated from samples (a std of 0, from a fixed value, becomes 1)."""
        mean, std = {}, {}
        for k in keys:
            v = samples[k]
            v = v.detach().cpu().double().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=float)
            mean[k] = float(np.mean(v))
            s = float(np.std(v))
            std[k] = s if s > 0 else 1.0
        return cls(keys, mean, std)

    def _tensors(self, like: torch.Tensor):
        key = (like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = (
                torch.as_tensor(self.mean, dtype=like.dtype, device=like.device),
                torch.as_tensor(self.std, dtype=like.dtype, device=like.device),
            )
        return self._cache[key]

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std along the last axis."""
        mean, std = self._tensors(x)
        return (x - mean) / std

    def destandardize(self, x: torch.Tensor) -> torch.Tensor:
        """x * std + mean along the last axis."""
        mean, std = self._tensors(x)
        return x * std + mean

    def stack(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Stack a dict of (...,) tensors into (..., n) in the order of ``keys``."""
        return torch.stack([values[k] for k in self.keys], dim=-1)

    def unstack(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split (..., n) into a dict of (...,) tensors."""
        return {k: x[..., i] for i, k in enumerate(self.keys)}

    @property
    def log_det(self) -> float:
        """log |d x_std / d x| = -sum(log std)."""
        return float(-np.sum(np.log(self.std)))

    def to_dict(self) -> dict:
        return {
            "keys": list(self.keys),
            "mean": {k: float(m) for k, m in zip(self.keys, self.mean)},
            "std": {k: float(s) for k, s in zip(self.keys, self.std)},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "Standardization":
        try:
            return cls(list(d["keys"]), d["mean"], d["std"])
        except (KeyError, TypeError) as e:
            raise FileFormatError(f"invalid standardisation metadata: missing {e}") from None
