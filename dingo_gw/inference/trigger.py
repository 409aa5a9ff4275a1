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


@dataclass(frozen=True)
class _Prepared:
    """One detector's stretch: its FFT ``d`` and PSD ``S`` in ``band``, and which lags lie near gps."""

    n: int
    df: float
    freqs: np.ndarray
    band: np.ndarray
    d: np.ndarray
    S: np.ndarray
    near: np.ndarray  # lags tau (samples) whose merger time t0 + tau lies within the window of gps


def _prepare(strain: Strain, t_start: float, t_end: float, gps: float, window: float, f_min: float,
             f_max: float, psd_segment: float = 4.0, roll_off: float = 0.2) -> _Prepared:
    from scipy.signal import welch
    from scipy.signal.windows import tukey

    s = strain.crop(t_start, t_end)  # Strain holds finite samples only
    x, n, fs = s.data, s.num_samples, s.sample_rate
    nper = int(round(psd_segment * fs))
    if n < 2 * nper:
        raise DataError(f"{s.detector}: {n / fs:.1f} s of strain around the trigger; the estimate needs "
                        f">= {2 * psd_segment:g} s (give --chirp-mass)")
    f_psd, psd = welch(x, fs=fs, nperseg=nper, average="median", window=("tukey", 2 * roll_off / psd_segment))
    freqs = np.fft.rfftfreq(n, s.dt)
    band = (freqs >= f_min) & (freqs <= min(f_max, 0.5 * fs * 0.9))
    d = np.fft.rfft(x * tukey(n, 2 * roll_off / (n / fs))) * s.dt
    near = np.abs(s.times - gps) <= window
    return _Prepared(n, float(freqs[1] - freqs[0]), freqs, band, d[band], np.interp(freqs[band], f_psd, psd), near)


def _template_generator(p: _Prepared, f_ref: float):
    """IMRPhenomD on the grid of ``p`` (0 .. its top band frequency, spacing df)."""
    from dingo_gw.domain import FrequencyDomain
    from dingo_gw.waveforms.generator import WaveformGenerator

    top = p.freqs[p.band][-1]
    domain = FrequencyDomain(f_min=float(p.freqs[p.band][0]), f_max=float(round(top / p.df) * p.df), delta_f=p.df)
    return WaveformGenerator("IMRPhenomD", domain, f_ref=f_ref)


def _snr(p: _Prepared, hp: np.ndarray) -> float:
    """max over lags near gps (and phase) of |z(tau)| / sigma for the template ``hp``."""
    h = np.zeros(p.freqs.size, complex)
    m = min(hp.size, p.freqs.size)
    h[:m] = hp[:m]
    h = h[p.band]
    sigma2 = 4 * p.df * np.sum(np.abs(h) ** 2 / p.S)
    if not sigma2 > 0:
        return 0.0
    integrand = np.zeros(p.n, complex)
    integrand[: p.freqs.size][p.band] = p.d * np.conj(h) / p.S
    z = 4 * p.df * p.n * np.fft.ifft(integrand)  # z(tau): template merger at t0 + tau
    return float(np.max(np.abs(z[p.near])) / np.sqrt(sigma2))


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
    from dingo_gw.priors import component_masses

    if not strains:
        raise DataError("a trigger estimate needs strain from at least one detector")
    t_start, t_end = gps + post - duration, gps + post
    prepared = {det: _prepare(s, t_start, t_end, gps, window, f_min, f_max) for det, s in strains.items()}
    # detectors with the same length and sample rate share one template grid: each template is made once
    grids = {}
    for p in prepared.values():
        if (p.n, p.df) not in grids:
            grids[(p.n, p.df)] = _template_generator(p, f_min)
    grid = np.geomspace(min_chirp_mass, max_chirp_mass, num_templates)
    snr = np.zeros((num_templates, len(prepared)))
    for k, mc in enumerate(grid):
        m1, m2 = component_masses(mc, 0.8)
        params = {"mass_1": float(m1), "mass_2": float(m2), "a_1": 0.0, "a_2": 0.0, "tilt_1": 0.0, "tilt_2": 0.0,
                  "phi_12": 0.0, "phi_jl": 0.0, "theta_jn": 0.0, "phase": 0.0, "luminosity_distance": 100.0}
        templates = {}
        for key, gen in grids.items():
            try:
                templates[key] = gen.generate(params)[0]
            except DataError:
                templates[key] = None
        for j, p in enumerate(prepared.values()):
            hp = templates[(p.n, p.df)]
            snr[k, j] = 0.0 if hp is None else _snr(p, hp)
    network = np.sqrt(np.sum(snr ** 2, axis=1))
    k = int(np.argmax(network))
    est = TriggerEstimate(float(grid[k]), float(network[k]), {det: float(snr[k, j]) for j, det in enumerate(prepared)},
                          (float(min_chirp_mass), float(max_chirp_mass), int(num_templates)))
    logger.info("%s: chirp mass %.3g Msun (SNRs %s)", est.describe(), est.chirp_mass,
                ", ".join(f"{d} {v:.1f}" for d, v in est.snrs.items()))
    return est
