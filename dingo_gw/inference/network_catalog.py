"""The shipped networks and which one analyses an event.

A data folder lists its networks in ``networks/networks.json``::

    {"networks": [{"name": "default", "path": "default/network.pt",
                   "detectors": ["H1", "L1"], "chirp_mass": [15.0, 60.0],
                   "description": "heavy BBH, O1/O2"}]}

``path`` is relative to ``networks/``; ``detectors`` and ``chirp_mass`` (detector frame, solar
masses: the bounds of the network's prior) are copies of the network's metadata, kept here so that
listing and choosing need not load every network (tests/inference/test_network_catalog.py checks
that they agree). The file is read with ``json`` and checked field by field; nothing in it is
evaluated.

Selection (:func:`select_network`): among the networks whose detectors all have data, those whose
chirp-mass range holds the estimate; of these the one with the most detectors, then the narrowest
range. An estimate outside every range is an error that names the nearest networks. The estimate:
``--chirp-mass``, else the event catalogue's, else a matched-filter trigger estimate from the strain
(:mod:`dingo_gw.inference.trigger`) where several networks take the detectors.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from dingo_gw.errors import DataError, FileFormatError
from dingo_gw.events import Event
from dingo_gw.inference.network import find_network
from dingo_gw.io.datafind import find_data_file

logger = logging.getLogger(__name__)

#: The catalogue of shipped networks, inside a data folder.
CATALOG = Path("networks") / "networks.json"


@dataclass(frozen=True)
class NetworkEntry:
    """One network: ``path`` of its file; ``detectors`` it needs; ``chirp_mass``: (min, max) of its
    prior, detector frame, solar masses ((0, inf): unrestricted)."""

    name: str
    path: Path
    detectors: tuple[str, ...]
    chirp_mass: tuple[float, float]
    description: str = ""

    def covers(self, chirp_mass: float) -> bool:
        return self.chirp_mass[0] <= chirp_mass <= self.chirp_mass[1]

    def distance_to(self, chirp_mass: float) -> float:
        """How far ``chirp_mass`` lies outside the range, in log chirp mass (0 inside)."""
        lo, hi = self.chirp_mass
        below = math.log(lo / chirp_mass) if lo > 0 else -math.inf
        return max(below, math.log(chirp_mass / hi), 0.0)

    def describe(self) -> str:
        lo, hi = self.chirp_mass
        return f"{self.name} ({'+'.join(self.detectors)}, detector-frame chirp mass {lo:g}-{hi:g} Msun)"


@dataclass(frozen=True)
class Selection:
    """The chosen network and why, for the log and the result's metadata."""

    entry: NetworkEntry
    reason: str

    def as_dict(self) -> dict:
        return {"name": self.entry.name, "path": str(self.entry.path), "detectors": list(self.entry.detectors),
                "chirp_mass_range": list(self.entry.chirp_mass), "reason": self.reason}


def _entry(item, source: Path) -> NetworkEntry:
    if not isinstance(item, dict):
        raise FileFormatError(f"{source}: each entry of 'networks' must be an object")
    try:
        name, path, dets, cm = item["name"], item["path"], item["detectors"], item["chirp_mass"]
    except KeyError as e:
        raise FileFormatError(f"{source}: a network entry lacks the key {e.args[0]!r}") from None
    ok = (isinstance(name, str) and name and isinstance(path, str) and path
          and isinstance(dets, list) and dets and all(isinstance(d, str) for d in dets)
          and isinstance(cm, list) and len(cm) == 2 and all(isinstance(x, (int, float)) for x in cm)
          and 0 < cm[0] < cm[1])
    if not ok:
        raise FileFormatError(f"{source}: network entry {name!r}: expected name, path (strings), detectors "
                              "(list of names) and chirp_mass ([min, max] Msun, 0 < min < max)")
    rel = Path(path)
    if rel.is_absolute() or ".." in rel.parts:
        raise FileFormatError(f"{source}: network {name!r}: path must lie inside networks/ (got {path!r})")
    return NetworkEntry(name, source.parent / rel, tuple(dets), (float(cm[0]), float(cm[1])),
                        str(item.get("description", "")))


