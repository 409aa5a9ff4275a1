"""Inference-side transforms: time-shift convention, whitening of windowed noise, GNPE inputs
identical to training batches, sky-frame conversion, standardisation."""

import numpy as np
import pytest
import torch
from scipy.signal.windows import tukey

from dingo_gw.detectors import DetectorNetwork
from dingo_gw.domain import FrequencyDomain, tukey_window_factor
from dingo_gw.errors import ConfigError, DataError, FileFormatError
from dingo_gw.pipeline import DataPipeline, GNPESettings, NetworkInput, PolarizationSource, Standardization

DOMAIN = FrequencyDomain(20.0, 512.0, 0.25)  # T = 4 s, 1024 Hz sampling
FS = 2 * DOMAIN.f_max
T = np.arange(int(DOMAIN.duration * FS)) / FS
REF_TIME = 1126259462.4


def simple_input(detectors=("H1",), gnpe=None, window_factor=1.0):
    domain = FrequencyDomain(DOMAIN.f_min, DOMAIN.f_max, DOMAIN.delta_f, window_factor)
    std = Standardization(["geocent_time", "ra"], {"geocent_time": 0.0, "ra": 3.0}, {"geocent_time": 0.01, "ra": 2.0})
    pstd = None
    if gnpe is not None:
        names = [f"{d}_time_proxy" for d in (detectors[1:] if gnpe.relative else detectors)]
        pstd = Standardization(names, dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.01))
    return NetworkInput(domain, list(detectors), REF_TIME, std, dict.fromkeys(detectors, 1.0), gnpe, pstd)


def pulse_fd(t0, width=2e-3):
    """bilby-convention FD of a Gaussian pulse centred at t0 (s, circular in the segment)."""
    dist = (T - t0 + DOMAIN.duration / 2) % DOMAIN.duration - DOMAIN.duration / 2
    return np.fft.rfft(np.exp(-0.5 * (dist / width) ** 2)) / FS


def test_time_shift_matches_a_time_domain_delay_and_inverts():
    inp = simple_input()
    band = slice(DOMAIN.min_index, None)
    data = torch.as_tensor(pulse_fd(1.5)[band]).unsqueeze(0)
    dt = torch.tensor([0.0037], dtype=torch.float64)
    shifted = inp.time_shift(data, dt)
    expected = pulse_fd(1.5 + 0.0037)[band]
    assert np.abs(shifted[0].numpy() - expected).max() < 1e-6 * np.abs(expected).max()
    back = inp.time_shift(shifted, -dt)
    assert torch.allclose(back, data, rtol=0, atol=1e-12 * float(data.abs().max()))


def test_event_input_refers_times_to_the_event():
    inp = simple_input()
    # segment starts 3 s before the event; a pulse at the event time sits at t = 3 s
    strain = pulse_fd(3.0)
    asd = np.full(len(DOMAIN), 2.0)
    ev = inp.event_input({"H1": strain}, {"H1": asd}, segment_start=-3.0)
    got = ev.whitened[0].numpy() * 2.0 * DOMAIN.noise_std
    expected = pulse_fd(0.0)[DOMAIN.min_index:]
    assert np.abs(got - expected).max() < 1e-6 * np.abs(expected).max()
    with pytest.raises(DataError, match="no strain/ASD for detector L1"):
        simple_input(("H1", "L1")).event_input({"H1": strain}, {"H1": asd})
    bad = asd.copy()
    bad[100] = 0.0
    with pytest.raises(DataError, match="ASD of H1 must be finite and > 0"):
        inp.event_input({"H1": strain}, {"H1": bad})


def test_whitened_windowed_noise_has_unit_variance():
    rng = np.random.default_rng(1)
    alpha, sigma = 0.4, 2.0
    wf = tukey_window_factor(len(T), alpha)
    inp = simple_input(window_factor=wf)
    x = rng.normal(0, sigma, size=(300, len(T))) * tukey(len(T), alpha)
    fd = torch.as_tensor(np.fft.rfft(x, axis=-1) / FS)
    asd = torch.full((len(DOMAIN),), np.sqrt(2 * sigma**2 / FS), dtype=torch.float64)
    w = inp.whiten(fd, asd)[:, 5:-5]
    assert abs(float(w.real.var()) - 1) < 0.02 and abs(float(w.imag.var()) - 1) < 0.02
    # without the window factor the variance would be wf (~0.75), not 1
    assert abs(float(simple_input().whiten(fd, asd)[:, 5:-5].real.var()) - wf) < 0.03


