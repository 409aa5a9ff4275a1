"""The network file: one torch file, loadable with ``torch.load(path, weights_only=True)``.

It holds a dict of plain types and tensors only (never pickled objects)::

    kind              "dingo_gw_network"
    format_version    int (dingo_gw.FORMAT_VERSION); other versions are refused
    dingo_gw_version  str (informational)
    model_config      dict (ModelConfig.model_dump(); rebuild with build_model)
    state_dict        dict name -> tensor
    metadata          dict: domain, detectors, ref_time, inference_parameters, standardisation,
                      asd_reference, gnpe, proxy_standardization, extrinsic prior strings, ... (from
                      DataPipeline.metadata()), training config, package_versions

Files are written atomically (temporary name + rename).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from dingo_gw import FORMAT_VERSION, __version__
from dingo_gw.errors import ConfigError, FileFormatError
from dingo_gw.io.atomic import atomic_write, save_torch
from dingo_gw.nn.config import parse_model_config
from dingo_gw.nn.fmpe import FMPE
from dingo_gw.nn.npe import NPE
from dingo_gw.nn.posterior import PosteriorModel
from dingo_gw.versions import package_versions

NETWORK_KIND = "dingo_gw_network"
_REQUIRED = ("kind", "format_version", "dingo_gw_version", "model_config", "state_dict", "metadata")


def build_model(model_config: Mapping | Any) -> PosteriorModel:
    """The (randomly initialised) NPE or FMPE network described by ``model_config``.

    ``model_config``: a dict (as stored in a network file) or a ModelConfig, with the
    data-dependent sizes set (see complete_model_config). ConfigError on invalid configs.
    """
    cfg = parse_model_config(dict(model_config) if isinstance(model_config, Mapping) else model_config)
    cfg.check_complete()
    return NPE(cfg) if cfg.type == "npe" else FMPE(cfg)


def to_plain(obj: Any, where: str = "metadata") -> Any:
    """Convert metadata to types torch.load(weights_only=True) accepts (dict/list/str/number/tensor)."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else str(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v, where) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, np.ndarray):
        return to_plain(obj.tolist(), where)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{where}: cannot store {type(obj).__name__} in a network file")


def network_dict(model: PosteriorModel, metadata: Mapping) -> dict:
    """The dict written to a network file (trainers may add keys for checkpoints)."""
    meta = to_plain(dict(metadata))
    meta.setdefault("package_versions", package_versions())
    return {
        "kind": NETWORK_KIND,
        "format_version": FORMAT_VERSION,
        "dingo_gw_version": __version__,
        "model_config": to_plain(model.model_config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": meta,
    }


def save_network(path: str | Path, model: PosteriorModel, metadata: Mapping) -> Path:
    """Write ``model`` and ``metadata`` to ``path`` atomically; returns the path."""
    payload = network_dict(model, metadata)
    with atomic_write(path) as tmp:
        save_torch(payload, tmp)
    return Path(path)


def load_torch_dict(path: str | Path, kind: str, what: str, map_location="cpu") -> dict:
    """Load a dingo_gw torch file (``torch.load(weights_only=True)``) whose ``kind`` must be
    ``kind`` and whose format version must be this dingo_gw's; ``what`` names it in errors
    ("network file", "checkpoint"). FileFormatError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{what} not found: {path}")
    try:
        d = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise FileFormatError(
            f"cannot read {what} {path}: truncated, corrupt or not a torch file ({e.__class__.__name__})"
        ) from None
    if not isinstance(d, dict) or d.get("kind") != kind:
        raise FileFormatError(f"{path} is not a dingo_gw {what}")
    if d.get("format_version") != FORMAT_VERSION:
        raise FileFormatError(
            f"{path} has {what} format version {d.get('format_version')!r} (written by dingo_gw "
            f"{d.get('dingo_gw_version')}); this dingo_gw {__version__} reads version {FORMAT_VERSION}"
        )
    return d


def read_network_dict(path: str | Path, map_location="cpu") -> dict:
    """Load and validate the raw dict of a network file (FileFormatError on any problem)."""
    d = load_torch_dict(path, NETWORK_KIND, "network file", map_location)
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise FileFormatError(f"{path} is an incomplete network file (missing {', '.join(missing)})")
    return d


def model_from_dict(d: Mapping, source: str = "network file") -> PosteriorModel:
    """Rebuild the network of a network/checkpoint dict and load its weights."""
    try:
        model = build_model(d["model_config"])
    except ConfigError as e:
        raise FileFormatError(f"{source}: invalid model_config ({e})") from None
    try:
        model.load_state_dict(d["state_dict"])
    except (RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise FileFormatError(f"{source}: weights do not match model_config ({first})") from None
    return model


def load_network(path: str | Path, device: str | torch.device = "cpu") -> tuple[PosteriorModel, dict]:
    """(model in eval mode on ``device``, metadata dict) from a network file."""
    d = read_network_dict(path, map_location="cpu")
    model = model_from_dict(d, source=str(path))
    model.to(device).eval()
    return model, d["metadata"]
