"""Priors as bilby PriorDicts, the project's defaults, and parameter conversions.

Parameter names follow bilby: chirp_mass and mass_1/mass_2 in detector-frame solar masses,
luminosity_distance in Mpc, angles in radians, geocent_time in GPS seconds (in a bank: seconds
relative to the reference time 0).
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from dingo_gw.errors import ConfigError

#: Intrinsic parameters of a precessing BBH, in the order used in banks.
INTRINSIC_PARAMETERS = (
    "chirp_mass", "mass_ratio", "a_1", "a_2", "tilt_1", "tilt_2", "phi_12", "phi_jl", "theta_jn", "phase",
)

#: Extrinsic parameters, applied analytically after waveform generation.
EXTRINSIC_PARAMETERS = ("luminosity_distance", "geocent_time", "ra", "dec", "psi")

#: Values of the extrinsic parameters at which bank waveforms are generated.
REFERENCE_EXTRINSIC = {"luminosity_distance": 100.0, "geocent_time": 0.0}

#: Default intrinsic prior: heavy BBHs of O1/O2 (detector frame), precessing spins.
DEFAULT_INTRINSIC_PRIOR: dict[str, str] = {
    "mass_1": "Constraint(minimum=5.0, maximum=200.0)",
    "mass_2": "Constraint(minimum=5.0, maximum=200.0)",
    "chirp_mass": "bilby.gw.prior.UniformInComponentsChirpMass(minimum=15.0, maximum=60.0)",
    "mass_ratio": "bilby.gw.prior.UniformInComponentsMassRatio(minimum=0.25, maximum=1.0)",
    "a_1": "Uniform(minimum=0.0, maximum=0.99)",
    "a_2": "Uniform(minimum=0.0, maximum=0.99)",
    "tilt_1": "Sine(minimum=0.0, maximum=3.141592653589793)",
    "tilt_2": "Sine(minimum=0.0, maximum=3.141592653589793)",
    "phi_12": "Uniform(minimum=0.0, maximum=6.283185307179586, boundary='periodic')",
    "phi_jl": "Uniform(minimum=0.0, maximum=6.283185307179586, boundary='periodic')",
    "theta_jn": "Sine(minimum=0.0, maximum=3.141592653589793)",
    "phase": "Uniform(minimum=0.0, maximum=6.283185307179586, boundary='periodic')",
}

#: Default extrinsic prior (geocent_time relative to the trigger time, seconds).
DEFAULT_EXTRINSIC_PRIOR: dict[str, str] = {
    "luminosity_distance": "bilby.gw.prior.UniformComovingVolume(minimum=100.0, maximum=2000.0, name='luminosity_distance')",
    "geocent_time": "Uniform(minimum=-0.1, maximum=0.1)",
    "ra": "Uniform(minimum=0.0, maximum=6.283185307179586, boundary='periodic')",
    "dec": "Cosine(minimum=-1.5707963267948966, maximum=1.5707963267948966)",
    "psi": "Uniform(minimum=0.0, maximum=3.141592653589793, boundary='periodic')",
}


@contextlib.contextmanager
def _quiet_bilby():
    logger = logging.getLogger("bilby")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def build_prior(spec: str | Path | Mapping[str, str | float] | None, default: Mapping[str, str] | None = None):
    """A bilby BBHPriorDict from a .prior file path, a dict of bilby prior strings/numbers, or None.

    ``None`` gives ``default`` (the intrinsic default when not given). Numbers become
    DeltaFunction priors. Strings (in dicts and ``.prior`` files alike) go through the restricted
    parser :mod:`dingo_gw.prior_parser`, never through bilby's ``eval``; an invalid or refused
    entry raises ConfigError naming the key. Every prior built from a file (configs, network
    metadata, checkpoints, proposal files) must come through here.
    """
    import bilby

    from dingo_gw.prior_parser import read_prior_file

    if spec is None:
        spec = dict(default if default is not None else DEFAULT_INTRINSIC_PRIOR)
    with _quiet_bilby():
        if isinstance(spec, (str, Path)):
            path = Path(spec)
            if not path.is_file():
                raise ConfigError(f"prior file not found: {path}")
            priors = read_prior_file(path)
        else:
            if not isinstance(spec, Mapping):
                raise ConfigError(f"prior: expected a mapping of bilby prior strings, got {type(spec).__name__}")
            priors = {}
            for key, value in spec.items():
                priors[str(key)] = _build_one(str(key), value)
        return bilby.gw.prior.BBHPriorDict(dictionary=priors)


def _build_one(key: str, value):
    import bilby

    from dingo_gw.prior_parser import parse_prior

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return bilby.core.prior.DeltaFunction(peak=float(value), name=key)
    if isinstance(value, bilby.core.prior.Prior):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"prior.{key}: expected a bilby prior string or a number, got {repr(value)[:80]}")
    return parse_prior(key, value)


def sample_prior(prior, n: int, seed: int | None = None) -> dict[str, np.ndarray]:
    """Draw ``n`` samples from a bilby PriorDict (constraints respected), reproducibly.

    Returns a dict of float64 arrays of the sampled keys (constraints excluded).
    """
    import bilby

    rng_state = np.random.get_state()
    try:
        if seed is not None:
            np.random.seed(seed % (2**32))
            bilby.core.utils.random.seed(seed % (2**32))
        with _quiet_bilby():
            samples = prior.sample(n)
    finally:
        np.random.set_state(rng_state)
    return {k: np.asarray(v, dtype=float) for k, v in samples.items()}


def component_masses(chirp_mass, mass_ratio):
    """(mass_1, mass_2) in solar masses from chirp mass and mass ratio q = m2/m1 <= 1 (NaN where
    q <= 0, e.g. for network draws outside the prior, which carry zero weight)."""
    chirp_mass = np.asarray(chirp_mass, dtype=float)
    q = np.asarray(mass_ratio, dtype=float)
    q = np.where(q > 0, q, np.nan)
    with np.errstate(invalid="ignore"):
        total = chirp_mass * (1 + q) ** 1.2 / q**0.6
    m1 = total / (1 + q)
    return m1, m1 * q


def chi_eff(mass_1, mass_2, a_1, a_2, tilt_1, tilt_2):
    """Effective aligned spin (m1 a1 cos t1 + m2 a2 cos t2) / (m1 + m2)."""
    return (mass_1 * a_1 * np.cos(tilt_1) + mass_2 * a_2 * np.cos(tilt_2)) / (mass_1 + mass_2)
