"""Locate data files (strain, published PSDs) offline.

Search order, first match wins:

1. folders given explicitly (the ``--data-dir`` argument, ``data_dirs=``),
2. ``$DINGO_GW_DATA`` (one folder, or several separated by ``os.pathsep``),
3. the project's ``data/`` folder (``<repository>/data``, next to the package).

Strain files are recognised by their GWOSC names ``X-DET_DESCRIPTION-GPSSTART-DURATION.ext``
(.hdf5, .h5, .txt, .txt.gz, .gwf) in the top level of each folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import dingo_gw
from dingo_gw.errors import DataError
from dingo_gw.io.strain import OBSERVATORY, GwoscFileName, check_detector, parse_gwosc_filename

#: Environment variable naming extra data folders.
ENV_VAR = "DINGO_GW_DATA"


def project_data_dir() -> Path:
    """The repository's ``data/`` folder (Path(dingo_gw.__file__).parents[1] / "data")."""
    return Path(dingo_gw.__file__).resolve().parents[1] / "data"


def search_dirs(data_dirs: str | Path | Iterable[str | Path] | None = None) -> list[Path]:
    """Folders to search, in order: ``data_dirs``, ``$DINGO_GW_DATA``, the project's data/."""
    if data_dirs is None:
        given: list[Path] = []
    elif isinstance(data_dirs, (str, Path)):
        given = [Path(data_dirs)]
    else:
        given = [Path(d) for d in data_dirs]
    env = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    out: list[Path] = []
    for d in [*given, *env, project_data_dir()]:
        d = d.expanduser()
        if d not in out:
            out.append(d)
    return out


def _describe(dirs: list[Path]) -> str:
    return ", ".join(f"{d}{'' if d.is_dir() else ' (missing)'}" for d in dirs)


def find_data_file(
    name: str | Path,
    data_dirs: str | Path | Iterable[str | Path] | None = None,
    base_dir: str | Path | None = None,
) -> Path:
    """Resolve a file name: absolute path, else ``base_dir/name``, else ``<data dir>/name``.

    DataError naming the file and every folder looked in if none exists.
    """
    name = Path(name).expanduser()
    if name.is_absolute():
        if name.is_file():
            return name
        raise DataError(f"data file not found: {name}")
    candidates = ([Path(base_dir)] if base_dir is not None else []) + search_dirs(data_dirs)
    for d in candidates:
        if (d / name).is_file():
            return d / name
    raise DataError(f"data file {name} not found; looked in {_describe(candidates)}")


def _strain_files_in(folder: Path, detector: str | None) -> list[tuple[Path, GwoscFileName]]:
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        name = parse_gwosc_filename(p)
        if name is not None and p.is_file() and (detector is None or name.detector == detector):
            out.append((p, name))
    return out


def list_strain_files(
    data_dirs: str | Path | Iterable[str | Path] | None = None, detector: str | None = None
) -> list[tuple[Path, GwoscFileName]]:
    """GWOSC-named strain files in the search folders (search order kept), optionally of one detector."""
    return [item for d in search_dirs(data_dirs) for item in _strain_files_in(d, detector)]


def find_strain_file(
    detector: str,
    gps: float,
    data_dirs: str | Path | Iterable[str | Path] | None = None,
    *,
    margin: float = 0.0,
) -> Path:
    """A strain file of ``detector`` covering [gps - margin, gps + margin].

    Folders are searched in order and the first folder with a covering file wins. Within a
    folder the most recent release wins (R over V, higher version first), then the file in
    which ``gps`` lies most central. DataError says which file pattern and where it looked.
    """
    check_detector(detector)
    dirs = search_dirs(data_dirs)
    for d in dirs:
        hits = [
            (p, n)
            for p, n in _strain_files_in(d, detector)
            if n.gps_start <= gps - margin and gps + margin <= n.gps_end
        ]
        if hits:
            def rank(item):
                p, n = item
                centre = n.gps_start + n.duration / 2
                return (-n.release_rank[0], -n.release_rank[1], abs(gps - centre), p.name)

            return sorted(hits, key=rank)[0][0]
    pattern = f"{OBSERVATORY[detector]}-{detector}_*-<GPSSTART>-<DURATION>.{{hdf5,h5,txt,txt.gz,gwf}}"
    span = f"GPS {gps}" if margin == 0 else f"GPS [{gps - margin}, {gps + margin}]"
    raise DataError(f"no {detector} strain file covering {span}: looked for {pattern} in {_describe(dirs)}")
