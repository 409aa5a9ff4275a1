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
                          gps: float, post: float) -> EventData:
    """Window (Tukey, the network's roll-off), FFT and whiten the analysis segment of each detector."""
    domain = network.domain
    fd, start, data_domain = segment_fd(strains, network.detectors, domain, gps, post, network.window_roll_off)
    if abs(data_domain.window_factor - domain.window_factor) > 1e-3:
        logger.warning("data window factor %.5f differs from the network's %.5f", data_domain.window_factor,
                       domain.window_factor)
    asds = {d: np.sqrt(psds[d]) for d in network.detectors}
    event_input = network.net_input.event_input(fd, asds, segment_start=start - gps, dtype=torch.complex128)
    info = {"segment": [start, start + domain.duration],
            "window": {"type": "tukey", "roll_off": network.window_roll_off,
                       "window_factor": data_domain.window_factor}}
    return EventData(fd, dict(psds), event_input, float(gps), start, data_domain, info)
