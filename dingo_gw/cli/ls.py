"""dingo_ls: print the metadata of files written by dingo_gw (any kind), or the shipped networks.

    dingo_ls bank.h5
    dingo_ls --networks [--data-dir DIR]

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


def network_lines(data_dirs=None) -> list[str]:
    """The shipped networks (networks/networks.json of the data folders): name, detectors,
    detector-frame chirp-mass range, file size, description."""
    from dingo_gw.inference.network_catalog import load_catalog

    rows = []
    for e in load_catalog(data_dirs):
        size = f"{e.path.stat().st_size / 1e6:.0f} MB" if e.path.is_file() else "file missing"
        rows.append((e.name, "+".join(e.detectors), f"{e.chirp_mass[0]:g}-{e.chirp_mass[1]:g}", size, e.description))
    head = ("name", "detectors", "chirp mass [Msun, detector frame]", "size", "description")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    return [fmt.format(*head)] + [fmt.format(*r) for r in rows]


@run_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="dingo_ls", description="Print the metadata of dingo_gw files (banks, ...), "
                                "or list the shipped networks (--networks).")
    p.add_argument("files", nargs="*", help="HDF5 files written by dingo_gw")
    p.add_argument("--networks", action="store_true",
                   help="list the shipped networks: detectors and chirp-mass range (what dingo_analyze chooses from)")
    p.add_argument("--data-dir", action="append", default=[], metavar="DIR", help="extra data folder (repeat)")
    args = p.parse_args(argv)
    if not args.files and not args.networks:
        p.error("give files to describe, or --networks")
    if args.networks:
        print("\n".join(network_lines(args.data_dir or None)))
    for path in args.files:
        print("\n".join(describe(path)))
    return 0
