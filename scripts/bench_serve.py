"""Benchmark of dingo_serve (not a test): latency and throughput of a warm service on GW150914.

1. Cold baseline: one ``dingo_analyze --gps ... --strain ... --psd ...`` subprocess on the same
   data, network and settings (process start, imports, network load, analysis), timed first
   while the machine is otherwise idle.
2. The service (``dingo_serve`` subprocess, port 0) with the network warm: ``--repeats`` alerts one
   after the other; latency = POST sent -> job seen finished (client side, polled every 0.1 s).
   Target: median <= 60 s on 2 cores with the default network.
3. A burst of ``--burst`` alerts posted at once: time until all finished, throughput (alerts/min).

Prints the figures and the ratio cold / warm median latency.

    python scripts/bench_serve.py [--network FILE] [--num-samples 20000] [--repeats 3] [--burst 10] [--refine never]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GPS = 1126259462.4
STRAIN = {"H1": "H-H1_LOSC_4_V2-1126259446-32.hdf5", "L1": "L-L1_LOSC_4_V2-1126259446-32.hdf5"}
PSD = {"H1": "psd/lfi-gw_GW150914/PSD_H1.txt", "L1": "psd/lfi-gw_GW150914/PSD_L1.txt"}


def cold_run(args, outdir: Path) -> float:
    cmd = [sys.executable, "-m", "dingo_gw.cli.analyze", "--gps", str(GPS), "--network", str(args.network),
           "--outdir", str(outdir), "--label", "cold", "--num-samples", str(args.num_samples),
           "--workers", str(args.workers), "--refine", args.refine, "--refine-particles", str(args.refine_particles),
           "--refine-samples", str(args.refine_samples),
           "--no-progress"] + ([] if args.corner else ["--no-corner"])
    for det in ("H1", "L1"):
        cmd += ["--strain", f"{det}={ROOT / 'data' / STRAIN[det]}", "--psd", f"{det}={ROOT / 'data' / PSD[det]}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        sys.exit(f"error: the cold dingo_analyze run failed:\n{proc.stderr[-2000:]}")
    return wall


def start_service(folder: Path, args) -> tuple[subprocess.Popen, str]:
    config = folder / "serve.yaml"
    config.write_text(json.dumps({
        "port": 0, "state_dir": "state", "results_dir": "results", "data_dirs": [str(ROOT / "data")],
        "networks": [{"name": "bench", "path": str(args.network)}],
        "analysis": {"num_samples": args.num_samples, "workers": args.workers, "corner": args.corner,
                     "refine": args.refine, "refine_particles": args.refine_particles,
                     "refine_samples": args.refine_samples},
    }))
    log = open(folder / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "dingo_gw.cli.serve", "--config", str(config)],
                            cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
    endpoint = folder / "state" / "endpoint.json"
    while not endpoint.exists():
        if proc.poll() is not None:
            sys.exit(f"error: dingo_serve exited: {(folder / 'serve.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, json.loads(endpoint.read_text())["url"]


def post_and_wait(client, alert_ids: list[str]) -> tuple[dict[str, float], dict[str, dict]]:
    """Post alerts (all at once) and poll until each is done; client-side latencies (s) and status."""
    sent, done, status = {}, {}, {}
    for aid in alert_ids:
        sent[aid] = time.perf_counter()
        r = client.post("/alerts", json={"alert_id": aid, "gps": GPS, "detectors": ["H1", "L1"],
                                         "strain": STRAIN, "psd": PSD})
        if r.status_code != 202:
            sys.exit(f"error: alert refused: {r.status_code} {r.text}")
    while len(done) < len(alert_ids):
        for aid in alert_ids:
            if aid in done:
                continue
            s = client.get(f"/alerts/{aid}").json()
            if s["status"] in ("finished", "failed"):
                done[aid], status[aid] = time.perf_counter() - sent[aid], s
        time.sleep(0.1)
    return done, status


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", default=str(ROOT / "data" / "networks" / "default" / "network.pt"))
    p.add_argument("--num-samples", type=int, default=10000,
                   help="network samples (default 10000, as configs/serve.yaml)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="sequential alerts for the median latency")
    p.add_argument("--burst", type=int, default=10, help="alerts posted at once for the throughput")
    p.add_argument("--refine-samples", type=int, default=100000,
                   help="importance samples of the refined proposal (default 100000, as configs/serve.yaml)")
    p.add_argument("--refine-particles", type=int, default=2000,
                   help="SMC particles of the refinement (default 2000, as configs/serve.yaml)")
    p.add_argument("--corner", action="store_true", help="draw corner plots (off by default, as in alerts)")
    p.add_argument("--refine", choices=("auto", "never"), default="auto",
                   help="refinement of weak network proposals (as dingo_analyze --refine; default auto)")
    args = p.parse_args()
    if not Path(args.network).is_file():
        sys.exit(f"error: network file {args.network} not found; the default network is "
                 "data/networks/default/network.pt (train it with scripts/make_default_network.sh) or pass --network")
    import httpx

    with tempfile.TemporaryDirectory(prefix="bench_serve_") as tmp:
        folder = Path(tmp)
        cold = cold_run(args, folder / "cold")
        print(f"cold dingo_analyze (process start + imports + network load + analysis): {cold:.1f} s")
        t0 = time.perf_counter()
        proc, url = start_service(folder, args)
        print(f"service start (imports + network load): {time.perf_counter() - t0:.1f} s")
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                lat, status = {}, {}
                for i in range(args.repeats):
                    d, s = post_and_wait(client, [f"seq{i}"])
                    lat.update(d)
                    status.update(s)
                med = statistics.median(lat.values())
                any_s = next(iter(status.values()))
                steps = ", ".join(f"{k} {v:.1f}" for k, v in any_s["timings"].items())
                print(f"warm latency POST -> finished over {args.repeats} alerts: median {med:.1f} s "
                      f"(min {min(lat.values()):.1f}, max {max(lat.values()):.1f}); outcome {any_s['outcome']}; "
                      f"steps [s]: {steps}")
                t0 = time.perf_counter()
                blat, _ = post_and_wait(client, [f"burst{i}" for i in range(args.burst)])
                span = time.perf_counter() - t0
                print(f"burst of {args.burst}: all finished in {span:.1f} s, throughput {60 * args.burst / span:.2f} "
                      f"alerts/min, latency median {statistics.median(blat.values()):.1f} s, max {max(blat.values()):.1f} s")
                print(f"ratio cold / warm median latency: {cold / med:.2f}x (target: warm median <= 60 s with the "
                      "default network)")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
