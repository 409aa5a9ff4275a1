"""Distance recovery (bilby-style distance marginalisation) against bilby's phase-marginalised
GravitationalWaveTransient integrated over the distance prior on a fine grid, and against quadrature."""

import logging

import bilby
import numpy as np
import pytest
from scipy import stats
from scipy.special import i0e, logsumexp

from dingo_gw.errors import DataError
from dingo_gw.likelihood.distance_recovery import DistanceRecovery, distance_recoverable
from dingo_gw.inference.importance.importance_sampling import complete_samples, evaluate_weights
from dingo_gw.likelihood.gaussian import GaussianLikelihood
from dingo_gw.likelihood.phase_recovery import recover_phase
from dingo_gw.waveforms.generator import WaveformGenerator

from test_likelihood_gaussian import F_REF, INJECTION, TRIGGER, bilby_log_likelihoods, bilby_setup

logging.getLogger("bilby").setLevel(logging.WARNING)


def distance_prior():
    return bilby.gw.prior.UniformComovingVolume(100.0, 3000.0, name="luminosity_distance")


def quadrature_log_marginal(prior, kappa, rho2):
    """log ∫ π(d) exp(-ρ² r²/2) I0(κ r) dd with r = d_min / d: trapezoid rule in r on 4·10^6 points."""
    d_ref = prior.minimum
    r = np.linspace(d_ref / prior.maximum, 1.0, 4_000_001)
    log_f = (np.log(prior.prob(d_ref / r) * d_ref / r**2) - 0.5 * rho2 * r**2 + np.log(i0e(kappa * r))
             + kappa * r)
    log_f[[0, -1]] += np.log(0.5)
    return logsumexp(log_f) + np.log(r[1] - r[0])


@pytest.mark.parametrize("kappa, rho2", [(0.0, 0.0), (30.0, 40.0), (900.0, 1000.0), (4000.0, 1000.0),
                                         (5.0, 3000.0), (2000.0, 1500.0)])
def test_interpolated_marginal_matches_quadrature(kappa, rho2):
    """Peak inside the prior (SNR 6-60), beyond its near edge (r* = 4 > 1) and far beyond its far edge."""
    rec = DistanceRecovery(distance_prior())
    ours = rec.log_marginal(np.array([kappa]), np.array([rho2]))[0]
    assert ours == pytest.approx(quadrature_log_marginal(rec.prior, kappa, rho2), abs=0.01)


