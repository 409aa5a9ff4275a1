"""Simulated signals in Gaussian noise, for validation (``dingo_analyze --injection``, P-P tests),
or in real noise (``--injection`` with ``--strain`` and ``--gps``: n_I is then the Tukey-windowed FFT
of the strain's analysis segment at ``--gps``, which must hold no signal of its own).

The frequency-domain data of detector I on the full grid of a domain are

    d_I(f) = h_I(f) + n_I(f),   h_I = (F+ h+ + F× h×) exp(-2πi f (t_c + Δt_I)),
    Re n_I, Im n_I ~ N(0, w S_I(f) / (4 Δf)) independently, n_I = 0 below f_min,

with h+/h× from :class:`~dingo_gw.waveforms.WaveformGenerator` at the injected luminosity
distance, antenna patterns and delays of LAL (bilby's conventions, :mod:`dingo_gw.detectors`), times
relative to the trigger time (the data's time origin: ``segment_start = 0``) and w the domain's
window factor: the noise has exactly the level of windowed real data as the network was trained
on, so that the whitened noise has unit variance. PSDs are one-sided (1/Hz).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from dingo_gw.detectors import DetectorNetwork
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DataError
from dingo_gw.inference.event_data import EventData, replace_line_bins
from dingo_gw.inference.network import AnalysisNetwork
from dingo_gw.priors import component_masses, sample_prior

logger = logging.getLogger(__name__)

#: Absolute GPS times are told apart from times relative to the trigger by size (s).
GPS_THRESHOLD = 1e6


def read_injection_file(path: str | Path) -> dict[str, float]:
    """Injection parameters from a JSON file: a mapping of bilby names to numbers.

    A bilby result-style ``{"injection_parameters": {...}}`` is accepted too.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"injection file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"injection file {path}: not valid JSON ({e})") from None
    if isinstance(data, dict) and isinstance(data.get("injection_parameters"), dict):
        data = data["injection_parameters"]
    if not isinstance(data, dict) or not data:
        raise DataError(f"injection file {path}: expected a JSON object of parameter names and numbers")
    out = {}
    for k, v in data.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise DataError(f"injection file {path}: parameter {k!r} must be a finite number, got {v!r}")
        out[str(k)] = float(v)
    return out


def injection_parameters(spec: str | Path | Mapping[str, float], prior, trigger_time: float,
                         seed: int = 0) -> dict[str, float]:
    """Complete injection parameters (bilby names; geocent_time relative to ``trigger_time``).

    ``spec``: "prior" (one draw from ``prior``, a bilby PriorDict, seeded), a JSON file path or a
    mapping. mass_1/mass_2 may replace chirp_mass/mass_ratio; a geocent_time larger than 1e6 s is
    read as a GPS time. Every sampled or fixed parameter of ``prior`` must be given (DataError
    listing the missing ones); values outside the prior's support are an error.
    """
    import bilby

    if isinstance(spec, str) and spec.strip().lower() == "prior":
        draw = sample_prior(prior, 1, seed=seed)
        return {k: float(v[0]) for k, v in draw.items()}
    values = dict(spec) if isinstance(spec, Mapping) else read_injection_file(spec)
    values = {k: float(v) for k, v in values.items()}
    if "geocent_time" in values and abs(values["geocent_time"]) > GPS_THRESHOLD:
        values["geocent_time"] -= float(trigger_time)
    if {"mass_1", "mass_2"} <= set(values) and not {"chirp_mass", "mass_ratio"} & set(values):
        m1, m2 = max(values["mass_1"], values["mass_2"]), min(values["mass_1"], values["mass_2"])
        values["chirp_mass"] = (m1 * m2) ** 0.6 / (m1 + m2) ** 0.2
        values["mass_ratio"] = m2 / m1
    needed = [k for k, p in prior.items() if not isinstance(p, bilby.core.prior.Constraint)]
    missing = [k for k in needed if k not in values]
    if missing:
        raise DataError(f"injection parameters lack {', '.join(missing)} (needed by the analysis prior)")
    for k, p in prior.items():
        if isinstance(p, bilby.core.prior.DeltaFunction) and not np.isclose(values[k], p.peak):
            raise DataError(f"injection parameter {k} = {values[k]} but the prior fixes it to {p.peak}")
    out = {k: values[k] for k in needed}
    sampled = {k: out[k] for k in needed if not isinstance(prior[k], bilby.core.prior.DeltaFunction)}
    if not np.isfinite(prior.ln_prob(sampled)):
        raise DataError(f"injection parameters lie outside the analysis prior: {out}")
    if {"chirp_mass", "mass_ratio"} <= set(out):
        m1, m2 = component_masses(out["chirp_mass"], out["mass_ratio"])
        out["mass_1"], out["mass_2"] = float(m1), float(m2)
    return out


