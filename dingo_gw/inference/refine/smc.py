"""Tempered sequential Monte Carlo from a proposal density towards the posterior.

Particles start as draws from a density q_0 of the parameters θ (all but the phase) and follow the
path of targets

    p_β(θ) ∝ q_0(θ)^(1-β) [π(θ) L_φ(θ)]^β,    0 = β_0 < β_1 < ... < β_S = 1,

where L_φ is the likelihood with the phase marginalised (uniform phase prior), and also the
distance when θ lacks it (:mod:`~dingo_gw.likelihood.distance_recovery`). With a phase
recovered by :mod:`~dingo_gw.likelihood.phase_recovery`, π(θ, φ) L(θ, φ) / q(φ | θ) = π(θ) L_φ(θ)
exactly for approximants obeying the rotation model (an unbiased estimate otherwise; with the
distance, up to its interpolation error ≲ 0.01), so each evaluation costs one waveform. Each stage
picks β_{s+1} so that the effective sample size of the incremental weights stays at
``target_ess`` N (bisection), resamples (systematic) and moves every
particle by ``mcmc_steps`` Metropolis-Hastings steps (with ``min_moves``: more, until the particles
have been moved that many times on average, at most ``max_mcmc_steps``) in the unbounded coordinates of
:class:`~dingo_gw.inference.refine.proposal_coordinates.ProposalCoordinates`, alternating independent
proposals from a Gaussian mixture fitted to the particles (large jumps between modes and along
curved ridges) and random-walk steps with the particles' covariance, scaled towards an acceptance
rate of 0.25; ``final_mcmc_steps`` more steps at β = 1 let the population spread into the
posterior's tails. The product of the mean incremental weights is
an estimate of the evidence (logged as a cross-check, not used as the result).

Particles concentrate where the posterior is, which is all :mod:`~dingo_gw.inference.refine.refine`
needs: the final answer comes from importance sampling of a density fitted to them.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from dingo_gw.errors import DataError
from dingo_gw.likelihood.distance_recovery import with_reference_distance
from dingo_gw.inference.importance.importance_sampling import (
    complete_samples, distance_recovery, evaluate_weights, prior_support,
)
from dingo_gw.inference.refine.mixture import GaussianMixture
from dingo_gw.likelihood.phase_recovery import rotation_model_holds

#: Components of the Gaussian mixture fitted to the particles for independent Metropolis-Hastings moves.
MAX_COMPONENTS = 8

logger = logging.getLogger(__name__)


@dataclass
class SMCSettings:
    num_particles: int = 1000
    mcmc_steps: int = 6
    target_ess: float = 0.5
    max_stages: int = 100
    max_seconds: float = float("inf")
    #: Extra Metropolis-Hastings steps at β = 1, so that the particles spread into the posterior's tails
    #: (a few steps per stage leave the population narrower than the posterior).
    final_mcmc_steps: int = 0
    #: Adaptive moves: after ``mcmc_steps``, a stage keeps stepping until every particle has been moved
    #: ``min_moves`` times on average (sum of the acceptance rates), at most ``max_mcmc_steps`` steps; 0: off.
    #: Resampling duplicates particles; at low acceptance (narrow, curved posteriors) a fixed few steps leave
    #: the duplicates where they are and the population collapses onto a few points.
    min_moves: float = 0.0
    max_mcmc_steps: int = 30


@dataclass
class SMCOutput:
    """Equally weighted particles at the last β (physical samples, dict of arrays), that β, the
    evidence estimate (product of the mean incremental weights), a record per stage, the
    number of likelihood evaluations and the particles' log π + log L_φ."""

    samples: dict
    beta: float
    log_evidence: float
    stages: list = field(default_factory=list)
    num_likelihood_evaluations: int = 0
    log_target: np.ndarray | None = None  # log π + log L_φ of each particle


