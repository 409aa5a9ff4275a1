"""Learning curve of a network's own proposal (not a test): sample efficiency against training samples.

Reads the JSON reports of ``scripts/bench_network.py`` (one or more; each network file in them is
opened for ``training.summary.samples_seen``), prints per network the training samples seen, the
median efficiency on the prior's injections, on GW150914 and on the GW150914-like injection, then
fits log ε = a + b log N by least squares over the networks (per category with >= 3 points) and
prints the N at which the fit reaches ε = 10 % (the DINGO-IS median). That N is an EXTRAPOLATION
of a power law through a handful of noisy points on 2 CPU cores, not a measurement.

    python scripts/learning_curve.py bench_e6.json bench_e18.json ... [--target 0.10] [--out curve.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

CATEGORIES = (("injections", "injection_summary"), ("GW150914", "GW150914_summary"), ("loud", "loud_summary"))


def samples_seen(network: str) -> int:
    from dingo_gw.nn import load_network

    _, meta = load_network(network)
    training = meta["training"]
    exported = training.get("exported")  # dingo_train --export of a checkpoint (use --weights last)
    return int(exported["samples_seen"] if exported else training["summary"]["samples_seen"])


def power_law(n: np.ndarray, eff: np.ndarray) -> tuple[float, float]:
    """(a, b) of log ε = a + b log N (least squares)."""
    b, a = np.polyfit(np.log(n), np.log(eff), 1)
    return float(a), float(b)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reports", nargs="+", help="bench_network.py JSON reports")
    ap.add_argument("--target", type=float, default=0.10, help="efficiency to extrapolate to (default 0.10)")
    ap.add_argument("--out", help="write the table and fits as JSON here")
    args = ap.parse_args(argv)

    points = []
    for report in args.reports:
        doc = json.loads(Path(report).read_text())
        for net, rep in doc["networks"].items():
            row = {"network": net, "samples_seen": samples_seen(net)}
            for name, key in CATEGORIES:
                s = rep.get(key)
                row[name] = s["median_efficiency"] if s else None
            points.append(row)
    points.sort(key=lambda r: r["samples_seen"])
    print(f"{'samples seen':>13} | " + " | ".join(f"{n} median eff." for n, _ in CATEGORIES) + " | network")
    for r in points:
        cells = [f"{100 * r[n]:.3g} %" if r[n] is not None else "-" for n, _ in CATEGORIES]
        print(f"{r['samples_seen']:>13,} | " + " | ".join(cells) + f" | {r['network']}")
    fits = {}
    for name, _ in CATEGORIES:
        pts = [(r["samples_seen"], r[name]) for r in points if r[name]]
        if len(pts) < 3:
            continue
        n, eff = (np.array(x, dtype=float) for x in zip(*pts))
        a, b = power_law(n, eff)
        reach = math.exp((math.log(args.target) - a) / b) if b > 0 else None
        fits[name] = {"points": len(pts), "slope": b, "intercept": a,
                      "extrapolated_samples_for_target": reach}
        print(f"{name}: eps ~ N^{b:.2f} over {len(pts)} points; EXTRAPOLATED samples for "
              f"{100 * args.target:g} %: " + (f"{reach:.2g}" if reach else "never (slope <= 0)"))
    if args.out:
        Path(args.out).write_text(json.dumps({"points": points, "fits": fits, "target": args.target}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
