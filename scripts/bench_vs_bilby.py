"""Time to a posterior for one injection: bilby + dynesty vs ``dingo_analyze --injection``, and the
Jensen-Shannon divergence between the two posteriors per parameter.

    python scripts/bench_vs_bilby.py [--network data/networks/default/network.pt]
        [--injection PARAMS.json | prior] [--seed 0] [--num-samples 20000] [--workers 2]
        [--nlive 500] [--dlogz 0.1] [--naccept 60] [--npool 1] [--marginalize phase,distance]
        [--likelihood exact|relative-binning]
        [--psd DET=FILE|design:NAME ...] [--outdir DIR]

1. The injection parameters (a JSON file, or one draw from the network's prior with --seed) are
   written to a JSON file, and ``dingo_analyze --injection that.json`` runs as a subprocess
   (network proposal + importance sampling); its wall time is the first figure.
2. The same data are rebuilt here with the library function dingo_analyze uses (same seed: same
   noise; checked through the optimal SNR the run recorded), and bilby's
   GravitationalWaveTransient runs on them with dynesty: same waveform model (the network's
   approximant and f_ref), frequency domain, PSDs (times the window factor w, because the
   injected noise has the level w S(f) of windowed data, as in dingo_analyze's likelihood) and
   prior (the network's, with geocent_time shifted to GPS). --marginalize: analytic phase
   and/or distance marginalisation (bilby reconstructs both posteriors afterwards; its wall time
   includes the distance look-up table and that reconstruction). --likelihood relative-binning:
   bilby's RelativeBinningGravitationalWaveTransient (fiducial point: the injected parameters,
   not updated; bilby's default binning), so that bilby finishes on 2 cores.
3. JS divergence per parameter, in bits (log base 2; 0 = identical, 1 = disjoint), between 1-D
   histograms of dingo_analyze's importance-weighted samples and bilby's posterior samples, on
   --bins common bins spanning the 0.5-99.5 % quantiles of both (dingo_gw.js_divergence), next to
   the JS that sampling noise alone gives each parameter at these sample sizes and weights
   (dingo_gw.js_divergence.js_noise_bits); target: within 2x that. DINGO's papers call
   JS < 2e-3 nats (2.9e-3 bits) indistinguishable.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import BenchError, console_script, load_average, run_cli, thread_env, timed_run  # noqa: E402

MARGINALIZATIONS = ("phase", "distance", "time")


def marginalizations(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip() and v.strip() != "none"]
    bad = [v for v in values if v not in MARGINALIZATIONS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown marginalisation {bad[0]!r}; use none or a comma list of "
                                         f"{', '.join(MARGINALIZATIONS)}")
    return values


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", help="network file (default: data/networks/default/network.pt)")
    p.add_argument("--injection", default="prior", help="injection parameters (JSON file) or 'prior' (default)")
    p.add_argument("--gps", type=float, help="trigger GPS time (default: the network's reference time)")
    p.add_argument("--psd", action="append", default=[], metavar="DET=FILE",
                   help="PSD of a detector, as for dingo_analyze (default: the published GW150914 PSDs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-samples", type=int, default=20000, help="dingo_analyze proposal samples")
    p.add_argument("--workers", type=int, default=2, help="dingo_analyze waveform processes")
    p.add_argument("--nlive", type=int, default=500, help="dynesty live points")
    p.add_argument("--dlogz", type=float, default=0.1, help="dynesty stopping criterion")
    p.add_argument("--naccept", type=int, default=60, help="dynesty acceptance-walk accepted steps per point")
    p.add_argument("--npool", type=int, default=1, help="bilby/dynesty likelihood processes")
    p.add_argument("--marginalize", type=marginalizations, default=["phase", "distance"],
                   help="bilby marginalisations: none or a comma list of phase, distance, time (default phase,distance)")
    p.add_argument("--likelihood", choices=("exact", "relative-binning"), default="exact",
                   help="bilby's likelihood: GravitationalWaveTransient (default) or its relative-binning one")
    p.add_argument("--bins", type=int, default=40, help="histogram bins for the JS divergence")
    p.add_argument("--outdir", help="keep the runs' files here (default: a temporary folder)")
    args = p.parse_args(argv)
    if min(args.num_samples, args.nlive, args.npool, args.workers, args.naccept) < 1 or args.bins < 2:
        p.error("--num-samples, --nlive, --npool, --workers, --naccept must be >= 1 and --bins >= 2")
    return args


def psd_pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        det, sep, spec = item.partition("=")
        if not sep or not det or not spec:
            raise BenchError(f"--psd expects DET=FILE or DET=design:NAME, got {item!r}")
        out[det] = spec
    return out


# -- 1. dingo_analyze -----------------------------------------------------------------------------
def run_dingo_analyze(args, network_path: Path, params_file: Path, gps: float, folder: Path):
    from dingo_gw.results import Result

    script = console_script("dingo_analyze", sys.executable)
    cmd = [str(script)] if script else [sys.executable, "-c", "import sys; from dingo_gw.cli.analyze import main; "
                                                              "sys.exit(main())"]
    outdir = folder / "dingo_gw"
    cmd += ["--injection", params_file, "--gps", repr(gps), "--network", network_path, "--outdir", outdir,
            "--label", "injection", "--num-samples", args.num_samples, "--seed", args.seed,
            "--workers", args.workers, "--no-corner", "--no-progress"]
    for item in args.psd:
        cmd += ["--psd", item]
    r = timed_run(cmd, env=thread_env(1), log=folder / "log_dingo_analyze.txt").check("dingo_analyze")
    result_file = outdir / "injection_result.hdf5"
    if not result_file.is_file():
        failed = outdir / "injection_failed_proposal.json"
        reason = json.loads(failed.read_text()).get("failure_reason", "?") if failed.is_file() else "no result file"
        raise BenchError(f"dingo_analyze gave no posterior (failed proposal: {reason}); JS divergences need one")
    return r.wall, Result.load(result_file)


# -- 2. bilby -------------------------------------------------------------------------------------
def rebuild_data(network, args, params_file: Path, gps: float):
    """The injected data exactly as dingo_analyze made them (same functions, same seed)."""
    from dingo_gw.inference.analyze import AnalysisSettings
    from dingo_gw.inference.injection import injection_data
    from dingo_gw.inference.network import network_generator
    from dingo_gw.noise.event_psd import injection_psds

    psds, _ = injection_psds(psd_pairs(args.psd), network.domain, network.detectors, None)
    settings = AnalysisSettings(injection=str(params_file), network=str(network.path), seed=args.seed)
    gen = network_generator(network)
    try:
        event, params = injection_data(network, settings.injection, gps, gen, psds, args.seed)
    finally:
        gen.close()
    return event, params


def bilby_prior(network, gps: float):
    import bilby

    prior = bilby.gw.prior.BBHPriorDict(dictionary={k: v for k, v in network.prior.items()})
    t = prior["geocent_time"]
    if isinstance(t, bilby.core.prior.DeltaFunction):
        prior["geocent_time"] = bilby.core.prior.DeltaFunction(gps + t.peak, name="geocent_time")
    else:
        prior["geocent_time"] = bilby.core.prior.Uniform(gps + t.minimum, gps + t.maximum, name="geocent_time",
                                                         latex_label="$t_c$", unit="$s$")
    return prior


def run_bilby(network, event, gps: float, args, folder: Path, fiducial: dict | None = None):
    """(wall time [s], of which likelihood set-up [s], bilby result) of bilby + dynesty on ``event``;
    ``fiducial``: the relative-binning centre (bilby parameters, GPS geocent_time)."""
    import bilby

    domain = event.domain
    f = domain.frequencies
    w = domain.window_factor
    ifos = bilby.gw.detector.InterferometerList(network.detectors)
    for ifo in ifos:
        ifo.power_spectral_density = bilby.gw.detector.PowerSpectralDensity(
            frequency_array=f, psd_array=w * np.asarray(event.psds[ifo.name], dtype=float))
        # the data's time origin is the trigger time (dingo_gw.inference.injection)
        ifo.set_strain_data_from_frequency_domain_strain(np.asarray(event.strain[ifo.name]), start_time=gps,
                                                         frequency_array=f)
        ifo.minimum_frequency, ifo.maximum_frequency = domain.f_min, domain.f_max
    binned = args.likelihood == "relative-binning"
    wfg = bilby.gw.WaveformGenerator(
        duration=domain.duration, sampling_frequency=2 * domain.f_max, start_time=gps,
        frequency_domain_source_model=bilby.gw.source.lal_binary_black_hole_relative_binning if binned
        else bilby.gw.source.lal_binary_black_hole,
        parameter_conversion=bilby.gw.conversion.convert_to_lal_binary_black_hole_parameters,
        waveform_arguments=dict(waveform_approximant=network.waveform["approximant"],
                                reference_frequency=float(network.waveform["f_ref"]),
                                minimum_frequency=domain.f_min, maximum_frequency=domain.f_max),
    )
    prior = bilby_prior(network, gps)
    outdir = folder / "bilby"
    outdir.mkdir(parents=True, exist_ok=True)
    bilby.core.utils.setup_logger(log_level="WARNING")
    t0 = time.perf_counter()
    kind = bilby.gw.likelihood.GravitationalWaveTransient
    extra = {}
    if binned:
        kind = bilby.gw.likelihood.RelativeBinningGravitationalWaveTransient
        extra = {"fiducial_parameters": fiducial, "update_fiducial_parameters": False}
    like = kind(
        ifos, wfg, priors=prior, **extra,
        phase_marginalization="phase" in args.marginalize,
        distance_marginalization="distance" in args.marginalize,
        time_marginalization="time" in args.marginalize,
        distance_marginalization_lookup_table=str(outdir / "distance_lookup.npz")
        if "distance" in args.marginalize else None,
    )
    t_setup = time.perf_counter() - t0
    result = bilby.run_sampler(
        likelihood=like, priors=prior, sampler="dynesty", nlive=args.nlive, dlogz=args.dlogz,
        sample="acceptance-walk", naccept=args.naccept, npool=args.npool, outdir=str(outdir), label="bilby",
        conversion_function=bilby.gw.conversion.generate_all_bbh_parameters, seed=args.seed,
        save="hdf5", plot=False, resume=False, check_point=False, check_point_plot=False,
    )
    return time.perf_counter() - t0, t_setup, result


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bilby").setLevel(logging.WARNING)
    from dingo_gw.inference.network import find_network, load_analysis_network
    from dingo_gw.inference.injection import injection_parameters

    network_path = find_network(args.network).resolve()
    with tempfile.TemporaryDirectory(prefix="bench_vs_bilby_") as tmp:
        folder = Path(args.outdir) if args.outdir else Path(tmp)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BenchError(f"cannot create --outdir {folder}: {e.strerror or e}") from None
        network = load_analysis_network(network_path)
        gps = float(args.gps) if args.gps is not None else float(network.net_input.ref_time)
        params = injection_parameters(args.injection, network.prior, gps, seed=args.seed)
        params_file = folder / "injection.json"
        params_file.write_text(json.dumps(params, indent=1))  # geocent_time relative to --gps
        print(f"network {network_path} ({network.waveform['approximant']}, {network.domain.f_min:g}-"
              f"{network.domain.f_max:g} Hz, {network.domain.duration:g} s, {', '.join(network.detectors)}); "
              f"load average {load_average()} (2 cores; other jobs may share them)")
        print("injection: " + ", ".join(f"{k}={v:.4g}" for k, v in params.items()))

        wall_dingo, ours = run_dingo_analyze(args, network_path, params_file, gps, folder)
        event, _ = rebuild_data(network, args, params_file, gps)
        snr_run = ours.meta_data.get("injection", {}).get("network_optimal_snr")
        snr_here = event.info["injection"]["network_optimal_snr"]
        if snr_run is None or not math.isclose(float(snr_run), snr_here, rel_tol=1e-9):
            raise BenchError(f"rebuilt injection differs from dingo_analyze's (network SNR {snr_here} vs {snr_run})")
        print(f"network optimal SNR {snr_here:.1f}")
        fiducial = dict(params, geocent_time=gps + params["geocent_time"])
        wall_bilby, setup_bilby, bres = run_bilby(network, event, gps, args, folder, fiducial)

        post = bres.posterior
        weights = ours.weights
        names = [k for k in ours.samples if k in post.columns and k not in ("log_likelihood", "log_prior")]
        print(f"\ndingo_analyze: {wall_dingo:.1f} s wall (whole command), {ours.num_samples} proposal samples, "
              f"n_eff {ours.n_eff:.0f}, sample efficiency {100 * ours.sample_efficiency:.2f} %, "
              f"log Z {ours.log_evidence:.2f} ± {ours.log_evidence_err:.2f}")
        print(f"bilby + dynesty: {wall_bilby:.1f} s wall (likelihood set-up {setup_bilby:.1f} s, then sampling and "
              f"reconstruction of marginalised parameters), "
              f"nlive {args.nlive}, dlogz {args.dlogz}, naccept {args.naccept}, npool {args.npool}, "
              f"marginalised over {', '.join(args.marginalize) or 'nothing'}; {len(post)} posterior samples, "
              f"log Z {bres.log_evidence:.2f} ± {bres.log_evidence_err:.2f}")
        print(f"ratio of wall times bilby / dingo_analyze: {wall_bilby / wall_dingo:.1f}x")
        from dingo_gw.js_divergence import js_divergence_bits, js_noise_bits

        crude = args.bins / min(ours.n_eff, len(post)) / (8 * math.log(2))
        print(f"\nJensen-Shannon divergence per parameter [bits], {args.bins}-bin histograms, next to the JS that "
              f"sampling noise alone gives at these sample sizes (target: within 2x; the cruder "
              f"bins / (8 ln 2 min(n_eff, n_bilby)) = {crude:.1e} underestimates it):")
        import bilby

        fixed = {k for k, p in network.prior.items() if isinstance(p, bilby.core.prior.DeltaFunction)}
        js, noise = {}, {}
        for k in names:
            if k in fixed:
                continue
            x, y = np.asarray(ours.samples[k], float), post[k].to_numpy()
            js[k] = js_divergence_bits(x, weights, y, args.bins)
            noise[k] = js_noise_bits(x, weights, y, args.bins)
            print(f"  {k:22s} {js[k]:.2e}  noise {noise[k]:.1e}  ({js[k] / noise[k]:.1f}x)")
        within = sum(js[k] <= 2 * noise[k] for k in js)
        print(f"{within} of {len(js)} parameters within 2x their sampling-noise level "
              f"({sum(v <= 2 * crude for v in js.values())} within 2x the cruder level)")
        summary = {"injection": params, "network_optimal_snr": snr_here, "settings": vars(args) | {"psd": args.psd},
                   "dingo": {"wall_s": wall_dingo, "n_eff": ours.n_eff, "sample_efficiency": ours.sample_efficiency,
                             "log_evidence": ours.log_evidence, "log_evidence_err": ours.log_evidence_err,
                             "refined": (ours.meta_data.get("refinement") or {}).get("status") == "done"},
                   "bilby": {"wall_s": wall_bilby, "setup_s": setup_bilby, "num_posterior": len(post),
                             "log_evidence": bres.log_evidence, "log_evidence_err": bres.log_evidence_err},
                   "wall_ratio": wall_bilby / wall_dingo, "js_bits": js, "js_noise_bits": noise, "js_noise_bits_crude": crude,
                   "load_average": load_average()}
        (folder / "bench_vs_bilby.json").write_text(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
