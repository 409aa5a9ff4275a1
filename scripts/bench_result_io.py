"""Size and write/read time of a result file, hdf5 (the default) against json, in one run.

    python scripts/bench_result_io.py [--num-samples 200000] [--repeats 3] [--outdir DIR]

Builds a Result like a refined ``dingo_analyze`` run writes: ``--num-samples`` importance-weighted
samples of the 15 sampled parameters of the default prior (18 columns with the derived mass_1,
mass_2, chi_eff, plus log_likelihood, log_prior, log_proposal, log_weights, weights), log-weights
of standard deviation ``--log-weight-sd`` (0.25: sample efficiency ~0.94, as a refined proposal),
the posterior resampled to round(n_eff) samples (the analysis default), the default prior and a
meta_data of the shape analyses write (nested dicts and lists of dicts). Writes it with
``Result.save`` as hdf5 and as json ``--repeats`` times each and prints the file size, the best
write time, the best read time with ``Result.load`` (dingo_gw's safe reader) and with bilby's
``read_in_result``, and the json/hdf5 ratios. Figures in docs/analyze.md ("Output files").
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np


def make_result(n: int, sd: float, seed: int = 0):
    from dingo_gw.priors import DEFAULT_EXTRINSIC_PRIOR, DEFAULT_INTRINSIC_PRIOR, build_prior, sample_prior
    from dingo_gw.results import Result, effective_sample_size, normalized_weights

    prior = build_prior({**DEFAULT_INTRINSIC_PRIOR, **DEFAULT_EXTRINSIC_PRIOR})
    samples = sample_prior(prior, n, seed=seed)
    samples["geocent_time"] = 1126259462.4 + samples["geocent_time"]
    rng = np.random.default_rng(seed)
    log_w = rng.normal(0.0, sd, n)
    n_post = int(round(effective_sample_size(log_w)))
    idx = rng.choice(n, size=n_post, p=normalized_weights(log_w))
    log_l = rng.normal(-450.0, 3.0, n)
    stage = {"stage": "smc", "beta": 1.0, "num_particles": 4000, "seconds": 12.5,
             "schedule": [{"stage": i, "beta": i / 10, "accepted_moves": {"local": 0.3, "global": 0.1}}
                          for i in range(1, 11)]}
    meta = {
        "sample_efficiency": float(n_post / n), "n_eff": float(n_post), "pareto_k": -0.5,
        "num_proposal_samples": n, "seed": seed, "label": "bench", "event": None, "detectors": ["H1", "L1"],
        "network": {"path": "data/networks/default/network.pt", "sha256": "ab" * 32},
        "timings": {"sampling": 30.0, "importance_sampling": 40.0, "total": 70.0},
        "refinement": {"status": "done", "stages": [stage, {"stage": "importance_sampling", "num_samples": n}],
                       "final_proposal": {"density": {"kind": "sum", "weights": [0.45, 0.45, 0.1],
                                                      "covariances": np.eye(15).tolist()}}},
        "completed_from_prior": [],
    }
    post = {k: v[idx] for k, v in samples.items()}
    post.update(log_likelihood=log_l[idx])
    return Result(
        samples=samples, log_weights=log_w, log_evidence=-466.58, log_evidence_err=0.02,
        log_noise_evidence=-520.0, log_bayes_factor=53.42, meta_data=meta, posterior=post,
        log_likelihood=log_l, log_prior=rng.normal(-20.0, 1.0, n), log_proposal=rng.normal(-30.0, 1.0, n),
        priors=prior,
    )


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num-samples", type=int, default=200_000)
    p.add_argument("--log-weight-sd", type=float, default=0.25)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--outdir", help="where to write the files (default: a temporary folder, removed)")
    args = p.parse_args(argv)
    logging.getLogger("bilby").setLevel(logging.WARNING)
    import bilby

    from dingo_gw.results import Result

    res = make_result(args.num_samples, args.log_weight_sd)
    print(f"{res.num_samples} weighted samples, {len(res.samples)} sampled parameters, "
          f"posterior {len(res.posterior['chirp_mass'])} samples (round(n_eff)), best of {args.repeats}")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(args.outdir or tmp)
        for fmt in ("hdf5", "json"):
            write = best_time(lambda: res.save(outdir, "bench", extension=fmt), args.repeats)
            path = outdir / f"bench_result.{fmt}"
            read = best_time(lambda: Result.load(path), args.repeats)
            read_bilby = best_time(lambda: bilby.core.result.read_in_result(str(path)), args.repeats)
            rows[fmt] = (path.stat().st_size / 1e6, write, read, read_bilby)
    print(f"{'format':<8}{'size [MB]':>11}{'write [s]':>11}{'Result.load [s]':>17}{'bilby read [s]':>16}")
    for fmt, (size, w, r, rb) in rows.items():
        print(f"{fmt:<8}{size:>11.1f}{w:>11.2f}{r:>17.2f}{rb:>16.2f}")
    ratio = [j / h for j, h in zip(rows["json"], rows["hdf5"])]
    print(f"{'json/hdf5':<8}{ratio[0]:>10.2f}x{ratio[1]:>10.2f}x{ratio[2]:>16.2f}x{ratio[3]:>15.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
