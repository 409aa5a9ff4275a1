"""Uniform frequency domain: the grid every waveform, PSD and network lives on.

Conventions (as in DINGO and bilby):
- frequencies run from 0 to ``f_max`` inclusive in steps of ``delta_f`` (Hz); ``delta_f = 1/T``
  for a segment of duration ``T`` seconds;
- data below ``f_min`` are zero (``mask`` selects f >= f_min);
- frequency-domain strain is ``dt * rfft(x(t))`` (bilby's convention), so for stationary
  Gaussian noise with one-sided PSD S(f) each real and imaginary part has variance
  ``window_factor * S(f) / (4 delta_f)``;
- whitening divides by ``ASD * noise_std`` with ``noise_std = sqrt(window_factor / (4 delta_f))``,
  giving unit-variance white noise per real and imaginary part, and the noise-weighted inner
  product <a, b> = 4 delta_f Re sum a* b / S becomes Re sum a_w* b_w (window factor 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dingo_gw.errors import DomainMismatchError


@dataclass(frozen=True)
class FrequencyDomain:
    """Uniform frequency grid [0, f_max] with spacing delta_f; analysis band [f_min, f_max].

    f_min, f_max, delta_f are in Hz. ``window_factor`` is the mean square of the time-domain
    window applied before the FFT (1 for no window); it scales the noise level.
    """

    f_min: float
    f_max: float
    delta_f: float
    window_factor: float = 1.0

    def __post_init__(self):
        if not (self.delta_f > 0):
            raise DomainMismatchError(f"domain: delta_f must be > 0 Hz, got {self.delta_f}")
        if not (0 <= self.f_min < self.f_max):
            raise DomainMismatchError(
                f"domain: need 0 <= f_min < f_max, got f_min={self.f_min}, f_max={self.f_max}"
            )
        n = self.f_max / self.delta_f
        if abs(n - round(n)) > 1e-6:
            raise DomainMismatchError(
                f"domain: f_max={self.f_max} Hz is not a multiple of delta_f={self.delta_f} Hz"
            )
        if not (0 < self.window_factor <= 1):
            raise DomainMismatchError(f"domain: window_factor must be in (0, 1], got {self.window_factor}")

    @property
    def duration(self) -> float:
        """Segment length T = 1/delta_f in seconds."""
        return 1.0 / self.delta_f

    def __len__(self) -> int:
        return int(round(self.f_max / self.delta_f)) + 1

    @property
    def frequencies(self) -> np.ndarray:
        """Frequency grid in Hz, shape (len(self),)."""
        return np.arange(len(self)) * self.delta_f

    @property
    def mask(self) -> np.ndarray:
        """Boolean mask of the analysis band f >= f_min."""
        return self.frequencies >= self.f_min

    @property
    def min_index(self) -> int:
        """Index of the first bin with f >= f_min."""
        return int(np.ceil(self.f_min / self.delta_f - 1e-9))

    @property
    def noise_std(self) -> float:
        """Std of each real/imaginary part of FD noise divided by the ASD: sqrt(w / (4 delta_f))."""
        return float(np.sqrt(self.window_factor / (4.0 * self.delta_f)))

    @property
    def sampling_frequency_min(self) -> float:
        """Smallest time-domain sampling rate (Hz) that reaches f_max: 2 f_max."""
        return 2.0 * self.f_max

    def to_dict(self) -> dict:
        return {
            "f_min": float(self.f_min),
            "f_max": float(self.f_max),
            "delta_f": float(self.delta_f),
            "window_factor": float(self.window_factor),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FrequencyDomain":
        return cls(
            f_min=float(d["f_min"]),
            f_max=float(d["f_max"]),
            delta_f=float(d["delta_f"]),
            window_factor=float(d.get("window_factor", 1.0)),
        )

    def check_same_grid(self, other: "FrequencyDomain", what: str = "data") -> None:
        """Raise DomainMismatchError unless ``other`` has the same f_min, f_max and delta_f."""
        for key in ("f_min", "f_max", "delta_f"):
            a, b = getattr(self, key), getattr(other, key)
            if not np.isclose(a, b, rtol=1e-9, atol=1e-12):
                raise DomainMismatchError(
                    f"domain mismatch for {what}: {key} = {b} Hz, expected {a} Hz"
                )

    def check_frequencies(self, frequencies: np.ndarray, what: str = "data") -> None:
        """Raise DomainMismatchError unless ``frequencies`` equals this grid."""
        frequencies = np.asarray(frequencies)
        if frequencies.shape != (len(self),) or not np.allclose(
            frequencies, self.frequencies, rtol=0, atol=1e-6 * self.delta_f
        ):
            raise DomainMismatchError(
                f"domain mismatch for {what}: its frequency grid "
                f"({_describe_grid(frequencies)}) is not the expected "
                f"0..{self.f_max} Hz in steps of {self.delta_f} Hz"
            )


def _describe_grid(f: np.ndarray) -> str:
    if f.size < 2:
        return f"{f.size} bins"
    return f"{f[0]:g}..{f[-1]:g} Hz, {f.size} bins, step {f[1] - f[0]:g} Hz"


def tukey_window_factor(num_samples: int, alpha: float) -> float:
    """Mean square of a Tukey window of ``num_samples`` samples with shape parameter alpha."""
    from scipy.signal.windows import tukey

    w = tukey(num_samples, alpha)
    return float(np.mean(w**2))
