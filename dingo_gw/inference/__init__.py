"""Inference: the exact likelihood, phase recovery and importance sampling of network proposals.

>>> from dingo_gw.inference import GaussianLikelihood, importance_sample
>>> like = GaussianLikelihood(data, psds, domain, generator, trigger_time, time_origin=start)
>>> result = importance_sample(samples, log_prob, prior, like, seed=0, workers=2)
"""

from dingo_gw.inference.importance_sampling import (
    MIN_EFFECTIVE_SAMPLES, WeightedSamples, importance_sample, log_prior, weight_statistics,
)
from dingo_gw.inference.likelihood import GaussianLikelihood
from dingo_gw.inference.phase_recovery import recover_phase

__all__ = [
    "GaussianLikelihood", "MIN_EFFECTIVE_SAMPLES", "WeightedSamples", "importance_sample", "log_prior",
    "recover_phase", "weight_statistics",
]
