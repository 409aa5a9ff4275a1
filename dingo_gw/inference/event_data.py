"""The analysed data as the network sees them: the Tukey-windowed, FFT'd analysis segment (dt·rfft,
on the network's domain) and its PSDs, whitened into the network input as in training
(:meth:`dingo_gw.pipeline.network_input.NetworkInput.event_input`); data times relative to the
trigger time, as the network expects."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch

from dingo_gw.domain import FrequencyDomain
from dingo_gw.inference.network import AnalysisNetwork
from dingo_gw.io.strain import Strain
from dingo_gw.noise.event_strain import segment_fd
from dingo_gw.pipeline.network_input import EventInput

logger = logging.getLogger(__name__)


@dataclass
class EventData:
    """FD strain of the analysis segment (full grid, dt·rfft) per detector, its PSDs, the whitened
    network input, the segment start (GPS s) and the domain of the data (window factor of the
    window actually applied)."""

    strain: dict[str, np.ndarray]
    psds: dict[str, np.ndarray]
    event_input: EventInput
    trigger_time: float
    segment_start: float
    domain: FrequencyDomain
    info: dict = field(default_factory=dict)


def frequency_domain_data(strains: Mapping[str, Strain], psds: Mapping[str, np.ndarray], network: AnalysisNetwork,
                          gps: float, post: float, line_bins: Mapping[str, np.ndarray] | None = None,
                          seed: int = 0) -> EventData:
    """Window (Tukey, the network's roll-off), FFT and whiten the analysis segment of each detector.

    ``line_bins``: detector -> mask over the full grid (:func:`dingo_gw.noise.line_bins.find_line_bins`)
    of bins that, in the network's input only, are replaced by Gaussian noise of the PSD's level
    (seeded by ``seed``); ``EventData.strain``, which the likelihood uses, keeps the data.
    """
    domain = network.domain
    fd, start, data_domain = segment_fd(strains, network.detectors, domain, gps, post, network.window_roll_off)
    if abs(data_domain.window_factor - domain.window_factor) > 1e-3:
        logger.warning("data window factor %.5f differs from the network's %.5f", data_domain.window_factor,
                       domain.window_factor)
    asds = {d: np.sqrt(psds[d]) for d in network.detectors}
    net_fd = replace_line_bins(fd, psds, data_domain, line_bins, seed) if line_bins else fd
    event_input = network.net_input.event_input(net_fd, asds, segment_start=start - gps, dtype=torch.complex128)
    info = {"segment": [start, start + domain.duration],
            "window": {"type": "tukey", "roll_off": network.window_roll_off,
                       "window_factor": data_domain.window_factor}}
    return EventData(fd, dict(psds), event_input, float(gps), start, data_domain, info)


def replace_line_bins(fd: Mapping[str, np.ndarray], psds: Mapping[str, np.ndarray], domain: FrequencyDomain,
                       line_bins: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Copies of ``fd`` whose line bins hold Gaussian noise n with Re n, Im n ~ N(0, w S / (4 Δf))."""
    rng = np.random.default_rng([seed, 23])
    out = {}
    for det, x in fd.items():
        mask = line_bins.get(det)
        if mask is None or not mask.any():
            out[det] = x
            continue
        sigma = np.sqrt(domain.window_factor * np.asarray(psds[det], dtype=float)[mask] / (4.0 * domain.delta_f))
        y = x.copy()
        y[mask] = sigma * (rng.standard_normal(mask.sum()) + 1j * rng.standard_normal(mask.sum()))
        out[det] = y
    return out
