"""P-P (coverage) test of dingo_analyze on injections (not a unit test).

For each of N injections drawn from the network's prior, the simulated data (signal + Gaussian
noise coloured by the PSDs) are analysed exactly as ``dingo_analyze --injection prior`` does
(network proposal, importance sampling and, with the default ``--refine auto``, the likelihood-based
refinement where the network falls short: the default ``dingo_analyze`` pipeline). For every
inferred parameter, and the distance and phase where importance sampling recovers them, the
credible level of the
true value, F = Σ_i w_i 1[x_i < x_true] (importance weights w), is recorded. For a calibrated
posterior F is uniform on [0, 1]: the P-P plot shows the empirical CDF of F per parameter with
the 68/95/99.7 % band of a uniform sample of the same size, and the KS test gives a p-value per
parameter and their combination (Fisher's method). Injections whose proposal failed (n_eff < 10)
are reported and left out (they have no posterior).

    python scripts/pp_test.py --num-injections 100 --outdir ~/.cache/dingo_gw/pp_shipped \\
        [--network FILE] [--num-samples 20000] [--refine auto|never] [--psd H1=FILE|design:NAME ...] [--seed 0]

Writes ``<outdir>/pp_plot.png``, ``<outdir>/pp_results.json`` (credible levels, p-values, n_eff
per injection) and the individual results under ``<outdir>/injections/``. A killed run resumes:
injections whose result file exists are read instead of recomputed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np


def credible_level(x: np.ndarray, weights: np.ndarray, truth: float) -> float:
    """Posterior mass below the true value: Σ w 1[x < truth] / Σ w."""
    w = np.asarray(weights, dtype=float)
    return float(np.sum(w * (np.asarray(x) < truth)) / np.sum(w))


def pp_plot(levels: dict[str, np.ndarray], pvalues: dict[str, float], combined: float, path: Path, n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    from dingo_gw.io.atomic import atomic_write
    from dingo_gw.plots import LABELS

    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    grid = np.linspace(0, 1, 201)
    for ci, alpha in ((0.68, 0.25), (0.95, 0.15), (0.997, 0.08)):
        lo = stats.binom.ppf((1 - ci) / 2, n, grid) / n
        hi = stats.binom.ppf(1 - (1 - ci) / 2, n, grid) / n
        ax.fill_between(grid, lo, hi, color="grey", alpha=alpha, lw=0)
    for name, f in levels.items():
        ecdf = np.array([np.mean(f <= g) for g in grid])
        ax.plot(grid, ecdf, lw=1.3, label=f"{LABELS.get(name, name)} (p = {pvalues[name]:.2f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("credible level")
    ax.set_ylabel("fraction of injections with the true value below it")
    ax.set_title(f"P-P plot, {n} injections, combined p = {combined:.3f}")
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", help="network file (default: data/networks/default/network.pt)")
    ap.add_argument("--num-injections", type=int, default=100)
    ap.add_argument("--num-samples", type=int, default=20000, help="network samples (dingo_analyze's default)")
    ap.add_argument("--refine", choices=("auto", "never"), default="auto", help="as dingo_analyze (default auto)")
    ap.add_argument("--gibbs-iterations", type=int, default=30)
    ap.add_argument("--psd", action="append", default=[], metavar="DET=FILE",
                    help="PSD of the simulated noise (default: the published GW150914 PSDs)")
    ap.add_argument("--outdir", default="pp_test_out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bilby").setLevel(logging.ERROR)

    from scipy import stats

    from dingo_gw.cli.analyze import _pairs
    from dingo_gw.inference.analyze import AnalysisSettings, analyze
    from dingo_gw.inference.network import find_network, load_analysis_network
    from dingo_gw.io.atomic import atomic_write
    from dingo_gw.results import Result

    out = Path(args.outdir)
    (out / "injections").mkdir(parents=True, exist_ok=True)
    network = find_network(args.network)
    parameters = list(load_analysis_network(network).net_input.inference_parameters)
    parameters += [k for k in ("luminosity_distance", "phase") if k not in parameters]  # recovered at IS
    records = []
    for i in range(args.num_injections):
        label = f"inj{i:04d}"
        path = out / "injections" / f"{label}_result.hdf5"
        if not path.is_file() and (out / "injections" / f"{label}_result.json").is_file():
            path = out / "injections" / f"{label}_result.json"  # written before results were hdf5
        failed = out / "injections" / f"{label}_failed_proposal.json"
        seconds = None
        if path.is_file():
            r = Result.load(path)
        elif failed.is_file():
            records.append({"index": i, "ok": False, "n_eff": json.loads(failed.read_text())["n_eff"]})
            continue
        else:
            settings = AnalysisSettings(
                injection="prior", network=str(network), outdir=str(out / "injections"), label=label,
                num_samples=args.num_samples, gibbs_iterations=args.gibbs_iterations, seed=args.seed + i,
                workers=args.workers, psd_files=_pairs(args.psd, "--psd"), progress=False, corner=False,
                refine=args.refine,
            )
            t0 = time.perf_counter()
            r = analyze(settings).result
            seconds = time.perf_counter() - t0
        refinement = r.meta_data.get("refinement") or {}
        rec = {"index": i, "ok": r.ok, "n_eff": r.n_eff, "sample_efficiency": r.meta_data.get("sample_efficiency"),
               "refined": refinement.get("status") == "done",
               "seconds": seconds if seconds is not None else (r.meta_data.get("timings") or {}).get("total")}
        if r.ok:
            truth = r.injection_parameters
            w = r.weights
            rec["levels"] = {k: credible_level(r.samples[k], w, truth[k]) for k in parameters if k in r.samples}
        records.append(rec)
        print(f"{label}: {'n_eff %.0f' % r.n_eff if r.ok else 'FAILED proposal'}"
              f"{' (refined)' if rec['refined'] else ''}, {rec['seconds'] or float('nan'):.0f} s", flush=True)

    good = [r for r in records if r["ok"]]
    if len(good) < 2:
        print(f"only {len(good)} injections with a posterior: no P-P test")
        return 1
    parameters = [k for k in parameters if all(k in r["levels"] for r in good)]
    levels = {k: np.array([r["levels"][k] for r in good]) for k in parameters}
    pvalues = {k: float(stats.kstest(v, "uniform").pvalue) for k, v in levels.items()}
    combined = float(stats.combine_pvalues(list(pvalues.values()), method="fisher").pvalue)
    pp_plot(levels, pvalues, combined, out / "pp_plot.png", len(good))
    times = [r["seconds"] for r in records if r.get("seconds")]
    summary = {"network": str(network), "settings": {"num_samples": args.num_samples, "refine": args.refine,
                                                     "gibbs_iterations": args.gibbs_iterations, "seed": args.seed,
                                                     "workers": args.workers, "psd": args.psd or "GW150914 published"},
               "median_seconds": float(np.median(times)) if times else None,
               "num_refined": sum(bool(r.get("refined")) for r in records),
               "num_injections": len(records), "num_failed": len(records) - len(good),
               "ks_pvalues": pvalues, "combined_pvalue": combined, "injections": records}
    with atomic_write(out / "pp_results.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    print(f"{len(good)} of {len(records)} injections with a posterior; KS p-values:")
    for k, p in pvalues.items():
        print(f"  {k:<24}{p:.3f}")
    print(f"combined (Fisher) p = {combined:.3f}; plot: {out / 'pp_plot.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