def test_inference_inputs_equal_training_batches():
    """Whitening the unwhitened detector strain of a training sample with its ASD and shifting
    by its proxies reproduces the pipeline's network input and proxies exactly."""
    rng = np.random.default_rng(2)
    n_full = len(DOMAIN)
    f = DOMAIN.frequencies
    hp = (rng.normal(size=(4, n_full)) + 1j * rng.normal(size=(4, n_full))) * np.exp(-f / 200)
    hc = (rng.normal(size=(4, n_full)) + 1j * rng.normal(size=(4, n_full))) * np.exp(-f / 200)
    asds = {d: rng.uniform(1, 3, size=(5, n_full)) for d in ("H1", "L1")}
    pipe = DataPipeline(domain=DOMAIN, detectors=["H1", "L1"], ref_time=REF_TIME,
                        polarizations=PolarizationSource.from_arrays(hp, hc, DOMAIN, dtype=torch.complex128),
                        parameters={"phase": np.zeros(4)}, asds=asds, dtype=torch.float64, stats_samples=5000,
                        inference_parameters=["geocent_time", "ra", "dec"], gnpe=GNPESettings())
    idx = torch.tensor([2, 0])
    batch = pipe.batch(idx, torch.Generator().manual_seed(9), noise=False)
    params, _, t_hat = pipe.sample_parameters(idx, torch.Generator().manual_seed(9))
    # the network file path: rebuild the transforms from metadata only
    inp = NetworkInput.from_metadata(pipe.metadata())
    for k in range(2):
        strain = pipe.network.project(
            torch.as_tensor(hp[idx[k]]).unsqueeze(0), torch.as_tensor(hc[idx[k]]).unsqueeze(0),
            torch.as_tensor(f), *(params[key][k:k + 1] for key in ("ra", "dec", "psi", "geocent_time",
                                                                   "luminosity_distance")))[0]
        asd = {d: np.concatenate([np.ones(DOMAIN.min_index),
                                  inp.asd_reference[d] / batch.data[k, i, 2].numpy()]) for i, d in enumerate(inp.detectors)}
        ev = inp.event_input({d: strain[i].numpy() for i, d in enumerate(inp.detectors)}, asd)
        data, proxies = inp.network_inputs(ev, t_hat[k:k + 1], dtype=torch.float64)
        assert torch.allclose(data[0], batch.data[k], rtol=1e-9, atol=1e-9 * float(batch.data[k].abs().max()))
        assert torch.allclose(proxies[0], batch.proxies[k], atol=1e-12)
    with pytest.raises(DataError, match="needs arrival-time proxies"):
        inp.network_inputs(ev)


def test_sky_and_time_conversion_to_event_frame():
    inp = simple_input(("H1", "L1"))
    event_time = 1187008882.43
    gen = torch.Generator().manual_seed(0)
    theta = inp.encode_theta({"geocent_time": 0.05 * torch.rand(50, generator=gen, dtype=torch.float64),
                              "ra": 2 * np.pi * torch.rand(50, generator=gen, dtype=torch.float64)})
    net = inp.decode_theta(theta)
    sky = inp.decode_theta(theta, event_time=event_time)
    assert torch.allclose(sky["geocent_time"] - event_time, net["geocent_time"], atol=1e-6)
    # the sky-frame ra at the event time sees the detectors as the network-frame ra at ref_time
    dec, psi = torch.full((50,), 0.3, dtype=torch.float64), torch.full((50,), 0.7, dtype=torch.float64)
    tc = net["geocent_time"]
    at_ref, at_event = DetectorNetwork(["H1", "L1"], REF_TIME), DetectorNetwork(["H1", "L1"], event_time)
    for a, b in zip(at_ref.antenna_patterns(net["ra"], dec, psi, tc), at_event.antenna_patterns(sky["ra"], dec, psi, tc)):
        assert torch.allclose(a, b, atol=1e-9)
    assert torch.allclose(at_ref.time_delays(net["ra"], dec, tc), at_event.time_delays(sky["ra"], dec, tc), atol=1e-12)
    assert ((sky["ra"] >= 0) & (sky["ra"] < 2 * np.pi)).all()
    assert torch.allclose(inp.encode_theta(sky, event_time=event_time), theta, atol=1e-5)


def test_standardisation_round_trip_and_errors():
    s = Standardization.from_samples({"a": np.array([1.0, 3.0]), "b": np.array([5.0, 5.0])}, ["a", "b"])
    assert s.to_dict() == {"keys": ["a", "b"], "mean": {"a": 2.0, "b": 5.0}, "std": {"a": 1.0, "b": 1.0}}
    x = torch.randn(10, 2, dtype=torch.float64)
    s2 = Standardization.from_dict(s.to_dict())
    assert torch.allclose(s2.destandardize(s2.standardize(x)), x)
    assert s.log_det == 0.0
    with pytest.raises(ConfigError, match="invalid mean/std for a"):
        Standardization(["a"], {"a": 0.0}, {"a": 0.0})
    with pytest.raises(ConfigError, match="no mean/std for parameter 'c'"):
        Standardization(["c"], {}, {})
    with pytest.raises(FileFormatError, match="invalid standardisation metadata"):
        Standardization.from_dict({"keys": ["a"]})
    with pytest.raises(ConfigError, match="gnpe.kernel"):
        GNPESettings(kernel=0.0)
    with pytest.raises(ConfigError, match="unknown key"):
        GNPESettings.from_dict({"kernal": 0.001})
