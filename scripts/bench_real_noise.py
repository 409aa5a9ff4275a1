"""Real noise against Gaussian noise for the network's own proposal (issue 17: the GW150914 gap).

Every run is ``dingo_analyze --refine never`` with 20,000 network samples, and prints its sample
efficiency ε, n_eff, Pareto k̂ and wall time, then the median per set:

1. ``GW150914``: the event itself with the network input's spectral-line bins replaced by Gaussian
   noise (``--lines replace``) and kept (``--lines keep``, the default), seeds 0..S-1;
2. the GW150914-like injection of scripts/bench_network.py (``LOUD_INJECTION``, network SNR 23.8)
   a. in Gaussian noise of the published GW150914 PSDs (noise seeds 200..),
   b. in the real noise of the GW150914 LOSC files at off-source trigger times (:data:`OFF_SOURCE`,
      4 s analysis segments clear of the event), lines kept,
   c. the same, line bins replaced;
   with the published GW150914 PSDs in all three, so that only the noise differs.

    python scripts/bench_real_noise.py [--network FILE] [--seeds 3] [--out bench_real_noise.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import ROOT, run_cli  # noqa: E402
from bench_network import LOUD_INJECTION, load_average  # noqa: E402
from bench_network import run_one as network_run_one  # noqa: E402

GW150914_FILES = {"H1": "H-H1_LOSC_4_V2-1126259446-32.hdf5", "L1": "L-L1_LOSC_4_V2-1126259446-32.hdf5"}
PUBLISHED_PSD = ROOT / "data" / "psd" / "GWTC-1" / "GWTC1_GW150914_PSDs.dat"
#: Trigger times (GPS s) whose 4 s analysis segments [t - 3, t + 1] lie in the files, clear of GW150914 (462.4).
OFF_SOURCE = (1126259452.4, 1126259456.4, 1126259470.4, 1126259474.4)


def run_one(label: str, outdir: Path, network: str | None = None, seed: int = 0, event: str | None = None,
            injection: dict | None = None, lines: str = "keep", **extra) -> dict:
    """:func:`bench_network.run_one` with 20,000 samples, printed with the line bins found."""
    row = network_run_one(network, outdir, label, seed, 20000, event, injection, 2, lines, **extra)
    print(f"{label}: efficiency {100 * row['sample_efficiency']:.3g} %, n_eff {row['n_eff']:.1f}, "
          f"k {row['pareto_k']}, line bins {row['line_bins']}, {row['wall_s']} s", flush=True)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", default=None, help="network file (default: the shipped default network)")
    p.add_argument("--seeds", type=int, default=3, help="seeds / noise realisations per set (<= 4 real-noise ones)")
    p.add_argument("--data-dir", default=None, help="folder with the GW150914 LOSC files (default: the project's data/)")
    p.add_argument("--out", default="bench_real_noise.json")
    args = p.parse_args()
    from dingo_gw.io.datafind import find_data_file

    dirs = [args.data_dir] if args.data_dir else None
    strain = {d: str(find_data_file(f, dirs)) for d, f in GW150914_FILES.items()}
    psd = {d: str(PUBLISHED_PSD) for d in GW150914_FILES}
    n_real = min(args.seeds, len(OFF_SOURCE))
    print(f"load average before: {load_average()}", flush=True)
    sets: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for lines in ("keep", "replace"):
            sets[f"GW150914, lines {lines}"] = [
                run_one(f"gw150914_{lines}_s{s}", out, event="GW150914", network=args.network, seed=s, lines=lines)
                for s in range(args.seeds)]
        sets["injection, Gaussian noise"] = [
            run_one(f"loud_gauss_s{200 + k}", out, injection=dict(LOUD_INJECTION), network=args.network, psd_files=psd,
                    gps=1126259462.4, seed=200 + k) for k in range(args.seeds)]
        for lines in ("keep", "replace"):
            sets[f"injection, real noise, lines {lines}"] = [
                run_one(f"loud_real_{lines}_{k}", out, injection=dict(LOUD_INJECTION), network=args.network,
                        psd_files=psd, strain_files=strain, gps=OFF_SOURCE[k], seed=200 + k, lines=lines)
                for k in range(n_real)]
    print(f"load average after: {load_average()}")
    print("\nmedian sample efficiency per set:")
    for name, rows in sets.items():
        eff = [100 * r["sample_efficiency"] for r in rows]
        print(f"  {name}: {np.median(eff):.3g} %  (runs: {', '.join(f'{e:.3g}' for e in eff)} %)")
    Path(args.out).write_text(json.dumps({"network": args.network, "sets": sets}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
