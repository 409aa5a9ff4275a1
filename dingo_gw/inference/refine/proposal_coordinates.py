"""Unbounded coordinates for proposal densities of GW parameters (used by :mod:`.refine`).

Two maps, composed:

1. Sky and time (two or more detectors): (geocent_time, ra, dec) -> (t_I, zenith, azimuth), with
   t_I = geocent_time - r_I · k / c the arrival time at the first detector I (s, relative to the
   trigger time like geocent_time; r_I its vertex, k the unit vector to the source) and zenith,
   azimuth the polar angles of k about the baseline of the first two detectors. The time delay
   between them fixes the zenith, so the posterior's ring on the sky becomes a band in azimuth
   and its sharp time correlations become one narrow coordinate, which Gaussian mixtures can
   follow. The Earth's orientation is frozen at the trigger time's GMST: the map is then a fixed
   rotation of the sphere plus a time shift, with log |∂(t_I, zen, az)/∂(t_c, ra, dec)| =
   log cos(dec) - log sin(zenith).
2. Every coordinate with a finite interval [a, b] (the prior's, or zenith in [0, π], azimuth in
   [0, 2π), t_I in the geocent_time interval widened by the Earth's light-crossing time):
   u = logit((y - a) / (b - a)).

Densities transform with log q_x(x) = log q_u(u(x)) + log |du/dx|, returned by both directions.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from dingo_gw.detectors import SPEED_OF_LIGHT, detector_location, gmst
from dingo_gw.errors import DataError

#: Margin (s) around the geocent_time interval for detector arrival times (> Earth radius / c).
ARRIVAL_TIME_MARGIN = 0.03
SKY_KEYS = ("geocent_time", "ra", "dec")


class LogitBox:
    """u = logit((y - a) / (b - a)) per coordinate (identity where an interval is unbounded)."""

    def __init__(self, lower: Sequence[float], upper: Sequence[float]):
        self.lower, self.upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        self.bounded = np.isfinite(self.lower) & np.isfinite(self.upper)
        if np.any(self.bounded & ~(self.upper > self.lower)):
            raise DataError("proposal coordinates: an interval is empty")
        self.width = np.where(self.bounded, self.upper - self.lower, 1.0)
        self.offset = np.where(self.bounded, self.lower, 0.0)

    def forward(self, y: np.ndarray) -> np.ndarray:
        z = (np.asarray(y, dtype=float) - self.offset) / self.width
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.log(z) - np.log1p(-z)
        return np.where(self.bounded, u, y)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        z = 0.5 * (1.0 + np.tanh(0.5 * u))  # expit
        return np.where(self.bounded, self.offset + self.width * z, u)

    def log_abs_det_forward(self, u: np.ndarray) -> np.ndarray:
        """log |du/dy| (N,) at y = inverse(u): Σ over bounded coordinates of |u| + 2 log(1 + e^-|u|) - log(b - a)."""
        a = np.abs(u)
        terms = a + 2.0 * np.log1p(np.exp(-a)) - np.log(self.width)
        return np.sum(np.where(self.bounded, terms, 0.0), axis=-1)


class SkyTimeFrame:
    """(geocent_time, ra, dec) <-> (arrival time at ``detectors[0]``, zenith, azimuth about the baseline
    ``detectors[0]`` -> ``detectors[1]``), Earth frozen at GMST(``trigger_time``). Times in s relative to
    the trigger time, angles in rad."""

    def __init__(self, detectors: Sequence[str], trigger_time: float):
        if len(detectors) < 2:
            raise DataError("sky coordinates need two detectors")
        self.detectors = list(detectors[:2])
        self.r0 = detector_location(detectors[0])
        baseline = detector_location(detectors[1]) - self.r0
        ez = baseline / np.linalg.norm(baseline)
        ex = np.cross(ez, [0.0, 0.0, 1.0])
        ex /= np.linalg.norm(ex)
        self.rotation = np.stack([ex, np.cross(ez, ex), ez])  # rows: baseline frame axes
        self.gmst = gmst(trigger_time)
        self.trigger_time = float(trigger_time)

    def forward(self, t_c, ra, dec):
        """(t_I, zenith, azimuth, log |∂(t_I, zen, az)/∂(t_c, ra, dec)|)."""
        t_c, ra, dec = (np.asarray(x, dtype=float) for x in (t_c, ra, dec))
        phi = ra - self.gmst
        k = np.stack([np.cos(dec) * np.cos(phi), np.cos(dec) * np.sin(phi), np.sin(dec)], axis=-1)
        w = k @ self.rotation.T
        zen = np.arccos(np.clip(w[..., 2], -1.0, 1.0))
        az = np.mod(np.arctan2(w[..., 1], w[..., 0]), 2 * np.pi)
        t_i = t_c - (k @ self.r0) / SPEED_OF_LIGHT
        with np.errstate(divide="ignore"):
            log_det = np.log(np.cos(dec)) - np.log(np.sin(zen))
        return t_i, zen, az, log_det

    def inverse(self, t_i, zen, az):
        """(t_c, ra, dec, log |∂(t_I, zen, az)/∂(t_c, ra, dec)|)."""
        t_i, zen, az = (np.asarray(x, dtype=float) for x in (t_i, zen, az))
        w = np.stack([np.sin(zen) * np.cos(az), np.sin(zen) * np.sin(az), np.cos(zen)], axis=-1)
        k = w @ self.rotation
        dec = np.arcsin(np.clip(k[..., 2], -1.0, 1.0))
        ra = np.mod(np.arctan2(k[..., 1], k[..., 0]) + self.gmst, 2 * np.pi)
        t_c = t_i + (k @ self.r0) / SPEED_OF_LIGHT
        with np.errstate(divide="ignore"):
            log_det = np.log(np.cos(dec)) - np.log(np.sin(zen))
        return t_c, ra, dec, log_det


class ProposalCoordinates:
    """Physical parameters ``keys`` (bilby names) <-> unbounded vectors u (N, D).

    ``prior``: bilby PriorDict giving each key's interval; with ``detectors`` (>= 2) and
    ``trigger_time``, and geocent_time, ra, dec among the keys, those three use the
    :class:`SkyTimeFrame` coordinates.
    """

    def __init__(self, prior, keys: Sequence[str], detectors: Sequence[str] | None = None,
                 trigger_time: float | None = None):
        self.keys = list(keys)
        self.sky = None
        if detectors is not None and len(detectors) >= 2 and trigger_time is not None and set(SKY_KEYS) <= set(keys):
            self.sky = SkyTimeFrame(detectors, trigger_time)
        self.names, lower, upper = [], [], []
        for k in self.keys:
            if self.sky is not None and k in SKY_KEYS:
                if k == "geocent_time":
                    p = prior[k]
                    name, lo, hi = (f"{self.sky.detectors[0]}_time", float(p.minimum) - ARRIVAL_TIME_MARGIN,
                                    float(p.maximum) + ARRIVAL_TIME_MARGIN)
                elif k == "ra":
                    name, lo, hi = "zenith", 0.0, np.pi
                else:
                    name, lo, hi = "azimuth", 0.0, 2 * np.pi
            else:
                p = prior[k]
                name, lo, hi = k, float(getattr(p, "minimum", -np.inf)), float(getattr(p, "maximum", np.inf))
            self.names.append(name)
            lower.append(lo)
            upper.append(hi)
        self.box = LogitBox(lower, upper)
        if self.sky is not None:
            self._sky_idx = [self.keys.index(k) for k in SKY_KEYS]

    @property
    def dim(self) -> int:
        return len(self.keys)

    def to_unbounded(self, samples: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(u (N, D), log |du/dx| (N,)) of physical samples; non-finite u outside the intervals."""
        y = np.stack([np.asarray(samples[k], dtype=float) for k in self.keys], axis=-1)
        log_det = np.zeros(len(y))
        if self.sky is not None:
            i, j, m = self._sky_idx
            y[:, i], y[:, j], y[:, m], log_det = self.sky.forward(y[:, i], y[:, j], y[:, m])
        u = self.box.forward(y)
        return u, log_det + self.box.log_abs_det_forward(u)

    def from_unbounded(self, u: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(physical samples, log |du/dx| (N,)) of unbounded vectors u (N, D)."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        y = self.box.inverse(u)
        log_det = np.zeros(len(y))
        if self.sky is not None:
            i, j, m = self._sky_idx
            y[:, i], y[:, j], y[:, m], log_det = self.sky.inverse(y[:, i], y[:, j], y[:, m])
        return {k: y[:, n] for n, k in enumerate(self.keys)}, log_det + self.box.log_abs_det_forward(u)

    def to_dict(self) -> dict:
        return {"keys": self.keys, "coordinates": self.names, "lower": self.box.lower.tolist(),
                "upper": self.box.upper.tolist(),
                "sky_frame": None if self.sky is None else {"detectors": self.sky.detectors,
                                                            "gmst": self.sky.gmst}}