def test_draws_follow_the_interpolated_density():
    rec = DistanceRecovery(distance_prior())
    n = 40000
    kappa, rho2 = np.full(n, 400.0), np.full(n, 900.0)  # SNR 30 at d_ref, peak at 225 Mpc
    rng = np.random.default_rng(1)
    d, log_q = rec.draw(kappa, rho2, rng)
    assert np.all((d >= 100.0) & (d <= 3000.0))
    # q(d) is the normalised conditional: q ∝ π(d) L_φ(d) up to the interpolation error
    r = rec.d_ref / d
    log_p = (np.log(rec.prior.prob(d)) - 0.5 * rho2 * r**2 + np.log(i0e(kappa * r)) + kappa * r
             - rec.log_marginal(kappa[:1], rho2[:1])[0])
    assert np.max(np.abs(log_p - log_q)) < 0.01
    grid = np.linspace(150, 320, 20001)
    pdf = np.exp(np.interp(grid, np.sort(d), log_q[np.argsort(d)]))
    cdf = np.concatenate([[0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    assert cdf[-1] == pytest.approx(1.0, abs=2e-3)
    assert stats.kstest(d, lambda x: np.interp(x, grid, cdf / cdf[-1])).pvalue > 1e-3


@pytest.fixture(scope="module")
def gw_problem():
    domain, data, psds, bilby_like, start = bilby_setup(seed=3)
    ours = GaussianLikelihood(data, psds, domain, WaveformGenerator("IMRPhenomPv2", domain, f_ref=F_REF),
                              trigger_time=TRIGGER, time_origin=start)
    phase_marginalised = bilby.gw.likelihood.GravitationalWaveTransient(
        bilby_like.interferometers, bilby_like.waveform_generator, phase_marginalization=True,
        priors=bilby.core.prior.PriorDict(dict(phase=bilby.core.prior.Uniform(0, 2 * np.pi, name="phase"))))
    return ours, phase_marginalised


def bilby_distance_posterior(phase_marginalised, prior, params, grid):
    """log π(d) + bilby's phase-marginalised log L on a grid of distances (other parameters fixed)."""
    points = {k: np.full(len(grid), v) for k, v in params.items()}
    points.update(luminosity_distance=grid, phase=np.zeros(len(grid)))
    return bilby_log_likelihoods(phase_marginalised, points) + np.log(prior.prob(grid))


def test_recovered_distance_and_phase_weights_equal_bilbys_marginal_likelihood(gw_problem):
    """π(d) π(φ) L / q(d, φ | θ) is ∫∫ π(d) π(φ) L dd dφ for every draw (up to the interpolation error),
    and the drawn distances follow the conditional posterior, both from bilby's likelihood on a grid."""
    ours, phase_marginalised = gw_problem
    prior = distance_prior()
    theta = {k: v for k, v in INJECTION.items() if k not in ("luminosity_distance", "phase")}
    grid = np.linspace(100.0, 3000.0, 1451)  # 2 Mpc steps; the posterior is ~1000 Mpc wide
    log_post = bilby_distance_posterior(phase_marginalised, prior, theta, grid)
    trap = np.full(len(grid), grid[1] - grid[0])
    trap[[0, -1]] *= 0.5
    ref = logsumexp(log_post + np.log(trap))
    n = 2000
    rec = DistanceRecovery(prior)
    recovered, log_q, logl = recover_phase(ours, {k: np.full(n, v) for k, v in theta.items()},
                                           np.random.default_rng(5), distance=rec)
    d, phase = recovered["luminosity_distance"], recovered["phase"]
    assert np.all((phase >= 0) & (phase < 2 * np.pi))
    log_w = logl + np.log(prior.prob(d)) - np.log(2 * np.pi) - log_q
    assert np.max(np.abs(log_w - ref)) < 0.02
    assert logsumexp(log_w) - np.log(n) == pytest.approx(ref, abs=0.005)
    # the exact likelihood at the drawn (d, φ) (the rotation shortcut is exact for Pv2)
    check = {k: np.full(8, v) for k, v in theta.items()}
    check.update(luminosity_distance=d[:8], phase=phase[:8])
    np.testing.assert_allclose(logl[:8], ours.log_likelihood(check), atol=1e-6)
    post = np.exp(log_post - log_post.max())
    cdf = np.concatenate([[0], np.cumsum(0.5 * (post[1:] + post[:-1]))])
    assert stats.kstest(d, lambda x: np.interp(x, grid, cdf / cdf[-1])).pvalue > 1e-3


def test_importance_sampling_recovers_the_distance_when_the_proposal_lacks_it(gw_problem):
    ours, _ = gw_problem
    prior = bilby.gw.prior.BBHPriorDict()
    prior["luminosity_distance"] = distance_prior()
    prior["geocent_time"] = bilby.core.prior.Uniform(-0.1, 0.1, name="geocent_time")
    theta = {k: np.full(4, v) for k, v in INJECTION.items() if k not in ("luminosity_distance", "phase")}
    theta["chirp_mass"] = np.full(4, 30.0)
    _, recover = complete_samples(theta, prior)
    assert sorted(recover) == ["luminosity_distance", "phase"]
    ws = evaluate_weights(theta, np.zeros(4), prior, ours, np.random.default_rng(0))
    assert np.all(np.isfinite(ws.log_weights)) and np.all(ws.samples["luminosity_distance"] >= 100.0)
    # the distance alone (a proposal with the phase) cannot be recovered
    with_phase = dict(theta, phase=np.full(4, 1.0))
    with pytest.raises(DataError, match="luminosity_distance"):
        complete_samples(with_phase, prior)


def test_only_a_sampled_positive_finite_distance_prior_is_marginalised():
    prior = bilby.gw.prior.BBHPriorDict()
    prior["luminosity_distance"] = distance_prior()
    assert distance_recoverable(prior)
    prior["luminosity_distance"] = bilby.core.prior.Uniform(0.0, 2000.0, name="luminosity_distance")
    assert not distance_recoverable(prior)
    prior["luminosity_distance"] = bilby.core.prior.DeltaFunction(400.0, name="luminosity_distance")
    assert not distance_recoverable(prior)
