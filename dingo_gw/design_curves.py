"""Analytic design-sensitivity PSDs from LALSimulation, on any frequency grid.

Used to whiten waveforms for SVD compression, to weight mismatches, and to simulate coloured
Gaussian noise in tests. PSDs are one-sided, in 1/Hz.
"""

from __future__ import annotations

import numpy as np

from dingo_gw.errors import ConfigError

#: Names accepted by :func:`design_psd` -> LALSimulation function name.
DESIGN_PSDS = {
    "aLIGOZeroDetHighPower": "SimNoisePSDaLIGOZeroDetHighPower",
    "aLIGODesignSensitivityP1200087": "SimNoisePSDaLIGODesignSensitivityP1200087",
    "aLIGOaLIGODesignSensitivityT1800044": "SimNoisePSDaLIGOaLIGODesignSensitivityT1800044",
    "aLIGOEarlyHighSens": "SimNoisePSDaLIGOEarlyHighSens",
    "aLIGOMidHighSensitivityP1200087": "SimNoisePSDaLIGOMidHighSensitivityP1200087",
    "AdvVirgo": "SimNoisePSDAdvVirgo",
}


def design_psd(name: str, frequencies: np.ndarray, fill_below: float | None = None) -> np.ndarray:
    """PSD [1/Hz] of design curve ``name`` at ``frequencies`` [Hz].

    Bins with f <= 0 (or below ``fill_below`` Hz, if given) take the value at the first valid
    bin, so the result is finite and positive everywhere.
    """
    import lalsimulation

    if name not in DESIGN_PSDS:
        raise ConfigError(f"unknown design PSD {name!r}; available: {', '.join(DESIGN_PSDS)}")
    func = getattr(lalsimulation, DESIGN_PSDS[name])
    f = np.asarray(frequencies, dtype=float)
    lo = max(fill_below or 0.0, 1e-3)
    valid = f >= lo
    out = np.empty_like(f)
    out[valid] = [func(float(x)) for x in f[valid]]
    if (~valid).any():
        first = func(float(f[valid][0])) if valid.any() else func(lo)
        out[~valid] = first
    return out


def design_asd(name: str, frequencies: np.ndarray, fill_below: float | None = None) -> np.ndarray:
    """ASD = sqrt(PSD) [1/sqrt(Hz)] of design curve ``name``."""
    return np.sqrt(design_psd(name, frequencies, fill_below))
