"""Line bins: found in off-source data against a known PSD, replaced in the network input only."""

import numpy as np

from dingo_gw.domain import FrequencyDomain
from dingo_gw.inference.event_data import replace_line_bins
from dingo_gw.io.strain import Strain
from dingo_gw.noise.line_bins import find_line_bins

FS, DURATION, T0 = 1024.0, 32.0, 1_000_000_000.0
DOMAIN = FrequencyDomain(20.0, 256.0, 0.25)  # T = 4 s segments
SEGMENT = (T0 + 14.0, T0 + 18.0)  # the analysis segment, left out of the search
F_LINE = 37.3


def _white_noise_strain(seed: int, line_amplitude: float = 0.0, duration: float = DURATION) -> tuple[Strain, np.ndarray]:
    """Unit-variance white noise (one-sided PSD 2 / fs) plus a sinusoid at F_LINE; the PSD without the line."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * FS)) / FS
    data = rng.standard_normal(t.size) + line_amplitude * np.sin(2 * np.pi * F_LINE * t + 0.3)
    psd = np.full(len(DOMAIN), 2.0 / FS)
    return Strain("H1", T0, FS, data), psd


def test_a_line_the_psd_lacks_is_flagged_and_gaussian_noise_is_not():
    # The sinusoid's power in its bins: ~ (A^2 / 2) T / ENBW-factor against 2 / fs per Hz, i.e. ~50x
    # the noise for A = 0.25; its window sidelobes fall below 3x within ~1 Hz.
    strain, psd = _white_noise_strain(0, line_amplitude=0.25)
    mask, report = find_line_bins(strain, psd, DOMAIN, SEGMENT, roll_off=0.4)
    f = DOMAIN.frequencies
    assert report["segments"] >= 5 and report["bins"] == mask.sum()
    nearest = np.argmin(np.abs(f - F_LINE))
    assert mask[nearest] and mask[nearest + 1]  # 37.25 and 37.5 Hz straddle the line
    near = np.abs(f - F_LINE) < 2.0
    assert mask[~near].sum() <= 2  # false alarms: ~1e-4 of the bins for K = 6 segments
    assert any(lo <= F_LINE <= hi + DOMAIN.delta_f for lo, hi in report["frequencies"])

    for seed in (1, 2, 3):  # Gaussian noise that the PSD describes: (almost) nothing flagged
        strain, psd = _white_noise_strain(seed)
        mask, report = find_line_bins(strain, psd, DOMAIN, SEGMENT, roll_off=0.4)
        assert mask.sum() <= 2, report


def test_too_little_off_source_data_flags_nothing_and_says_why():
    strain, psd = _white_noise_strain(0, line_amplitude=0.25, duration=20.0)  # 4 segments minus the event's
    mask, report = find_line_bins(strain, psd, DOMAIN, (T0 + 2.0, T0 + 6.0), roll_off=0.4)
    assert report["segments"] >= 3  # 20 s: [0-2 s] too short, 6-10, 10-14, 14-18 s usable
    strain, psd = _white_noise_strain(0, line_amplitude=0.25, duration=10.0)
    mask, report = find_line_bins(strain, psd, DOMAIN, (T0 + 2.0, T0 + 6.0), roll_off=0.4)
    assert not mask.any() and "skipped" in report and report["bins"] == 0


def test_line_bins_hold_gaussian_noise_of_the_psd_level_in_the_network_input_only():
    n = len(DOMAIN)
    rng = np.random.default_rng(5)
    data = {"H1": 1e3 * (rng.standard_normal(n) + 1j * rng.standard_normal(n)), "L1": rng.standard_normal(n) + 0j}
    original = {k: v.copy() for k, v in data.items()}
    psd = np.full(n, 3.0e-2)
    mask = DOMAIN.mask.copy()  # every in-band bin of H1 replaced; L1 not at all
    out = replace_line_bins(data, {"H1": psd, "L1": psd}, DOMAIN, {"H1": mask, "L1": np.zeros(n, bool)}, seed=0)
    for k in data:  # the likelihood's data are untouched
        np.testing.assert_array_equal(data[k], original[k])
    np.testing.assert_array_equal(out["L1"], data["L1"])
    np.testing.assert_array_equal(out["H1"][~mask], data["H1"][~mask])
    # Re, Im ~ N(0, w S / (4 df)): the mean of |n|^2 / (2 sigma^2) over 945 bins is 1 within ~4 %
    sigma2 = DOMAIN.window_factor * 3.0e-2 / (4 * DOMAIN.delta_f)
    ratio = np.mean(np.abs(out["H1"][mask]) ** 2) / (2 * sigma2)
    assert abs(ratio - 1) < 0.15
    again = replace_line_bins(data, {"H1": psd, "L1": psd}, DOMAIN, {"H1": mask, "L1": np.zeros(n, bool)}, seed=0)
    np.testing.assert_array_equal(again["H1"], out["H1"])  # seeded
