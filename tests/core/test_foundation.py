"""Foundation: domain conventions, config errors, atomic writes, priors."""

import numpy as np
import pytest

from dingo_gw.config import ConfigModel, DomainConfig, load_config
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DataError, DomainMismatchError
from dingo_gw.io.atomic import atomic_write
from dingo_gw.priors import build_prior, component_masses, sample_prior


def test_domain_grid_and_noise_std():
    d = FrequencyDomain(20.0, 1024.0, 0.125)
    assert len(d) == 8193
    assert d.frequencies[-1] == 1024.0
    assert d.min_index == 160 and d.mask.sum() == 8193 - 160
    assert d.duration == 8.0
    assert np.isclose(d.noise_std, 1 / np.sqrt(0.5))
    with pytest.raises(DomainMismatchError, match="multiple of delta_f"):
        FrequencyDomain(20.0, 1000.1, 0.125)
    with pytest.raises(DomainMismatchError, match="delta_f"):
        d.check_same_grid(FrequencyDomain(20.0, 1024.0, 0.25))


def test_whitened_noise_has_unit_variance():
    """FD noise dt*rfft of white noise with PSD S, divided by ASD*noise_std, has unit variance."""
    rng = np.random.default_rng(0)
    fs, T = 2048.0, 8.0
    d = FrequencyDomain(20.0, fs / 2, 1 / T)
    sigma = 3.0  # white noise, one-sided PSD S = 2 sigma^2 / fs
    x = rng.normal(0, sigma, size=(200, int(fs * T)))
    n = np.fft.rfft(x, axis=-1) / fs
    asd = np.sqrt(2 * sigma**2 / fs)
    w = n[:, 10:-10] / (asd * d.noise_std)
    assert abs(w.real.var() - 1) < 0.02 and abs(w.imag.var() - 1) < 0.02


class _Cfg(ConfigModel):
    domain: DomainConfig
    seed: int = 0


def test_config_errors_name_key_and_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("domain: {f_min: 20, f_max: 1024, delta_f: 0.125}\nsede: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: sede: unknown key"):
        load_config(p, _Cfg)
    p.write_text("domain: {f_min: 20, f_max: abc, delta_f: 0.125}\n")
    with pytest.raises(ConfigError, match=r"domain\.f_max"):
        load_config(p, _Cfg)
    p.write_text("domain: [1, 2\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_config(p, _Cfg)
    p.write_text("domain: {f_min: 20, f_max: 1024, delta_f: 0.125}\n")
    assert load_config(p, _Cfg).domain.build() == FrequencyDomain(20, 1024, 0.125)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_write(target) as tmp:
        tmp.write_text("ok")
    assert target.read_text() == "ok" and list(tmp_path.iterdir()) == [target]
    with pytest.raises(DataError, match="does not exist"):
        with atomic_write(tmp_path / "missing" / "x.h5"):
            pass


def test_prior_default_seeded_and_conversions():
    import bilby

    p = build_prior(None)
    a, b = sample_prior(p, 50, seed=3), sample_prior(p, 50, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["chirp_mass"].min() >= 15 and a["chirp_mass"].max() <= 60
    m1, m2 = component_masses(a["chirp_mass"], a["mass_ratio"])
    r1, r2 = bilby.gw.conversion.chirp_mass_and_mass_ratio_to_component_masses(a["chirp_mass"], a["mass_ratio"])
    np.testing.assert_allclose(m1, r1, rtol=1e-12)
    np.testing.assert_allclose(m2, r2, rtol=1e-12)
    with pytest.raises(ConfigError, match="prior.a_1"):
        build_prior({"a_1": "Uniformm(0, 1)"})
