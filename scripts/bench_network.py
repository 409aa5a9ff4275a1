"""Benchmark of a network's own proposal (not a test): sample efficiency without refinement.

For each network given (``--network``, repeatable; default: the shipped one), on a quiet machine:

1. ``dingo_analyze --event GW150914 --refine never`` for ``--seeds`` seeds: sample efficiency,
   n_eff, Pareto k̂, network samples outside the GNPE kernel / prior, and the wall time;
2. ``--injections`` injections drawn from the network's prior (one per seed, the same draws for
   every network that shares the prior) into Gaussian noise coloured by the published GW150914
   PSDs (analysis default for injections), ``--refine never``: efficiency and n_eff. With
   ``--min-snr X`` only draws whose network optimal SNR is >= X are kept (the first ``--injections``
   such seeds from 100 on): most prior draws are far below detection (SNR < 8), where the
   posterior is nearly the prior and any network is efficient;
3. ``--loud`` runs of one fixed GW150914-like injection (:data:`LOUD_INJECTION`: detector-frame
   chirp mass 31.2 Msun, d_L 450 Mpc, network SNR ~ 24 in that noise; noise seeds 200..): loud
   events are where the network falls short, and the prior's injections are mostly quiet.

Medians are printed per network, with the ratio to the first network (the baseline of this run).
Targets (issue 17): GW150914 efficiency >= 1 % and n_eff >= 1000 in <= 30 s; injections: median
efficiency >= 1 %, none below 0.1 %.

    python scripts/bench_network.py [--network FILE ...] [--seeds 3] [--injections 8]
        [--min-snr 0] [--loud 0] [--num-samples 20000] [--out bench_network.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import load_average  # noqa: E402


#: A GW150914-like signal (detector-frame chirp mass, Mpc, radians; geocent_time relative to the trigger).
LOUD_INJECTION = {
    "chirp_mass": 31.2, "mass_ratio": 0.85, "a_1": 0.3, "a_2": 0.3, "tilt_1": 1.0, "tilt_2": 2.0, "phi_12": 1.0,
    "phi_jl": 2.0, "theta_jn": 2.6, "phase": 1.0, "luminosity_distance": 450.0, "geocent_time": 0.0,
    "ra": 1.375, "dec": -1.21, "psi": 0.6,
}


def detectable_injections(network: str, count: int, min_snr: float, first_seed: int = 100,
                          max_draws: int = 10000) -> list[tuple[int, dict, float]]:
    """(seed, parameters, network optimal SNR) of the first ``count`` prior draws (seeds from
    ``first_seed``) whose SNR in the default injection noise is >= ``min_snr``."""
    from dingo_gw.inference.injection import injection_data
    from dingo_gw.inference.network import load_analysis_network, network_generator
    from dingo_gw.noise.event_psd import injection_psds

    net = load_analysis_network(network)
    psds, _ = injection_psds({}, net.domain, net.detectors, None)
    gps = float(net.net_input.ref_time)
    out, gen = [], network_generator(net)
    try:
        for seed in range(first_seed, first_seed + max_draws):
            event, params = injection_data(net, "prior", gps, gen, psds, seed)
            snr = event.info["injection"]["network_optimal_snr"]
            if snr >= min_snr:
                out.append((seed, params, snr))
                if len(out) == count:
                    break
    finally:
        gen.close()
    return out


def run_one(network: str, outdir: Path, label: str, seed: int, num_samples: int, event: str | None,
            injection: str | dict | None, workers: int, lines: str = "keep", **extra) -> dict:
    """One ``--refine never`` analysis; ``extra``: further AnalysisSettings (strain_files, psd_files, gps, ...)."""
    from dingo_gw.inference.analyze import AnalysisSettings, analyze

    settings = AnalysisSettings(
        event=event, injection=injection, network=network, outdir=str(outdir), label=label,
        num_samples=num_samples, seed=seed, workers=workers, refine="never", progress=False, corner=False, lines=lines,
        **extra,
    )
    t0 = time.perf_counter()
    out = analyze(settings)
    wall = time.perf_counter() - t0
    meta = out.result.meta_data
    n = float(meta.get("num_network_samples") or meta.get("num_proposal_samples") or num_samples)
    return {
        "label": label, "seed": seed, "wall_s": round(wall, 2),
        "sample_efficiency": float(meta.get("sample_efficiency") or 0.0),
        "n_eff": float(meta.get("n_eff") or 0.0), "pareto_k": meta.get("pareto_k"),
        "rejected_fraction": float(meta.get("num_rejected_proposals") or 0) / n,
        "outside_prior_fraction": float(meta.get("num_outside_prior") or 0) / n,
        "log_evidence": float(out.result.log_evidence),
        "line_bins": {d: v.get("bins") for d, v in meta.get("line_bins", {}).items() if isinstance(v, dict)},
    }


def summarise(rows: list[dict]) -> dict:
    eff = np.array([r["sample_efficiency"] for r in rows])
    return {"median_efficiency": float(np.median(eff)), "min_efficiency": float(eff.min()),
            "median_n_eff": float(np.median([r["n_eff"] for r in rows])),
            "median_wall_s": float(np.median([r["wall_s"] for r in rows]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", action="append", default=[],
                    help="network file (repeat to compare; the first is the baseline; default: the shipped one)")
    ap.add_argument("--seeds", type=int, default=3, help="GW150914 runs (seeds 0..N-1)")
    ap.add_argument("--injections", type=int, default=8, help="injections from the network prior (seeds 100..)")
    ap.add_argument("--min-snr", type=float, default=0.0,
                    help="keep only prior injections with network optimal SNR >= this (default 0: all)")
    ap.add_argument("--loud", type=int, default=0, help="runs of the GW150914-like injection (noise seeds 200..)")
    ap.add_argument("--num-samples", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lines", choices=("keep", "replace"), default="keep",
                    help="GW150914's spectral-line bins in the network input (dingo_analyze --lines)")
    ap.add_argument("--outdir", default="bench_network_out")
    ap.add_argument("--out", default="bench_network.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("bilby").setLevel(logging.ERROR)

    from dingo_gw.inference.network import find_network

    networks = [str(find_network(n)) for n in (args.network or [None])]
    print(f"load average before: {load_average()}")
    report = {"load_average_before": load_average(), "networks": {}, "min_snr": args.min_snr}
    chosen = detectable_injections(networks[0], args.injections, args.min_snr) if args.min_snr > 0 else []
    if chosen:
        print("injections (seed: network SNR): " + ", ".join(f"{s}: {snr:.1f}" for s, _, snr in chosen))
        report["detectable_injections"] = [{"seed": s, "network_optimal_snr": snr, "parameters": p}
                                           for s, p, snr in chosen]
    for k, net in enumerate(networks):
        outdir = Path(args.outdir) / f"net{k}"
        event_rows = [run_one(net, outdir, f"GW150914_s{s}", s, args.num_samples, "GW150914", None, args.workers,
                              args.lines)
                      for s in range(args.seeds)]
        if args.min_snr > 0:
            inj_rows = []
            for seed, params, snr in chosen:
                row = run_one(net, outdir, f"inj{seed:03d}", seed, args.num_samples, None, params, args.workers)
                inj_rows.append(dict(row, network_optimal_snr=snr))
        else:
            inj_rows = [run_one(net, outdir, f"inj{s:03d}", 100 + s, args.num_samples, None, "prior", args.workers)
                        for s in range(args.injections)]
        loud_rows = [run_one(net, outdir, f"loud{s:03d}", 200 + s, args.num_samples, None, dict(LOUD_INJECTION),
                             args.workers) for s in range(args.loud)]
        report["networks"][net] = {"GW150914": event_rows, "injections": inj_rows, "loud": loud_rows,
                                   "GW150914_summary": summarise(event_rows) if event_rows else None,
                                   "injection_summary": summarise(inj_rows) if inj_rows else None,
                                   "loud_summary": summarise(loud_rows) if loud_rows else None}
        for name, rows in (("GW150914", event_rows), ("injections", inj_rows), ("loud", loud_rows)):
            for r in rows:
                print(f"{net} {r['label']}: efficiency {100 * r['sample_efficiency']:.3g} %, n_eff {r['n_eff']:.1f}, "
                      f"k {r['pareto_k']}, rejected {100 * r['rejected_fraction']:.0f} % "
                      f"(outside prior {100 * r['outside_prior_fraction']:.0f} %), {r['wall_s']:.1f} s", flush=True)
    print(f"load average after: {load_average()}")
    report["load_average_after"] = load_average()
    base = None
    print("\nnetwork | GW150914 median eff. | n_eff | wall | injections median eff. | min | ratio vs first"
          " | GW150914-like injection median eff.")
    for net, rep in report["networks"].items():
        g, i = rep["GW150914_summary"], rep["injection_summary"]
        ge = g["median_efficiency"] if g else float("nan")
        ie = i["median_efficiency"] if i else float("nan")
        base = base or (ge, ie)
        print(f"{net} | {100 * ge:.3g} % | {g['median_n_eff'] if g else float('nan'):.0f} | "
              f"{g['median_wall_s'] if g else float('nan'):.1f} s | {100 * ie:.3g} % | "
              f"{100 * i['min_efficiency'] if i else float('nan'):.3g} % | "
              f"x{ge / base[0] if base[0] else float('nan'):.3g} / x{ie / base[1] if base[1] else float('nan'):.3g} | "
              + (f"{100 * rep['loud_summary']['median_efficiency']:.3g} %" if rep["loud_summary"] else "-"))
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