def signal_strain(params: Mapping[str, float], detectors, waveform_generator, trigger_time: float) -> dict:
    """Noise-free detector strains (full grid of the generator's domain), times relative to the trigger."""
    p = {k: np.atleast_1d(float(v)) for k, v in params.items()}
    hp, hc, failed = waveform_generator.generate_batch(p)
    if failed[0]:
        raise DataError(f"the waveform generator failed for the injection parameters {dict(params)}")
    net = DetectorNetwork(detectors, trigger_time)
    domain = waveform_generator.domain
    h = net.project(hp, hc, domain.frequencies, p["ra"], p["dec"], p["psi"], p["geocent_time"])  # (1, n_det, n_f)
    h = np.asarray(h)[0]
    h[:, ~domain.mask] = 0.0
    return {d: h[i] for i, d in enumerate(net.names)}


def gaussian_noise(psd: np.ndarray, domain: FrequencyDomain, rng: np.random.Generator) -> np.ndarray:
    """Complex FD noise with Re, Im ~ N(0, w S / (4 Δf)) in the band, zero below f_min."""
    sigma = np.sqrt(np.asarray(psd, dtype=float) * domain.window_factor / (4.0 * domain.delta_f))
    n = sigma * (rng.standard_normal(len(domain)) + 1j * rng.standard_normal(len(domain)))
    n[~domain.mask] = 0.0
    return n


def optimal_snr(h: np.ndarray, psd: np.ndarray, domain: FrequencyDomain) -> float:
    """sqrt(<h, h>) with <a, b> = 4 Δf Re Σ a* b / (w S) over the band."""
    m = domain.mask
    return float(np.sqrt(4.0 * domain.delta_f * np.sum(np.abs(h[m]) ** 2 / (domain.window_factor * psd[m]))))


def simulate_injection(params: Mapping[str, float], detectors, waveform_generator, psds: Mapping[str, np.ndarray],
                       trigger_time: float, rng: np.random.Generator, noise: bool | Mapping[str, np.ndarray] = True):
    """(data, snr): FD data d_I = h_I + n_I per detector (full grid) and the optimal SNR of each.

    ``psds``: detector -> one-sided PSD (1/Hz) on the generator's domain grid. ``noise``: True
    (Gaussian noise of the PSDs), False (none) or detector -> FD noise on the full grid (e.g. the
    windowed FFT of real strain: an injection into real noise).
    """
    domain = waveform_generator.domain
    missing = [d for d in detectors if d not in psds]
    if missing:
        raise ConfigError(f"injection: no PSD for {', '.join(missing)}")
    signals = signal_strain(params, detectors, waveform_generator, trigger_time)
    data, snr = {}, {}
    for d in detectors:
        psd = np.asarray(psds[d], dtype=float)
        if psd.shape != (len(domain),) or not np.all(np.isfinite(psd[domain.mask])) or np.any(psd[domain.mask] <= 0):
            raise DataError(f"injection: PSD of {d} must be positive and finite on the domain grid")
        if isinstance(noise, Mapping):
            n = np.where(domain.mask, np.asarray(noise[d]), 0.0)
        else:
            n = gaussian_noise(psd, domain, rng) if noise else 0.0
        data[d] = signals[d] + n
        snr[d] = optimal_snr(signals[d], psd, domain)
    logger.info("injection: optimal SNR %s, network %.2f", {d: round(s, 2) for d, s in snr.items()},
                float(np.sqrt(sum(s**2 for s in snr.values()))))
    return data, snr


def injection_data(network: AnalysisNetwork, spec: str | Mapping, gps: float, generator, psds, seed: int,
                   noise: Mapping[str, np.ndarray] | None = None, line_bins: Mapping[str, np.ndarray] | None = None):
    """Simulated event on the network's domain; returns (EventData, params).

    ``spec``: "prior", a JSON file or a mapping (:func:`injection_parameters`). ``noise``: detector ->
    FD noise (full grid) to add instead of Gaussian noise, e.g. the windowed FFT of real strain
    around ``gps``; ``line_bins``: detector -> mask of bins replaced by Gaussian noise in the network's
    input only (:func:`dingo_gw.inference.event_data.frequency_domain_data`).
    """
    params = injection_parameters(spec, network.prior, gps, seed=seed)
    data, snr = simulate_injection(params, network.detectors, generator, psds, gps,
                                   np.random.default_rng([seed, 11]), noise=True if noise is None else noise)
    asds = {d: np.sqrt(psds[d]) for d in network.detectors}
    net_data = replace_line_bins(data, psds, network.domain, line_bins, seed) if line_bins else data
    event_input = network.net_input.event_input(net_data, asds, segment_start=0.0, dtype=torch.complex128)
    info = {"injection": {"parameters": params, "optimal_snr": snr,
                          "network_optimal_snr": float(np.sqrt(sum(v**2 for v in snr.values()))),
                          "noise": "gaussian" if noise is None else "given"}}
    return EventData(data, dict(psds), event_input, float(gps), float(gps), network.domain, info), params
