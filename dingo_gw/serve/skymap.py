"""HEALPix multi-order sky maps from posterior samples (ligo.skymap).

The sky density is a clustered kernel density estimate of the (ra, dec) samples (ligo.skymap's
``Clustered2DSkyKDE``, as ``ligo-skymap-from-samples``), evaluated on BAYESTAR's adaptive
multi-order grid and written as a NUNIQ-indexed FITS table (UNIQ, PROBDENSITY [1/sr]) with
``write_sky_map``. ra, dec in radians (equatorial); areas in square degrees.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dingo_gw.errors import DataError
from dingo_gw.io.atomic import atomic_write

#: Largest number of clusters tried by the KDE, and k-means trials per k (ligo.skymap defaults
#: are 40 and 5; fewer keep the map within seconds for one or a few sky modes).
MAX_CLUSTERS = 8
CLUSTER_TRIALS = 2
#: HEALPix nside of the first grid and refinement rounds of the adaptive grid.
TOP_NSIDE = 16
ROUNDS = 8


def _quiet_kde_class():
    from ligo.skymap.kde import Clustered2DSkyKDE

    class QuietSkyKDE(Clustered2DSkyKDE):
        """Clustered2DSkyKDE without progress bars (a service log is no terminal). ligo.skymap has no public
        switch for them: its private ``_map``/``_map_vectorized`` of the pinned ligo.skymap==2.5.4 are
        overridden (checked by tests/serve/test_serve_skymap.py::test_pinned_skymap_private_api)."""

        def _map(self, func, items, *args, **kwargs):
            return list(map(func, items))

        def _map_vectorized(self, func, items, *args, **kwargs):
            return func(items)

    return QuietSkyKDE


def sky_map_from_samples(ra: np.ndarray, dec: np.ndarray, max_samples: int = 2000, seed: int = 0):
    """Multi-order sky map (astropy Table: UNIQ, PROBDENSITY [1/sr]) of equally weighted samples.

    At most ``max_samples`` samples (a random subset) enter the KDE. DataError if the samples do
    not spread over the sky (fewer than 3 distinct positions, or non-finite values).
    """
    ra, dec = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
    if ra.shape != dec.shape or ra.ndim != 1:
        raise DataError("sky map: ra and dec must be 1-D arrays of equal length")
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise DataError("sky map: ra/dec samples are not all finite")
    pts = np.column_stack([np.mod(ra, 2 * math.pi), dec])
    if len(np.unique(pts, axis=0)) < 3:
        raise DataError("sky map: fewer than 3 distinct sky positions (is the sky position inferred?)")
    rng = np.random.default_rng(seed)
    if len(pts) > max_samples:
        pts = pts[rng.choice(len(pts), max_samples, replace=False)]
    state = np.random.get_state()
    np.random.seed(seed % 2**32)  # ligo.skymap's k-means draws from numpy's global generator
    try:
        kde = _quiet_kde_class()(pts, max_k=MAX_CLUSTERS, trials=CLUSTER_TRIALS, jobs=1)
        table = kde.as_healpix(top_nside=TOP_NSIDE, rounds=ROUNDS)
    finally:
        np.random.set_state(state)
    return table


def credible_areas(table, levels=(0.5, 0.9)) -> dict[str, float]:
    """Areas (deg²) of the smallest regions holding ``levels`` of the probability."""
    from ligo.skymap.moc import uniq2pixarea

    area = uniq2pixarea(np.asarray(table["UNIQ"]))  # sr
    dens = np.asarray(table["PROBDENSITY"], dtype=float)
    order = np.argsort(dens)[::-1]
    cum = np.cumsum((dens * area)[order])
    cum /= cum[-1]
    cum_area = np.cumsum(area[order])
    out = {}
    for level in levels:
        i = min(int(np.searchsorted(cum, level)), len(cum) - 1)
        out[f"area_{int(round(100 * level))}"] = float(cum_area[i] * (180 / math.pi) ** 2)
    return out


def write_sky_map(table, path: str | Path, objid: str = "", gps_time: float | None = None,
                  instruments: list[str] | None = None) -> Path:
    """Write a multi-order map as FITS (ligo.skymap's writer, atomically)."""
    from ligo.skymap.io.fits import write_sky_map as _write

    path = Path(path)
    meta = {"objid": objid, "creator": "dingo_gw"}
    if gps_time is not None:
        meta["gps_time"] = float(gps_time)
    if instruments:
        meta["instruments"] = set(instruments)
    with atomic_write(path, tmp=path.with_name(f".{path.stem}.tmp.fits")) as tmp:
        _write(str(tmp), table, **meta)
    return path
