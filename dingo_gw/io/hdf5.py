"""HDF5 helpers: JSON metadata attributes, safe opening with clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dingo_gw import FORMAT_VERSION
from dingo_gw.errors import FileFormatError


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from dicts, lists, numpy arrays/scalars and Paths (recursively)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json_attr(obj: h5py.HLObject, name: str, value: Any) -> None:
    """Store ``value`` (dicts, lists, numbers, strings, numpy) as a JSON string attribute."""
    obj.attrs[name] = json.dumps(to_jsonable(value))


def read_json_attr(obj: h5py.HLObject, name: str, default: Any = None) -> Any:
    """Read a JSON string attribute written by :func:`write_json_attr`."""
    if name not in obj.attrs:
        return default
    raw = obj.attrs[name]
    if isinstance(raw, bytes):
        raw = raw.decode()
    return json.loads(raw)


def open_h5(path: str | Path, kind: str, mode: str = "r") -> h5py.File:
    """Open a dingo_gw HDF5 file of ``kind`` ("waveform_bank", "asd_dataset", ...).

    Raises FileFormatError with one clear line when the file is missing, not HDF5,
    truncated, of another kind, or from an incompatible format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{kind} file not found: {path}")
    try:
        f = h5py.File(path, mode)
    except OSError as e:
        raise FileFormatError(f"cannot read {path}: not a valid HDF5 file or truncated ({e.__class__.__name__})") from None
    try:
        file_kind = f.attrs.get("dingo_gw_kind")
        if isinstance(file_kind, bytes):
            file_kind = file_kind.decode()
        if file_kind != kind:
            raise FileFormatError(f"{path} is not a dingo_gw {kind} file (kind = {file_kind!r})")
        version = int(f.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise FileFormatError(
                f"{path} has format version {version}; this dingo_gw reads version {FORMAT_VERSION}"
            )
    except BaseException:
        f.close()
        raise
    return f


def stamp(f: h5py.File, kind: str) -> None:
    """Mark a new file with its kind and the format version."""
    f.attrs["dingo_gw_kind"] = kind
    f.attrs["format_version"] = FORMAT_VERSION
