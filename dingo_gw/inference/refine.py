"""Refining a network proposal with the exact likelihood when its sample efficiency is too low.

A network that is not trained to convergence (e.g. one trained for an hour on a laptop CPU) gives
a proposal q_net(θ | d) that covers the posterior but is much broader than it, so importance
sampling of q_net alone has a tiny sample efficiency. :func:`refine` then builds a better proposal
in three steps:

1. fit a Gaussian mixture g_0 (:class:`~dingo_gw.inference.mixture.GaussianMixture`, number of
   components by BIC) to the network's samples, in the unbounded coordinates of
   :class:`~dingo_gw.inference.proposal_coordinates.ProposalCoordinates` (logit of each parameter
   scaled to its prior's interval; sky position and time as arrival time at the first detector and
   angles about the detector baseline);
2. move ``num_particles`` particles from g_0 to the posterior by tempered sequential Monte Carlo
   (:mod:`~dingo_gw.inference.smc`, likelihood with the phase marginalised);
3. fit a density to the particles, q = ½ neural spline flow + ½ Student-t mixture (the mixture is
   widened: 10 % of its mass has covariances × 4), draw ``num_samples`` fresh samples from it,
   recover the phase and importance-sample: weights π L / (q(θ) q(φ | θ)).

The result is step 3 alone: draws from one fixed density with a known, normalised log q, so its
weights, n_eff and evidence are those of ordinary importance sampling and are exact whatever the
quality of the fits (a poor fit shows as a low n_eff, not as a bias); steps 1–2 only shape q. Units
and frames are those of importance sampling (bilby names, geocent_time in s relative to the trigger
time, ra in the event's sky frame).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from dingo_gw.errors import DataError
from dingo_gw.inference.importance_sampling import (
    WeightedSamples, evaluate_weights, prior_support, weight_statistics,
)
from dingo_gw.inference.flow_density import FlowDensity
from dingo_gw.inference.mixture import DensitySum, GaussianMixture
from dingo_gw.inference.proposal_coordinates import ProposalCoordinates
from dingo_gw.inference.smc import MarginalPosterior, SMCSettings, tempered_smc

logger = logging.getLogger(__name__)

#: Default sample efficiency below which analyze refines a network proposal.
DEFAULT_TARGET_EFFICIENCY = 0.1
#: Defensive part of the mixture: this fraction has covariances times WIDEN_FACTOR².
WIDEN_FRACTION = 0.1
WIDEN_FACTOR = 2.0
#: Degrees of freedom of the Student-t components (tails heavier than the posterior's, so that weights
#: stay bounded).
STUDENT_DOF = 4.0
MAX_COMPONENTS = 16
#: Weight of the flow in the final proposal (the rest: the widened Student-t mixture). As a sum, the
#: proposal's weights are at most 1 / weight times those of either part alone.
FLOW_WEIGHT = 0.5


@dataclass
class RefineSettings:
    """``num_samples``: importance samples of step 3; ``num_particles``, ``mcmc_steps``: of the SMC of
    step 2, which stops at ``max_seconds`` even before β = 1 (its particles then still shape the
    proposal); ``workers``: likelihood processes; ``seed``: all random draws."""

    num_samples: int = 20000
    num_particles: int = 2000
    mcmc_steps: int = 6
    max_stages: int = 100
    max_seconds: float = 600.0
    workers: int = 1
    seed: int = 0
    progress: bool = False


@dataclass
class RefineOutput:
    """Step 3's weighted samples (the result), its proposal, and a record of each step."""

    weighted: WeightedSamples
    proposal: "BoundedDensity"
    stages: list[dict] = field(default_factory=list)
    num_likelihood_evaluations: int = 0