def load_catalog(data_dirs: Sequence[str | Path] | None = None) -> list[NetworkEntry]:
    """The networks listed in the first ``networks/networks.json`` of the data folders."""
    source = find_data_file(CATALOG, data_dirs)
    try:
        doc = json.loads(source.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(f"{source}: not a readable JSON network catalogue ({e.__class__.__name__})") from None
    items = doc.get("networks") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise FileFormatError(f"{source}: expected {{\"networks\": [...]}} with at least one network")
    entries = [_entry(item, source) for item in items]
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise FileFormatError(f"{source}: network names must be unique")
    return entries


def select_network(catalog: Iterable[NetworkEntry], detectors: Iterable[str], chirp_mass: float | None,
                   what: str = "the data", chirp_mass_source: str = "", kind: str = "shipped",
                   ambiguous: str = "error") -> Selection:
    """The network for data from ``detectors`` with a detector-frame ``chirp_mass`` estimate (Msun;
    None: not known). Ties: most detectors, then narrowest range (ratio), then catalogue order.
    Without an estimate and several candidates: a DataError (``ambiguous="error"``) or the first
    by that order (``"best"``). DataError, naming the nearest networks, where none fits; ``kind``
    names the networks in messages ("shipped", "configured")."""
    catalog, have = list(catalog), set(detectors)
    hint = ("pass --network FILE to analyse it with a network of your own (docs/training.md)" if kind == "shipped"
            else "add a network that does to the service config")
    usable = [e for e in catalog if set(e.detectors) <= have]
    if not usable:
        listed = "; ".join(e.describe() for e in catalog)
        raise DataError(f"{what}: no {kind} network takes detectors {'+'.join(sorted(have)) or '(none)'} "
                        f"({kind}: {listed}); {hint}")
    src = f" ({chirp_mass_source})" if chirp_mass_source else ""
    order = lambda e: (-len(e.detectors), e.chirp_mass[1] / e.chirp_mass[0])  # noqa: E731
    if chirp_mass is None:
        if len(usable) > 1 and ambiguous == "error":
            raise DataError(f"{what}: several networks use these detectors; give --chirp-mass (detector frame, "
                            f"Msun) or --network. Candidates: {'; '.join(e.describe() for e in usable)}")
        entry = sorted(usable, key=order)[0]
        reason = (f"{'the only' if len(usable) == 1 else 'the first'} network for {'+'.join(entry.detectors)}; "
                  "no chirp-mass estimate, range not checked")
        return Selection(entry, reason)
    fits = [e for e in usable if e.covers(chirp_mass)]
    if not fits:
        nearest = sorted(usable, key=lambda e: e.distance_to(chirp_mass))[:2]
        raise DataError(f"{what}: detector-frame chirp mass {chirp_mass:.3g} Msun{src} lies outside every {kind} "
                        f"network's range; nearest: {'; '.join(e.describe() for e in nearest)}; {hint}")
    entry = sorted(fits, key=order)[0]
    unused = sorted(have - set(entry.detectors))
    reason = (f"detectors {'+'.join(entry.detectors)} have data and chirp mass {chirp_mass:.3g} Msun{src} "
              f"lies in {entry.chirp_mass[0]:g}-{entry.chirp_mass[1]:g}")
    if unused:
        reason += f"; {', '.join(unused)} not used (no {kind} network for {'+'.join(sorted(have))} covers it)"
    return Selection(entry, reason)


def choose_network(network: str | Path | None, event: Event | None, strain_files: Mapping[str, Path],
                   chirp_mass: float | None, injection: bool, data_dirs=None,
                   gps: float | None = None) -> tuple[Path, dict | None]:
    """The network file of an analysis and why (None where nothing was chosen): ``network`` (the
    user's ``--network``), else the shipped network whose detectors have data (the ``event``'s
    files found in the data folders, plus ``strain_files`` given per detector) and whose range
    holds ``chirp_mass``, else the catalogue's estimate for ``event``, else — where several
    networks take the detectors — a trigger estimate from the strain around ``gps``
    (:mod:`dingo_gw.inference.trigger`). ``injection``: the network named "default" unless
    ``chirp_mass`` is given. Without a catalogue: networks/default/network.pt."""
    if network is not None:
        if not Path(network).expanduser().is_file():  # a shipped network's name, as dingo_ls --networks lists it
            try:
                named = next((e for e in load_catalog(data_dirs) if e.name == str(network)), None)
            except DataError:  # no catalogue: a file name, whose absence find_network reports
                named = None
            if named is not None:
                return _present(named), {"path": str(named.path), "name": named.name, "reason": "given with --network"}
        return find_network(network, data_dirs), {"path": str(network), "reason": "given with --network"}
    try:
        catalog = load_catalog(data_dirs)
    except DataError:  # no networks.json in the data folders: the default network, as before catalogues
        return find_network(None, data_dirs), None
    source = "--chirp-mass"
    paths = dict(strain_files)
    if injection:
        detectors, what = {d for e in catalog for d in e.detectors}, "the injection"
        if chirp_mass is None:
            entry = ([e for e in catalog if e.name == "default"] or catalog[:1])[0]
            return _present(entry), select_network([entry], entry.detectors, None, what).as_dict()
    elif event is not None:
        found = event.available(data_dirs)
        paths = {**{d: p for d, p in found.items() if p is not None}, **paths}
        detectors = set(paths) or set(event.detectors)  # no strain here: reading it says so, after the choice
        what, gps = event.name, event.gps if gps is None else gps
        if chirp_mass is None and event.chirp_mass is not None:
            chirp_mass, source = event.chirp_mass, "catalogue estimate"
    else:
        detectors, what = set(paths), "the data"
    if chirp_mass is None and not injection and paths and gps is not None \
            and len([e for e in catalog if set(e.detectors) <= detectors]) > 1:
        estimate = _trigger_estimate(paths, gps, what)
        chirp_mass, source = estimate.chirp_mass, estimate.describe()
    selection = select_network(catalog, detectors, chirp_mass, what, source if chirp_mass is not None else "")
    logger.info("network: %s, chosen for %s: %s", selection.entry.name, what, selection.reason)
    return _present(selection.entry), selection.as_dict()


def _trigger_estimate(paths: Mapping[str, Path], gps: float, what: str):
    from dingo_gw.inference.trigger import estimate_chirp_mass
    from dingo_gw.io.strain import read_strain

    try:
        return estimate_chirp_mass({d: read_strain(p, d) for d, p in paths.items()}, float(gps))
    except DataError as e:
        raise DataError(f"{what}: no chirp-mass estimate to choose a network ({e}); give --chirp-mass "
                        "(detector frame, Msun) or --network") from None


def _present(entry: NetworkEntry) -> Path:
    if not entry.path.is_file():
        raise DataError(f"the shipped network {entry.name!r} listed in {CATALOG} is missing ({entry.path}); get the "
                        "repository's data/networks/ (the networks are committed with the code) or pass --network FILE")
    return entry.path
