"""Pieces of the proposal refinement: weighted/Student-t mixtures, the unbounded coordinates and their
Jacobian, the flow density, and tempered SMC on a problem with an analytic posterior and evidence."""

import math

import bilby
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, multivariate_t

from dingo_gw.inference.refine.flow_density import FlowDensity
from dingo_gw.inference.refine.mixture import DensitySum, GaussianMixture, KernelMixture
from dingo_gw.inference.refine.proposal_coordinates import ProposalCoordinates
from dingo_gw.inference.refine.refine import BoundedDensity, correction_kernels, fit_mixture
from dingo_gw.inference.refine.smc import SMCSettings, tempered_smc

TRIGGER = 1126259462.4


def _gw_prior():
    return bilby.core.prior.PriorDict({
        "chirp_mass": bilby.core.prior.Uniform(15.0, 60.0),
        "mass_ratio": bilby.core.prior.Uniform(0.25, 1.0),
        "theta_jn": bilby.core.prior.Sine(),
        "geocent_time": bilby.core.prior.Uniform(-0.1, 0.1),
        "ra": bilby.core.prior.Uniform(0.0, 2 * np.pi, boundary="periodic"),
        "dec": bilby.core.prior.Cosine(),
    })


KEYS = ["chirp_mass", "mass_ratio", "theta_jn", "geocent_time", "ra", "dec"]


def test_weighted_mixture_fit_recovers_the_target_of_the_weights():
    """Samples of a broad Gaussian, weighted by target/broad, fit the target Gaussian."""
    rng = np.random.default_rng(0)
    mean, cov = np.array([1.0, -0.5, 0.3]), np.array([[0.3, 0.1, 0.0], [0.1, 0.2, 0.05], [0.0, 0.05, 0.1]])
    x = rng.normal(0.0, 2.0, size=(40000, 3))
    log_w = (-0.5 * np.einsum("ni,ij,nj->n", x - mean, np.linalg.inv(cov), x - mean)
             + 0.5 * np.sum(x**2, axis=1) / 4.0)
    fit = GaussianMixture.fit(x, rng, max_components=1, sample_weights=np.exp(log_w - log_w.max()))
    draws = fit.sample(100000, rng)
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.03)


def test_student_t_mixture_is_scipys_and_sums_are_normalised():
    rng = np.random.default_rng(1)
    g = GaussianMixture([0.4, 0.6], [[0.0, 0.0], [2.0, 1.0]], [np.eye(2), [[0.5, 0.1], [0.1, 0.3]]],
                        shift=[1.0, -1.0], scale=[2.0, 0.5])
    t = g.student_t(4.0)
    x = rng.normal(size=(50, 2)) * 3
    ref = logsumexp(np.stack([
        np.log(w) + multivariate_t(loc=g.shift + g.scale * m, shape=np.outer(g.scale, g.scale) * c, df=4.0).logpdf(x)
        for w, m, c in zip(g.weights, g.means, g.covariances)]), axis=0)
    np.testing.assert_allclose(t.log_prob(x), ref, rtol=1e-10, atol=1e-10)
    # a sum of densities, one of them widened: its samples' histogram follows its log_prob (1-D check)
    mix = DensitySum([0.3, 0.7], [t, g.widened(0.2, 3.0)])
    draws = mix.sample(200000, rng)
    lo, hi = np.array([-8.0, -4.0]), np.array([12.0, 3.0])
    u = rng.uniform(lo, hi, size=(400000, 2))
    integral = np.mean(np.exp(mix.log_prob(u))) * np.prod(hi - lo)
    inside = np.mean(np.all((draws >= lo) & (draws <= hi), axis=1))
    assert abs(integral - inside) < 0.02


