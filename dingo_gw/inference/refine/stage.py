"""The analysis' refinement step: when the network proposal's sample efficiency is below a target,
refine it with the likelihood (:func:`dingo_gw.inference.refine.refine.refine`) and importance-sample
the fitted proposal. ``settings``: an :class:`dingo_gw.inference.analyze.AnalysisSettings`."""

from __future__ import annotations

import logging
import time

import numpy as np

from dingo_gw.inference.importance.importance_sampling import finalize, prior_support
from dingo_gw.inference.refine.proposal_coordinates import ProposalCoordinates
from dingo_gw.inference.refine.refine import EXACT_WEIGHT_RESIDUAL, RefineSettings, best_sample, refine
from dingo_gw.inference.sampling.gnpe_sampler import ProposalSamples
from dingo_gw.likelihood.distance_recovery import DISTANCE_KEY, distance_recoverable
from dingo_gw.results import Result

logger = logging.getLogger(__name__)


#: Refinement starts from a mixture fitted to the network samples: at least this many per refined parameter.
MIN_REFINE_SAMPLES_PER_DIM = 10


def prior_draws(prior, like: dict, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` draws from ``prior`` of the parameters in ``like`` (geocent_time relative to the trigger,
    as the network's samples), by inverse CDF per parameter."""
    return {k: np.asarray(prior[k].rescale(rng.uniform(size=n)), dtype=float) for k in like}


def needs_refinement(result: Result, target_efficiency: float) -> bool:
    """True when the network proposal's sample efficiency is below ``target_efficiency``."""
    eff = float(result.meta_data.get("sample_efficiency", 0.0) or 0.0)
    return not eff >= target_efficiency


def refine_result(result: Result, proposal: ProposalSamples, prior, likelihood, settings: AnalysisSettings,
                  deadline: float | None = None) -> Result:
    """Refine the network proposal with the likelihood (:mod:`dingo_gw.inference.refine.refine`: SMC from a
    mixture fitted to the network samples, then importance sampling of a flow + Student-t mixture
    fitted to the particles, with correction kernels). The returned Result is that importance
    sampling, with the network proposal's statistics and each step recorded in
    ``meta_data["refinement"]`` (the exact-likelihood rule and its residual in
    ``meta_data["refinement"]["exact_likelihood"]``). With ``settings.target_neff`` batches of
    ``settings.refine_samples`` are drawn from the refined proposal until n_eff reaches it, within
    ``settings.max_samples`` draws (default 10 batches) and until ``time.perf_counter()`` passes
    ``deadline``; ``stop_reason`` and ``num_batches`` go into meta_data."""
    import bilby

    trigger = float(getattr(likelihood, "trigger_time", 0.0))
    usable = np.asarray(proposal.accepted, dtype=bool) & prior_support(proposal.samples, prior)
    # the phase, and with distance marginalisation the distance, are recovered (drawn from their conditional
    # posterior) rather than refined
    recovered = ("phase", DISTANCE_KEY) if settings.distance_marginalization and distance_recoverable(prior) else (
        "phase",)
    initial = {k: v for k, v in proposal.subset(usable).items() if k not in recovered}
    keys = [k for k in proposal.samples if k in prior and k not in recovered
            and not isinstance(prior[k], (bilby.core.prior.DeltaFunction, bilby.core.prior.Constraint))]
    start = getattr(settings, "refine_start", "network")
    if start == "prior":  # a network-free baseline: the SMC starts from prior draws (as many as network draws)
        initial = prior_draws(prior, initial, len(proposal), np.random.default_rng([settings.seed, 29]))
        usable = np.ones(len(proposal), dtype=bool)
    coords = ProposalCoordinates(prior, keys, list(likelihood.detectors), trigger)
    network_stage = {k: result.meta_data.get(k) for k in ("n_eff", "sample_efficiency", "num_proposal_samples",
                                                           "num_rejected_proposals", "num_outside_prior")}
    network_stage.update(log_evidence=result.log_evidence, log_evidence_err=result.log_evidence_err,
                         status=result.status)
    needed = MIN_REFINE_SAMPLES_PER_DIM * coords.dim
    if int(usable.sum()) < needed:
        reason = (f"only {int(usable.sum())} network samples inside the prior, refinement needs >= {needed}: "
                  "the network does not fit these data")
        logger.warning("refinement skipped: %s", reason)
        result.meta_data["refinement"] = {"status": "skipped", "reason": reason, "network_proposal": network_stage}
        return result
    logger.info("network proposal: efficiency %.3g %% (n_eff %.1f) < %.3g %%: refining it with the likelihood "
                "(SMC, then importance sampling of a fitted proposal)", 100 * float(network_stage["sample_efficiency"] or 0.0),
                float(network_stage["n_eff"] or 0.0), 100 * settings.refine_efficiency)
    t0 = time.perf_counter()
    fiducial = None
    if settings.relative_binning and np.isfinite(np.asarray(result.log_likelihood, dtype=float)).any():
        # the network sample of largest likelihood (phase recovered); geocent_time relative to the trigger
        relative = {k: np.asarray(v, dtype=float) - (trigger if k == "geocent_time" else 0.0)
                    for k, v in result.samples.items()}
        fiducial = best_sample(relative, np.asarray(result.log_likelihood, dtype=float))
    out = refine(initial, coords, prior, likelihood, RefineSettings(
        num_samples=settings.refine_samples, num_particles=settings.refine_particles,
        smc_passes=settings.refine_passes, workers=settings.workers,
        seed=settings.seed, progress=settings.progress, relative_binning=settings.relative_binning,
        target_neff=getattr(settings, "target_neff", None), max_samples=getattr(settings, "max_samples", None),
        deadline=deadline, max_time=getattr(settings, "max_time", None)),
        fiducial=fiducial)
    refined = finalize(out.weighted, float(likelihood.log_noise_evidence()), trigger, prior, seed=settings.seed,
                       num_posterior_samples=settings.num_posterior_samples, elapsed=time.perf_counter() - t0)
    refined.meta_data["recovered_parameters"] = result.meta_data.get("recovered_parameters", [])
    refined.meta_data["refinement"] = {
        "status": "done", "start": start,
        "method": f"tempered SMC from the {'network samples' if start == 'network' else 'prior (network-free baseline)'} "
                  f"({settings.refine_passes} pass(es), each after the first from a fit to the previous "
                  "particles), then importance sampling of a neural spline flow + "
                  "Student-t mixture fitted to the particles, with correction kernels where they fall short"
                  + (" (relative-binning likelihood, exact in decreasing order of weight until < "
                     f"{EXACT_WEIGHT_RESIDUAL:g} of the weight is left: see exact_likelihood)" if fiducial and settings.relative_binning else "")
                  + ("; distance and phase drawn from their conditional posterior (marginalised)"
                     if DISTANCE_KEY in recovered else "; phase drawn from its conditional posterior"),
        "recovered_parameters": list(recovered), "network_proposal": network_stage, "stages": out.stages,
        "num_likelihood_evaluations": int(out.num_likelihood_evaluations + (network_stage["num_proposal_samples"] or 0)),
        "final_proposal": out.proposal.to_dict(),
    }
    if "exact_likelihood" in out.stages[-1]:
        refined.meta_data["refinement"]["exact_likelihood"] = out.stages[-1]["exact_likelihood"]
    if out.batches is not None:
        refined.meta_data.update(out.batches)
    return refined
