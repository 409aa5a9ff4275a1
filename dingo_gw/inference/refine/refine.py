"""Refining a network proposal with the likelihood when its sample efficiency is too low.

A network that is not trained to convergence (e.g. one trained for an hour on a laptop CPU) gives
a proposal q_net(θ | d) that covers the posterior but is much broader than it, so importance
sampling of q_net alone has a tiny sample efficiency. :func:`refine` then builds a better proposal
in three steps:

1. fit a Gaussian mixture g_0 (:class:`~dingo_gw.inference.refine.mixture.GaussianMixture`, number of
   components by BIC) to (at most 3000 of) the network's samples, in the unbounded coordinates of
   :class:`~dingo_gw.inference.refine.proposal_coordinates.ProposalCoordinates` (logit of each parameter
   scaled to its prior's interval; sky position and time as arrival time at the first detector and
   angles about the detector baseline);
2. move ``num_particles`` particles from g_0 to the posterior by tempered sequential Monte Carlo
   (:mod:`~dingo_gw.inference.refine.smc`, likelihood with the phase marginalised), with
   ``final_mcmc_steps`` extra Metropolis-Hastings steps at β = 1; ``smc_passes`` - 1 more times from a
   mixture fitted to the previous particles (:func:`repeated_smc`);
3. fit a density to the particles, q_fit = ½ neural spline flow (coupling transforms, Student-t base)
   + ½ Student-t mixture (widened: 10 % of its mass has covariances × 4), complete it with correction
   kernels, q = 0.9 q_fit + 0.1 K, where K is a Gaussian kernel mixture at the particles of largest
   π L_φ / q_fit (known from the SMC: no new likelihood evaluation), i.e. where q_fit falls short of
   the posterior and its weights would be largest; draw ``num_samples`` fresh samples from q,
   recover the phase and importance-sample: weights π L / (q(θ) q(φ | θ)).

When ``coords`` leave out the luminosity distance (analyze's default), steps 2–3 work on the other
parameters with the distance marginalised too: it is drawn with the phase from its conditional
posterior (:mod:`~dingo_gw.likelihood.distance_recovery`), and the weights are π L / (q(θ) q(d_L, φ | θ)).
The fitted densities then need not follow the distance–inclination degeneracy (on GW150914: n_eff
4–20 times larger).

Given a ``fiducial`` point (the network sample of largest likelihood), steps 2 and 3 evaluate the
likelihood by relative binning (:mod:`~dingo_gw.likelihood.relative_binning`, ~5x cheaper per
evaluation, |Δ log L| ~ 0.01 near the posterior), re-centred on the best SMC particle before step 3;
then the samples get the exact likelihood in decreasing order of weight, in rounds (the weights, and
their total, recomputed after each), until the samples left with the relative-binning log L carry less
than EXACT_WEIGHT_RESIDUAL (10⁻³) of the total weight (:func:`exact_correction`; the number of exact
evaluations and the fraction left are recorded). That fraction is itself computed with relative
binning, so an audit follows (:func:`audit_unevaluated`): 1000 of the samples left, drawn uniformly,
get the exact log L, which estimates without bias the weight the rest would carry with the exact
likelihood (recorded); if it is not below EXACT_AUDIT_LIMIT (10⁻²), all of them are evaluated. The
weights are thus exact for all but a recorded ≤ 10⁻³ of the total weight (by the binned weights; the
audit's estimate of the same is recorded too), whose log L is off by |Δ log L| ~ 0.01–0.3.

With a ``target_neff`` step 3 draws further batches of ``num_samples`` from the same q until n_eff
reaches it or a budget of draws or time is spent
(:class:`~dingo_gw.inference.importance.importance_sampling.DrawBudget`); the weights of all batches
together are one importance sampling of q.

The result is step 3 alone: draws from one fixed density with a known, normalised log q, so its
weights, n_eff and evidence are those of ordinary importance sampling whatever the quality of the
fits (a poor fit shows as a low n_eff, not as a bias); steps 1–2 only shape q. Units and frames are
those of importance sampling (bilby names, geocent_time in s relative to the trigger time, ra in
the event's sky frame).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np

from dingo_gw.errors import DataError
from dingo_gw.inference.importance.importance_sampling import (
    DrawBudget, WeightedSamples, evaluate_weights, prior_support, weight_statistics,
)
from dingo_gw.inference.refine.flow_density import FlowDensity, torch_threads
from dingo_gw.inference.refine.mixture import DensitySum, GaussianMixture, KernelMixture
from dingo_gw.inference.refine.proposal_coordinates import ProposalCoordinates
from dingo_gw.likelihood.relative_binning import DEFAULT_EPSILON, RelativeBinningLikelihood
from dingo_gw.inference.refine.smc import MarginalPosterior, SMCSettings, tempered_smc

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
#: Degrees of freedom of the flow's Student-t base: polynomial tails, so that the flow does not vanish where
#: the particles thin out (logit coordinates of spin magnitudes, mass ratios near 1 and periodic angles have
#: exponential tails).
FLOW_BASE_DOF = 5.0
#: Correction part of the proposal: this fraction of it is a kernel mixture at the particles, weighted by
#: target / (flow + Student-t mixture) at each particle, with the particles' covariance times
#: CORRECTION_BANDWIDTH².
CORRECTION_WEIGHT = 0.1
CORRECTION_BANDWIDTH = 0.3
#: Kernels only at the CORRECTION_KERNELS particles of largest target / fit (the holes of the fit; their cost
#: grows with draws x kernels).
CORRECTION_KERNELS = 256
#: Coupling transforms (2 passes): sampling costs one pass like the density, instead of one pass per
#: dimension for a fully autoregressive flow (37 s instead of ~4 s for 10^5 samples in 14 dimensions).
FLOW_PASSES = 2
#: The SMC's starting mixture is fitted to at most this many network samples (the fit's cost grows with
#: samples x components; the starting density need not be accurate).
BASE_MAX_SAMPLES = 3000
#: SMC passes (:func:`repeated_smc`): each after the first starts from a fit to the previous one's particles
#: (2 raised n_eff 3-11x on a low-mass event and injection, not on GW150914/GW170814: docs/events.md §5).
SMC_PASSES = 1
#: Likelihood evaluations per batch with relative binning (cheap waveforms: larger batches for the pool).
BINNED_CHUNK = 2048
#: A larger |Δ log L| between relative binning and the exact likelihood is logged as a warning.
BINNING_WARN_DELTA = 0.5
#: Exact weights: samples get the exact likelihood in decreasing order of weight until the (relative-binning)
#: weight of those left is below this fraction of the total weight.
EXACT_WEIGHT_RESIDUAL = 1e-3
#: At least this many exact evaluations per round of that rule (the weights are recomputed after each round).
EXACT_MIN_CHUNK = 1000
#: After that rule, this many of the samples left with the relative-binning log L, drawn uniformly, get the exact
#: log L too: an unbiased estimate of the weight those left would carry with the exact likelihood (relative
#: binning could under-rate a sample). Above EXACT_AUDIT_LIMIT, all samples left are evaluated. The limit is
#: well above the residual: the rule stops just below the residual, so an estimate of the same weight would
#: exceed it about half the time by noise alone; the audit is there for gross failures of relative binning.
EXACT_AUDIT_SIZE = 1000
EXACT_AUDIT_LIMIT = 1e-2
EXACT_RULE = ("exact likelihood in decreasing order of weight, in rounds of >= {chunk} (weights and their total "
              "recomputed after each), until the samples left with the relative-binning likelihood carry < {residual:g} "
              "of the total weight")


@dataclass
class RefineSettings:
    """``num_samples``: importance samples of step 3; ``num_particles``, ``mcmc_steps`` (per stage),
    ``final_mcmc_steps`` (at β = 1), ``smc_passes``: of the SMC of step 2, which stops at ``max_seconds`` even before
    β = 1 (its particles then still shape the proposal); ``workers``: likelihood processes; ``seed``:
    all random draws; ``relative_binning``, ``binning_epsilon`` (radians per bin), ``exact_residual``
    (:func:`exact_correction`): the likelihood of steps 2–3 (used only when :func:`refine` gets a fiducial
    point). ``target_neff``: draw batches of ``num_samples`` until n_eff reaches it, at most ``max_samples``
    draws in all (default 10 batches) and not after ``time.perf_counter()`` passed ``deadline``
    (``max_time``: the time budget it came from, for the record)."""

    num_samples: int = 200000
    num_particles: int = 4000
    mcmc_steps: int = 6
    final_mcmc_steps: int = 30
    max_stages: int = 100
    max_seconds: float = 600.0
    workers: int = 1
    seed: int = 0
    progress: bool = False
    relative_binning: bool = True
    binning_epsilon: float = DEFAULT_EPSILON
    exact_residual: float = EXACT_WEIGHT_RESIDUAL
    target_neff: float | None = None
    max_samples: int | None = None
    deadline: float | None = None
    max_time: float | None = None
    smc_passes: int = SMC_PASSES


@dataclass
class RefineOutput:
    """Step 3's weighted samples (the result), its proposal, and a record of each step."""

    weighted: WeightedSamples
    proposal: "BoundedDensity"
    stages: list[dict] = field(default_factory=list)
    num_likelihood_evaluations: int = 0
    #: with a target n_eff: meta_data entries stop_reason, num_batches, target_neff (DrawBudget.record)
    batches: dict | None = None


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


