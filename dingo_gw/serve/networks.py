"""Networks kept warm by the service, and which one analyses an alert.

Each configured network is loaded once at start (weights, metadata, prior) together with its
waveform generator (whose worker pool stays open), so an alert pays no start-up cost.

Choice: as ``dingo_analyze`` chooses among shipped networks
(:func:`dingo_gw.inference.network_catalog.select_network`): among the networks whose detectors
are all in the alert's detectors and whose chirp-mass range (config ``chirp_mass``, else the
network prior's range; detector frame, solar masses) contains the alert's estimate (when it gives
one), the one with the most detectors, then the narrowest chirp-mass range, then the first
configured.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from dingo_gw.errors import DataError

logger = logging.getLogger(__name__)


@dataclass
class WarmNetwork:
    """A loaded network (AnalysisNetwork), its open waveform generator and chirp-mass range."""

    name: str
    network: object
    generator: object
    chirp_mass: tuple[float, float] | None

    def describe(self) -> dict:
        return {"name": self.name, "file": Path(self.network.path).name, "sha256": self.network.sha256,
                "detectors": self.network.detectors, "chirp_mass": list(self.chirp_mass) if self.chirp_mass else None,
                "domain": self.network.domain.to_dict()}


def prior_chirp_mass_range(prior) -> tuple[float, float] | None:
    """[min, max] of the prior's chirp_mass (None if it has none or it is unbounded)."""
    p = prior.get("chirp_mass") if prior is not None else None
    lo, hi = getattr(p, "minimum", None), getattr(p, "maximum", None)
    if lo is None or hi is None:
        peak = getattr(p, "peak", None)
        return (float(peak), float(peak)) if peak is not None else None
    return float(lo), float(hi)


class NetworkRegistry:
    """The warm networks by name (config order kept)."""

    def __init__(self, networks: Sequence[WarmNetwork]):
        self._networks = {n.name: n for n in networks}

    @classmethod
    def load(cls, entries) -> "NetworkRegistry":
        """Load every configured network (``ServeConfig.networks``) and open its generator."""
        from dingo_gw.inference.network import find_network, load_analysis_network, network_generator

        out = []
        for e in entries:
            net = load_analysis_network(find_network(e.path))
            rng = tuple(e.chirp_mass) if e.chirp_mass is not None else prior_chirp_mass_range(net.prior)
            out.append(WarmNetwork(e.name, net, network_generator(net), rng))
            logger.info("network %s loaded: %s, detectors %s, chirp mass %s", e.name, net.path, net.detectors, rng)
        return cls(out)

    def __getitem__(self, name: str) -> WarmNetwork:
        if name not in self._networks:
            raise DataError(f"network {name!r} is not configured (configured: {', '.join(self._networks)})")
        return self._networks[name]

    def __iter__(self):
        return iter(self._networks.values())

    def choose(self, detectors: Sequence[str], chirp_mass: float | None = None) -> str:
        """Name of the network for an alert (see the module docstring); DataError if none fits."""
        from dingo_gw.inference.network_catalog import NetworkEntry, select_network

        entries = [NetworkEntry(n.name, Path(n.network.path), tuple(n.network.detectors),
                                n.chirp_mass or (0.0, math.inf)) for n in self._networks.values()]
        return select_network(entries, detectors, chirp_mass, "alert", kind="configured", ambiguous="best").entry.name

    def close(self) -> None:
        for n in self._networks.values():
            n.generator.close()