def test_coordinates_round_trip_and_jacobian():
    prior = _gw_prior()
    coords = ProposalCoordinates(prior, KEYS, ["H1", "L1"], TRIGGER)
    assert coords.to_dict()["coordinates"][3:] == ["H1_time", "zenith", "azimuth"]
    x = prior.sample(200)
    u, log_det = coords.to_unbounded(x)
    back, log_det_back = coords.from_unbounded(u)
    for k in KEYS:
        np.testing.assert_allclose(back[k], x[k], atol=1e-9, rtol=1e-9)
    np.testing.assert_allclose(log_det_back, log_det, atol=1e-8)
    # log |du/dx| against central finite differences of the forward map
    eps = 1e-6
    for n in range(20):
        jac = np.empty((len(KEYS), len(KEYS)))
        for j, k in enumerate(KEYS):
            plus = {q: np.array([x[q][n]]) for q in KEYS}
            minus = {q: np.array([x[q][n]]) for q in KEYS}
            plus[k] = plus[k] + eps
            minus[k] = minus[k] - eps
            jac[:, j] = (coords.to_unbounded(plus)[0][0] - coords.to_unbounded(minus)[0][0]) / (2 * eps)
        assert np.linalg.slogdet(jac)[1] == pytest.approx(log_det[n], abs=1e-4)


def test_bounded_density_is_a_normalised_density_of_the_physical_parameters():
    """For a box A of physical parameters away from the prior's edges (where q, with its logit Jacobian,
    is bounded): ∫_A q dx by uniform Monte Carlo equals the fraction of q's draws inside A."""
    prior = _gw_prior()
    coords = ProposalCoordinates(prior, KEYS, ["H1", "L1"], TRIGGER)
    rng = np.random.default_rng(2)
    bilby.core.utils.random.seed(2)  # prior.sample draws from bilby's generator
    q = fit_mixture(prior.sample(3000), coords, None, rng)
    lo = np.array([20.0, 0.35, 0.3, -0.08, 0.5, -1.0])
    hi = np.array([50.0, 0.9, 2.8, 0.08, 5.5, 1.0])
    x = rng.uniform(lo, hi, size=(400000, len(KEYS)))
    dens = np.exp(q.log_prob({k: x[:, i] for i, k in enumerate(KEYS)}))
    integral, err = np.prod(hi - lo) * dens.mean(), np.prod(hi - lo) * dens.std() / math.sqrt(len(dens))
    draws, log_q = q.sample(400000, rng)
    y = np.stack([draws[k] for k in KEYS], axis=-1)
    fraction = np.mean(np.all((y > lo) & (y < hi), axis=-1))
    assert 0.1 < fraction < 0.9
    assert abs(integral - fraction) < 4 * math.hypot(err, math.sqrt(fraction * (1 - fraction) / len(y)))
    first = {k: v[:1000] for k, v in draws.items()}
    diff = np.abs(q.log_prob(first) - log_q[:1000])
    u, _ = coords.to_unbounded(first)
    moderate = np.all(np.abs(u) < 10, axis=1)  # beyond, expit loses digits in float64 (far tails, weight ~0)
    assert moderate.mean() > 0.9 and np.all(diff[moderate] < 1e-6)


def test_flow_density_learns_a_curved_density_and_is_normalised():
    rng = np.random.default_rng(3)
    a = rng.normal(size=4000)
    x = np.column_stack([a, 0.5 * a**2 + 0.2 * rng.normal(size=4000)])  # banana
    flow = FlowDensity.fit(x, seed=0, max_steps=1500)
    gauss = GaussianMixture.fit(x, rng, max_components=1)
    test = np.column_stack([a[:1000], 0.5 * a[:1000] ** 2 + 0.2 * rng.normal(size=1000)])
    assert flow.log_prob(test).mean() > gauss.log_prob(test).mean() + 0.3
    lo, hi = np.array([-5.0, -1.5]), np.array([5.0, 10.0])
    u = rng.uniform(lo, hi, size=(200000, 2))
    integral = np.mean(np.exp(flow.log_prob(u))) * np.prod(hi - lo)
    draws = flow.sample(20000, rng)
    inside = np.mean(np.all((draws >= lo) & (draws <= hi), axis=1))
    assert abs(integral - inside) < 0.03


