"""A network file as inference needs it: model, metadata, prior, waveform model, window, GNPE
initialisation network and sha256 (see docs/models.md, docs/training.md); where to find it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from dingo_gw.domain import FrequencyDomain, tukey_window_factor
from dingo_gw.errors import ConfigError, DataError, FileFormatError
from dingo_gw.io.checksum import sha256_file
from dingo_gw.io.datafind import find_data_file, search_dirs
from dingo_gw.pipeline.network_input import NetworkInput
from dingo_gw.priors import build_prior


#: Where the shipped default network lives, inside a data folder.
DEFAULT_NETWORK = Path("networks") / "default" / "network.pt"


@dataclass
class AnalysisNetwork:
    """A loaded network file with what inference needs (see docs/models.md, docs/training.md)."""

    path: Path
    sha256: str
    model: object
    metadata: dict
    net_input: NetworkInput
    prior: object
    waveform: dict
    window_roll_off: float | None
    init_model: object | None = None
    init_input: NetworkInput | None = None

    @property
    def domain(self) -> FrequencyDomain:
        return self.net_input.domain

    @property
    def detectors(self) -> list[str]:
        return list(self.net_input.detectors)


def find_network(path: str | Path | None, data_dirs: Sequence[str | Path] | None = None) -> Path:
    """The network file to use: ``path``, else ``networks/default/network.pt`` in the data folders."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise DataError(f"network file not found: {p}")
        return p
    try:
        return find_data_file(DEFAULT_NETWORK, data_dirs)
    except DataError:
        dirs = ", ".join(str(d) for d in search_dirs(data_dirs))
        raise DataError(
            f"no --network given and the default network {DEFAULT_NETWORK} is not in the data folders ({dirs}); "
            "get the repository's data/networks/default/network.pt (it is committed with the code) or train one "
            "with `dingo_train <config>` (see docs/training.md) and pass --network FILE"
        ) from None


def _window_roll_off(meta: Mapping, domain: FrequencyDomain) -> float | None:
    """Tukey roll-off (s) the network was trained for: metadata ``window``, else from the window factor."""
    window = meta.get("window")
    if isinstance(window, Mapping) and window.get("roll_off"):
        return float(window["roll_off"])
    w = domain.window_factor
    if w >= 1.0 - 1e-12:
        return None
    # invert mean(tukey(n, α)²) = w for α (monotonic), n at 4096 Hz
    n = int(round(domain.duration * 4096))
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if tukey_window_factor(n, mid) > w:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi) * domain.duration / 2


def network_prior(meta: Mapping, source: str):
    """The bilby prior the network was trained with (metadata ``prior``, or intrinsic + extrinsic)."""
    spec = meta.get("prior")
    if not spec:
        spec = {**(meta.get("intrinsic_prior") or {}), **(meta.get("extrinsic_prior") or {})}
    if not spec:
        raise FileFormatError(f"{source}: the network metadata hold no prior (keys 'prior' or 'intrinsic_prior')")
    try:
        return build_prior(dict(spec))
    except ConfigError as e:
        raise FileFormatError(f"{source}: invalid prior in the network metadata ({e})") from None


def load_analysis_network(path: str | Path, device: str = "cpu") -> AnalysisNetwork:
    """Load a network file and everything inference needs from its metadata."""
    from dingo_gw.nn import load_network, model_from_dict

    path = Path(path)
    model, meta = load_network(path, device=device)
    net_input = NetworkInput.from_metadata(meta)
    waveform = meta.get("waveform") or {}
    if not waveform.get("approximant") or not waveform.get("f_ref"):
        raise FileFormatError(f"{path}: the network metadata name no waveform model (key 'waveform')")
    init_model = init_input = None
    init = meta.get("init_network")
    if net_input.proxies is not None and init:
        init_model = model_from_dict(init, source=f"{path} (embedded GNPE initialisation network)").to(device).eval()
        init_input = NetworkInput.from_metadata(init["metadata"])
        if list(init_input.detectors) != list(net_input.detectors):
            raise FileFormatError(f"{path}: the initialisation network's detectors differ from the network's")
    return AnalysisNetwork(
        path=path, sha256=sha256_file(path), model=model, metadata=meta, net_input=net_input,
        prior=network_prior(meta, str(path)), waveform=dict(waveform),
        window_roll_off=_window_roll_off(meta, net_input.domain), init_model=init_model, init_input=init_input,
    )


def network_generator(network: AnalysisNetwork):
    """The waveform generator of the network's model on its domain (LALSimulation)."""
    from dingo_gw.waveforms import WaveformGenerator

    return WaveformGenerator(network.waveform["approximant"], network.domain, float(network.waveform["f_ref"]),
                             network.waveform.get("f_start"))
