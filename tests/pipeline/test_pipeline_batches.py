"""DataPipeline batches against bilby: projection, time shifts, GNPE, whitening, SNR, noise."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dingo_gw.design_curves import design_asd
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DataError, DomainMismatchError
from dingo_gw.pipeline import DataPipeline, GNPESettings, PolarizationSource
from dingo_gw.priors import component_masses

REF_TIME = 1126259462.4
DETECTORS = ["H1", "L1", "V1"]
DOMAIN = FrequencyDomain(20.0, 512.0, 0.25)
INFER = ["chirp_mass", "mass_ratio", "luminosity_distance", "geocent_time", "ra", "dec", "psi", "L1_time"]


@pytest.fixture(scope="module")
def bank():
    """8 IMRPhenomD waveforms from bilby at 100 Mpc, zero time shift, on DOMAIN's full grid."""
    import bilby

    bilby.core.utils.logger.setLevel("WARNING")
    wfg = bilby.gw.WaveformGenerator(
        duration=DOMAIN.duration, sampling_frequency=2 * DOMAIN.f_max,
        frequency_domain_source_model=bilby.gw.source.lal_binary_black_hole,
        waveform_arguments={"waveform_approximant": "IMRPhenomD", "reference_frequency": 20.0,
                            "minimum_frequency": 20.0})
    assert np.allclose(wfg.frequency_array, DOMAIN.frequencies)
    rng = np.random.default_rng(0)
    params = {"chirp_mass": rng.uniform(20, 35, 8), "mass_ratio": rng.uniform(0.5, 1, 8),
              "theta_jn": rng.uniform(0, np.pi, 8), "phase": rng.uniform(0, 2 * np.pi, 8)}
    hp, hc = [], []
    for k in range(8):
        m1, m2 = component_masses(params["chirp_mass"][k], params["mass_ratio"][k])
        pol = wfg.frequency_domain_strain(dict(
            mass_1=m1, mass_2=m2, chi_1=0.1, chi_2=0.0, theta_jn=params["theta_jn"][k], phase=params["phase"][k],
            luminosity_distance=100.0, geocent_time=0.0, ra=0.0, dec=0.0, psi=0.0))
        hp.append(pol["plus"])
        hc.append(pol["cross"])
    return np.array(hp), np.array(hc), params


@pytest.fixture(scope="module")
def asds():
    f = DOMAIN.frequencies
    curves = {"H1": design_asd("aLIGOZeroDetHighPower", f, fill_below=DOMAIN.f_min),
              "L1": design_asd("aLIGOZeroDetHighPower", f, fill_below=DOMAIN.f_min),
              "V1": design_asd("AdvVirgo", f, fill_below=DOMAIN.f_min)}
    return {d: np.stack([c * s for s in (1.0, 1.4, 0.8)]) for d, c in curves.items()}


def make_pipeline(bank, asds, gnpe, **kwargs):
    hp, hc, params = bank
    return DataPipeline(domain=DOMAIN, detectors=DETECTORS, ref_time=REF_TIME,
                        polarizations=PolarizationSource.from_arrays(hp, hc, DOMAIN, dtype=torch.complex128),
                        parameters=params, asds=asds, inference_parameters=INFER, gnpe=gnpe,
                        dtype=torch.float64, stats_samples=20000, **kwargs)


@pytest.mark.parametrize("gnpe", [None, GNPESettings(kernel=1e-3, relative=True),
                                  GNPESettings(kernel=2e-3, relative=False)])
