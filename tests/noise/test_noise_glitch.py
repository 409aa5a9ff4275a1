"""Glitch detection and gating on real data: the GW170814 L1 transient, clean GW150914 data."""

import numpy as np
from scipy.signal.windows import tukey

from dingo_gw.domain import FrequencyDomain
from dingo_gw.events import get_event
from dingo_gw.io.strain import Strain, read_strain
from dingo_gw.noise.glitch import find_glitches, gate, gate_window, whitened_amplitude
from dingo_gw.noise.psd import estimate_psd_report

GLITCH_GPS = 1186741855.769  # SOURCES.md / data/README.md: 12 sigma whitened (20-1000 Hz)


def _gaussian_max(n_eff: float, p: float = 0.01) -> float:
    """Level exceeded by the max |N(0,1)| of n_eff independent samples with probability p."""
    from scipy.stats import norm

    return float(norm.isf(p / (2 * n_eff)))


def test_gw170814_l1_glitch_is_found_and_gating_removes_it():
    ev = get_event("GW170814")
    l1 = read_strain(ev.strain_path("L1"), "L1")
    found = find_glitches(l1)
    assert len(found) == 1
    g = found[0]
    assert abs(g.time - GLITCH_GPS) < 0.01 and 10.5 < g.snr < 13.5
    assert ev.known_glitches["L1"] == (GLITCH_GPS,)
    gated = gate(l1, [g.time])
    w = np.abs(whitened_amplitude(gated))
    t = gated.times
    noise = (t > t[0] + 2) & (t < t[-1] - 2) & (np.abs(t - ev.gps) > 0.5)  # not the edges, not the signal
    # back to Gaussian levels: below what 27 s x 2 x 980 Hz independent samples exceed 1 % of the time
    assert w[noise].max() < _gaussian_max(27 * 2 * 980)
    assert np.abs(whitened_amplitude(l1))[noise].max() > 10
    assert find_glitches(gated, exclude=(ev.gps - 0.5, ev.gps + 0.5)) == []
    # the transient is inside the event's 8 s analysis window [t-6, t+2]
    assert ev.gps - 6 < g.time < ev.gps + 2


def test_clean_gw150914_data_is_not_flagged():
    ev = get_event("GW150914")
    for det in ("H1", "L1"):
        s = read_strain(ev.strain_path(det), det)
        assert find_glitches(s, exclude=(ev.gps - 0.5, ev.gps + 0.5)) == []
        w = np.abs(whitened_amplitude(s))[2 * 4096 : -2 * 4096]
        assert 0.95 < np.std(w) / np.sqrt(1 - 2 / np.pi) < 1.05  # |N(0,1)| has sd sqrt(1 - 2/pi)


def test_gate_is_an_inverse_tukey_window():
    fs, hw, taper = 512.0, 0.25, 0.25
    s = Strain("H1", 100.0, fs, np.ones(int(4 * fs)))
    w = gate_window(s, [102.0], hw, taper)
    n = int(round(2 * (hw + taper) * fs)) + 1
    ref = 1 - tukey(n, alpha=2 * taper / (2 * (hw + taper)))  # zero in the middle, cosine tapers
    i0 = int(round((102.0 - hw - taper - 100.0) * fs))
    assert np.allclose(w[i0 : i0 + n], ref, atol=2e-3)
    assert np.all(w[: i0 - 1] == 1) and np.all(w[i0 + n + 1 :] == 1)
    assert np.array_equal(gate(s, [102.0], hw, taper).data, w)


def test_psd_estimate_excludes_glitch_segments_and_reports_them():
    ev = get_event("GW170814")
    l1 = read_strain(ev.strain_path("L1"), "L1")
    domain = FrequencyDomain(20.0, 1024.0, 0.5)
    exclude = (ev.gps, ev.gps + 2.0)  # an interval that leaves the glitch in the data
    rep = estimate_psd_report(l1, domain, exclude)
    assert [round(g.time, 2) for g in rep.glitches.glitches] == [round(GLITCH_GPS, 2)]
    tg = rep.glitches.glitches[0].time
    assert rep.glitches.intervals == [(tg - 0.5, tg + 0.5)] and (tg - 0.5, tg + 0.5) in rep.excluded
    starts = rep.segment_starts
    assert not np.any((starts < tg + 0.5) & (starts + 2.0 > tg - 0.5))
    gated = estimate_psd_report(l1, domain, exclude, glitch_action="gate")
    assert gated.num_segments > rep.num_segments
    # gating (zeroing 0.5 s of 32 s) and excluding give the same PSD within the Welch noise
    f = domain.frequencies
    band = (f > 30) & (f < 500)
    assert abs(np.median(gated.psd[band] / rep.psd[band]) - 1) < 0.1
