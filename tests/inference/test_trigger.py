"""The matched-filter trigger estimate that picks a network for --gps data: against signals made by
bilby (waveform, detector response and noise independent of dingo_gw) and against the published
chirp masses of real events."""

import numpy as np
import pytest

from dingo_gw.errors import DataError
from dingo_gw.events import get_event
from dingo_gw.inference.network_catalog import choose_network
from dingo_gw.inference.trigger import estimate_chirp_mass
from dingo_gw.io.strain import Strain, read_strain

FS, DURATION, GPS = 2048.0, 16.0, 1126259462.4


def bilby_injection(chirp_mass: float, distance: float, seed: int) -> dict[str, Strain]:
    """16 s of H1, L1 strain at 2048 Hz: bilby's aLIGO design noise plus a bilby IMRPhenomPv2
    signal (precessing, q = 0.7) merging at GPS, as time series."""
    import bilby

    bilby.core.utils.random.seed(seed)
    ifos = bilby.gw.detector.InterferometerList(["H1", "L1"])
    start = GPS + 2.0 - DURATION
    ifos.set_strain_data_from_power_spectral_densities(sampling_frequency=FS, duration=DURATION, start_time=start)
    wfg = bilby.gw.WaveformGenerator(
        duration=DURATION, sampling_frequency=FS,
        frequency_domain_source_model=bilby.gw.source.lal_binary_black_hole,
        parameter_conversion=bilby.gw.conversion.convert_to_lal_binary_black_hole_parameters,
        waveform_arguments={"waveform_approximant": "IMRPhenomPv2", "reference_frequency": 20.0, "minimum_frequency": 20.0})
    params = {"chirp_mass": chirp_mass, "mass_ratio": 0.7, "a_1": 0.3, "a_2": 0.2, "tilt_1": 0.5, "tilt_2": 1.0,
              "phi_12": 1.0, "phi_jl": 0.5, "theta_jn": 0.4, "phase": 1.3, "luminosity_distance": distance,
              "geocent_time": GPS, "ra": 1.4, "dec": -1.2, "psi": 0.3}
    ifos.inject_signal(waveform_generator=wfg, parameters=params, raise_error=False)
    return {ifo.name: Strain(ifo.name, start, FS, ifo.strain_data.time_domain_strain) for ifo in ifos}


@pytest.mark.parametrize("chirp_mass, distance", [(12.0, 400.0), (35.0, 1200.0), (90.0, 3000.0)])
def test_estimate_recovers_the_chirp_mass_of_bilby_injections(chirp_mass, distance):
    est = estimate_chirp_mass(bilby_injection(chirp_mass, distance, seed=3), GPS, f_max=900.0)
    assert est.network_snr > 15  # bilby's optimal network SNRs: 23-38
    assert abs(est.chirp_mass / chirp_mass - 1) < 0.15, est


def test_noise_alone_gives_a_low_snr():
    """The maximum over templates and times of Gaussian noise: 5.9-6.5 for seeds 3 and 5."""
    est = estimate_chirp_mass(bilby_injection(30.0, 1e6, seed=4), GPS, f_max=900.0)
    assert est.network_snr < 8


@pytest.mark.parametrize("name, snr_min", [("GW150914", 20), ("GW151226", 8), ("GW170814", 12)])
def test_estimate_on_real_events_matches_the_catalogue(name, snr_min):
    event = get_event(name)
    strains = {d: read_strain(p, d) for d, p in event.available().items() if p is not None}
    est = estimate_chirp_mass(strains, event.gps)
    # catalogue value: GWTC-1 source-frame median x (1 + z); the grid step is 9 %
    assert abs(est.chirp_mass / event.chirp_mass - 1) < 0.12 and est.network_snr > snr_min, est


@pytest.mark.parametrize("name, network", [("GW170814", "hlv"), ("GW190521", "highmass"), ("GW151226", "lowmass"),
                                            ("GW150914", "default")])
def test_gps_data_pick_the_network_by_trigger_estimate(name, network):
    event = get_event(name)
    files = {d: p for d, p in event.available().items() if p is not None}
    path, why = choose_network(None, None, files, None, False, gps=event.gps)
    assert why["name"] == network and "trigger estimate: matched filter" in why["reason"]


def test_too_little_strain_is_one_clear_error():
    strains = {"H1": Strain("H1", GPS - 2.0, FS, np.random.default_rng(0).normal(size=int(4 * FS)))}
    with pytest.raises(DataError, match=r"H1: .* s of strain around the trigger; the estimate needs >= 8 s"):
        estimate_chirp_mass(strains, GPS, duration=4.0)
