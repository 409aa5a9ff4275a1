"""The exact Gaussian likelihood (with dingo_gw's waveform generator) against bilby's
GravitationalWaveTransient with bilby's own WaveformGenerator (independent code end to end)."""

import logging

import numpy as np
import pytest

from dingo_gw.design_curves import design_psd
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError, DomainMismatchError
from dingo_gw.likelihood.gaussian import GaussianLikelihood
from dingo_gw.waveforms.generator import WaveformGenerator

logging.getLogger("bilby").setLevel(logging.WARNING)

TRIGGER = 1126259462.4
DURATION, F_MIN, F_MAX, F_REF = 4.0, 20.0, 512.0, 20.0
DETECTORS = ("H1", "L1")
INJECTION = dict(
    chirp_mass=30.0, mass_ratio=0.8, a_1=0.4, a_2=0.3, tilt_1=1.0, tilt_2=2.0, phi_12=1.0, phi_jl=2.5,
    theta_jn=0.5, phase=1.3, luminosity_distance=1500.0, ra=1.4, dec=-1.2, psi=0.7, geocent_time=0.01,
)


def bilby_setup(seed, window_factor=1.0, detectors=DETECTORS):
    """bilby ``detectors`` (default H1/L1) with Gaussian noise + an injected signal; segment =
    [trigger - 2, trigger + 2)."""
    import bilby

    domain = FrequencyDomain(F_MIN, F_MAX, 1 / DURATION, window_factor=window_factor)
    f = domain.frequencies
    rng = np.random.default_rng(seed)
    start = TRIGGER - DURATION / 2
    wfg = bilby.gw.WaveformGenerator(
        duration=DURATION, sampling_frequency=2 * F_MAX, start_time=start,
        frequency_domain_source_model=bilby.gw.source.lal_binary_black_hole,
        parameter_conversion=bilby.gw.conversion.convert_to_lal_binary_black_hole_parameters,
        waveform_arguments=dict(waveform_approximant="IMRPhenomPv2", reference_frequency=F_REF,
                                minimum_frequency=F_MIN, maximum_frequency=F_MAX),
    )
    ifos = bilby.gw.detector.InterferometerList(list(detectors))
    data, psds = {}, {}
    inj = dict(INJECTION, geocent_time=TRIGGER + INJECTION["geocent_time"])
    pols = wfg.frequency_domain_strain(inj)
    for k, ifo in enumerate(ifos):
        psd = design_psd("aLIGOZeroDetHighPower", f, fill_below=F_MIN) * (1 + 0.5 * k)
        ifo.power_spectral_density = bilby.gw.detector.PowerSpectralDensity(frequency_array=f, psd_array=psd)
        sigma = np.sqrt(window_factor * psd / (4 * domain.delta_f))
        noise = sigma * (rng.normal(size=len(f)) + 1j * rng.normal(size=len(f)))
        ifo.set_strain_data_from_frequency_domain_strain(noise, start_time=start, frequency_array=f)
        ifo.minimum_frequency, ifo.maximum_frequency = F_MIN, F_MAX
        strain = noise + ifo.get_detector_response(pols, inj)
        ifo.set_strain_data_from_frequency_domain_strain(strain, start_time=start, frequency_array=f)
        ifo.minimum_frequency, ifo.maximum_frequency = F_MIN, F_MAX
        data[ifo.name], psds[ifo.name] = strain, psd
    bilby_like = bilby.gw.likelihood.GravitationalWaveTransient(ifos, wfg)
    return domain, data, psds, bilby_like, start


def bilby_log_likelihoods(bilby_like, params):
    """bilby's log L of each sample (dict of arrays, geocent_time relative to TRIGGER)."""
    out = []
    for i in range(len(params["geocent_time"])):
        p = {k: float(v[i]) for k, v in params.items()}
        p["geocent_time"] += TRIGGER
        out.append(bilby_like.log_likelihood(p))
    return np.array(out)


def parameter_sets(n, seed):
    """Points around the injection (log L ratio from large to strongly negative), all H1/L1 sky."""
    rng = np.random.default_rng(seed)
    out = {k: np.full(n, v) for k, v in INJECTION.items()}
    scale = dict(chirp_mass=0.3, mass_ratio=0.1, a_1=0.2, a_2=0.2, tilt_1=0.5, tilt_2=0.5, phi_12=1.0,
                 phi_jl=1.0, theta_jn=0.3, phase=1.0, luminosity_distance=300.0, ra=0.05, dec=0.05, psi=0.3,
                 geocent_time=0.002)
    for k, s in scale.items():
        out[k] = out[k] + s * rng.uniform(-1, 1, n) * np.linspace(0, 1, n)
    out["a_1"], out["a_2"] = np.clip(out["a_1"], 0, 0.95), np.clip(out["a_2"], 0, 0.95)
    out["mass_ratio"] = np.clip(out["mass_ratio"], 0.2, 1.0)
    # bilby takes absolute GPS times (float64 resolution 2.4e-7 s near 1.1e9 s, enough to move log L
    # by ~0.1 at SNR 30): use relative times whose GPS sum is exact, so both codes see the same times.
    out["geocent_time"] = (TRIGGER + out["geocent_time"]) - TRIGGER
    return out


