"""SVD compression: basis quality on held-out waveforms (checked against bilby and LAL),
round trips, the randomized SVD against numpy's, and the mismatch against bilby's inner product."""

import shutil

import bilby
import h5py
import lalsimulation
import numpy as np
import pytest

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError
from dingo_gw.waveforms import BankConfig, compress_bank, fit_svd, generate_bank, load_bank, mismatch
from dingo_gw.waveforms.config import SVDSettings

SMALL = {  # default intrinsic prior, 4 s segments, 20-512 Hz
    "domain": {"f_min": 20.0, "f_max": 512.0, "delta_f": 0.25},
    "waveform": {"approximant": "IMRPhenomPv2", "f_ref": 20.0},
    "num_samples": 700,
    "seed": 2,
    "chunk_size": 100,
    "compression": {"svd": {"size": 60, "num_training_samples": 500, "num_validation_samples": 200,
                            "whiten": "aLIGOZeroDetHighPower"}},
}


def lal_psd(frequencies):
    return np.array([lalsimulation.SimNoisePSDaLIGOZeroDetHighPower(float(f)) if f > 0 else np.inf
                     for f in frequencies])


def bilby_mismatch(a, b, domain):
    """1 - <a, b> / (|a| |b|) with bilby's noise-weighted inner product on [f_min, f_max]."""
    band = domain.mask
    psd = lal_psd(domain.frequencies[band])
    ip = lambda x, y: bilby.gw.utils.noise_weighted_inner_product(x[band], y[band], psd, domain.duration).real
    return 1 - ip(a, b) / np.sqrt(ip(a, a) * ip(b, b))


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    path = tmp_path_factory.mktemp("svd") / "bank.h5"
    generate_bank(BankConfig.model_validate(SMALL), path, workers=2, progress=False)
    return path


def test_held_out_mismatch_below_one_per_mille(compressed):
    bank = load_bank(compressed)
    svd_meta = bank.metadata["svd"]
    assert svd_meta["size"] == 60 and svd_meta["num_training_samples"] == 500
    mm = svd_meta["mismatch"]
    assert mm["num"] == 200 and mm["asd"] == "aLIGOZeroDetHighPower"
    assert mm["all"]["p99"] < 1e-3 and mm["all"]["p50"] <= mm["all"]["p90"] <= mm["all"]["p99"] <= mm["all"]["max"]

    # Independent check: exact waveforms from bilby for the held-out rows, mismatch with bilby's
    # noise-weighted inner product and LAL's design PSD, against the bank's decompressed rows.
    domain = bank.domain
    held_out = range(500, 700)
    rows = bank.read_chunk(500, 700)
    ours = []
    for j, i in enumerate(held_out):
        p = {k: float(bank.parameters[k][i]) for k in (
            "mass_1", "mass_2", "luminosity_distance", "a_1", "tilt_1", "phi_12", "a_2", "tilt_2", "phi_jl",
            "theta_jn", "phase")}
        exact = bilby.gw.source.lal_binary_black_hole(
            domain.frequencies, **p, waveform_approximant="IMRPhenomPv2", reference_frequency=20.0,
            minimum_frequency=20.0, maximum_frequency=512.0)
        ours.append([bilby_mismatch(exact["plus"], rows["h_plus"][j].astype(complex), domain),
                     bilby_mismatch(exact["cross"], rows["h_cross"][j].astype(complex), domain)])
    ours = np.array(ours)
    assert np.percentile(ours, 99) < 1e-3
    with h5py.File(compressed) as f:
        recorded = f["svd/validation_mismatch"][()]
    assert np.allclose(recorded, ours, rtol=0, atol=2e-6)
    assert bank.svd.singular_values[0] >= bank.svd.singular_values[-1] > 0


def test_compress_decompress_round_trip_in_span(compressed):
    svd = load_bank(compressed).svd
    V = svd.V[svd.domain.mask]
    assert np.allclose(V.conj().T @ V, np.eye(svd.size), atol=1e-10)  # orthonormal basis
    rng = np.random.default_rng(0)
    c = rng.standard_normal((3, svd.size)) + 1j * rng.standard_normal((3, svd.size))
    h = svd.decompress(c)
    assert h.shape == (3, len(svd.domain)) and np.all(h[:, ~svd.domain.mask] == 0)
    assert np.allclose(svd.compress(h), c, rtol=0, atol=1e-10)
    assert np.allclose(svd.decompress(svd.compress(h)), h, rtol=1e-10, atol=0)


