"""JS divergence of sampled posteriors and its sampling-noise level, against analytic references."""

import math

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import norm

from dingo_gw.js_divergence import common_edges, js_divergence_bits, js_noise_bits


def test_js_of_large_samples_matches_binned_normal_distributions():
    rng = np.random.default_rng(1)
    n = 400_000
    x, y = rng.normal(0.0, 1.0, n), rng.normal(0.5, 1.0, n)
    edges = common_edges(x, np.ones(n), y, 40)
    # exact binned probabilities (the outer bins absorb the tails, as np.clip does)
    cdf = lambda mu: np.diff(np.concatenate([[0.0], norm.cdf(edges[1:-1], mu), [1.0]]))  # noqa: E731
    exact = jensenshannon(cdf(0.0), cdf(0.5), base=2) ** 2
    assert math.isclose(js_divergence_bits(x, np.ones(n), y, 40), exact, rel_tol=0.03)


def _importance_samples(rng, n):
    """Samples of N(0, 1) drawn from N(0, 1.6²) with importance weights."""
    x = rng.normal(0.0, 1.6, n)
    return x, norm.pdf(x) / norm.pdf(x, scale=1.6)


def test_noise_level_is_the_mean_js_of_samples_of_one_distribution():
    rng = np.random.default_rng(2)
    js, predicted = [], []
    for _ in range(300):
        x, w = _importance_samples(rng, 3000)
        y = rng.normal(0.0, 1.0, 2000)
        js.append(js_divergence_bits(x, w, y, 40))
        predicted.append(js_noise_bits(x, w, y, 40))
    mean_js, mean_pred = np.mean(js), np.mean(predicted)
    assert abs(mean_js / mean_pred - 1) < 0.1, (mean_js, mean_pred)
    # the crude K / (8 ln 2 n_min) level, with n_min the Kish n_eff or the other count, is too low
    x, w = _importance_samples(rng, 3000)
    n_eff = w.sum() ** 2 / np.sum(w**2)
    assert 40 / (8 * math.log(2) * min(n_eff, 2000)) < 0.75 * mean_js


def test_noise_level_sees_a_real_difference_as_signal():
    rng = np.random.default_rng(3)
    x, w = _importance_samples(rng, 20_000)
    y = rng.normal(0.3, 1.0, 20_000)
    assert js_divergence_bits(x, w, y, 40) > 5 * js_noise_bits(x, w, y, 40)
