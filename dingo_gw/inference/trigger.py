"""A quick trigger estimate of the detector-frame chirp mass: a coarse matched filter.

Used to pick a shipped network for data given by ``--gps`` and ``--strain`` without
``--chirp-mass`` (:func:`dingo_gw.inference.network_catalog.choose_network`). Not a search: no
signal-consistency test, no significance, one template family; ``--chirp-mass`` overrides it.

Data: per detector, ``duration`` seconds of strain ending ``post`` seconds after ``gps`` (GPS
seconds), Tukey-windowed (0.2 s roll-off), whitened by a median Welch PSD of the same stretch
(4 s segments). Templates: IMRPhenomD, zero spins, mass ratio 0.8, face-on h_plus, on a grid of
detector-frame chirp masses log-spaced over [``min_chirp_mass``, ``max_chirp_mass``] (Msun), from
``f_min`` to min(``f_max``, Nyquist) Hz. Statistic: the network SNR sqrt(sum_I max |z_I(t)|^2),
each detector's complex SNR z_I maximised over merger times within ``window`` seconds of ``gps``
(and over phase). The estimate is the grid value with the largest network SNR.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from dingo_gw.errors import DataError
from dingo_gw.io.strain import Strain

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TriggerEstimate:
    """Detector-frame ``chirp_mass`` [Msun] of the best template, its ``network_snr``, and the
    per-detector SNRs of that template."""

    chirp_mass: float
    network_snr: float
    snrs: dict[str, float]
    grid: tuple[float, float, int]

    def describe(self) -> str:
        lo, hi, n = self.grid
        return (f"trigger estimate: matched filter over {n} IMRPhenomD templates, {lo:g}-{hi:g} Msun, "
                f"network SNR {self.network_snr:.1f}")


def _whitened_fft(strain: Strain, t_start: float, t_end: float, f_min: float, f_max: float,
                  psd_segment: float = 4.0, roll_off: float = 0.2):
    from scipy.signal import welch
    from scipy.signal.windows import tukey

    s = strain.crop(t_start, t_end)
    x = np.asarray(s.data, dtype=float)
    n, fs = x.size, 1.0 / s.dt
    if not np.all(np.isfinite(x)):
        raise DataError(f"{s.detector}: NaN or infinite strain in the trigger-estimate stretch")
    nper = int(round(psd_segment * fs))
    if n < 2 * nper:
        raise DataError(f"{s.detector}: {n / fs:.1f} s of strain around the trigger; the estimate needs "
                        f">= {2 * psd_segment:g} s (give --chirp-mass)")
    f_psd, psd = welch(x, fs=fs, nperseg=nper, average="median", window=("tukey", 2 * roll_off / psd_segment))
    freqs = np.fft.rfftfreq(n, s.dt)
    band = (freqs >= f_min) & (freqs <= min(f_max, 0.5 * fs * 0.9))
    d = np.fft.rfft(x * tukey(n, 2 * roll_off / (n / fs))) * s.dt
    S = np.interp(freqs[band], f_psd, psd)
    return s.t0, n, fs, freqs, band, d, S


def estimate_chirp_mass(
    strains: Mapping[str, Strain],
    gps: float,
    *,
    duration: float = 16.0,
    post: float = 2.0,
    window: float = 0.1,
    f_min: float = 20.0,
    f_max: float = 1024.0,
    min_chirp_mass: float = 3.0,
    max_chirp_mass: float = 200.0,
    num_templates: int = 60,
) -> TriggerEstimate:
    """Detector-frame chirp-mass estimate from ``strains`` (detector -> Strain covering the
    stretch [gps + post - duration, gps + post]); see the module docstring."""
    import bilby

    from dingo_gw.domain import FrequencyDomain
    from dingo_gw.waveforms.generator import WaveformGenerator

    if not strains:
        raise DataError("a trigger estimate needs strain from at least one detector")
    t_start, t_end = gps + post - duration, gps + post
    prepared = {det: _whitened_fft(s, t_start, t_end, f_min, f_max) for det, s in strains.items()}
    grid = np.geomspace(min_chirp_mass, max_chirp_mass, num_templates)
    best = (-1.0, None, {})
    # one template grid per distinct (n, fs): detectors usually share it
    gens: dict[tuple, tuple] = {}
    for det, (t0, n, fs, freqs, band, d, S) in prepared.items():
        key = (n, fs)
        if key not in gens:
            df = freqs[1] - freqs[0]
            top = freqs[band][-1]
            domain = FrequencyDomain(f_min=float(freqs[band][0]), f_max=float(round(top / df) * df), delta_f=float(df))
            gens[key] = (WaveformGenerator("IMRPhenomD", domain, f_ref=f_min), domain)
    snr = np.zeros((num_templates, len(prepared)))
    for k, mc in enumerate(grid):
        m1, m2 = bilby.gw.conversion.chirp_mass_and_mass_ratio_to_component_masses(mc, 0.8)
        params = {"mass_1": m1, "mass_2": m2, "a_1": 0.0, "a_2": 0.0, "tilt_1": 0.0, "tilt_2": 0.0,
                  "phi_12": 0.0, "phi_jl": 0.0, "theta_jn": 0.0, "phase": 0.0, "luminosity_distance": 100.0}
        for j, (det, (t0, n, fs, freqs, band, d, S)) in enumerate(prepared.items()):
            gen, domain = gens[(n, fs)]
            try:
                hp, _ = gen.generate(params)
            except DataError:
                continue
            h = np.zeros(freqs.size, complex)
            m = min(hp.size, freqs.size)
            h[:m] = hp[:m]
            h[~band] = 0.0
            df = freqs[1] - freqs[0]
            sigma2 = 4 * df * np.sum(np.abs(h[band]) ** 2 / S)
            if not sigma2 > 0:
                continue
            integrand = np.zeros(n, complex)
            integrand[: freqs.size][band] = d[band] * np.conj(h[band]) / S
            z = 4 * df * n * np.fft.ifft(integrand)  # z(tau): template merger at t0 + tau
            times = t0 + np.arange(n) / fs
            sel = np.abs(times - gps) <= window
            snr[k, j] = np.max(np.abs(z[sel])) / np.sqrt(sigma2)
    network = np.sqrt(np.sum(snr ** 2, axis=1))
    k = int(np.argmax(network))
    est = TriggerEstimate(float(grid[k]), float(network[k]), {det: float(snr[k, j]) for j, det in enumerate(prepared)},
                          (float(min_chirp_mass), float(max_chirp_mass), int(num_templates)))
    logger.info("%s: chirp mass %.3g Msun (SNRs %s)", est.describe(), est.chirp_mass,
                ", ".join(f"{d} {v:.1f}" for d, v in est.snrs.items()))
    return est