def _compare_with_bilby(setup, params_seed, window_factor=1.0):
    """(our log L, data, psds, domain, generator, start, params) after checking ours against bilby's:
    noise evidence to 1e-6, log L to 1e-3 over parameter sets spanning > 500 in log L."""
    domain, data, psds, bilby_like, start = setup
    for ifo in bilby_like.interferometers:
        ifo.strain_data.window_factor = window_factor
    gen = WaveformGenerator("IMRPhenomPv2", domain, f_ref=F_REF)
    like = GaussianLikelihood(data, psds, domain, gen, trigger_time=TRIGGER, time_origin=start)
    params = parameter_sets(10, seed=params_seed)
    ours = like.log_likelihood(params)
    ref = bilby_log_likelihoods(bilby_like, params)
    assert np.isclose(like.log_noise_evidence(), bilby_like.noise_log_likelihood(), rtol=0, atol=1e-6)
    # the parameter sets span log L ratios from about +180 (SNR ~ 19) to -700
    assert np.ptp(ref) > 500
    assert np.all(np.abs(ours - ref) < 1e-3)
    return ours, data, psds, domain, gen, start, params


@pytest.mark.parametrize("window_factor", [1.0, 0.9])
def test_log_likelihood_equals_bilby(monkeypatch, window_factor):
    if window_factor != 1.0:
        # bilby's PSD of the unwindowed noise (our convention) scaled by the window factor
        monkeypatch.setenv("BILBY_INCORRECT_PSD_NORMALIZATION", "TRUE")
    _compare_with_bilby(bilby_setup(seed=1, window_factor=window_factor), params_seed=2, window_factor=window_factor)


def test_three_detector_log_likelihood_equals_bilby():
    """H1 + L1 + V1 (Virgo's own location, arms and time delay in bilby's detector code)."""
    detectors = ("H1", "L1", "V1")
    ours, data, psds, domain, gen, start, params = _compare_with_bilby(bilby_setup(seed=3, detectors=detectors),
                                                                       params_seed=4)
    # V1 carries its share: dropping it changes log L by far more than the tolerance
    two = GaussianLikelihood({d: data[d] for d in detectors[:2]}, {d: psds[d] for d in detectors[:2]}, domain, gen,
                             trigger_time=TRIGGER, time_origin=start).log_likelihood(params)
    assert np.max(np.abs(two - ours)) > 1.0


def test_bad_inputs_are_clear_errors():
    domain, data, psds, _, start = bilby_setup(seed=3)
    gen = WaveformGenerator("IMRPhenomPv2", domain, f_ref=F_REF)
    with pytest.raises(DomainMismatchError, match="strain of H1 has shape"):
        GaussianLikelihood(dict(data, H1=data["H1"][:-1]), psds, domain, gen, TRIGGER)
    nan = data["H1"].copy()
    nan[500] = np.nan
    with pytest.raises(DataError, match="strain of H1 has non-finite"):
        GaussianLikelihood(dict(data, H1=nan), psds, domain, gen, TRIGGER)
    zero = psds["L1"].copy()
    zero[300] = 0.0
    with pytest.raises(DataError, match="PSD of L1"):
        GaussianLikelihood(data, dict(psds, L1=zero), domain, gen, TRIGGER)
    with pytest.raises(DataError, match="PSDs for"):
        GaussianLikelihood(data, {"H1": psds["H1"]}, domain, gen, TRIGGER)
    with pytest.raises(DomainMismatchError, match="waveform generator: delta_f"):
        GaussianLikelihood(data, psds, domain, WaveformGenerator("IMRPhenomPv2", FrequencyDomain(F_MIN, F_MAX, 0.5), F_REF), TRIGGER)
    like = GaussianLikelihood(data, psds, domain, gen, TRIGGER, time_origin=start)
    params = parameter_sets(2, seed=0)
    del params["psi"]
    with pytest.raises(DataError, match="'psi' is missing"):
        like.log_likelihood(params)


def test_numpy_antenna_patterns_and_delays_match_lal():
    import lal

    from dingo_gw.likelihood.response import NumpyDetectorNetwork

    rng = np.random.default_rng(0)
    n = 40
    ra, dec, psi = rng.uniform(0, 2 * np.pi, n), rng.uniform(-1.5, 1.5, n), rng.uniform(0, np.pi, n)
    t = rng.uniform(-0.1, 0.1, n)
    net = NumpyDetectorNetwork(["H1", "L1", "V1"], TRIGGER)
    fp, fc = net.antenna_patterns(ra, dec, psi, t)
    delays = net.time_delays(ra, dec, t)
    for i, det in enumerate(["H1", "L1", "V1"]):
        d = lal.cached_detector_by_prefix[det]
        for k in range(n):
            gmst = lal.GreenwichMeanSiderealTime(TRIGGER + t[k])
            ref_fp, ref_fc = lal.ComputeDetAMResponse(d.response, ra[k], dec[k], psi[k], gmst)
            assert fp[k, i] == pytest.approx(ref_fp, abs=1e-9) and fc[k, i] == pytest.approx(ref_fc, abs=1e-9)
            assert delays[k, i] == pytest.approx(lal.TimeDelayFromEarthCenter(d.location, ra[k], dec[k], TRIGGER + t[k]), abs=1e-11)