class BoundedDensity:
    """Proposal density of physical parameters: a density on R^D (``log_prob``, ``sample``) in
    :class:`ProposalCoordinates`, with the coordinates' Jacobian."""

    def __init__(self, coords: ProposalCoordinates, density):
        self.coords, self.density = coords, density

    def sample(self, n: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """n draws (dict of arrays, physical parameters) and their log q."""
        u = self.density.sample(n, rng)
        samples, log_det = self.coords.from_unbounded(u)
        return samples, self.density.log_prob(u) + log_det

    def log_prob(self, samples: Mapping[str, np.ndarray]) -> np.ndarray:
        """log q (N,) of physical samples (dict of arrays); -inf outside the coordinates' box."""
        u, log_det = self.coords.to_unbounded(samples)
        ok = np.all(np.isfinite(u), axis=-1) & np.isfinite(log_det)
        out = np.full(len(u), -np.inf)
        out[ok] = self.density.log_prob(u[ok]) + log_det[ok]
        return out

    def to_dict(self) -> dict:
        return {"coordinates": self.coords.to_dict(), "density": self.density.to_dict()}


def _unbounded_weighted(samples, coords, log_weights):
    """Unique points u (M, D) of (weighted) samples in the unbounded coordinates and their weights (sums
    over repeats: resampled SMC particles repeat, and a held-out split for early stopping must not see
    copies of training points)."""
    u, _ = coords.to_unbounded(samples)
    lw = np.zeros(len(u)) if log_weights is None else np.asarray(log_weights, dtype=float)
    ok = np.isfinite(lw) & np.all(np.isfinite(u), axis=-1)
    if not ok.any():
        raise DataError("refinement: no sample with a finite weight to fit a proposal to")
    w = np.exp(lw[ok] - lw[ok].max())
    unique, inverse = np.unique(u[ok], axis=0, return_inverse=True)
    return unique, np.bincount(inverse.reshape(-1), weights=w, minlength=len(unique))


def _t_mixture(u: np.ndarray, w: np.ndarray, rng: np.random.Generator) -> GaussianMixture:
    """Widened Student-t mixture fitted to weighted points u (M, D)."""
    g = GaussianMixture.fit(u, rng, max_components=MAX_COMPONENTS, sample_weights=w)
    return g.student_t(STUDENT_DOF).widened(WIDEN_FRACTION, WIDEN_FACTOR)


def fit_mixture(samples: Mapping[str, np.ndarray], coords: ProposalCoordinates, log_weights: np.ndarray | None,
                rng: np.random.Generator) -> BoundedDensity:
    """Widened Student-t mixture fitted to (weighted) samples (dict of arrays) in the unbounded coordinates."""
    u, w = _unbounded_weighted(samples, coords, log_weights)
    return BoundedDensity(coords, _t_mixture(u, w, rng))


def fit_proposal(samples: Mapping[str, np.ndarray], coords: ProposalCoordinates, log_weights: np.ndarray | None,
                 rng: np.random.Generator, seed: int = 0) -> BoundedDensity:
    """Importance-sampling proposal from (weighted) samples: FLOW_WEIGHT neural spline flow + the rest
    widened Student-t mixture (the defensive part), in the unbounded coordinates."""
    u, w = _unbounded_weighted(samples, coords, log_weights)
    mixture = _t_mixture(u, w, rng)
    flow = FlowDensity.fit(u, seed=seed, sample_weights=w)
    return BoundedDensity(coords, DensitySum([FLOW_WEIGHT, 1 - FLOW_WEIGHT], [flow, mixture]))


def draw_and_weigh(proposal: BoundedDensity, n: int, prior, likelihood, rng: np.random.Generator,
                   workers: int = 1, progress: bool = False) -> WeightedSamples:
    """Draw n samples from ``proposal`` and compute log L, log π, log q (with the recovered phase's
    log q(φ | θ)). Samples outside the prior's support (constraints) keep log π = -inf (weight zero)
    without a likelihood evaluation, so that n_eff and the evidence count every draw."""
    samples, log_q = proposal.sample(n, rng)
    inside = prior_support(samples, prior)
    if not inside.any():
        raise DataError("refinement: no draw of the fitted proposal lies inside the prior")
    sub = {k: v[inside] for k, v in samples.items()}
    ws = evaluate_weights(sub, log_q[inside], prior, likelihood, rng, workers=workers, progress=progress)
    if inside.all():
        return ws
    full = {}
    for k, v in ws.samples.items():
        x = np.full(n, np.nan)
        x[inside] = v
        if k in samples:
            x[~inside] = samples[k][~inside]
        full[k] = x
    logl, logp, logq = (np.full(n, np.nan) for _ in range(3))
    logl[inside], logp[inside], logq[inside] = ws.log_likelihood, ws.log_prior, ws.log_proposal
    logp[~inside] = -np.inf
    logq[~inside] = log_q[~inside]
    return WeightedSamples(full, logl, logp, logq)


def refine(initial: Mapping[str, np.ndarray], coords: ProposalCoordinates, prior, likelihood,
           settings: RefineSettings) -> RefineOutput:
    """Refine the network proposal given by its samples ``initial`` (dict of arrays: the accepted
    proposal samples inside the prior's support). ``coords``: the parameters whose proposal is
    refined and their unbounded coordinates; others are recovered (the phase) or fixed."""
    t0 = time.perf_counter()
    base = fit_mixture(initial, coords, None, np.random.default_rng([settings.seed, 23, 0]))
    target = MarginalPosterior(prior, likelihood, np.random.default_rng([settings.seed, 23, 1]), settings.workers)
    smc = tempered_smc(base, target, SMCSettings(
        num_particles=settings.num_particles, mcmc_steps=settings.mcmc_steps, max_stages=settings.max_stages,
        max_seconds=settings.max_seconds),
        np.random.default_rng([settings.seed, 23, 2]))
    stages = [{"stage": "smc", "beta": smc.beta, "num_stages": len(smc.stages), "log_evidence": smc.log_evidence,
               "num_particles": settings.num_particles, "num_likelihood_evaluations": smc.num_likelihood_evaluations,
               "seconds": time.perf_counter() - t0, "schedule": smc.stages}]
    if smc.beta < 1.0:
        logger.warning("refinement: SMC stopped at beta %.3g < 1 after %.0f s; fitting the proposal to its particles",
                       smc.beta, time.perf_counter() - t0)
    t1 = time.perf_counter()
    rng = np.random.default_rng([settings.seed, 23, 10])
    proposal = fit_proposal(smc.samples, coords, None, rng, seed=settings.seed)
    t2 = time.perf_counter()
    ws = draw_and_weigh(proposal, settings.num_samples, prior, likelihood, rng, settings.workers, settings.progress)
    stats = weight_statistics(ws.log_weights)
    stages.append({"stage": "importance_sampling", "num_samples": settings.num_samples,
                   "proposal": proposal.density.to_dict(), "efficiency": stats["sample_efficiency"],
                   "n_eff": stats["n_eff"], "log_evidence": stats["log_evidence"],
                   "fit_seconds": t2 - t1, "seconds": time.perf_counter() - t1})
    logger.info("refinement: importance sampling of the fitted proposal: efficiency %.3g %% (n_eff %.1f), log Z %.3f",
                100 * stats["sample_efficiency"], stats["n_eff"], stats["log_evidence"])
    return RefineOutput(ws, proposal, stages, smc.num_likelihood_evaluations + settings.num_samples)
