"""Every GWTC-1 binary black hole through ``dingo_analyze --event NAME`` (default settings), next to
the published GWTC-1 values. A results table, not a test.

For each of the ten GWTC-1 BBH events: if its strain is found (``data/`` or ``--data-dir``) and a
shipped network covers it (``dingo_gw.inference.network_catalog``: detectors with data, catalogue
chirp-mass estimate), run the default analysis (network, importance sampling, refinement where the
network falls short) into ``OUTDIR/NAME/`` and report: the network used, its own sample efficiency,
the final n_eff and k̂, the wall time, and medians with 90 % intervals (5-95 %) of the source-frame
chirp mass, mass ratio, χ_eff and luminosity distance. Source-frame masses divide by 1 + z(d_L) of
each sample (bilby's Planck15 conversion, the cosmology of GWTC-1). Events without strain or
without a network get a row that says so. Results already in OUTDIR are read, not re-run
(resumable: kill it and run it again).

Published values: GWTC-1 (Abbott et al., Phys. Rev. X 9, 031040 (2019)), Table III, source frame,
medians and 90 % credible intervals (IMRPhenomPv2 + SEOBNRv3 combined samples). GWTC-1 does not
tabulate the mass ratio.

    python scripts/gwtc1_table.py --outdir ~/.cache/dingo_gw/gwtc1 [--events GW150914 ...]
        [--data-dir DIR] [--json gwtc1.json] [--markdown gwtc1.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import load_average  # noqa: E402

#: GWTC-1 Table III: (median, minus, plus) of source-frame chirp mass [Msun], chi_eff, d_L [Mpc].
GWTC1 = {
    "GW150914": {"chirp_mass_source": (28.6, 1.5, 1.7), "chi_eff": (-0.01, 0.13, 0.12), "luminosity_distance": (440, 170, 150)},
    "GW151012": {"chirp_mass_source": (15.2, 1.2, 2.0), "chi_eff": (0.05, 0.20, 0.31), "luminosity_distance": (1080, 490, 550)},
    "GW151226": {"chirp_mass_source": (8.9, 0.3, 0.3), "chi_eff": (0.18, 0.12, 0.20), "luminosity_distance": (450, 190, 180)},
    "GW170104": {"chirp_mass_source": (21.4, 1.8, 2.2), "chi_eff": (-0.04, 0.20, 0.17), "luminosity_distance": (990, 430, 440)},
    "GW170608": {"chirp_mass_source": (7.9, 0.2, 0.2), "chi_eff": (0.03, 0.07, 0.19), "luminosity_distance": (320, 110, 120)},
    "GW170729": {"chirp_mass_source": (35.4, 4.8, 6.5), "chi_eff": (0.37, 0.25, 0.21), "luminosity_distance": (2840, 1360, 1400)},
    "GW170809": {"chirp_mass_source": (24.9, 1.7, 2.1), "chi_eff": (0.08, 0.17, 0.17), "luminosity_distance": (1030, 390, 320)},
    "GW170814": {"chirp_mass_source": (24.1, 1.1, 1.4), "chi_eff": (0.07, 0.12, 0.12), "luminosity_distance": (600, 220, 150)},
    "GW170818": {"chirp_mass_source": (26.5, 1.7, 2.1), "chi_eff": (-0.09, 0.21, 0.18), "luminosity_distance": (1060, 380, 420)},
    "GW170823": {"chirp_mass_source": (29.2, 3.6, 4.6), "chi_eff": (0.09, 0.26, 0.22), "luminosity_distance": (1940, 900, 970)},
}
QUANTITIES = ("chirp_mass_source", "mass_ratio", "chi_eff", "luminosity_distance")


def interval(x: np.ndarray) -> tuple[float, float, float]:
    """(median, median - 5 %, 95 % - median) of samples ``x``."""
    lo, med, hi = np.percentile(x, [5, 50, 95])
    return float(med), float(med - lo), float(hi - med)


def summarise(result_file: Path) -> dict:
    """Network, efficiencies, n_eff, k̂ and the 90 % intervals of QUANTITIES from a result file."""
    from bilby.gw.conversion import luminosity_distance_to_redshift

    from dingo_gw.results import Result

    r = Result.load(result_file)  # checked plain data: no class a file names is built
    post, meta = r.posterior, r.meta_data
    z = luminosity_distance_to_redshift(post["luminosity_distance"])
    values = {
        "chirp_mass_source": post["chirp_mass"] / (1.0 + z),
        "mass_ratio": post["mass_ratio"],
        "chi_eff": post["chi_eff"],
        "luminosity_distance": post["luminosity_distance"],
    }
    refinement = meta.get("refinement") or {}
    own = refinement.get("network_proposal") or meta
    selection = meta.get("network_selection") or {}
    return {
        "network": selection.get("name", str(selection.get("path", "?"))),
        "selection_reason": selection.get("reason", ""),
        "detectors": list(meta.get("detectors", [])),
        "network_efficiency": float(own["sample_efficiency"]),
        "network_n_eff": float(own["n_eff"]),
        "refinement": refinement.get("status", "not run"),
        "n_eff": float(meta["n_eff"]),
        "pareto_k": float(meta["pareto_k"]),
        "log_evidence": float(r.log_evidence),
        "num_samples": int(len(post["chirp_mass"])),
        "analysis_time_s": float(meta["timings"]["total"]),
        "intervals": {k: interval(v) for k, v in values.items()},
    }


def run_event(name: str, outdir: Path, data_dirs: list[str]) -> dict:
    """One row: skip reasons, or the analysis (run unless its result file exists) summarised."""
    from dingo_gw.errors import DingoError
    from dingo_gw.events import get_event
    from dingo_gw.inference.network_catalog import choose_network

    event = get_event(name)
    row: dict = {"event": name, "published": GWTC1.get(name)}
    found = {d: p for d, p in event.available(data_dirs or None).items() if p is not None}
    if not found:
        row["status"] = "strain not shipped (add its GWOSC 32 s files with --data-dir)"
        row["short"] = "strain not shipped"
        return row
    try:
        choose_network(None, event, {}, None, False, data_dirs or None)
    except DingoError as e:
        row["status"] = f"no shipped network: {e}"
        row["short"] = (f"no shipped network covers M_c ≈ {event.chirp_mass:g} Msun" if event.chirp_mass
                        else "no shipped network")
        return row
    result = outdir / name / f"{name}_result.hdf5"
    if not result.is_file():
        cmd = ["dingo_analyze", "--event", name, "--outdir", str(outdir / name)]
        for d in data_dirs:
            cmd += ["--data-dir", d]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        row["wall_time_s"] = time.perf_counter() - t0
        if proc.returncode != 0:
            row["status"] = "analysis failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
            row["short"] = row["status"]
            return row
        (outdir / name / "wall_time_s.txt").write_text(f"{row['wall_time_s']:.1f}\n")
    else:
        wt = outdir / name / "wall_time_s.txt"
        row["wall_time_s"] = float(wt.read_text()) if wt.is_file() else None
    row.update(summarise(result))
    row["status"] = "analysed"
    return row


def _fmt(t, digits: int) -> str:
    med, lo, hi = t
    return f"{med:.{digits}f} (-{lo:.{digits}f} +{hi:.{digits}f})"


DIGITS = {"chirp_mass_source": 1, "mass_ratio": 2, "chi_eff": 2, "luminosity_distance": 0}


def markdown(rows: list[dict]) -> str:
    head = ("| event | network | network eff. | n_eff (k̂) | time [s] | M_c,src [Msun] | q | χ_eff | d_L [Mpc] |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        pub = r.get("published") or {}
        if r["status"] != "analysed":
            lines.append(f"| {r['event']} | {r.get('short', r['status'])} | | | | "
                         + " | ".join(("GWTC-1 " + _fmt(pub[k], DIGITS[k])) if k in pub else "" for k in QUANTITIES)
                         + " |")
            continue
        cells = []
        for k in QUANTITIES:
            ours = _fmt(r["intervals"][k], DIGITS[k])
            cells.append(ours + (f"<br>GWTC-1 {_fmt(pub[k], DIGITS[k])}" if k in pub else "<br>GWTC-1 —"))
        wall = r.get("wall_time_s")
        lines.append(f"| {r['event']} | {r['network']} ({'+'.join(r['detectors'])}) | "
                     f"{100 * r['network_efficiency']:.3g} % | {r['n_eff']:.0f} ({r['pareto_k']:.2f}) | "
                     f"{'?' if wall is None else f'{wall:.0f}'} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def main() -> int:
    from dingo_gw.events import list_events

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--outdir", required=True, help="one folder per event (results are reused)")
    p.add_argument("--events", nargs="*", default=list(GWTC1), help="default: the ten GWTC-1 BBHs")
    p.add_argument("--data-dir", action="append", default=[], help="extra folders with GWOSC strain files")
    p.add_argument("--json", default=None, help="write the rows as JSON")
    p.add_argument("--markdown", default=None, help="write the table as Markdown")
    args = p.parse_args()
    unknown = [e for e in args.events if e not in list_events()]
    if unknown:
        print(f"error: unknown event(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    outdir = Path(os.path.expanduser(args.outdir))
    outdir.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {load_average()}", flush=True)
    rows = []
    for name in args.events:
        row = run_event(name, outdir, args.data_dir)
        rows.append(row)
        print(f"{name}: {row['status']}" + (f", {row.get('wall_time_s') or 0:.0f} s, network eff "
              f"{100 * row['network_efficiency']:.3g} %, n_eff {row['n_eff']:.0f}" if row["status"] == "analysed" else ""),
              flush=True)
    print(f"load average after: {load_average()}")
    table = markdown(rows)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"load_average": load_average(), "rows": rows}, indent=1, default=float))
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