def test_student_t_base_gives_the_flow_polynomial_tails_and_stays_normalised():
    rng = np.random.default_rng(4)
    x = rng.logistic(size=(3000, 2))  # exponential tails, like the logit of a flat posterior at an edge
    heavy = FlowDensity.fit(x, seed=0, max_steps=600, base_dof=5.0)
    normal = FlowDensity.fit(x, seed=0, max_steps=600)
    assert heavy.info["base"] == "student_t(dof=5)" and normal.info["base"] == "normal"
    far = np.array([[15.0, 0.0], [30.0, 0.0]])  # 8 and 16 standard deviations, outside the splines
    assert np.diff(heavy.log_prob(far))[0] > -15.0  # ~ -6 log 2 for a Student-t(5) tail
    assert np.diff(normal.log_prob(far))[0] < -50.0  # Gaussian: ~ -(16² - 8²)/2
    lo, hi = np.array([-4.0, -4.0]), np.array([4.0, 4.0])
    u = rng.uniform(lo, hi, size=(200000, 2))
    integral = np.mean(np.exp(heavy.log_prob(u))) * np.prod(hi - lo)
    draws = heavy.sample(40000, rng)
    assert abs(integral - np.mean(np.all((draws >= lo) & (draws <= hi), axis=1))) < 0.02


def test_kernel_mixture_is_a_normalised_gaussian_mixture():
    rng = np.random.default_rng(5)
    centres, w = rng.normal(size=(200, 3)) * [1.0, 2.0, 0.5], rng.random(200)
    cov = np.array([[1.0, 0.3, 0.0], [0.3, 2.0, 0.1], [0.0, 0.1, 0.5]])
    k = KernelMixture(centres, w, cov, 0.4, prune=1.0)
    x = rng.normal(size=(40, 3)) * 2
    ref = np.log(sum(wi / w.sum() * multivariate_normal(c, 0.16 * cov).pdf(x) for wi, c in zip(w, centres)))
    np.testing.assert_allclose(k.log_prob(x), ref, rtol=1e-10, atol=1e-10)
    draws = k.sample(200000, rng)
    lo, hi = np.array([-1.0, -2.0, -0.5]), np.array([1.5, 2.0, 0.5])
    u = rng.uniform(lo, hi, size=(400000, 3))
    integral = np.mean(np.exp(k.log_prob(u))) * np.prod(hi - lo)
    assert abs(integral - np.mean(np.all((draws >= lo) & (draws <= hi), axis=1))) < 0.01
    pruned = KernelMixture(centres, w**8, cov, 0.4)  # uneven weights: few kernels carry 99.9 %
    assert pruned.num_kernels < 200 and pruned.to_dict()["num_kernels"] == pruned.num_kernels
    assert np.sort(w**8)[::-1][:pruned.num_kernels].sum() >= 0.999 * np.sum(w**8)
    capped = KernelMixture(centres, w, cov, 0.4, max_kernels=10)
    np.testing.assert_allclose(np.sort(capped.weights), np.sort(w)[-10:] / np.sort(w)[-10:].sum())


def test_correction_kernels_sit_where_the_fit_falls_short_of_the_target():
    """Posterior samples of N(0, 1) in two parameters against a fit 0.6 times as wide: the correction's
    weight goes to the tails, which the fit misses."""
    prior = bilby.core.prior.PriorDict({"a": bilby.core.prior.Uniform(-50.0, 50.0),
                                        "b": bilby.core.prior.Uniform(-50.0, 50.0)})
    coords = ProposalCoordinates(prior, ["a", "b"])
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4000, 2))
    u, _ = coords.to_unbounded({"a": x[:, 0], "b": x[:, 1]})
    narrow = GaussianMixture([1.0], [[0.0, 0.0]], [0.36 * np.eye(2)], shift=u.mean(axis=0), scale=u.std(axis=0))
    kernels = correction_kernels({"a": x[:, 0], "b": x[:, 1]}, -0.5 * np.sum(x**2, axis=1), coords, narrow)
    z = (kernels.centres - u.mean(axis=0)) / u.std(axis=0)
    radius = np.sqrt(np.sum(kernels.weights * np.sum(z**2, axis=1)))  # weighted RMS, standardised units
    assert radius > 2.5  # the samples' RMS radius is sqrt(2)
    assert kernels.to_dict()["particle_ratio_n_eff"] < 100 and kernels.to_dict()["num_particles"] == 4000
    # a fit as wide as the target: even weights
    matched = GaussianMixture([1.0], [[0.0, 0.0]], [np.eye(2)], shift=u.mean(axis=0), scale=u.std(axis=0))
    even = correction_kernels({"a": x[:, 0], "b": x[:, 1]}, -0.5 * np.sum(x**2, axis=1), coords, matched)
    assert even.to_dict()["particle_ratio_n_eff"] > 3000


