"""Detector projection against bilby's Interferometer.get_detector_response and LAL."""

import lal
import numpy as np
import pytest
import torch

from dingo_gw.detectors import DetectorNetwork, gmst, phase_factor, phase_factor_uniform
from dingo_gw.errors import ConfigError

DETECTORS = ["H1", "L1", "V1"]


@pytest.fixture(scope="module")
def bilby_setup():
    """bilby interferometers (segment starting at ref_time) and IMRPhenomD polarisations."""
    import bilby

    bilby.core.utils.logger.setLevel("WARNING")
    duration, fs = 4.0, 1024.0
    wfg = bilby.gw.WaveformGenerator(
        duration=duration,
        sampling_frequency=fs,
        frequency_domain_source_model=bilby.gw.source.lal_binary_black_hole,
        waveform_arguments={"waveform_approximant": "IMRPhenomD", "reference_frequency": 20.0},
    )
    intrinsic = dict(mass_1=36.0, mass_2=29.0, a_1=0.3, a_2=-0.2, tilt_1=0.0, tilt_2=0.0, phi_12=0.0, phi_jl=0.0,
                     theta_jn=0.6, phase=1.3, luminosity_distance=400.0, ra=0.0, dec=0.0, psi=0.0, geocent_time=0.0)
    intrinsic["chi_1"], intrinsic["chi_2"] = 0.3, -0.2
    pols = wfg.frequency_domain_strain(intrinsic)

    def ifos_at(ref_time):
        ifos = bilby.gw.detector.InterferometerList(DETECTORS)
        ifos.set_strain_data_from_zero_noise(sampling_frequency=fs, duration=duration, start_time=ref_time)
        for ifo in ifos:
            ifo.minimum_frequency = 10.0
        return ifos

    return pols, wfg.frequency_array, ifos_at


@pytest.mark.parametrize("ref_time", [1126259462.4, 1187008882.43])
def test_projection_equals_bilby_detector_response(bilby_setup, ref_time):
    pols, freqs, ifos_at = bilby_setup
    ifos = ifos_at(ref_time)
    rng = np.random.default_rng(int(ref_time) % 1000)
    n = 6
    ra, dec = rng.uniform(0, 2 * np.pi, n), np.arcsin(rng.uniform(-1, 1, n))
    psi, dist = rng.uniform(0, np.pi, n), rng.uniform(100, 2000, n)
    # GPS times as bilby sees them (float64 resolution ~2e-7 s at 1e9 s); the relative times
    # gps - ref_time are then exact, so both codes get the same arrival time
    gps = ref_time + rng.uniform(-0.1, 0.1, n)
    tc = gps - ref_time
    net = DetectorNetwork(DETECTORS, ref_time)
    hp = np.tile(pols["plus"], (n, 1))
    hc = np.tile(pols["cross"], (n, 1))
    # torch float64 batch, float32 batch and numpy path; bank waveforms are at 400 Mpc here
    ours64 = net.project(torch.as_tensor(hp), torch.as_tensor(hc), torch.as_tensor(freqs), *(
        torch.as_tensor(a) for a in (ra, dec, psi, tc, dist)), ref_distance=400.0).numpy()
    ours32 = net.project(torch.as_tensor(hp, dtype=torch.complex64), torch.as_tensor(hc, dtype=torch.complex64),
                         torch.as_tensor(freqs, dtype=torch.float32),
                         *(torch.as_tensor(a, dtype=torch.float32) for a in (ra, dec, psi, tc, dist)),
                         ref_distance=400.0).numpy()
    ours_np = net.project(hp, hc, freqs, ra, dec, psi, tc, dist, ref_distance=400.0)
    for k in range(n):
        params = dict(ra=ra[k], dec=dec[k], psi=psi[k], geocent_time=gps[k], luminosity_distance=dist[k])
        scaled = {m: pols[m] * 400.0 / dist[k] for m in ("plus", "cross")}
        for i, ifo in enumerate(ifos):
            ref = ifo.get_detector_response(scaled, params)
            band = ifo.frequency_mask
            norm = np.abs(ref[band]).max()
            assert np.abs(ours64[k, i][band] - ref[band]).max() / norm < 1e-5
            assert np.abs(ours_np[k, i][band] - ref[band]).max() / norm < 1e-5
            assert np.abs(ours32[k, i][band] - ref[band]).max() / norm < 1e-4


def test_antenna_patterns_and_delays_equal_lal():
    ref_time = 1126259462.4
    net = DetectorNetwork(DETECTORS, ref_time)
    rng = np.random.default_rng(3)
    for _ in range(5):
        ra, dec, psi, tc = rng.uniform(0, 2 * np.pi), rng.uniform(-1.5, 1.5), rng.uniform(0, np.pi), rng.uniform(-.1, .1)
        gps = ref_time + tc
        tc = gps - ref_time
        fp, fc = net.antenna_patterns(ra, dec, psi, tc)
        dt = net.time_delays(ra, dec, tc)
        g = lal.GreenwichMeanSiderealTime(gps)
        for i, d in enumerate(DETECTORS):
            det = lal.cached_detector_by_prefix[d]
            lp, lc = lal.ComputeDetAMResponse(det.response, ra, dec, psi, g)
            assert abs(fp[i] - lp) < 1e-6 and abs(fc[i] - lc) < 1e-6
            assert abs(dt[i] - lal.TimeDelayFromEarthCenter(det.location, ra, dec, gps)) < 1e-9
    assert abs(gmst(ref_time) - np.mod(lal.GreenwichMeanSiderealTime(ref_time), 2 * np.pi)) < 1e-12