class MarginalPosterior:
    """log π(θ) + log L_φ(θ) of physical samples (dict of arrays); -inf outside the prior's support."""

    def __init__(self, prior, likelihood, rng: np.random.Generator, workers: int = 1, chunk_size: int = 256):
        self.prior, self.likelihood, self.rng, self.workers = prior, likelihood, rng, workers
        self.chunk_size = chunk_size
        self.evaluations = 0
        self.exact_rotation = None  # phase recovery's rotation model, checked on the first call

    def __call__(self, samples: dict) -> np.ndarray:
        n = len(next(iter(samples.values())))
        out = np.full(n, -np.inf)
        inside = prior_support(samples, self.prior)
        if not inside.any():
            return out
        sub = {k: np.asarray(v, dtype=float)[inside] for k, v in samples.items()}
        if self.exact_rotation is None:
            full, recover = complete_samples(sub, self.prior)
            full = with_reference_distance(full, distance_recovery(self.prior, recover))
            self.exact_rotation = rotation_model_holds(self.likelihood, full, self.rng, self.workers)
        ws = evaluate_weights(sub, np.zeros(int(inside.sum())), self.prior, self.likelihood, self.rng,
                              workers=self.workers, chunk_size=self.chunk_size, exact_rotation=self.exact_rotation)
        self.evaluations += int(inside.sum())
        with np.errstate(invalid="ignore"):
            value = ws.log_prior + ws.log_likelihood - ws.log_proposal  # log_proposal = log q(φ | θ)
        out[inside] = np.where(np.isfinite(value), value, -np.inf)
        return out


def _ess(log_w: np.ndarray) -> float:
    if not np.isfinite(log_w).any():
        return 0.0
    w = np.exp(log_w - np.max(log_w))
    return float(w.sum() ** 2 / np.sum(w**2))


def _next_beta(delta: np.ndarray, beta: float, target: float, iterations: int = 50) -> float:
    """Largest β' in (β, 1] with ESS(exp((β' - β) Δ)) >= target (or β' = 1)."""
    if _ess(np.where(np.isfinite(delta), (1.0 - beta) * delta, -np.inf)) >= target:
        return 1.0
    lo, hi = 0.0, 1.0 - beta
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if _ess(np.where(np.isfinite(delta), mid * delta, -np.inf)) >= target:
            lo = mid
        else:
            hi = mid
    return beta + max(lo, 1e-12)