def test_compressed_bank_access(compressed, tmp_path):
    bank = load_bank(compressed)
    coeffs = bank.coefficients("h_plus")
    assert coeffs.shape == (700, 60) and coeffs.dtype == np.complex64
    assert np.array_equal(bank.coefficients("h_cross", 10, 20), bank.coefficients("h_cross")[10:20])
    chunk = bank.read_chunk(3, 7)
    assert chunk["h_plus"].shape == (4, len(bank.domain)) and chunk["h_plus"].dtype == np.complex64
    assert np.allclose(chunk["h_plus"], bank.svd.decompress(coeffs[3:7]), rtol=1e-6, atol=0)
    assert np.array_equal(bank.h_plus[3:7], chunk["h_plus"])
    with pytest.raises(DataError, match="already SVD-compressed"):
        compress_bank(compressed, SVDSettings(size=5, num_training_samples=10))


def test_build_svd_without_whitening_and_uncompressed_access(tmp_path):
    cfg = BankConfig.model_validate({**SMALL, "num_samples": 60, "compression": None,
                                     "domain": {"f_min": 20.0, "f_max": 256.0, "delta_f": 0.25}})
    path = tmp_path / "bank.h5"
    generate_bank(cfg, path, progress=False)
    raw = load_bank(path)
    with pytest.raises(DataError, match="not SVD-compressed"):
        raw.coefficients("h_plus")
    copy = tmp_path / "copy.h5"
    shutil.copy(path, copy)
    summary = compress_bank(copy, SVDSettings(size=40, num_training_samples=50, whiten=None), progress=False)
    bank = load_bank(copy)
    assert bank.svd.whiten is None and bank.metadata["svd"]["mismatch"]["asd"] == "aLIGOZeroDetHighPower"
    assert summary.svd["mismatch"]["num"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.h5", "copy.h5"]
    # training rows are reproduced almost exactly by the basis fitted to them
    for i in range(3):
        assert bilby_mismatch(raw.h_plus[i].astype(complex), bank.h_plus[i].astype(complex), bank.domain) < 1e-6


def test_randomized_svd_matches_numpy():
    domain = FrequencyDomain(10.0, 100.0, 0.5)
    band = domain.mask
    rng = np.random.default_rng(1)
    n, rank = 120, 15
    basis = rng.standard_normal((rank, band.sum())) + 1j * rng.standard_normal((rank, band.sum()))
    weights = np.logspace(0, -6, rank)[:, None]
    rows = np.zeros((n, len(domain)), dtype=complex)
    rows[:, band] = (rng.standard_normal((n, rank)) @ (weights * basis)) + 1e-9 * rng.standard_normal((n, band.sum()))
    svd = fit_svd(lambda: (rows[i:i + 32] for i in range(0, n, 32)), domain, 10, whiten=None)
    _, s, vh = np.linalg.svd(rows[:, band], full_matrices=False)
    assert np.allclose(svd.singular_values, s[:10], rtol=1e-8)
    ours = svd.V[band]
    reference = vh[:10].conj().T  # right singular vectors
    projector = lambda v: v @ v.conj().T
    assert np.abs(projector(ours) - projector(reference)).max() < 1e-8


def test_mismatch_matches_bilby_inner_product():
    domain = FrequencyDomain(20.0, 256.0, 0.25)
    rng = np.random.default_rng(3)
    a = (rng.standard_normal(len(domain)) + 1j * rng.standard_normal(len(domain))) * 1e-23
    b = a + 0.05 * (rng.standard_normal(len(domain)) + 1j * rng.standard_normal(len(domain))) * 1e-23
    a[~domain.mask] = b[~domain.mask] = 0
    assert np.isclose(mismatch(a, b, domain, "aLIGOZeroDetHighPower"), bilby_mismatch(a, b, domain), rtol=1e-9)
    assert abs(mismatch(a, 3 * a, domain)) < 1e-14