def _subsample(samples: Mapping[str, np.ndarray], n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """At most n of the samples (dict of arrays), drawn without replacement."""
    total = len(next(iter(samples.values())))
    if total <= n:
        return dict(samples)
    keep = np.sort(rng.choice(total, n, replace=False))
    return {k: np.asarray(v)[keep] for k, v in samples.items()}


def _t_mixture(u: np.ndarray, w: np.ndarray, rng: np.random.Generator) -> GaussianMixture:
    """Widened Student-t mixture fitted to weighted points u (M, D)."""
    g = GaussianMixture.fit(u, rng, max_components=MAX_COMPONENTS, sample_weights=w)
    return g.student_t(STUDENT_DOF).widened(WIDEN_FRACTION, WIDEN_FACTOR)


def fit_mixture(samples: Mapping[str, np.ndarray], coords: ProposalCoordinates, log_weights: np.ndarray | None,
                rng: np.random.Generator) -> BoundedDensity:
    """Widened Student-t mixture fitted to (weighted) samples (dict of arrays) in the unbounded coordinates."""
    u, w = _unbounded_weighted(samples, coords, log_weights)
    return BoundedDensity(coords, _t_mixture(u, w, rng))


def correction_kernels(samples: Mapping[str, np.ndarray], log_target: np.ndarray, coords: ProposalCoordinates,
                       density) -> KernelMixture:
    """Kernel mixture at the posterior samples (dict of arrays, e.g. SMC particles) weighted by
    target / ``density`` there (``log_target``: log π + log L of each sample in the physical parameters;
    ``density``: a fit in the unbounded coordinates). Samples where the fit falls short of the target get
    the weight: this is where its importance weights would be large. Kernels: the samples' covariance
    times CORRECTION_BANDWIDTH². Its record holds the n_eff of these weights (how uneven they are)."""
    u, log_det = coords.to_unbounded(samples)
    with np.errstate(invalid="ignore"):
        log_ratio = np.asarray(log_target, dtype=float) - log_det - density.log_prob(u)
    ok = np.isfinite(log_ratio) & np.all(np.isfinite(u), axis=-1)
    if ok.sum() < 2 * coords.dim:
        raise DataError("refinement: too few particles with a finite target to place correction kernels")
    w = np.exp(log_ratio[ok] - log_ratio[ok].max())
    info = {"particle_ratio_n_eff": float(w.sum() ** 2 / np.sum(w**2)), "num_particles": int(ok.sum())}
    return KernelMixture(u[ok], w, np.cov(u[ok].T) + 1e-9 * np.eye(coords.dim), CORRECTION_BANDWIDTH, prune=1.0,
                         max_kernels=CORRECTION_KERNELS, info=info)


def fit_proposal(samples: Mapping[str, np.ndarray], coords: ProposalCoordinates, log_weights: np.ndarray | None,
                 rng: np.random.Generator, seed: int = 0, log_target: np.ndarray | None = None) -> BoundedDensity:
    """Importance-sampling proposal from (weighted) samples, in the unbounded coordinates: FLOW_WEIGHT
    neural spline flow (Student-t base) + the rest widened Student-t mixture (the defensive part); with
    ``log_target`` (log π + log L at each sample; equally weighted posterior samples), CORRECTION_WEIGHT of
    the whole is :func:`correction_kernels`."""
    if log_target is not None and log_weights is not None:
        raise DataError("refinement: correction kernels need equally weighted samples")
    u, w = _unbounded_weighted(samples, coords, log_weights)
    mixture = _t_mixture(u, w, rng)
    flow = FlowDensity.fit(u, seed=seed, sample_weights=w, passes=FLOW_PASSES, base_dof=FLOW_BASE_DOF)
    fitted = DensitySum([FLOW_WEIGHT, 1 - FLOW_WEIGHT], [flow, mixture])
    if log_target is None:
        return BoundedDensity(coords, fitted)
    kernels = correction_kernels(samples, log_target, coords, fitted)
    keep = 1 - CORRECTION_WEIGHT
    return BoundedDensity(coords, DensitySum([keep * FLOW_WEIGHT, keep * (1 - FLOW_WEIGHT), CORRECTION_WEIGHT],
                                             [flow, mixture, kernels]))


def draw_and_weigh(proposal: BoundedDensity, n: int, prior, likelihood, rng: np.random.Generator,
                   workers: int = 1, progress: bool = False, chunk_size: int = 256) -> WeightedSamples:
    """Draw n samples from ``proposal`` and compute log L, log π, log q (with the recovered phase's
    log q(φ | θ)). Samples outside the prior's support (constraints) keep log π = -inf (weight zero)
    without a likelihood evaluation, so that n_eff and the evidence count every draw."""
    with torch_threads(workers):  # the waveform processes are idle meanwhile
        samples, log_q = proposal.sample(n, rng)
    inside = prior_support(samples, prior)
    if not inside.any():
        raise DataError("refinement: no draw of the fitted proposal lies inside the prior")
    sub = {k: v[inside] for k, v in samples.items()}
    ws = evaluate_weights(sub, log_q[inside], prior, likelihood, rng, workers=workers, progress=progress,
                          chunk_size=chunk_size)
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


def best_sample(samples: Mapping[str, np.ndarray], score: np.ndarray) -> dict[str, float]:
    """The sample (dict of scalars) with the largest finite ``score``."""
    score = np.where(np.isfinite(score), score, -np.inf)
    if not np.isfinite(score).any():
        raise DataError("refinement: no sample with a finite likelihood to centre relative binning on")
    i = int(np.argmax(score))
    return {k: float(np.asarray(v)[i]) for k, v in samples.items()}


def fiducial_from_particles(smc, prior, likelihood, rng: np.random.Generator, workers: int = 1,
                            candidates: int = 32) -> tuple[dict[str, float], float]:
    """The highest exact-likelihood point (with a recovered phase) among the ``candidates`` SMC particles
    of largest log π + log L_φ, and its exact log L."""
    order = np.argsort(-np.where(np.isfinite(smc.log_target), smc.log_target, -np.inf))[:candidates]
    top = {k: np.asarray(v)[order] for k, v in smc.samples.items()}
    ws = evaluate_weights(top, np.zeros(len(order)), prior, likelihood, rng, workers=workers)
    fiducial = best_sample(ws.samples, ws.log_likelihood)
    return fiducial, float(np.nanmax(ws.log_likelihood))


def exact_correction(ws: WeightedSamples, likelihood, residual: float = EXACT_WEIGHT_RESIDUAL,
                     evaluated: np.ndarray | None = None, workers: int = 1, progress: bool = False,
                     min_chunk: int = EXACT_MIN_CHUNK) -> tuple[WeightedSamples, np.ndarray, int]:
    """Give samples the exact log L (at the same parameters, phase included) in decreasing order of weight
    until those left with their (relative-binning) log L carry less than ``residual`` of the total weight.
    Works in rounds: each evaluates the fewest samples that would meet the rule under the current weights
    (at least ``min_chunk``), then the weights and their total are recomputed. ``evaluated``: mask of samples
    that already have the exact log L. Returns the corrected samples, the new mask and the number of rounds."""
    logl = ws.log_likelihood.copy()
    done = np.zeros(len(ws), dtype=bool) if evaluated is None else np.asarray(evaluated, dtype=bool).copy()
    rounds = 0
    while True:
        w, total = _relative_weights(ws.log_prior, ws.log_proposal, logl)
        pending = np.flatnonzero(~done & (w > 0))
        left = float(w[pending].sum())
        if not total > 0 or left < residual * total or not len(pending):
            break
        order = pending[np.argsort(-w[pending], kind="stable")]
        need = int(np.searchsorted(np.cumsum(w[order]), left - residual * total, side="right")) + 1
        top = order[:max(need, min_chunk)]
        logl[top] = likelihood.log_likelihood({k: v[top] for k, v in ws.samples.items()}, workers=workers,
                                              progress=progress)
        done[top] = True
        rounds += 1
    return WeightedSamples(ws.samples, logl, ws.log_prior, ws.log_proposal), done, rounds


def audit_unevaluated(ws: WeightedSamples, evaluated: np.ndarray, likelihood, rng: np.random.Generator,
                      limit: float = EXACT_AUDIT_LIMIT, size: int = EXACT_AUDIT_SIZE, workers: int = 1,
                      progress: bool = False) -> tuple[WeightedSamples, np.ndarray, dict]:
    """Check the samples :func:`exact_correction` left with their relative-binning log L: ``size`` of them,
    drawn uniformly, get the exact log L; the exact weight of the rest is estimated as (number left / size)
    times the audited samples' exact weight (unbiased for a uniform draw). If that estimate is at least
    ``limit`` of the total, every sample left gets the exact log L. Returns the samples, the new mask and
    a record (audited, estimated weight fraction left, largest |Δ log L| among the audited, action)."""
    logl = ws.log_likelihood.copy()
    done = np.asarray(evaluated, dtype=bool).copy()
    # draws outside the prior's support (weight 0 whatever the likelihood; their recovered parameters are NaN) are
    # not audited
    eligible = np.isfinite(ws.log_prior) & np.isfinite(ws.log_proposal)
    left = np.flatnonzero(~done & eligible)
    if not len(left):
        return ws, done, {"num_audited": 0, "estimated_unevaluated_weight_fraction": 0.0, "action": "none left"}
    pick = np.sort(rng.choice(left, size=min(size, len(left)), replace=False))
    binned = logl[pick].copy()
    logl[pick] = likelihood.log_likelihood({k: v[pick] for k, v in ws.samples.items()}, workers=workers,
                                           progress=progress)
    done[pick] = True
    rest = np.flatnonzero(~done & eligible)
    w, total = _relative_weights(ws.log_prior, ws.log_proposal, logl)
    estimate = len(rest) / len(pick) * float(w[pick].sum())  # exact weight of those still left
    fraction = estimate / (float(w[done].sum()) + estimate) if total > 0 else float("nan")
    delta = np.abs(logl[pick] - binned)
    delta = delta[np.isfinite(delta)]
    record = {"num_audited": int(len(pick)), "estimated_unevaluated_weight_fraction": fraction,
              "max_abs_delta_log_likelihood_audited": float(delta.max()) if len(delta) else None}
    if len(rest) and not fraction < limit:
        logger.warning("refinement: the samples left with relative binning would carry ~%.2g of the weight with the "
                       "exact likelihood (audit of %d); evaluating all %d exactly", fraction, len(pick), len(rest))
        logl[rest] = likelihood.log_likelihood({k: v[rest] for k, v in ws.samples.items()}, workers=workers,
                                               progress=progress)
        done[rest] = True
        record["action"] = "exact likelihood for all samples left"
    else:
        record["action"] = f"none: estimate below {limit:g}"
    return WeightedSamples(ws.samples, logl, ws.log_prior, ws.log_proposal), done, record


def _relative_weights(log_prior, log_proposal, log_likelihood) -> tuple[np.ndarray, float]:
    """Weights relative to the largest (0 where not finite) and their sum."""
    lw = WeightedSamples({}, log_likelihood, log_prior, log_proposal).log_weights
    finite = np.isfinite(lw)
    if not finite.any():
        return np.zeros(len(lw)), 0.0
    top = lw[finite].max()
    w = np.where(finite, np.exp(np.where(finite, lw, top) - top), 0.0)  # no exp of non-finite stand-ins
    return w, float(w.sum())


def exact_record(ws: WeightedSamples, binned_log_likelihood: np.ndarray, evaluated: np.ndarray, residual: float,
                 rounds: int, min_chunk: int = EXACT_MIN_CHUNK) -> dict:
    """Record of :func:`exact_correction` on all samples: the rule, the number of exact evaluations, the weight
    fraction left with relative binning, and the largest and (final-)weighted RMS |Δ log L| found."""
    w, total = _relative_weights(ws.log_prior, ws.log_proposal, ws.log_likelihood)
    left = float(w[~evaluated].sum() / total) if total > 0 else float("nan")
    delta = (ws.log_likelihood - np.asarray(binned_log_likelihood, dtype=float))[evaluated]
    we = w[evaluated]
    ok = np.isfinite(delta)
    return {
        "rule": EXACT_RULE.format(chunk=min_chunk, residual=residual),
        "exact_weight_residual": float(residual),
        "num_exact": int(evaluated.sum()),
        "num_rounds": int(rounds),
        "unevaluated_weight_fraction": left,
        "weight_fraction_exact": 1.0 - left,
        "max_abs_delta_log_likelihood": float(np.max(np.abs(delta[ok]))) if ok.any() else None,
        "rms_delta_log_likelihood": (float(np.sqrt(np.sum(we[ok] * delta[ok] ** 2) / np.sum(we[ok])))
                                     if ok.any() and np.sum(we[ok]) > 0 else None),
    }


def repeated_smc(base: BoundedDensity, target, settings: SMCSettings, rng: np.random.Generator,
                 passes: int = 1) -> tuple:
    """:func:`~dingo_gw.inference.refine.smc.tempered_smc` from ``base``, then ``passes`` - 1 times again from a
    widened Student-t mixture fitted to the previous pass's particles (:func:`fit_mixture`). When the start
    density misses the posterior's peak (a network far from converged, a narrow low-mass posterior), the
    tempering finds it late, from few particles, and the population at β = 1 descends from those few; a
    second pass starts from a density already near the posterior, so its particles are drawn afresh there and
    its tempering is short. Every pass shares ``settings`` (``max_seconds``: for all passes together) and
    the target (its evaluation count runs on). Returns (the last pass's output, a record per pass)."""
    t0 = time.perf_counter()
    record = []
    for k in range(max(int(passes), 1)):
        left = settings.max_seconds - (time.perf_counter() - t0)
        if k and (left <= 0 or smc.beta < 1.0):
            break
        start = base if k == 0 else fit_mixture(smc.samples, base.coords, None, rng)
        smc = tempered_smc(start, target, replace(settings, max_seconds=left), rng)
        record.append({"pass": k + 1, "beta": smc.beta, "num_stages": len(smc.stages),
                       "log_evidence": smc.log_evidence, "max_log_target": float(np.max(smc.log_target)),
                       "seconds": time.perf_counter() - t0})
        if k:
            logger.info("refinement: SMC pass %d from a fit to the previous particles: %d stages, max log(π L) %.2f",
                        k + 1, len(smc.stages), record[-1]["max_log_target"])
    return smc, record


def refine(initial: Mapping[str, np.ndarray], coords: ProposalCoordinates, prior, likelihood,
           settings: RefineSettings, fiducial: Mapping[str, float] | None = None) -> RefineOutput:
    """Refine the network proposal given by its samples ``initial`` (dict of arrays: the accepted
    proposal samples inside the prior's support). ``coords``: the parameters whose proposal is
    refined and their unbounded coordinates; others are recovered (the phase) or fixed.
    ``fiducial``: a good point (dict of scalars, all parameters, e.g. the network sample of largest
    likelihood) to centre relative binning on; without it the exact likelihood is used throughout."""
    t0 = time.perf_counter()
    binned = settings.relative_binning and fiducial is not None
    fast = RelativeBinningLikelihood(likelihood, fiducial, settings.binning_epsilon) if binned else likelihood
    chunk = BINNED_CHUNK if binned else 256
    try:
        base_rng = np.random.default_rng([settings.seed, 23, 0])
        base = fit_mixture(_subsample(initial, BASE_MAX_SAMPLES, base_rng), coords, None, base_rng)
        target = MarginalPosterior(prior, fast, np.random.default_rng([settings.seed, 23, 1]), settings.workers,
                                   chunk_size=chunk)
        smc, passes = repeated_smc(base, target, SMCSettings(
            num_particles=settings.num_particles, mcmc_steps=settings.mcmc_steps, max_stages=settings.max_stages,
            max_seconds=settings.max_seconds, final_mcmc_steps=settings.final_mcmc_steps),
            np.random.default_rng([settings.seed, 23, 2]), settings.smc_passes)
        stages = [{"stage": "smc", "beta": smc.beta, "num_stages": len(smc.stages), "log_evidence": smc.log_evidence,
                   "passes": passes, "num_particles": settings.num_particles,
                   "num_likelihood_evaluations": smc.num_likelihood_evaluations,
                   "likelihood": "relative binning" if binned else "exact",
                   "seconds": time.perf_counter() - t0, "schedule": smc.stages}]
        if binned:
            stages[0]["relative_binning"] = fast.to_dict()
        if smc.beta < 1.0:
            logger.warning("refinement: SMC stopped at beta %.3g < 1 after %.0f s; fitting the proposal to its "
                           "particles", smc.beta, time.perf_counter() - t0)
        t1 = time.perf_counter()
        rng = np.random.default_rng([settings.seed, 23, 10])
        if binned:  # centre the binning on the best particle for the final importance sampling
            centre, centre_logl = fiducial_from_particles(smc, prior, likelihood, np.random.default_rng(
                [settings.seed, 23, 3]), settings.workers)
            fast = fast.recentred(centre)
        with torch_threads(settings.workers):
            proposal = fit_proposal(smc.samples, coords, None, rng, seed=settings.seed, log_target=smc.log_target)
        t2 = time.perf_counter()
        budget = None if settings.target_neff is None else DrawBudget(
            settings.target_neff, settings.num_samples, settings.max_samples, settings.deadline, settings.max_time)
        ws = draw_and_weigh(proposal, settings.num_samples, prior, fast, rng, settings.workers, settings.progress,
                            chunk_size=chunk)
        binned_logl, evaluated, rounds, num_batches = ws.log_likelihood.copy(), None, 0, 1
        exact_seconds, stop = 0.0, None
        while True:
            if binned:
                t3 = time.perf_counter()
                ws, evaluated, r = exact_correction(ws, likelihood, settings.exact_residual, evaluated,
                                                    settings.workers, settings.progress)
                rounds += r
                exact_seconds += time.perf_counter() - t3
            if budget is None:
                break
            n_eff = weight_statistics(ws.log_weights)["n_eff"]
            logger.info("refinement: %d batch(es), %d draws: n_eff %.1f (target %g)", num_batches, len(ws), n_eff,
                        budget.target_neff)
            stop = budget.stop_reason(n_eff, len(ws))
            if stop is not None:
                break
            more = draw_and_weigh(proposal, budget.next_batch(len(ws)), prior, fast, rng, settings.workers,
                                  settings.progress, chunk_size=chunk)
            num_batches += 1
            ws = WeightedSamples.concatenate([ws, more])
            binned_logl = np.concatenate([binned_logl, more.log_likelihood])
            if evaluated is not None:
                evaluated = np.concatenate([evaluated, np.zeros(len(more), dtype=bool)])
        audit = None
        if binned:
            t3 = time.perf_counter()
            ws, evaluated, audit = audit_unevaluated(ws, evaluated, likelihood, np.random.default_rng(
                [settings.seed, 23, 4]), workers=settings.workers)
            exact_seconds += time.perf_counter() - t3
        batches = None if budget is None else budget.record(stop, num_batches, len(ws), "refined")
        record = {"stage": "importance_sampling", "num_samples": len(ws), "num_batches": num_batches,
                  "proposal": proposal.density.to_dict(), "fit_seconds": t2 - t1,
                  "likelihood": ("relative binning, then exact in decreasing order of weight until < "
                                 f"{settings.exact_residual:g} of the weight is left" if binned else "exact")}
        if batches is not None:
            record["stop_reason"] = stop
        evaluations = smc.num_likelihood_evaluations + len(ws)
        if binned:
            check = exact_record(ws, binned_logl, evaluated, settings.exact_residual, rounds)
            check.update(seconds=exact_seconds, fiducial_log_likelihood=centre_logl, audit=audit)
            record["relative_binning"] = dict(fast.to_dict(), **check)
            record["exact_likelihood"] = {k: check[k] for k in (
                "rule", "exact_weight_residual", "num_exact", "num_rounds", "unevaluated_weight_fraction", "audit")}
            evaluations += check["num_exact"]
            logger.info("refinement: exact likelihood for %d of %d samples (%d rounds), %.3g %% of the weight left "
                        "with relative binning; relative binning differed by <= %.3g (weighted RMS %.2g)",
                        check["num_exact"], len(ws), rounds, 100 * check["unevaluated_weight_fraction"],
                        check["max_abs_delta_log_likelihood"] or 0.0, check["rms_delta_log_likelihood"] or 0.0)
            logger.info("refinement: audit of %d samples left with relative binning: ~%.2g of the weight with the exact "
                        "likelihood (%s)", audit["num_audited"], audit["estimated_unevaluated_weight_fraction"],
                        audit["action"])
            if (check["max_abs_delta_log_likelihood"] or 0.0) > BINNING_WARN_DELTA:
                logger.warning("refinement: relative binning is off by up to %.2g in log L; rerun with "
                               "--no-relative-binning to check", check["max_abs_delta_log_likelihood"])
    finally:
        if binned:
            fast.close()
    stats = weight_statistics(ws.log_weights)
    record.update(efficiency=stats["sample_efficiency"], n_eff=stats["n_eff"], log_evidence=stats["log_evidence"],
                  log_evidence_err=stats["log_evidence_err"], seconds=time.perf_counter() - t1)
    stages.append(record)
    logger.info("refinement: importance sampling of the fitted proposal: efficiency %.3g %% (n_eff %.1f), log Z %.3f",
                100 * stats["sample_efficiency"], stats["n_eff"], stats["log_evidence"])
    return RefineOutput(ws, proposal, stages, evaluations, batches)
