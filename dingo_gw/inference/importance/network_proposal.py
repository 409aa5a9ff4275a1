"""Importance sampling of a network proposal: exact likelihood × prior / q for the accepted draws,
zero weight (never evaluated) for the draws the network or the prior reject, evidence over all
draws."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from dingo_gw.inference.importance.importance_sampling import (
    MIN_EFFECTIVE_SAMPLES, WeightedSamples, evidence_meta, finalize, importance_sample, prior_support,
    weight_statistics,
)
from dingo_gw.inference.sampling.gnpe_sampler import ProposalSamples
from dingo_gw.results import Result

logger = logging.getLogger(__name__)


def importance_sample_proposal(proposal: ProposalSamples, prior, likelihood, seed: int = 0, workers: int = 1,
                               checkpoint_dir: str | Path | None = None, num_parts: int = 1, progress: bool = False,
                               num_posterior_samples: int | None = None,
                               min_n_eff: float = MIN_EFFECTIVE_SAMPLES,
                               part_files: Mapping[int, str | Path] | None = None) -> Result:
    """Importance-sample the accepted proposal samples; rejected ones count with weight zero.

    Rejected samples (outside the GNPE kernel, the network's ra range or the prior's support:
    zero weight by construction) are not passed to the likelihood; they stay in the result's
    weighted samples (in the proposal's order) with log_likelihood and log_prior NaN ("not
    evaluated"), log_proposal +inf, log_weights -inf and a NaN phase, so that n, the evidence
    (mean of all n weights) and the efficiency n_eff / n count every proposal draw.
    """
    import bilby

    support = prior_support(proposal.samples, prior)
    acc = np.asarray(proposal.accepted, dtype=bool) & support
    n, n_acc = len(acc), int(acc.sum())
    if n_acc == 0:
        return _all_rejected(proposal, support, likelihood, prior)
    result = importance_sample(
        proposal.subset(acc), proposal.log_prob[acc], prior, likelihood, seed=seed, workers=workers,
        checkpoint_dir=checkpoint_dir, num_parts=num_parts, progress=progress,
        num_posterior_samples=num_posterior_samples,
        min_n_eff=min_n_eff, part_files=part_files,
    )
    meta = result.meta_data
    meta["num_network_samples"] = n
    meta["num_rejected_proposals"] = n - n_acc
    meta["num_outside_prior"] = int(np.count_nonzero(~support))
    if n_acc == n:
        return result
    trigger = float(getattr(likelihood, "trigger_time", 0.0))
    samples = {}
    for k, v in result.samples.items():
        if k in proposal.samples:
            x = np.asarray(proposal.samples[k], dtype=float).copy()
            if k == "geocent_time":
                x = x + trigger  # the result holds GPS times
        elif isinstance(prior.get(k), bilby.core.prior.DeltaFunction):
            x = np.full(n, float(prior[k].peak))
        else:
            x = np.full(n, np.nan)  # recovered parameters (the phase) are not drawn for rejected samples
        x[acc] = v
        samples[k] = x
    lw = _scatter(result.log_weights, acc, -np.inf)
    stats = weight_statistics(lw)
    meta.update({"num_proposal_samples": n, "sample_efficiency": stats["sample_efficiency"],
                 "n_eff": stats["n_eff"], **evidence_meta(stats, float(meta.get("pareto_k", np.nan)))})
    reason = result.failure_reason
    if not result.ok and stats["n_eff"] < min_n_eff:
        reason = (f"n_eff = {stats['n_eff']:.2f} < {min_n_eff:g} (sample efficiency "
                  f"{100 * stats['sample_efficiency']:.3g} % of {n} network samples, {n - n_acc} of them outside the "
                  "GNPE kernel, ra range or prior): the proposal does not cover the posterior")
    return Result(
        samples=samples, log_weights=lw, log_evidence=stats["log_evidence"],
        log_evidence_err=stats["log_evidence_err"], log_noise_evidence=result.log_noise_evidence,
        log_bayes_factor=stats["log_evidence"] - result.log_noise_evidence,
        meta_data=meta, posterior=result.posterior,
        log_likelihood=_scatter(result.log_likelihood, acc, np.nan),
        log_prior=_scatter(result.log_prior, acc, np.nan),
        log_proposal=_scatter(result.log_proposal, acc, np.inf),
        priors=result.priors, status=result.status, failure_reason=reason,
    )


#: Counts of the network-proposal results that add up over batches.
_BATCH_COUNTS = ("num_network_samples", "num_rejected_proposals", "num_outside_prior", "num_failed_likelihood")


def combine_batches(results: list[Result], prior, trigger_time: float, seed: int = 0,
                    num_posterior_samples: int | None = None, min_n_eff: float = MIN_EFFECTIVE_SAMPLES) -> Result:
    """One importance-sampled Result from the Results of independent batches of draws from the network
    (:func:`importance_sample_proposal` each, in order): all weighted samples concatenated, evidence, n_eff,
    k̂ and the unweighted posterior recomputed over all of them (as :func:`finalize` does for one batch); the
    counts of rejected draws and failed waveforms added up. ``prior``: with geocent_time relative to
    ``trigger_time``, as given to importance sampling."""
    if len(results) == 1:
        return results[0]
    keys = list(dict.fromkeys(k for r in results for k in r.samples))  # all-rejected batches lack the phase
    rel = {k: np.concatenate([np.asarray(r.samples.get(k, np.full(len(r.log_weights), np.nan)), dtype=float)
                              for r in results])
           - (trigger_time if k == "geocent_time" else 0.0) for k in keys}
    logp = np.concatenate([np.asarray(r.log_prior, dtype=float) for r in results])
    weighted = WeightedSamples(rel, np.concatenate([np.asarray(r.log_likelihood, dtype=float) for r in results]),
                               np.where(np.isnan(logp), -np.inf, logp),  # rejected draws: not failed waveforms
                               np.concatenate([np.asarray(r.log_proposal, dtype=float) for r in results]))
    elapsed = sum(float((r.meta_data.get("timings") or {}).get("importance_sampling", 0.0)) for r in results)
    out = finalize(weighted, results[0].log_noise_evidence, trigger_time, prior, seed=seed,
                   num_posterior_samples=num_posterior_samples, min_n_eff=min_n_eff, elapsed=elapsed)
    out.log_prior = logp
    meta = dict(results[0].meta_data)
    meta.update(out.meta_data)
    for k in _BATCH_COUNTS:
        if any(k in r.meta_data for r in results):
            meta[k] = int(sum(int(r.meta_data.get(k, 0) or 0) for r in results))
    out.meta_data = meta
    return out


def _all_rejected(proposal: ProposalSamples, support: np.ndarray, likelihood, prior) -> Result:
    """The failed-proposal result when no network sample can carry weight."""
    from dingo_gw.results import STATUS_FAILED

    n = len(proposal)
    trigger = float(getattr(likelihood, "trigger_time", 0.0))
    samples = {k: np.asarray(v, dtype=float) + (trigger if k == "geocent_time" else 0.0)
               for k, v in proposal.samples.items()}
    reason = (f"all {n} network samples have weight zero ({int(np.count_nonzero(~support))} outside the prior, the "
              "others outside the GNPE kernel or the network's ra range): the network does not describe these data")
    logger.warning("importance sampling: failed proposal: %s", reason)
    nan = np.full(n, np.nan)
    return Result(
        samples=samples, log_weights=np.full(n, -np.inf), log_evidence=-np.inf, log_evidence_err=np.nan,
        log_noise_evidence=float(likelihood.log_noise_evidence()), log_bayes_factor=-np.inf,
        meta_data={"sample_efficiency": 0.0, "n_eff": 0.0, "num_proposal_samples": n, "num_network_samples": n,
                   "num_rejected_proposals": n, "num_outside_prior": int(np.count_nonzero(~support))},
        log_likelihood=nan, log_prior=nan,
        log_proposal=np.where(np.isnan(proposal.log_prob), np.inf, proposal.log_prob),
        priors=prior, status=STATUS_FAILED, failure_reason=reason,
    )


def _scatter(values, acc: np.ndarray, fill: float) -> np.ndarray:
    """Array of len(acc): ``values`` at the accepted positions, ``fill`` elsewhere."""
    out = np.full(len(acc), fill)
    if values is not None:
        out[acc] = np.asarray(values, dtype=float)
    return out