def test_noise_free_batch_equals_bilby_response_whitened_and_shifted(bank, asds, gnpe):
    """data = bilby response · exp(2πi f t̂_I) / (ASD · noise_std), with the ASD read back from
    the third channel; both with GNPE (t̂ = proxies) and without (t̂ = 0)."""
    import bilby

    pipe = make_pipeline(bank, asds, gnpe)
    idx = torch.tensor([0, 3, 3, 7])
    batch = pipe.batch(idx, torch.Generator().manual_seed(11), noise=False)
    params, t_det, t_hat = pipe.sample_parameters(idx, torch.Generator().manual_seed(11))  # same draws
    assert batch.data.shape == (4, 3, 3, len(DOMAIN) - DOMAIN.min_index)
    assert batch.proxies.shape == (4, {None: 0, True: 2, False: 3}[None if gnpe is None else gnpe.relative])
    if gnpe is not None:
        assert ((t_hat - t_det).abs() <= gnpe.kernel).all() and (t_hat != t_det).all()

    ifos = bilby.gw.detector.InterferometerList(DETECTORS)
    ifos.set_strain_data_from_zero_noise(sampling_frequency=2 * DOMAIN.f_max, duration=DOMAIN.duration,
                                         start_time=REF_TIME)
    hp, hc, _ = bank
    band = slice(DOMAIN.min_index, None)
    f = DOMAIN.frequencies[band]
    for k in range(4):
        p = {key: float(params[key][k]) for key in ("ra", "dec", "psi", "luminosity_distance")}
        p["geocent_time"] = REF_TIME + float(params["geocent_time"][k])
        pols = {"plus": hp[idx[k]] * 100.0 / p["luminosity_distance"],
                "cross": hc[idx[k]] * 100.0 / p["luminosity_distance"]}
        for i, ifo in enumerate(ifos):
            ifo.minimum_frequency = DOMAIN.f_min
            response = ifo.get_detector_response(pols, p)[band]
            if gnpe is not None:
                response = response * np.exp(2j * np.pi * f * float(t_hat[k, i]))
            asd = pipe.input.asd_reference[ifo.name] / batch.data[k, i, 2].numpy()
            expected = response / (asd * DOMAIN.noise_std)
            got = batch.data[k, i, 0].numpy() + 1j * batch.data[k, i, 1].numpy()
            # bilby rounds REF_TIME + t_c to float64 (≤ 1.2e-7 s): phase ≤ 4e-4 rad at 512 Hz
            assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-3
            assert any(np.allclose(asd, a[band], rtol=1e-10) for a in asds[ifo.name])
            # optimal SNR² from the whitened signal equals bilby's noise-weighted inner product
            ifo.power_spectral_density = bilby.gw.detector.PowerSpectralDensity(
                frequency_array=DOMAIN.frequencies, asd_array=np.concatenate([np.ones(DOMAIN.min_index), asd]))
            full = np.zeros(len(DOMAIN), complex)
            full[band] = response
            snr2 = float(np.real(ifo.optimal_snr_squared(full)))
            assert np.isclose(np.sum(np.abs(got) ** 2), snr2, rtol=1e-3)


def test_noise_is_unit_white_and_batches_are_reproducible(bank, asds):
    hp, hc, params = bank
    pipe = DataPipeline(domain=DOMAIN, detectors=["H1", "L1"], ref_time=REF_TIME,
                        polarizations=PolarizationSource.from_arrays(0 * hp, 0 * hc, DOMAIN),
                        parameters=params, asds=asds, inference_parameters=["chirp_mass", "ra"],
                        stats_samples=2000)
    b1 = pipe.sample_batch(256, torch.Generator().manual_seed(3))
    b2 = pipe.sample_batch(256, torch.Generator().manual_seed(3))
    b3 = pipe.sample_batch(256, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(b1, b2)) and not torch.equal(b1.data, b3.data)
    assert b1.data.dtype == torch.float32
    noise = b1.data[:, :, :2].double()
    n = noise.numel()
    assert abs(noise.mean()) < 5 / np.sqrt(n)
    for c in range(2):
        assert abs(noise[:, :, c].var() - 1) < 0.01
    # white: no correlation between neighbouring bins or between Re and Im
    assert abs((noise[..., 1:] * noise[..., :-1]).mean()) < 0.01
    assert abs((noise[:, :, 0] * noise[:, :, 1]).mean()) < 0.01