def test_phase_factors_are_exp_minus_2_pi_i_f_dt():
    f0, df, n = 20.0, 0.125, 8033
    f = f0 + df * np.arange(n)
    dt = np.random.default_rng(0).uniform(-0.2, 0.2, size=(3, 2))
    expected = np.exp(-2j * np.pi * f * dt[..., None])
    fast64 = phase_factor_uniform(f0, df, n, torch.as_tensor(dt)).numpy()
    fast32 = phase_factor_uniform(f0, df, n, torch.as_tensor(dt), dtype=torch.float32).numpy()
    direct = phase_factor(torch.as_tensor(f), torch.as_tensor(dt)).numpy()
    assert fast64.shape == (3, 2, n)
    assert np.abs(fast64 - expected).max() < 1e-9 and np.abs(direct - expected).max() < 1e-9
    assert np.abs(fast32 - expected).max() < 2e-4


def test_unknown_detector_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown detector 'X1'"):
        DetectorNetwork(["H1", "X1"], 0.0)
    with pytest.raises(ConfigError, match="duplicate"):
        DetectorNetwork(["H1", "H1"], 0.0)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_each_response_backend_matches_lal(backend):
    """The one torch (dingo_gw.detectors) and the one numpy (dingo_gw.likelihood.response) detector
    response give LAL's antenna patterns and delays, at times relative to the reference time."""
    from dingo_gw.likelihood.response import NumpyDetectorNetwork

    names, ref = ["H1", "L1", "V1"], 1126259462.4
    rng = np.random.default_rng(1)
    n = 16
    ra, dec, psi = rng.uniform(0, 2 * np.pi, n), np.arcsin(rng.uniform(-1, 1, n)), rng.uniform(0, np.pi, n)
    t_rel = rng.uniform(-0.1, 0.1, n)
    if backend == "torch":
        net = DetectorNetwork(names, ref)
        as_t = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
        fp, fc = (x.numpy() for x in net.antenna_patterns(as_t(ra), as_t(dec), as_t(psi), as_t(t_rel)))
        dt = net.time_delays(as_t(ra), as_t(dec), as_t(t_rel)).numpy()
    else:
        net = NumpyDetectorNetwork(names, ref)
        fp, fc = net.antenna_patterns(ra, dec, psi, t_rel)
        dt = net.time_delays(ra, dec, t_rel)
    for k in range(n):
        gmst_k = lal.GreenwichMeanSiderealTime(ref + t_rel[k])
        for i, d in enumerate(names):
            det = lal.cached_detector_by_prefix[d]
            lp, lc = lal.ComputeDetAMResponse(det.response, ra[k], dec[k], psi[k], gmst_k)
            assert fp[k, i] == pytest.approx(lp, abs=1e-6) and fc[k, i] == pytest.approx(lc, abs=1e-6)
            ld = lal.TimeDelayFromEarthCenter(det.location, ra[k], dec[k], ref + t_rel[k])
            assert dt[k, i] == pytest.approx(ld, abs=1e-8)


def test_stacked_projection_is_project():
    """The training pipeline's batched projection equals DetectorNetwork.project with the same shifts."""
    net = DetectorNetwork(["H1", "L1"], 1126259462.4)
    g = torch.Generator().manual_seed(0)
    B, n, f0, df = 4, 200, 20.0, 0.25
    h = torch.complex(torch.randn(B, 2, n, generator=g, dtype=torch.float64),
                      torch.randn(B, 2, n, generator=g, dtype=torch.float64))
    ra, dec, psi = torch.rand(B, generator=g) * 6, torch.rand(B, generator=g) - 0.5, torch.rand(B, generator=g)
    ra, dec, psi = ra.double(), dec.double(), psi.double()
    tc, dist = torch.zeros(B, dtype=torch.float64) + 0.01, torch.full((B,), 400.0, dtype=torch.float64)
    shifts = torch.rand(B, 2, generator=g, dtype=torch.float64) * 0.02
    out = net.project_stacked(h, ra, dec, psi, tc, dist, 100.0, shifts, f0, df, torch.float64)
    ref = net.project(h[:, 0], h[:, 1], f0 + df * torch.arange(n, dtype=torch.float64), ra, dec, psi, tc,
                      luminosity_distance=dist, time_shifts=shifts)
    assert torch.allclose(torch.view_as_complex(out.contiguous()), ref, rtol=1e-10, atol=1e-12)
