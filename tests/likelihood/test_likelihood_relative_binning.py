"""Relative binning against bilby's exact GravitationalWaveTransient (independent code: bilby's own
waveform generator and detector response), and node waveforms against LALSimulation on the grid."""

import logging

import numpy as np
import pytest

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError
from dingo_gw.inference.importance.importance_sampling import WeightedSamples
from dingo_gw.likelihood.gaussian import GaussianLikelihood
from dingo_gw.inference.refine.refine import exact_correction, exact_record
from dingo_gw.likelihood.relative_binning import RelativeBinningLikelihood, bin_edges
from dingo_gw.waveforms.generator import SequenceWaveformGenerator, WaveformGenerator

from test_likelihood_gaussian import F_REF, INJECTION, TRIGGER, bilby_log_likelihoods, bilby_setup

logging.getLogger("bilby").setLevel(logging.WARNING)


def posterior_like_points(n, seed):
    """Points spread like a posterior around the injection (log L within ~10 of its maximum)."""
    rng = np.random.default_rng(seed)
    # spins move the phase at merger (phase and time are defined at f_ref): small steps for them
    scale = dict(chirp_mass=0.05, mass_ratio=0.01, a_1=0.005, a_2=0.007, tilt_1=0.005, tilt_2=0.008, phi_12=0.3,
                 phi_jl=0.3, theta_jn=0.05, phase=0.05, luminosity_distance=100.0, ra=0.01, dec=0.005, psi=0.03,
                 geocent_time=0.0001)
    out = {k: INJECTION[k] + s * rng.uniform(-1, 1, n) for k, s in scale.items()}
    out["geocent_time"] = (TRIGGER + out["geocent_time"]) - TRIGGER
    return out


def test_node_waveforms_equal_lalsimulation_on_the_grid():
    domain = FrequencyDomain(20.0, 512.0, 0.25)
    grid = WaveformGenerator("IMRPhenomPv2", domain, f_ref=F_REF)
    idx = np.arange(domain.min_index, len(domain), 97)
    nodes = SequenceWaveformGenerator("IMRPhenomPv2", domain, F_REF, domain.frequencies[idx])
    hp, hc = grid.generate(INJECTION)
    sp, sc = nodes.generate(INJECTION)
    assert sp.shape == (len(idx),)
    peak = np.max(np.abs(hp))
    assert np.max(np.abs(sp - hp[idx])) < 1e-4 * peak
    assert np.max(np.abs(sc - hc[idx])) < 1e-4 * peak
    with pytest.raises(ConfigError, match="increasing"):
        SequenceWaveformGenerator("IMRPhenomPv2", domain, F_REF, [30.0, 25.0])


def test_bin_edges_bound_the_phase_per_bin():
    f = np.arange(20.0, 512.25, 0.25)
    coarse, fine = bin_edges(f, epsilon=0.5), bin_edges(f, epsilon=0.1)
    for e in (coarse, fine):
        assert e[0] == 0 and e[-1] == len(f) - 1 and np.all(np.diff(e) > 0)
    assert 20 < len(coarse) < len(fine) < len(f) / 4
    # the first bins (low frequency, fast phase evolution) are narrower than the last ones
    assert np.diff(fine)[0] < np.diff(fine)[-1]


def test_relative_binning_matches_bilby_near_the_posterior():
    domain, data, psds, bilby_like, start = bilby_setup(seed=3)
    exact = GaussianLikelihood(data, psds, domain, WaveformGenerator("IMRPhenomPv2", domain, f_ref=F_REF),
                               trigger_time=TRIGGER, time_origin=start)
    fiducial = {k: v for k, v in INJECTION.items()}
    rb = RelativeBinningLikelihood(exact, fiducial, epsilon=0.25)
    try:
        params = posterior_like_points(12, seed=4)
        ours = rb.log_likelihood(params)
        ref = bilby_log_likelihoods(bilby_like, params)
        assert 5 < np.ptp(ref) < 100, np.ptp(ref)  # the points span a posterior's range of log L
        assert np.all(np.abs(ours - ref) < 0.05)
        assert rb.num_nodes < len(domain) / 10
        # the same binning re-centred elsewhere stays accurate and shares the node generator
        moved = rb.recentred({k: float(v[5]) for k, v in params.items()})
        assert moved.waveform_generator is rb.waveform_generator
        assert np.all(np.abs(moved.log_likelihood(params) - ref) < 0.05)
        # exact_correction puts the exact log L on the samples of largest weight
        approx = rb.log_likelihood(params)
        ws = WeightedSamples(params, approx, np.zeros(12), np.zeros(12))
        corrected, evaluated, rounds = exact_correction(ws, exact, residual=0.5, min_chunk=4)
        record = exact_record(corrected, approx, evaluated, 0.5, rounds, min_chunk=4)
        top = np.argsort(-approx)[:4]
        assert rounds == 1 and np.array_equal(np.flatnonzero(evaluated), np.sort(top))
        assert np.allclose(corrected.log_likelihood[top], ref[top], atol=1e-3)
        rest = np.setdiff1d(np.arange(12), top)
        assert np.array_equal(corrected.log_likelihood[rest], approx[rest])
        assert record["num_exact"] == 4 and record["unevaluated_weight_fraction"] < 0.5
        assert record["max_abs_delta_log_likelihood"] < 0.05
    finally:
        rb.close()