class _GaussianInBox:
    """log π + log L for a uniform prior on [0, 1]^D and L = Z · N(θ; μ, Σ) (Σ small: the box holds
    all of it), so the evidence is Z; counts evaluations like MarginalPosterior."""

    def __init__(self, keys, mean, cov, log_z):
        self.keys, self.mean, self.icov, self.log_z = keys, mean, np.linalg.inv(cov), log_z
        self.norm = -0.5 * np.linalg.slogdet(2 * np.pi * cov)[1]
        self.evaluations = 0

    def __call__(self, samples):
        x = np.stack([samples[k] for k in self.keys], axis=-1)
        self.evaluations += len(x)
        d = x - self.mean
        inside = np.all((x > 0) & (x < 1), axis=-1)
        out = self.log_z + self.norm - 0.5 * np.einsum("ni,ij,nj->n", d, self.icov, d)
        return np.where(inside, out, -np.inf)


def test_tempered_smc_reaches_an_analytic_posterior():
    keys = [f"x{i}" for i in range(4)]
    prior = bilby.core.prior.PriorDict({k: bilby.core.prior.Uniform(0.0, 1.0) for k in keys})
    coords = ProposalCoordinates(prior, keys)
    mean = np.array([0.3, 0.6, 0.5, 0.7])
    cov = np.diag([0.02, 0.01, 0.03, 0.015]) ** 2
    cov[0, 1] = cov[1, 0] = 0.8 * 0.02 * 0.01
    target = _GaussianInBox(keys, mean, cov, log_z=-5.0)
    rng = np.random.default_rng(4)
    base = BoundedDensity(coords, GaussianMixture.fit(coords.to_unbounded(prior.sample(2000))[0], rng,
                                                      max_components=1))  # the prior: 20-50x broader
    out = tempered_smc(base, target, SMCSettings(num_particles=2000, mcmc_steps=6, final_mcmc_steps=6), rng)
    assert out.beta == 1.0 and len(out.stages) > 2 and out.stages[-1]["stage"] == "final_moves"
    assert np.all(np.isfinite(out.log_target)) and len(out.log_target) == 2000
    x = np.stack([out.samples[k] for k in keys], axis=-1)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(x.mean(axis=0), mean, atol=0.1 * sd.max())
    np.testing.assert_allclose(x.std(axis=0), sd, rtol=0.15)
    assert np.corrcoef(x[:, 0], x[:, 1])[0, 1] == pytest.approx(0.8, abs=0.08)
    assert out.log_evidence == pytest.approx(-5.0, abs=0.3)
    assert out.num_likelihood_evaluations == target.evaluations
    assert all(st["mcmc_steps"] == 6 for st in out.stages) and 0 < out.stages[-1]["distinct_after_moves"] <= 1


class _Banana:
    """log of a thin curved ridge in the unit cube: x1 = 0.3 + 2 (x0 - 0.5)² ± 0.002, x0 ~ N(0.5, 0.15),
    x2 ~ N(0.5, 0.01); log Z = log((2π)^1.5 · 0.002 · 0.15 · 0.01) (the box cuts < 1e-3 of the mass)."""

    log_z = math.log((2 * math.pi) ** 1.5 * 0.002 * 0.15 * 0.01)

    def __init__(self):
        self.evaluations = 0

    def __call__(self, x):
        a, b, c = x["x0"], x["x1"], x["x2"]
        self.evaluations += len(a)
        r = b - (0.3 + 2.0 * (a - 0.5) ** 2)
        out = -0.5 * (r / 0.002) ** 2 - 0.5 * ((a - 0.5) / 0.15) ** 2 - 0.5 * ((c - 0.5) / 0.01) ** 2
        inside = np.all([(v > 0) & (v < 1) for v in (a, b, c)], axis=0)
        return np.where(inside, out, -np.inf)