def test_svd_compressed_bank_gives_the_same_batch(bank, asds):
    hp, hc, params = bank
    band = slice(DOMAIN.min_index, None)
    stacked = np.concatenate([hp[:, band], hc[:, band]])
    _, _, vh = np.linalg.svd(stacked, full_matrices=False)
    V = vh.conj().T  # (n_band, 16): complete for these 16 waveforms
    V_full = np.zeros((len(DOMAIN), V.shape[1]), complex)
    V_full[band] = V
    svd_src = PolarizationSource.from_svd(hp[:, band] @ V, hc[:, band] @ V, V_full, DOMAIN, dtype=torch.complex128)
    arr_src = PolarizationSource.from_arrays(hp, hc, DOMAIN, dtype=torch.complex128)
    idx = torch.tensor([1, 5, 2])
    for a, b in zip(svd_src.get(idx), arr_src.get(idx)):
        assert torch.allclose(a, b, atol=1e-12 * float(b.abs().max()))
    # basis of whitened waveforms (dingo_gw.waveforms.svd convention): h = (c V^H) / w
    w = 1 / (asds["H1"][0] * DOMAIN.noise_std)
    _, _, vh = np.linalg.svd(stacked * w[band], full_matrices=False)
    Vw = np.zeros((len(DOMAIN), vh.shape[0]), complex)
    Vw[band] = vh.conj().T
    coeff = {"h_plus": (hp * w) @ Vw, "h_cross": (hc * w) @ Vw}
    w_src = PolarizationSource.from_svd(coeff["h_plus"], coeff["h_cross"], Vw, DOMAIN, dtype=torch.complex128, weights=w)
    # the same through a bank-like object (duck-typed like dingo_gw.waveforms.WaveformBank)
    fake_bank = SimpleNamespace(domain=DOMAIN, svd=SimpleNamespace(V=Vw, weights=w), coefficients=coeff.get,
                                h_plus=hp, h_cross=hc)
    for src in (w_src, PolarizationSource.from_bank(fake_bank, dtype=torch.complex128),
                PolarizationSource.from_bank(fake_bank, dtype=torch.complex128, decompress=True)):
        for a, b in zip(src.get(idx), arr_src.get(idx)):
            assert torch.allclose(a, b, atol=1e-10 * float(b.abs().max()))


def test_standardisation_of_parameters(bank, asds):
    pipe = make_pipeline(bank, asds, GNPESettings())
    gen = torch.Generator().manual_seed(5)
    idx = pipe.random_indices(20000, gen)
    params, _, t_hat = pipe.sample_parameters(idx, gen)
    theta = pipe.input.encode_theta(params, t_hat)
    assert torch.allclose(theta.mean(0), torch.zeros(len(INFER), dtype=theta.dtype), atol=0.05)
    assert torch.allclose(theta.std(0), torch.ones(len(INFER), dtype=theta.dtype), atol=0.05)
    # relative GNPE: time parameters are relative to the first detector's proxy
    assert pipe.input.theta_standardization.std[INFER.index("geocent_time")] < 0.03
    back = pipe.input.decode_theta(theta, t_hat)
    for k in INFER:
        assert torch.allclose(back[k], params[k], rtol=1e-12, atol=1e-12), k


def test_bad_inputs_raise_one_line_errors(bank, asds):
    hp, hc, params = bank
    src = PolarizationSource.from_arrays(hp, hc, DOMAIN)
    kw = dict(domain=DOMAIN, detectors=["H1", "L1"], ref_time=REF_TIME, polarizations=src, parameters=params,
              inference_parameters=["chirp_mass"], stats_samples=100)
    bad = {d: a.copy() for d, a in asds.items()}
    bad["L1"][1, 500] = np.nan
    with pytest.raises(DataError, match="ASDs of L1 must be finite"):
        DataPipeline(asds=bad, **kw)
    with pytest.raises(DomainMismatchError, match="ASDs of H1 have 100 bins"):
        DataPipeline(asds={"H1": asds["H1"][:, :100], "L1": asds["L1"]}, **kw)
    with pytest.raises(DataError, match="no detector L1"):
        DataPipeline(asds={"H1": asds["H1"]}, **kw)
    with pytest.raises(ConfigError, match="inference parameter 'mass_1'"):
        DataPipeline(asds=asds, **dict(kw, inference_parameters=["mass_1"]))
    with pytest.raises(ConfigError, match="geocent_time must be relative"):
        DataPipeline(asds=asds, extrinsic_prior={
            "luminosity_distance": 500.0, "ra": 1.0, "dec": 0.0, "psi": 0.0,
            "geocent_time": f"Uniform({REF_TIME - 0.1}, {REF_TIME + 0.1})"}, **kw)
    with pytest.raises(DomainMismatchError, match="h_plus has 50 frequency bins"):
        PolarizationSource.from_arrays(hp[:, :50], hc[:, :50], DOMAIN)
    nan_hp = hp.copy()
    nan_hp[0, 300] = np.nan
    with pytest.raises(DataError, match="h_plus contains NaN"):
        PolarizationSource.from_arrays(nan_hp, hc, DOMAIN)
    with pytest.raises(DataError, match="bank parameter 'chirp_mass' has shape"):
        DataPipeline(asds=asds, **dict(kw, parameters={"chirp_mass": np.ones(3)}))
