"""Benchmark of dingo_analyze (not a test).

1. Wall time of each step of ``dingo_analyze --event GW150914`` with the default network (or
   --network), its sample efficiency, n_eff and evidence. Targets: whole analysis <= 120 s on
   2 cores with n_eff >= 2000.
2. Log-likelihood evaluations per second of dingo_gw's GaussianLikelihood (1 and 2 waveform
   processes) and of bilby's GravitationalWaveTransient (no marginalisation) on the same samples,
   data, PSDs and waveform model, in the same run, with the largest |Δ log L|. Target: ours >= bilby.
   The samples are the run's importance-sampled proposal samples, or prior draws when no network
   is available. (|Δ log L| ~ 1e-3 comes from bilby's float64 round-off of absolute GPS times,
   2.4e-7 s at 1.1e9 s, in its time shifts; tests/likelihood/test_likelihood_gaussian.py uses
   exactly representable times and finds < 1e-3.)

    python scripts/bench_analyze.py [--network FILE] [--num-samples 20000] [--like-samples 400]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np


def likelihood_benchmark(strain, psds, domain, segment_start, trigger, approximant, f_ref, samples, workers_list,
                         fiducial=None):
    """evals/s of bilby and of ours on ``samples`` (relative geocent_time), and of relative binning
    around ``fiducial`` (dict of scalars) if given; returns a dict."""
    import bilby

    from dingo_gw.domain import FrequencyDomain
    from dingo_gw.likelihood.gaussian import GaussianLikelihood
    from dingo_gw.waveforms import WaveformGenerator

    # bilby's likelihood on the same FD data (its window factor is 1: compare with w = 1)
    dom1 = FrequencyDomain(domain.f_min, domain.f_max, domain.delta_f, 1.0)
    T, f = dom1.duration, dom1.frequencies
    wfg = bilby.gw.WaveformGenerator(
        duration=T, sampling_frequency=2 * dom1.f_max, start_time=segment_start,
        frequency_domain_source_model=bilby.gw.source.lal_binary_black_hole,
        parameter_conversion=bilby.gw.conversion.convert_to_lal_binary_black_hole_parameters,
        waveform_arguments=dict(waveform_approximant=approximant, reference_frequency=f_ref,
                                minimum_frequency=dom1.f_min, maximum_frequency=dom1.f_max),
    )
    ifos = bilby.gw.detector.InterferometerList(list(strain))
    for ifo in ifos:
        ifo.power_spectral_density = bilby.gw.detector.PowerSpectralDensity(frequency_array=f, psd_array=psds[ifo.name])
        ifo.set_strain_data_from_frequency_domain_strain(strain[ifo.name], start_time=segment_start, frequency_array=f)
        ifo.minimum_frequency, ifo.maximum_frequency = dom1.f_min, dom1.f_max
    bl = bilby.gw.likelihood.GravitationalWaveTransient(ifos, wfg)
    n = len(samples["chirp_mass"])
    t0 = time.perf_counter()
    ref = np.empty(n)
    for i in range(n):
        p = {k: float(v[i]) for k, v in samples.items()}
        p["geocent_time"] += trigger
        ref[i] = bl.log_likelihood(p)
    t_bilby = time.perf_counter() - t0
    out = {"n": n, "bilby_per_s": n / t_bilby}
    with WaveformGenerator(approximant, dom1, f_ref) as gen:
        like = GaussianLikelihood(strain, psds, dom1, gen, trigger, time_origin=segment_start)
        for workers in workers_list:
            like.log_likelihood({k: v[:8] for k, v in samples.items()}, workers=workers)  # start the pool
            t0 = time.perf_counter()
            ours = like.log_likelihood(samples, workers=workers)
            t = time.perf_counter() - t0
            out[f"ours_{workers}_per_s"] = n / t
            out[f"ours_{workers}_max_dlogl"] = float(np.nanmax(np.abs(ours - ref)))
        if fiducial is not None:
            from dingo_gw.likelihood.relative_binning import RelativeBinningLikelihood

            rb = RelativeBinningLikelihood(like, fiducial)
            try:
                for workers in workers_list:
                    rb.log_likelihood({k: v[:8] for k, v in samples.items()}, workers=workers)
                    t0 = time.perf_counter()
                    binned = rb.log_likelihood(samples, workers=workers)
                    out[f"binned_{workers}_per_s"] = n / (time.perf_counter() - t0)
                    out[f"binned_{workers}_max_dlogl"] = float(np.nanmax(np.abs(binned - ref)))
                near = ref > np.nanmax(ref) - 20  # samples that can carry weight
                out["binned_near_max_dlogl"] = float(np.nanmax(np.abs(binned - ref)[near]))
                out["binned_near_n"] = int(near.sum())
                out["binned_nodes"] = rb.num_nodes
            finally:
                rb.close()
    return out


def prior_samples(prior, n, seed=0):
    from dingo_gw.priors import sample_prior

    return sample_prior(prior, n, seed=seed)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", help="network file (default: data/networks/default/network.pt)")
    ap.add_argument("--event", default="GW150914")
    ap.add_argument("--num-samples", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--like-samples", type=int, default=400)
    ap.add_argument("--outdir", default="bench_analyze_out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bilby").setLevel(logging.WARNING)

    from dingo_gw.errors import DingoError
    from dingo_gw.events import get_event
    from dingo_gw.inference.analyze import AnalysisSettings, analyze
    from dingo_gw.inference.network import find_network
    from dingo_gw.noise.event_psd import estimate_psds
    from dingo_gw.noise.event_strain import analysis_segment, post_trigger, read_strain, segment_fd

    try:
        network = find_network(args.network)
    except DingoError as e:
        network = None
        print(f"no network ({e}); only the likelihood benchmark runs, on prior draws")

    if network is not None:
        settings = AnalysisSettings(event=args.event, network=str(network), outdir=args.outdir,
                                    num_samples=args.num_samples, seed=args.seed, workers=args.workers,
                                    progress=False)
        out = analyze(settings)
        r = out.result
        print(f"{args.event} with {network}: {r.num_samples} proposal samples, n_eff {r.n_eff:.0f}, "
              f"sample efficiency {100 * r.sample_efficiency:.2f} %, log Z {r.log_evidence:.2f} ± "
              f"{r.log_evidence_err:.2f}, status {r.status}")
        ref = r.meta_data.get("refinement") or {}
        if ref.get("status") == "done":
            net = ref["network_proposal"]
            smc = ref["stages"][0]
            print(f"  refined: the network proposal alone had n_eff {net['n_eff']:.1f} (efficiency "
                  f"{100 * net['sample_efficiency']:.3f} %); SMC {smc['num_stages']} stages, "
                  f"{ref['num_likelihood_evaluations']} likelihood evaluations in all")
        print("wall time per step [s]:")
        for k, v in out.timings.items():
            print(f"  {k:<22}{v:8.2f}")
        target = out.timings["total"] <= 120 and r.n_eff >= 2000
        print(f"target (total <= 120 s and n_eff >= 2000): {'met' if target else 'NOT met'}")
        ev = out.event_data
        approximant = r.meta_data["waveform"]["approximant"]
        f_ref = float(r.meta_data["waveform"]["f_ref"])
        ok = np.isfinite(r.samples["phase"])
        take = np.flatnonzero(ok)[: args.like_samples]
        if len(take) >= args.like_samples // 2:
            samples = {k: r.samples[k][take] for k in r.samples}
            samples["geocent_time"] = samples["geocent_time"] - ev.trigger_time
        else:  # too few importance-sampled samples (failed proposal): draws from the network's prior
            from dingo_gw.inference.network import load_analysis_network

            samples = prior_samples(load_analysis_network(network).prior, args.like_samples)
        strain, psds, domain, start, trigger = ev.strain, ev.psds, ev.domain, ev.segment_start, ev.trigger_time
    else:
        from dingo_gw.domain import FrequencyDomain
        from dingo_gw.priors import DEFAULT_EXTRINSIC_PRIOR, DEFAULT_INTRINSIC_PRIOR, build_prior

        event = get_event(args.event)
        domain = FrequencyDomain(20.0, 1024.0, 0.125)
        post = post_trigger(domain)
        segment = analysis_segment(event.gps, domain, post)
        strains = read_strain({d: event.strain_path(d) for d in event.detectors}, segment)
        strain, start, domain = segment_fd(strains, list(event.detectors), domain, event.gps, post, 0.4)
        psds, _ = estimate_psds(strains, domain, segment, {}, event, None, 0.4, list(event.detectors))
        samples = prior_samples(build_prior({**DEFAULT_INTRINSIC_PRIOR, **DEFAULT_EXTRINSIC_PRIOR}), args.like_samples)
        approximant, f_ref, trigger = "IMRPhenomPv2", 20.0, event.gps
    fiducial = None
    if network is not None and np.isfinite(r.log_likelihood).any():  # the run's best sample
        i = int(np.nanargmax(r.log_likelihood))
        fiducial = {k: float(v[i]) for k, v in r.samples.items()}
        fiducial["geocent_time"] -= trigger
    res = likelihood_benchmark(strain, psds, domain, start, trigger, approximant, f_ref, samples,
                               sorted({1, args.workers}), fiducial)
    print(f"log-likelihood evaluations/s on {res['n']} samples ({approximant}, {domain.f_min:g}-{domain.f_max:g} Hz, "
          f"{domain.duration:g} s):")
    print(f"  bilby GravitationalWaveTransient  {res['bilby_per_s']:8.0f}")
    for w in sorted({1, args.workers}):
        print(f"  dingo_gw, {w} worker(s)           {res[f'ours_{w}_per_s']:8.0f}   ratio "
              f"{res[f'ours_{w}_per_s'] / res['bilby_per_s']:.2f}   max |dlogL| {res[f'ours_{w}_max_dlogl']:.1e}")
    if fiducial is not None:
        for w in sorted({1, args.workers}):
            print(f"  relative binning ({res['binned_nodes']} nodes), {w} worker(s) {res[f'binned_{w}_per_s']:8.0f}   "
                  f"ratio {res[f'binned_{w}_per_s'] / res['bilby_per_s']:.2f}   "
                  f"max |dlogL| {res[f'binned_{w}_max_dlogl']:.1e}")
        print(f"  relative binning, samples with log L within 20 of the largest ({res['binned_near_n']}): "
              f"max |dlogL| {res['binned_near_max_dlogl']:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
