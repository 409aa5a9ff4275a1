"""The matched-filter trigger estimate (dingo_gw/inference/trigger.py) on every event whose strain
is found (data/ or --data-dir), next to the catalogue's chirp-mass estimate. Prints one line each.

    python scripts/trigger_estimates.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import time

from dingo_gw.events import get_event, list_events
from dingo_gw.inference.trigger import estimate_chirp_mass
from dingo_gw.io.strain import read_strain


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", action="append", default=None)
    args = p.parse_args()
    print("event     catalogue [Msun]  estimate [Msun]  network SNR  per detector  time [s]")
    for name in list_events():
        event = get_event(name)
        files = {d: f for d, f in event.available(args.data_dir).items() if f is not None}
        if not files:
            continue
        t0 = time.perf_counter()
        est = estimate_chirp_mass({d: read_strain(f, d) for d, f in files.items()}, event.gps)
        per = ", ".join(f"{d} {v:.1f}" for d, v in est.snrs.items())
        print(f"{name:9s} {event.chirp_mass:16.1f}  {est.chirp_mass:15.1f}  {est.network_snr:11.1f}  {per:12s}  "
              f"{time.perf_counter() - t0:.1f}")


if __name__ == "__main__":
    main()
