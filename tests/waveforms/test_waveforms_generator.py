"""Waveforms against the independent reference bilby.gw.source.lal_binary_black_hole."""

import logging
from pathlib import Path

import bilby
import numpy as np
import pytest

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError
from dingo_gw.waveforms import BankConfig, WaveformGenerator, generate_bank, load_bank
from dingo_gw.waveforms.generator import fd_approximants

DOMAIN = FrequencyDomain(20.0, 512.0, 0.25)


def bilby_waveform(params, approximant, f_ref, domain=DOMAIN):
    """bilby's lal_binary_black_hole for parameters in any bilby parametrisation (at 100 Mpc)."""
    p = {"luminosity_distance": 100.0, **{k: float(v) for k, v in params.items()}}
    converted, _ = bilby.gw.conversion.convert_to_lal_binary_black_hole_parameters(p)
    args = {k: converted.get(k, 0.0) for k in (
        "mass_1", "mass_2", "luminosity_distance", "a_1", "tilt_1", "phi_12", "a_2", "tilt_2", "phi_jl",
        "theta_jn", "phase")}
    h = bilby.gw.source.lal_binary_black_hole(
        domain.frequencies, **args, waveform_approximant=approximant, reference_frequency=f_ref,
        minimum_frequency=domain.f_min, maximum_frequency=domain.f_max)
    return h["plus"], h["cross"]


def relative_l2(a, b, domain=DOMAIN):
    band = domain.mask
    return np.linalg.norm(a[band] - b[band]) / np.linalg.norm(b[band])


PRECESSING_PRIOR = {
    "chirp_mass": "bilby.gw.prior.UniformInComponentsChirpMass(minimum=20.0, maximum=40.0)",
    "mass_ratio": "bilby.gw.prior.UniformInComponentsMassRatio(minimum=0.3, maximum=1.0)",
    "a_1": "Uniform(minimum=0.0, maximum=0.9)",
    "a_2": "Uniform(minimum=0.0, maximum=0.9)",
    "tilt_1": "Sine(minimum=0.0, maximum=3.141592653589793)",
    "tilt_2": "Sine(minimum=0.0, maximum=3.141592653589793)",
    "phi_12": "Uniform(minimum=0.0, maximum=6.283185307179586)",
    "phi_jl": "Uniform(minimum=0.0, maximum=6.283185307179586)",
    "theta_jn": "Sine(minimum=0.0, maximum=3.141592653589793)",
    "phase": "Uniform(minimum=0.0, maximum=6.283185307179586)",
}
ALIGNED_PRIOR = {
    "chirp_mass": "bilby.gw.prior.UniformInComponentsChirpMass(minimum=20.0, maximum=40.0)",
    "mass_ratio": "bilby.gw.prior.UniformInComponentsMassRatio(minimum=0.3, maximum=1.0)",
    "chi_1": "bilby.gw.prior.AlignedSpin(a_prior=Uniform(0, 0.9), z_prior=Uniform(-1, 1))",
    "chi_2": "bilby.gw.prior.AlignedSpin(a_prior=Uniform(0, 0.9), z_prior=Uniform(-1, 1))",
    "theta_jn": "Sine(minimum=0.0, maximum=3.141592653589793)",
    "phase": "Uniform(minimum=0.0, maximum=6.283185307179586)",
}


@pytest.mark.parametrize("approximant, prior", [
    ("IMRPhenomPv2", PRECESSING_PRIOR),
    ("IMRPhenomXPHM", PRECESSING_PRIOR),
    ("IMRPhenomD", ALIGNED_PRIOR),
])
def test_uncompressed_bank_equals_bilby(tmp_path, approximant, prior):
    f_ref = 25.0  # differs from f_min: spins and phase are defined at f_ref
    cfg = BankConfig.model_validate({
        "domain": {"f_min": 20.0, "f_max": 512.0, "delta_f": 0.25},
        "waveform": {"approximant": approximant, "f_ref": f_ref},
        "prior": prior, "num_samples": 3, "seed": 11, "chunk_size": 2,
    })
    generate_bank(cfg, tmp_path / "b.h5", progress=False)
    bank = load_bank(tmp_path / "b.h5")
    assert len(bank) == 3 and bank.approximant == approximant and bank.f_ref == f_ref
    assert np.array_equal(bank.frequencies, DOMAIN.frequencies)
    assert bank.h_plus.dtype == np.complex64 and bank.h_plus.shape == (3, len(DOMAIN))
    assert np.all(bank.parameters["luminosity_distance"] == 100.0)
    assert np.all(bank.parameters["geocent_time"] == 0.0)
    for i in range(3):
        sampled = {k: bank.parameters[k][i] for k in prior}  # the prior's own parametrisation
        ref_plus, ref_cross = bilby_waveform(sampled, approximant, f_ref)
        assert relative_l2(bank.h_plus[i], ref_plus) < 1e-5
        assert relative_l2(bank.h_cross[i], ref_cross) < 1e-5
        assert np.all(bank.h_plus[i][~DOMAIN.mask] == 0)
    if approximant == "IMRPhenomXPHM":  # precessing: spins really are in-plane
        assert np.any(np.sin(bank.parameters["tilt_1"]) > 0.1)


def test_generate_accepts_component_masses_and_matches_bilby():
    params = {"mass_1": 36.0, "mass_2": 29.0, "a_1": 0.5, "a_2": 0.3, "tilt_1": 1.0, "tilt_2": 2.0,
              "phi_12": 1.0, "phi_jl": 2.0, "theta_jn": 0.5, "phase": 1.3, "luminosity_distance": 400.0}
    gen = WaveformGenerator("IMRPhenomPv2", DOMAIN, f_ref=20.0)
    hp, hc = gen.generate(params)
    assert hp.dtype == np.complex128 and hp.shape == (len(DOMAIN),)
    ref_plus, ref_cross = bilby_waveform(params, "IMRPhenomPv2", 20.0)
    assert relative_l2(hp, ref_plus) < 1e-10 and relative_l2(hc, ref_cross) < 1e-10


