"""The shipped high-mass network on injections from its own prior (a results script, not a test).

Noise: Gaussian, coloured by the published GW150914 PSDs in H1 and L1 (the injection default) and,
in V1, by a Welch PSD of the shipped GW190521 V1 strain (off-source; the kind of Virgo noise the
network was trained on). Scans prior draws (seeds 0..SCAN-1) for network optimal SNR >= MIN_SNR,
then analyses the first two such injections with ``--refine never`` (the network's own efficiency)
and the first with the default refinement. Prints one line per analysis.

    python scripts/highmass_injections.py [--scan 300] [--min-snr 12] [--num-samples 5000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from dingo_gw.events import get_event
from dingo_gw.inference.analyze import AnalysisSettings, analyze
from dingo_gw.inference.injection import injection_data
from dingo_gw.inference.network import load_analysis_network, network_generator
from dingo_gw.io.strain import read_strain
from dingo_gw.noise.event_psd import injection_psds, welch_psd

NETWORK = Path(__file__).resolve().parents[1] / "data" / "networks" / "highmass" / "network.pt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scan", type=int, default=300)
    ap.add_argument("--min-snr", type=float, default=12.0)
    ap.add_argument("--num-samples", type=int, default=5000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="highmass_inj_"))
    net = load_analysis_network(NETWORK)
    event = get_event("GW190521")
    psd, _ = welch_psd(read_strain(event.strain_path("V1"), "V1"), net.domain, (event.gps - 3.0, event.gps + 1.0), 0.4)
    psd_file = tmp / "V1_psd.txt"
    np.savetxt(psd_file, np.column_stack([net.domain.frequencies[net.domain.mask], psd[net.domain.mask]]))
    psds, _ = injection_psds({"V1": str(psd_file)}, net.domain, net.detectors, None)
    loud = []
    with network_generator(net) as gen:
        for seed in range(args.scan):
            data, _ = injection_data(net, "prior", net.net_input.ref_time, gen, psds, seed)
            snr = data.info["injection"]["network_optimal_snr"]
            if snr >= args.min_snr:
                loud.append((seed, snr))
    print(f"seeds 0-{args.scan - 1}: {len(loud)} with network SNR >= {args.min_snr:g}: "
          + ", ".join(f"{s} ({x:.1f})" for s, x in loud))
    runs = [(s, "never") for s, _ in loud[:2]] + [(loud[0][0], "auto")] if loud else []
    for seed, refine in runs:
        t0 = time.perf_counter()
        r = analyze(AnalysisSettings(injection="prior", network=str(NETWORK), psd_files={"V1": str(psd_file)},
                                     outdir=str(tmp), label=f"inj{seed}_{refine}", num_samples=args.num_samples,
                                     seed=seed, workers=2, refine=refine, progress=False, corner=False)).result
        print(f"seed {seed}, refine {refine}: efficiency {100 * r.meta_data['sample_efficiency']:.3g} %, "
              f"n_eff {r.n_eff:.1f}, k {r.meta_data.get('pareto_k', float('nan')):.2f}, "
              f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