def _systematic(log_w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    w = np.exp(log_w - logsumexp(log_w))
    positions = (rng.random() + np.arange(len(w))) / len(w)
    return np.minimum(np.searchsorted(np.cumsum(w), positions), len(w) - 1)


def _move(u, x, log_det, log_g, ell, beta, scale, steps, coords, mix, target, rng, min_moves=0.0, max_steps=0):
    """``steps`` Metropolis-Hastings steps of every particle at β, alternating independent proposals from a
    Gaussian mixture fitted to the particles with random-walk steps, then more (up to ``max_steps`` in all)
    until the acceptance rates sum to ``min_moves``; arrays are updated in place.
    Returns (random-walk scale, accepted fraction per kind, number of steps)."""
    n, dim = u.shape
    fitted = None
    try:  # resampled particles repeat: fit the distinct ones, weighted by their counts (half the cost)
        distinct, counts = np.unique(u, axis=0, return_counts=True)
        fitted = GaussianMixture.fit(distinct, rng, max_components=MAX_COMPONENTS,
                                     sample_weights=counts).widened(0.1, 2.0)
    except DataError:
        pass
    accepted = {"independent": 0.0, "random_walk": 0.0}
    count = {"independent": 0, "random_walk": 0}
    step, moves = 0, 0.0
    while step < steps or (moves < min_moves and step < max_steps):
        independent = fitted is not None and step % 2 == 0
        if independent:
            u_new = fitted.sample(n, rng)
            log_ratio_q = fitted.log_prob(u) - fitted.log_prob(u_new)
        else:
            chol = np.linalg.cholesky(np.cov(u.T) + 1e-9 * np.eye(dim))
            u_new = u + scale * rng.standard_normal((n, dim)) @ chol.T
            log_ratio_q = 0.0
        x_new, det_new = coords.from_unbounded(u_new)
        g_new = mix.log_prob(u_new)
        ell_new = target(x_new)
        lp_old = (1 - beta) * log_g + beta * (ell - log_det)
        lp_new = (1 - beta) * g_new + beta * (ell_new - det_new)
        with np.errstate(invalid="ignore"):
            accept = np.log(rng.random(n)) < (lp_new - lp_old + log_ratio_q)
        accept &= np.isfinite(lp_new)
        u[accept], log_det[accept], log_g[accept], ell[accept] = (
            u_new[accept], det_new[accept], g_new[accept], ell_new[accept])
        for k in x:
            x[k][accept] = x_new[k][accept]
        rate = float(accept.mean())
        moves += rate
        step += 1
        kind = "independent" if independent else "random_walk"
        accepted[kind] += rate
        count[kind] += 1
        if not independent:
            scale *= math.exp(rate - 0.25)
    return scale, {kind: accepted[kind] / max(count[kind], 1) for kind in accepted}, step


def _distinct_fraction(u: np.ndarray) -> float:
    """Fraction of particles that are distinct points."""
    return len(np.unique(u, axis=0)) / len(u)


def tempered_smc(base, target: MarginalPosterior, settings: SMCSettings, rng: np.random.Generator) -> SMCOutput:
    """Run the sampler from ``base`` (``base.coords``: the unbounded coordinates; ``base.density``: q_0 in
    them, with ``sample`` and ``log_prob``) to β = 1, or until ``max_stages``/``max_seconds``."""
    coords, mix = base.coords, base.density
    n, dim = settings.num_particles, coords.dim
    t_start = time.perf_counter()
    u = mix.sample(n, rng)
    x, log_det = coords.from_unbounded(u)
    log_g = mix.log_prob(u)
    ell = target(x)
    beta, log_z, stages, scale = 0.0, 0.0, [], 2.38 / math.sqrt(dim)
    if not np.isfinite(ell).any():
        raise DataError("refinement: no particle has a finite likelihood and prior")
    for s in range(1, settings.max_stages + 1):
        delta = (ell - log_det) - log_g  # log p_1 - log q_0 in u-space, up to a constant
        new_beta = _next_beta(delta, beta, settings.target_ess * n)
        inc = np.where(np.isfinite(delta), (new_beta - beta) * delta, -np.inf)
        log_z += float(logsumexp(inc) - math.log(n))
        beta = new_beta
        idx = _systematic(inc, rng)
        u, log_det, log_g, ell = u[idx], log_det[idx], log_g[idx], ell[idx]
        x = {k: v[idx] for k, v in x.items()}
        distinct = _distinct_fraction(u)
        scale, accepted, steps = _move(u, x, log_det, log_g, ell, beta, scale, settings.mcmc_steps, coords, mix,
                                       target, rng, settings.min_moves, settings.max_mcmc_steps)
        stages.append({"stage": s, "beta": beta, "accepted_moves": accepted, "scale": scale, "mcmc_steps": steps,
                       "distinct_after_resampling": distinct, "distinct_after_moves": _distinct_fraction(u),
                       "max_log_target": float(np.max(ell)), "seconds": time.perf_counter() - t_start})
        logger.info("SMC stage %d: beta %.4g, %d steps, accepted moves: independent %.2f, random walk %.2f; distinct "
                    "particles %.2f -> %.2f; max log(π L) %.2f", s, beta, steps, accepted["independent"],
                    accepted["random_walk"], distinct, stages[-1]["distinct_after_moves"], np.max(ell))
        if beta >= 1.0 or time.perf_counter() - t_start > settings.max_seconds:
            break
    if beta >= 1.0 and settings.final_mcmc_steps > 0:
        scale, accepted, steps = _move(u, x, log_det, log_g, ell, beta, scale, settings.final_mcmc_steps, coords, mix,
                                       target, rng)
        stages.append({"stage": "final_moves", "beta": beta, "accepted_moves": accepted, "scale": scale,
                       "mcmc_steps": steps, "distinct_after_moves": _distinct_fraction(u),
                       "max_log_target": float(np.max(ell)), "seconds": time.perf_counter() - t_start})
    return SMCOutput(x, beta, log_z, stages, target.evaluations, ell)