@pytest.mark.parametrize("seed", [1, 2])
def test_adaptive_moves_keep_the_particles_distinct_at_low_acceptance(seed):
    """A thin curved ridge with 2 steps per stage: random-walk acceptance falls below 0.1, resampled
    duplicates stay in place and the population collapses; with min_moves the stages step on until
    the particles have moved twice on average."""
    keys = [f"x{i}" for i in range(3)]
    prior = bilby.core.prior.PriorDict({k: bilby.core.prior.Uniform(0.0, 1.0) for k in keys})
    coords = ProposalCoordinates(prior, keys)
    out = {}
    for min_moves in (0.0, 2.0):
        rng = np.random.default_rng(seed)
        start = {k: rng.random(2000) for k in keys}  # the prior, seeded
        base = BoundedDensity(coords, GaussianMixture.fit(coords.to_unbounded(start)[0], rng, max_components=1))
        out[min_moves] = tempered_smc(base, _Banana(), SMCSettings(
            num_particles=1000, mcmc_steps=2, min_moves=min_moves, max_mcmc_steps=20), rng)
    fixed, adaptive = out[0.0].stages, out[2.0].stages
    assert all(st["mcmc_steps"] == 2 for st in fixed)
    assert all(2 <= st["mcmc_steps"] <= 20 for st in adaptive) and max(st["mcmc_steps"] for st in adaptive) > 2
    for st in adaptive:  # each stage stopped once the rates summed to 2, or at the cap
        rates = st["accepted_moves"]
        k = st["mcmc_steps"]  # independent proposals on even steps, random walk on odd ones
        assert k == 20 or rates["independent"] * ((k + 1) // 2) + rates["random_walk"] * (k // 2) >= 2 - 1e-9
    # fewest distinct particles after any stage's moves (seeds 1-8: fixed 0.68-0.86, adaptive 0.98-0.99)
    assert min(st["distinct_after_moves"] for st in fixed) < 0.9
    assert min(st["distinct_after_moves"] for st in adaptive) > 0.95
    assert out[2.0].log_evidence == pytest.approx(_Banana.log_z, abs=0.3)


def test_a_second_smc_pass_starts_near_the_posterior():
    """A narrow target out in the start density's tail (as a network that misses the peak leaves it): the
    second pass starts from a fit to the first pass's particles, so its tempering is short (2 stages against
    14), its particles follow the target (mean, spread) and the evaluations of both passes are counted.
    (That the second pass helps where the first collapses onto few ancestors is measured on GW data:
    docs/events.md.)"""
    from dingo_gw.inference.refine.refine import repeated_smc

    keys = [f"x{i}" for i in range(4)]
    prior = bilby.core.prior.PriorDict({k: bilby.core.prior.Uniform(0.0, 1.0) for k in keys})
    coords = ProposalCoordinates(prior, keys)
    mean = np.array([0.8, 0.2, 0.75, 0.3])
    sd = np.array([0.01, 0.008, 0.012, 0.01])
    target = _GaussianInBox(keys, mean, np.diag(sd**2), log_z=-5.0)
    rng = np.random.default_rng(2)
    start = {k: np.clip(rng.normal(0.5, 0.1, 4000), 0.01, 0.99) for k in keys}  # misses the peak by 3 sd
    base = BoundedDensity(coords, GaussianMixture.fit(coords.to_unbounded(start)[0], rng, max_components=1))
    settings = SMCSettings(num_particles=1000, mcmc_steps=2, final_mcmc_steps=2)
    out = {}
    for passes in (1, 2):
        target.evaluations = 0
        smc, record = repeated_smc(base, target, settings, np.random.default_rng(7), passes)
        assert len(record) == passes and smc.num_likelihood_evaluations == target.evaluations
        x = np.stack([smc.samples[k] for k in keys], axis=-1)
        out[passes] = (record, np.abs(np.log(x.std(axis=0) / sd)).max(), np.abs(x.mean(axis=0) - mean).max())
    (one, _, _), (two, spread2, offset2) = out[1], out[2]
    assert two[0]["num_stages"] == one[0]["num_stages"] and two[1]["num_stages"] <= two[0]["num_stages"] // 3
    assert spread2 < np.log(1.3) and offset2 < 0.3 * sd.max()