def test_generate_batch_equals_single_calls():
    rng = np.random.default_rng(0)
    n = 5
    params = {"chirp_mass": rng.uniform(20, 40, n), "mass_ratio": rng.uniform(0.4, 1, n),
              "a_1": rng.uniform(0, 0.8, n), "tilt_1": rng.uniform(0, 3, n), "theta_jn": rng.uniform(0, 3, n),
              "phase": rng.uniform(0, 6, n)}
    gen = WaveformGenerator("IMRPhenomPv2", DOMAIN, f_ref=20.0)
    hp, hc, failed = gen.generate_batch(params)
    assert not failed.any()
    for i in range(n):
        ref_plus, ref_cross = bilby_waveform({k: v[i] for k, v in params.items()}, "IMRPhenomPv2", 20.0)
        assert relative_l2(hp[i], ref_plus) < 1e-10 and relative_l2(hc[i], ref_cross) < 1e-10


def test_failed_waveforms_flagged_never_zero_silently(caplog):
    n = 6
    params = {"chirp_mass": np.full(n, 30.0), "mass_ratio": np.full(n, 0.8),
              "a_1": np.array([0.2, 1.2, 0.5, 1.5, 0.1, 0.3]), "tilt_1": np.full(n, 1.0),
              "theta_jn": np.full(n, 0.4), "phase": np.zeros(n)}
    gen = WaveformGenerator("IMRPhenomPv2", DOMAIN, f_ref=20.0)
    with caplog.at_level(logging.WARNING):
        hp, hc, failed = gen.generate_batch(params)
    assert failed.tolist() == [False, True, False, True, False, False]
    assert np.all(hp[failed] == 0) and np.all(np.abs(hp[~failed]).max(axis=1) > 0)
    assert "failed on 2 of 6" in caplog.text and "a_1=1.2" in caplog.text
    # the same through a 2-process pool (waveforms come back through shared memory)
    shm = lambda: {p.name for p in Path("/dev/shm").glob("dingo_gw_waveforms_*")} if Path("/dev/shm").is_dir() else set()
    before = shm()
    stale = Path("/dev/shm/dingo_gw_waveforms_999999999_test")  # left by a killed process (no such pid)
    if stale.parent.is_dir():
        stale.write_bytes(b"x")
    with WaveformGenerator("IMRPhenomPv2", DOMAIN, f_ref=20.0) as pooled:
        hp2, hc2, failed2 = pooled.generate_batch(params, workers=2)
    assert np.array_equal(failed2, failed) and np.array_equal(hp2, hp) and np.array_equal(hc2, hc)
    assert not stale.exists() and shm() == before  # stale buffers removed, none left behind
    with pytest.raises(Exception, match="between 0 and 1"):
        gen.generate({k: v[1] for k, v in params.items()})


def test_unknown_approximant_lists_available():
    with pytest.raises(ConfigError, match=r"'IMRPhenomFoo'.*available: .*IMRPhenomPv2.*IMRPhenomXPHM"):
        WaveformGenerator("IMRPhenomFoo", DOMAIN, f_ref=20.0)
    assert "SEOBNRv4" not in fd_approximants()  # time-domain only: not accepted either
    with pytest.raises(ConfigError, match="not frequency-domain"):
        WaveformGenerator("SEOBNRv4", DOMAIN, f_ref=20.0)


def test_generator_pickles_without_lal_objects():
    import pickle

    gen = WaveformGenerator("IMRPhenomD", DOMAIN, f_ref=20.0)
    gen.generate({"mass_1": 30.0, "mass_2": 20.0, "theta_jn": 0.3, "phase": 0.0})  # builds LAL state
    clone = pickle.loads(pickle.dumps(gen))
    a = gen.generate({"mass_1": 30.0, "mass_2": 20.0, "theta_jn": 0.3, "phase": 0.0})
    b = clone.generate({"mass_1": 30.0, "mass_2": 20.0, "theta_jn": 0.3, "phase": 0.0})
    assert np.array_equal(a[0], b[0])


def test_f_start_below_f_min_matches_lalsimulation():
    """With f_start < f_min LAL starts earlier; the bank still holds zeros below f_min."""
    import lal
    import lalsimulation

    gen = WaveformGenerator("IMRPhenomD", DOMAIN, f_ref=20.0, f_start=15.0)
    hp, hc = gen.generate({"mass_1": 30.0, "mass_2": 25.0, "chi_1": 0.3, "chi_2": -0.2, "theta_jn": 0.7, "phase": 0.4})
    ref_p, ref_c = lalsimulation.SimInspiralChooseFDWaveform(
        30.0 * lal.MSUN_SI, 25.0 * lal.MSUN_SI, 0, 0, 0.3, 0, 0, -0.2, 100e6 * lal.PC_SI, 0.7, 0.4, 0, 0, 0,
        DOMAIN.delta_f, 15.0, DOMAIN.f_max, 20.0, None, lalsimulation.IMRPhenomD)
    n = len(DOMAIN)
    for ours, ref in ((hp, ref_p.data.data[:n]), (hc, ref_c.data.data[:n])):
        assert np.all(ours[~DOMAIN.mask] == 0) and np.any(ref[~DOMAIN.mask] != 0)
        assert relative_l2(ours, ref) < 1e-12
    with pytest.raises(ConfigError, match="f_start = 25.0 Hz must be > 0 and at most domain f_min"):
        WaveformGenerator("IMRPhenomD", DOMAIN, f_ref=20.0, f_start=25.0)
