"""Importance sampling of network proposals with the exact likelihood (Dax et al. 2023).

For proposal samples θ_i ~ q(θ | d) with known log q_i:

    log w_i = log L(d | θ_i) + log π(θ_i) - log q_i,     n_eff = (Σ w)² / Σ w²,   ε = n_eff / n,
    log Z = logsumexp(log w) - log n.

The error of log Z (``log_evidence_err``) comes from EVIDENCE_BATCHES independent batches: the
draws, i.i.d. and in draw order, are split into B contiguous batches, Z_b is the mean weight of
batch b, and σ(log Z) = sd(Z_b) / (√B Z) · B^max(k̂ − ½, 0) (batch means; the factor extrapolates
the batches' spread to all n draws when the weights have no finite variance, Pareto k̂ > ½: the
error of a mean of m such draws falls as m^(k̂ − 1), not m^(−½)). The textbook sqrt((1 - ε) / (n ε)),
which assumes weights of finite variance (and for i.i.d. draws equals the plain batch-means error
up to noise), is kept as ``log_evidence_err_gaussian``. With Pareto k̂ > PARETO_K_RELIABLE the
evidence and both errors are flagged unreliable (``evidence_reliable`` false in the result's
meta_data).

Parameters the network does not infer (the phase) are drawn from a known conditional density
q(φ | θ) (:mod:`dingo_gw.likelihood.phase_recovery`) whose log is added to log q, so the weights
stay exact. Non-finite log q or n_eff < 10 give a :class:`~dingo_gw.results.Result` with status
``failed_proposal`` and no posterior. Work is split into parts, each saved to a checkpoint
folder when one is given, so a killed run resumes where it stopped with identical numbers.

Time convention: inside inference ``geocent_time`` is seconds relative to the likelihood's
``trigger_time`` (as in the project's prior); the returned Result holds GPS times.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from scipy.special import logsumexp

from dingo_gw.errors import ConfigError, DataError, FileFormatError
from dingo_gw.likelihood.distance_recovery import DISTANCE_KEY, DistanceRecovery
from dingo_gw.io.atomic import atomic_write, h5_writer
from dingo_gw.results import STATUS_FAILED, Result, effective_sample_size

logger = logging.getLogger(__name__)

#: Proposals with fewer effective samples than this are reported as failed.
MIN_EFFECTIVE_SAMPLES = 10.0

_PART_KIND = "importance_sampling_part"


@dataclass
class WeightedSamples:
    """Proposal samples completed with recovered parameters, and the terms of their weights.

    ``log_proposal`` includes log q(φ | θ) of recovered parameters. ``log_likelihood`` is NaN
    where the waveform failed (weight zero).
    """

    samples: dict[str, np.ndarray]
    log_likelihood: np.ndarray
    log_prior: np.ndarray
    log_proposal: np.ndarray

    def __len__(self) -> int:
        return len(self.log_proposal)

    @property
    def log_weights(self) -> np.ndarray:
        """log L + log π - log q; -inf where L is NaN (failed waveform) or π = 0."""
        lw = self.log_likelihood + self.log_prior - self.log_proposal
        return np.where(np.isnan(lw), -np.inf, lw)

    @classmethod
    def concatenate(cls, parts: Sequence["WeightedSamples"]) -> "WeightedSamples":
        """Merge parts (same parameters) into one set, in order."""
        if not parts:
            raise DataError("importance sampling: nothing to merge")
        keys = list(parts[0].samples)
        for p in parts[1:]:
            if set(p.samples) != set(keys):
                raise DataError(
                    f"importance sampling: cannot merge parts with parameters {sorted(keys)} and {sorted(p.samples)}"
                )
        return cls(
            samples={k: np.concatenate([p.samples[k] for p in parts]) for k in keys},
            log_likelihood=np.concatenate([p.log_likelihood for p in parts]),
            log_prior=np.concatenate([p.log_prior for p in parts]),
            log_proposal=np.concatenate([p.log_proposal for p in parts]),
        )

    def save(self, path: str | Path, fingerprint: str = "", info: Mapping | None = None) -> None:
        """Write to HDF5 atomically (a checkpoint of one part); ``info``: JSON-able description
        stored as the attribute ``part`` (read back with :func:`read_part_info`)."""
        import h5py

        from dingo_gw.io.hdf5 import stamp, write_json_attr

        with atomic_write(path) as tmp:
            with h5_writer(tmp) as f:
                stamp(f, _PART_KIND)
                f.attrs["fingerprint"] = fingerprint
                if info is not None:
                    write_json_attr(f, "part", dict(info))
                g = f.create_group("samples")
                for k, v in self.samples.items():
                    g.create_dataset(k, data=v)
                for k in ("log_likelihood", "log_prior", "log_proposal"):
                    f.create_dataset(k, data=getattr(self, k))

    @classmethod
    def load(cls, path: str | Path, fingerprint: str | None = None) -> "WeightedSamples | None":
        """Read a part written by :meth:`save`; None if its fingerprint differs from the given one."""
        from dingo_gw.io.hdf5 import open_h5

        with open_h5(path, _PART_KIND) as f:
            stored = f.attrs.get("fingerprint", "")
            stored = stored.decode() if isinstance(stored, bytes) else str(stored)
            if fingerprint is not None and stored != fingerprint:
                return None
            try:
                return cls(
                    samples={k: f["samples"][k][()] for k in f["samples"]},
                    log_likelihood=f["log_likelihood"][()],
                    log_prior=f["log_prior"][()],
                    log_proposal=f["log_proposal"][()],
                )
            except KeyError as e:
                raise FileFormatError(f"{path}: incomplete importance-sampling checkpoint ({e})") from None


def read_part_info(path: str | Path) -> dict:
    """The ``info`` a part file was saved with ({} if none); FileFormatError if not a part file."""
    from dingo_gw.io.hdf5 import open_h5, read_json_attr

    with open_h5(path, _PART_KIND) as f:
        return dict(read_json_attr(f, "part", {}) or {})


# -- weights and statistics ------------------------------------------------------------------
#: Independent batches (contiguous, in draw order) of the batch-means error of log Z.
EVIDENCE_BATCHES = 20
#: How ``log_evidence_err`` is computed (recorded in the result's meta_data).
EVIDENCE_ERR_METHOD = (f"batch means: the draws (i.i.d., in draw order) in B = {EVIDENCE_BATCHES} contiguous batches, "
                       "sigma(log Z) = sd(Z_b) / (sqrt(B) Z) * B^max(k - 1/2, 0) with k the Pareto k-hat of the weights "
                       "(clipped to <= 1)")


def batch_log_evidence_err(log_weights: np.ndarray, num_batches: int = EVIDENCE_BATCHES,
                           k_hat: float | None = None) -> float:
    """σ(log Z) from independent batches: the n log weights (in draw order, draws i.i.d.) split into
    B = min(num_batches, n) contiguous batches, Z_b the mean weight of batch b, σ = sd(Z_b) / (√B Z̄)
    with Z̄ the mean of the Z_b (delta method), times B^(k − ½) when the Pareto tail index ``k_hat``
    (clipped to ≤ 1) exceeds ½: weights without a finite variance make the error of a mean of m draws
    fall as m^(k − 1) (stable law of index 1/k), so the spread of batch means of n/B draws
    understates the error of the mean of all n by that factor. NaN for B < 2 or no positive weight."""
    lw = np.asarray(log_weights, dtype=float)
    b = min(int(num_batches), len(lw))
    if b < 2:
        return float("nan")
    finite = lw[np.isfinite(lw)]
    if not len(finite):
        return float("nan")
    w = np.exp(np.where(np.isfinite(lw), lw, -np.inf) - finite.max())
    z_b = np.array([x.mean() for x in np.array_split(w, b)])
    z = z_b.mean()
    if not z > 0:
        return float("nan")
    tail = b ** (min(float(k_hat), 1.0) - 0.5) if k_hat is not None and np.isfinite(k_hat) and k_hat > 0.5 else 1.0
    return float(np.std(z_b, ddof=1) / (np.sqrt(b) * z) * tail)


def weight_statistics(log_weights: np.ndarray) -> dict[str, float]:
    """log_evidence, log_evidence_err (batch means with the weights' Pareto k̂, :func:`batch_log_evidence_err`),
    log_evidence_err_gaussian (sqrt((1 - ε)/(n ε))), n_eff, sample_efficiency from unnormalised log
    weights (in draw order)."""
    lw = np.asarray(log_weights, dtype=float)
    n = len(lw)
    n_eff = effective_sample_size(lw)
    eff = n_eff / n if n else 0.0
    if n_eff > 0:
        log_z = float(logsumexp(lw) - np.log(n))
        err_gauss = float(np.sqrt(max(1.0 - eff, 0.0) / (n * eff)))
        err = batch_log_evidence_err(lw, k_hat=pareto_k(lw))
    else:
        log_z, err, err_gauss = -np.inf, np.nan, np.nan
    return {"log_evidence": log_z, "log_evidence_err": err, "log_evidence_err_gaussian": err_gauss, "n_eff": n_eff,
            "sample_efficiency": eff}


def evidence_meta(stats: Mapping, k_hat: float) -> dict:
    """What the result's meta_data record about the evidence error: the Gaussian-formula error, the method of
    ``log_evidence_err`` and ``evidence_reliable`` (false when Pareto k̂ > PARETO_K_RELIABLE or is unknown)."""
    return {"log_evidence_err_gaussian": stats["log_evidence_err_gaussian"],
            "log_evidence_err_method": EVIDENCE_ERR_METHOD,
            "evidence_reliable": bool(np.isfinite(k_hat) and k_hat <= PARETO_K_RELIABLE)}


#: Pareto k̂ above which importance-sampling estimates are unreliable (Vehtari et al. 2024, PSIS).
PARETO_K_RELIABLE = 0.7


def pareto_k(log_weights: np.ndarray) -> float:
    """Shape k̂ of a generalised Pareto fitted (maximum likelihood) to the largest M = min(N/5, 3√N)
    weights, above the (M+1)-th largest: the tail index of the weight distribution (Vehtari et al.,
    "Pareto smoothed importance sampling", JMLR 2024). k̂ < 0.5: weights of finite variance; k̂ > 0.7:
    n_eff, the evidence and its error are unreliable, whatever n_eff says. NaN for < 20 finite weights."""
    from scipy.stats import genpareto

    lw = np.sort(np.asarray(log_weights, dtype=float)[np.isfinite(log_weights)])
    m = int(min(0.2 * len(lw), 3 * np.sqrt(len(lw))))
    if m < 5:
        return float("nan")
    tail = np.exp(lw[-m:] - lw[-1]) - np.exp(lw[-m - 1] - lw[-1])
    if not np.any(tail > 0):
        return float("nan")
    k, _, _ = genpareto.fit(tail, floc=0)
    return float(k)


#: Stop reasons of drawing proposal batches towards a target n_eff (:class:`DrawBudget`).
STOP_TARGET, STOP_MAX_SAMPLES, STOP_MAX_TIME = "target_neff", "max_samples", "max_time"
#: Default budget of draws with a target n_eff: this many times one batch.
DEFAULT_MAX_BATCHES = 10


@dataclass
class DrawBudget:
    """When to stop drawing batches of ``batch_size`` draws from one proposal: once n_eff of all of them together
    reaches ``target_neff`` ("target_neff"), or before a batch that would exceed ``max_samples`` draws in all
    (default DEFAULT_MAX_BATCHES × batch_size; the last batch is cut to fit: "max_samples"), or once
    ``time.perf_counter()`` has passed ``deadline`` ("max_time"). Weights of draws from the same proposal
    concatenate: the combined set is ordinary importance sampling of all draws."""

    target_neff: float
    batch_size: int
    max_samples: int | None = None
    deadline: float | None = None
    max_time: float | None = None

    def __post_init__(self):
        if self.max_samples is None:
            self.max_samples = DEFAULT_MAX_BATCHES * int(self.batch_size)

    def stop_reason(self, n_eff: float, num_draws: int) -> str | None:
        """Why to stop after ``num_draws`` draws with this n_eff, or None to draw another batch."""
        if n_eff >= self.target_neff:
            return STOP_TARGET
        if num_draws >= self.max_samples:
            return STOP_MAX_SAMPLES
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            return STOP_MAX_TIME
        return None

    def next_batch(self, num_draws: int) -> int:
        """Size of the next batch (cut to the draws left in the budget)."""
        return int(min(self.batch_size, self.max_samples - num_draws))

    def record(self, stop: str, num_batches: int, num_draws: int, proposal: str) -> dict:
        """meta_data entries: ``stop_reason``, ``num_batches`` and the settings (``target_neff``)."""
        return {"stop_reason": stop, "num_batches": int(num_batches),
                "target_neff": {"target": float(self.target_neff), "batch_size": int(self.batch_size),
                                "max_samples": int(self.max_samples), "max_time": self.max_time,
                                "num_draws": int(num_draws), "proposal": proposal, "stop_reason": stop,
                                "num_batches": int(num_batches)}}


def resample_indices(log_weights: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``num_samples`` unweighted samples, drawn with replacement with probability ∝ weight."""
    lw = np.asarray(log_weights, dtype=float)
    p = np.exp(lw - logsumexp(lw))
    p /= p.sum()
    return rng.choice(len(p), size=int(num_samples), replace=True, p=p)


def log_prior(prior, samples: Mapping[str, np.ndarray], seed: int = 0) -> np.ndarray:
    """log π of samples under a bilby PriorDict (fixed and constraint keys excluded).

    bilby estimates the normalisation of constrained priors by Monte Carlo; it is done with a
    fixed seed so that results are reproducible.
    """
    import bilby

    keys = _sampled_keys(prior)
    sub = {k: np.asarray(samples[k], dtype=float) for k in keys}
    state = bilby.core.utils.random.rng.bit_generator.state
    try:
        bilby.core.utils.random.seed(seed)
        with np.errstate(divide="ignore"):
            out = prior.ln_prob(sub, axis=0)
    finally:
        bilby.core.utils.random.rng.bit_generator.state = state
    return np.broadcast_to(np.asarray(out, dtype=float), (len(next(iter(sub.values()))),)).copy()


def prior_support(samples: Mapping[str, np.ndarray], prior) -> np.ndarray:
    """Mask of samples inside the support of ``prior`` (each 1-D prior, and the constraints when
    they can be evaluated from the sampled parameters)."""
    import bilby

    n = len(next(iter(samples.values())))
    inside = np.ones(n, dtype=bool)
    for k, x in samples.items():
        p = prior.get(k) if hasattr(prior, "get") else None
        if p is None or isinstance(p, (bilby.core.prior.Constraint, bilby.core.prior.DeltaFunction)):
            continue
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            inside &= np.isfinite(x) & np.isfinite(np.asarray(p.ln_prob(x), dtype=float))
    if any(isinstance(p, bilby.core.prior.Constraint) for p in prior.values()):
        try:
            with np.errstate(divide="ignore", invalid="ignore"):
                inside &= np.asarray(prior.evaluate_constraints({k: np.asarray(v, dtype=float)
                                                                 for k, v in samples.items()}), dtype=bool)
        except (KeyError, TypeError, ValueError):
            pass  # the constraints need parameters the network does not infer: left to the prior in IS
    return inside


def _sampled_keys(prior) -> list[str]:
    import bilby

    return [
        k for k, p in prior.items()
        if not isinstance(p, (bilby.core.prior.Constraint, bilby.core.prior.DeltaFunction))
    ]


def complete_samples(samples: Mapping[str, np.ndarray], prior) -> tuple[dict[str, np.ndarray], list[str]]:
    """Check proposal samples against the prior; add its fixed values; list parameters to recover.

    Returns (samples with DeltaFunction parameters filled in, parameters to recover). Only the
    phase, and the luminosity distance together with it, can be recovered; any other sampled prior
    parameter missing from the samples, or a sample parameter without a prior, is an error.
    """
    import bilby

    n = _num_samples(samples)
    out = {k: np.asarray(v, dtype=float).reshape(n) for k, v in samples.items()}
    for k, p in prior.items():
        if isinstance(p, bilby.core.prior.DeltaFunction) and k not in out:
            out[k] = np.full(n, float(p.peak))
    sampled = _sampled_keys(prior)
    unknown = [k for k in out if k not in prior]
    if unknown:
        raise ConfigError(f"importance sampling: sample parameters {unknown} have no prior")
    recover = [k for k in sampled if k not in out]
    recoverable = ("phase", DISTANCE_KEY) if "phase" in recover else ("phase",)
    if [k for k in recover if k not in recoverable]:
        raise DataError(
            f"importance sampling: proposal samples lack {[k for k in recover if k not in recoverable]}, which "
            "are not fixed by the prior and cannot be recovered (only the phase, and the distance with it, can)"
        )
    if recover:
        p = prior["phase"]
        lo, hi = getattr(p, "minimum", None), getattr(p, "maximum", None)
        if lo is None or hi is None or lo < 0 or hi > 2 * np.pi + 1e-12:
            raise ConfigError("importance sampling: the phase prior must lie within [0, 2π] to recover the phase")
    return out, recover


def distance_recovery(prior, recover: Sequence[str]) -> DistanceRecovery | None:
    """The :class:`DistanceRecovery` for the prior's distance when it is among the ``recover`` parameters."""
    return DistanceRecovery(prior[DISTANCE_KEY]) if DISTANCE_KEY in recover else None


def check_proposal(samples: Mapping[str, np.ndarray], log_prob: np.ndarray) -> str:
    """Why the proposal cannot be importance-sampled ('' if it can): non-finite values or log q."""
    log_prob = np.asarray(log_prob, dtype=float)
    bad = ~np.isfinite(log_prob)
    if bad.any():
        return f"{int(bad.sum())} of {len(log_prob)} proposal log-densities are not finite"
    for k, v in samples.items():
        bad = ~np.isfinite(np.asarray(v, dtype=float))
        if bad.any():
            return f"{int(bad.sum())} proposal samples have a non-finite {k}"
    return ""


# -- running ---------------------------------------------------------------------------------
def evaluate_weights(
    samples: Mapping[str, np.ndarray],
    log_prob: np.ndarray,
    prior,
    likelihood,
    rng: np.random.Generator,
    workers: int = 1,
    chunk_size: int = 256,
    progress: bool = False,
    exact_rotation: bool | None = None,
) -> WeightedSamples:
    """Complete the samples (recovering the phase if needed) and compute log L, log π and log q.

    ``likelihood`` provides ``log_likelihood(params, workers=, chunk_size=, progress=)``; to
    recover the phase it must be a :class:`~dingo_gw.likelihood.gaussian.GaussianLikelihood`.
    """
    full, recover = complete_samples(samples, prior)
    log_q = np.asarray(log_prob, dtype=float).copy()
    if recover:
        from dingo_gw.likelihood.phase_recovery import recover_phase

        recovered, log_q_recovered, logl = recover_phase(
            likelihood, full, rng, workers=workers, chunk_size=chunk_size, progress=progress,
            exact_rotation=exact_rotation, distance=distance_recovery(prior, recover),
        )
        full.update(recovered)
        log_q = log_q + log_q_recovered
    else:
        logl = likelihood.log_likelihood(full, workers=workers, chunk_size=chunk_size, progress=progress)
    return WeightedSamples(full, np.asarray(logl, dtype=float), log_prior(prior, full), log_q)


def importance_sample(
    samples: Mapping[str, np.ndarray],
    log_prob: np.ndarray,
    prior,
    likelihood,
    seed: int = 0,
    num_parts: int = 1,
    checkpoint_dir: str | Path | None = None,
    workers: int = 1,
    chunk_size: int = 256,
    progress: bool = False,
    num_posterior_samples: int | None = None,
    exact_rotation: bool | None = None,
    min_n_eff: float = MIN_EFFECTIVE_SAMPLES,
    part_files: Mapping[int, str | Path] | None = None,
) -> Result:
    """Importance-sample proposal ``samples`` (dict of arrays, bilby names, geocent_time relative to
    ``likelihood.trigger_time``) with log-densities ``log_prob`` under ``prior`` (bilby PriorDict).

    The samples are processed in ``num_parts`` parts (checkpointed in ``checkpoint_dir`` if
    given; a rerun reuses finished parts). Part k draws its random numbers (recovered phases)
    from ``default_rng([seed, k])``, so results depend only on the inputs, ``seed`` and
    ``num_parts``. ``num_posterior_samples`` unweighted samples (default: round(n_eff)) are
    resampled with ``default_rng([seed, 0, 1])``. ``part_files`` (part k, 0-based -> file): use parts
    computed elsewhere (:func:`evaluate_part`, e.g. by cluster jobs) instead of evaluating any;
    a missing or foreign part is a DataError. Returns a Result with GPS geocent_time, the derived
    masses/chi_eff added by its export, and meta_data: sample_efficiency, n_eff,
    num_proposal_samples, num_failed_likelihood, recovered_parameters, seed, timings
    (importance_sampling, seconds).
    """
    t0 = time.perf_counter()
    n = _num_samples(samples)
    log_prob = np.asarray(log_prob, dtype=float).reshape(-1)
    if len(log_prob) != n:
        raise DataError(f"importance sampling: {n} samples but {len(log_prob)} log-densities")
    if num_parts < 1:
        raise ConfigError(f"importance sampling: num_parts must be >= 1, got {num_parts}")
    trigger_time = float(getattr(likelihood, "trigger_time", 0.0))
    log_noise = float(likelihood.log_noise_evidence())
    _, recover = complete_samples(samples, prior)  # bad parameter sets fail here, before any work
    reason = check_proposal(samples, log_prob)
    if reason:
        logger.warning("importance sampling: failed proposal: %s", reason)
        return _failed(samples, log_prob, np.full(n, np.nan), log_noise, reason, trigger_time, prior, t0)

    parts = []
    for k in range(num_parts):
        if part_files is not None:
            parts.append(evaluate_part(samples, log_prob, prior, likelihood, seed, k, num_parts,
                                       path=part_files.get(k), compute=False, exact_rotation=exact_rotation))
            continue
        path = None if checkpoint_dir is None else Path(checkpoint_dir) / f"is_part_{k:04d}_of_{num_parts:04d}.h5"
        parts.append(evaluate_part(samples, log_prob, prior, likelihood, seed, k, num_parts, path=path,
                                   workers=workers, chunk_size=chunk_size, progress=progress,
                                   exact_rotation=exact_rotation))
    weighted = WeightedSamples.concatenate(parts)
    result = finalize(
        weighted, log_noise, trigger_time, prior, seed=seed, num_posterior_samples=num_posterior_samples,
        min_n_eff=min_n_eff, elapsed=time.perf_counter() - t0,
    )
    result.meta_data["recovered_parameters"] = recover
    return result


def part_slice(n: int, k: int, num_parts: int) -> slice:
    """Rows of part ``k`` (0-based) of ``num_parts`` of n samples."""
    bounds = np.linspace(0, n, num_parts + 1).astype(int)
    return slice(int(bounds[k]), int(bounds[k + 1]))


def evaluate_part(
    samples: Mapping[str, np.ndarray],
    log_prob: np.ndarray,
    prior,
    likelihood,
    seed: int,
    k: int,
    num_parts: int,
    path: str | Path | None = None,
    compute: bool = True,
    workers: int = 1,
    chunk_size: int = 256,
    progress: bool = False,
    exact_rotation: bool | None = None,
    info: Mapping | None = None,
) -> WeightedSamples:
    """Part ``k`` (0-based) of ``num_parts`` of :func:`importance_sample` on the same inputs: its
    rows of ``samples``/``log_prob``, random numbers from ``default_rng([seed, k])``.

    If ``path`` holds this very part (same inputs: checked by a fingerprint) it is read; else it
    is computed and, with a ``path``, saved there (with ``info``). ``compute=False``: DataError
    instead of computing (merging parts computed elsewhere).
    """
    if not 0 <= k < num_parts:
        raise ConfigError(f"importance sampling: part {k + 1} does not exist in {num_parts} parts")
    sl = part_slice(len(log_prob), k, num_parts)
    part_samples = {key: np.asarray(v, dtype=float)[sl] for key, v in samples.items()}
    part_log_prob = np.asarray(log_prob, dtype=float)[sl]
    fingerprint = None
    if path is not None:
        path = Path(path)
        fingerprint = _fingerprint(part_samples, part_log_prob, seed, k, exact_rotation, prior, likelihood)
        if path.is_file():
            loaded = WeightedSamples.load(path, fingerprint)
            if loaded is not None:
                logger.info("importance sampling: reusing finished part %d/%d from %s", k + 1, num_parts, path)
                return loaded
            if not compute:
                raise DataError(f"{path} is not part {k + 1}/{num_parts} of this analysis (other data, proposal, "
                                "seed or number of parts)")
    if not compute:
        raise DataError(f"importance sampling: part {k + 1}/{num_parts} is missing"
                        + (f" ({path} not found)" if path is not None else ""))
    part = evaluate_weights(
        part_samples, part_log_prob, prior, likelihood, np.random.default_rng([seed, k]),
        workers=workers, chunk_size=chunk_size, progress=progress, exact_rotation=exact_rotation,
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        part.save(path, fingerprint, info)
    return part


def finalize(
    weighted: WeightedSamples,
    log_noise_evidence: float,
    trigger_time: float,
    prior=None,
    seed: int = 0,
    num_posterior_samples: int | None = None,
    min_n_eff: float = MIN_EFFECTIVE_SAMPLES,
    elapsed: float = 0.0,
) -> Result:
    """Evidence, n_eff, failure check and unweighted resampling of (merged) weighted samples."""
    lw = weighted.log_weights
    stats = weight_statistics(lw)
    # NaN log L inside the prior's support: a failed waveform (draws outside it are never evaluated)
    failed_l = int(np.sum(np.isnan(weighted.log_likelihood) & ~np.isneginf(weighted.log_prior)))
    if failed_l:
        logger.warning("importance sampling: %d samples with a failed waveform get weight zero", failed_l)
    k_hat = pareto_k(lw)
    meta = {
        "sample_efficiency": stats["sample_efficiency"],
        "n_eff": stats["n_eff"],
        "pareto_k": k_hat,
        **evidence_meta(stats, k_hat),
        "num_proposal_samples": len(weighted),
        "num_failed_likelihood": failed_l,
        "seed": int(seed),
        "timings": {"importance_sampling": elapsed},
    }
    samples = _to_gps(weighted.samples, trigger_time)
    status, reason, posterior = "ok", "", None
    if not stats["n_eff"] >= min_n_eff:
        status = STATUS_FAILED
        reason = (
            f"n_eff = {stats['n_eff']:.2f} < {min_n_eff:g} (sample efficiency "
            f"{100 * stats['sample_efficiency']:.3g} % of {len(weighted)} samples): the weights are dominated "
            "by a few samples, the proposal does not cover the posterior"
        )
        logger.warning("importance sampling: failed proposal: %s", reason)
    else:
        if k_hat > PARETO_K_RELIABLE:
            logger.warning("importance sampling: the weights are heavy-tailed (Pareto k = %.2f > %.1f): n_eff, the "
                           "evidence and its error are unreliable; the proposal misses part of the posterior",
                           k_hat, PARETO_K_RELIABLE)
        num = int(round(stats["n_eff"])) if num_posterior_samples is None else int(num_posterior_samples)
        idx = resample_indices(lw, num, np.random.default_rng([seed, 0, 1]))
        posterior = {k: v[idx] for k, v in samples.items()}
        posterior["log_likelihood"] = weighted.log_likelihood[idx]
        posterior["log_prior"] = weighted.log_prior[idx]
    return Result(
        samples=samples,
        log_weights=lw,
        log_evidence=stats["log_evidence"],
        log_evidence_err=stats["log_evidence_err"],
        log_noise_evidence=log_noise_evidence,
        log_bayes_factor=stats["log_evidence"] - log_noise_evidence,
        meta_data=meta,
        posterior=posterior,
        log_likelihood=weighted.log_likelihood,
        log_prior=weighted.log_prior,
        log_proposal=weighted.log_proposal,
        priors=_to_gps_prior(prior, trigger_time),
        status=status,
        failure_reason=reason,
    )


def _failed(samples, log_prob, lw, log_noise, reason, trigger_time, prior, t0) -> Result:
    n = len(log_prob)
    return Result(
        samples=_to_gps({k: np.asarray(v, dtype=float) for k, v in samples.items()}, trigger_time),
        log_weights=lw,
        log_evidence=np.nan,
        log_evidence_err=np.nan,
        log_noise_evidence=log_noise,
        log_bayes_factor=np.nan,
        meta_data={
            "sample_efficiency": 0.0, "n_eff": 0.0, "num_proposal_samples": n,
            "timings": {"importance_sampling": time.perf_counter() - t0},
        },
        log_proposal=np.asarray(log_prob, dtype=float),
        priors=_to_gps_prior(prior, trigger_time),
        status=STATUS_FAILED,
        failure_reason=reason,
    )


def _to_gps(samples: Mapping[str, np.ndarray], trigger_time: float) -> dict[str, np.ndarray]:
    out = dict(samples)
    if "geocent_time" in out:
        out["geocent_time"] = trigger_time + np.asarray(out["geocent_time"], dtype=float)
    return out


def _to_gps_prior(prior, trigger_time: float):
    """Copy of the prior with geocent_time shifted to GPS seconds (Uniform and DeltaFunction)."""
    if prior is None or "geocent_time" not in prior or trigger_time == 0.0:
        return prior
    import copy

    import bilby

    out = copy.deepcopy(prior)
    p = prior["geocent_time"]
    if isinstance(p, bilby.core.prior.DeltaFunction):
        out["geocent_time"] = bilby.core.prior.DeltaFunction(peak=p.peak + trigger_time, name="geocent_time")
    elif type(p) is bilby.core.prior.Uniform:
        out["geocent_time"] = bilby.core.prior.Uniform(
            minimum=p.minimum + trigger_time, maximum=p.maximum + trigger_time, name="geocent_time",
            latex_label=p.latex_label, unit=p.unit,
        )
    else:
        logger.warning("result: geocent_time prior %r is stored relative to the trigger time", p)
    return out


def _fingerprint(samples, log_prob, seed, part, exact_rotation, prior, likelihood) -> str:
    """Hash of everything a part's weights depend on (a checkpoint is reused only if it matches)."""
    h = hashlib.sha256()
    h.update(str(getattr(likelihood, "fingerprint", type(likelihood).__qualname__)).encode())
    h.update(repr(sorted((k, repr(v)) for k, v in prior.items())).encode())
    for k in sorted(samples):
        h.update(k.encode())
        h.update(np.ascontiguousarray(samples[k], dtype=float).tobytes())
    h.update(np.ascontiguousarray(log_prob, dtype=float).tobytes())
    h.update(repr((int(seed), int(part), exact_rotation)).encode())
    return h.hexdigest()


def _num_samples(samples: Mapping[str, np.ndarray]) -> int:
    if not samples:
        raise DataError("importance sampling: no proposal samples given")
    lengths = {np.asarray(v).size for v in samples.values()}
    if len(lengths) != 1:
        raise DataError(f"importance sampling: sample arrays have different lengths {sorted(lengths)}")
    return lengths.pop()
