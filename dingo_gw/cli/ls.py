"""dingo_ls: print the metadata of files written by dingo_gw (any kind).

    dingo_ls bank.h5

Each file kind may have a describer, registered in :data:`DESCRIBERS` as "module:function"
(imported only when a file of that kind is shown); the function takes the open h5py.File and
returns (key, value) lines. Every file also gets its JSON attributes (kinds without a describer)
and a listing of its datasets.
"""

from __future__ import annotations

import argparse
import importlib
import json

import h5py

from dingo_gw.cli._common import run_main
from dingo_gw.errors import FileFormatError

#: dingo_gw_kind -> "module:function" describing an open file as (key, value) lines.
DESCRIBERS: dict[str, str] = {
    "waveform_bank": "dingo_gw.waveforms.bank:describe_bank",
}


def register_describer(kind: str, target: str) -> None:
    """Register the describer ``"module:function"`` for files of ``kind``."""
    DESCRIBERS[kind] = target


def _describer(kind: str):
    target = DESCRIBERS.get(kind)
    if target is None:
        return None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def describe(path: str) -> list[str]:
    """Lines describing the HDF5 file at ``path``."""
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise FileFormatError(f"file not found: {path}") from None
    except OSError as e:
        raise FileFormatError(f"cannot read {path}: not a valid HDF5 file or truncated ({e.__class__.__name__})") from None
    with f:
        kind = f.attrs.get("dingo_gw_kind")
        if isinstance(kind, bytes):
            kind = kind.decode()
        version = f.attrs.get("format_version")
        header = f"{path}: dingo_gw {kind} (format version {version})" if kind else f"{path}: HDF5 file not written by dingo_gw"
        lines = [header]
        describer = _describer(kind) if kind else None
        if describer is not None:
            try:
                rows = describer(f)
            except (KeyError, ValueError, TypeError, OSError) as e:
                raise FileFormatError(f"{path}: incomplete or corrupt {kind} file ({e})") from None
        else:
            rows = [(k, _attr_text(v)) for k, v in f.attrs.items() if k not in ("dingo_gw_kind", "format_version")]
        width = max((len(k) for k, _ in rows), default=0)
        lines += [f"  {k:<{width}}  {v}" for k, v in rows]
        lines.append("  datasets:")
        f.visititems(lambda name, obj: lines.append(f"    {name}  {obj.shape} {obj.dtype}")
                     if isinstance(obj, h5py.Dataset) else None)
    return lines


def _attr_text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except json.JSONDecodeError:
            return value
    return str(value)


@run_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="dingo_ls", description="Print the metadata of dingo_gw files (banks, ...).")
    p.add_argument("files", nargs="+", help="HDF5 files written by dingo_gw")
    args = p.parse_args(argv)
    for path in args.files:
        print("\n".join(describe(path)))
    return 0
