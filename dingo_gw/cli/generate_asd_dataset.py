"""dingo_generate_asd_dataset --config FILE --out FILE.h5 [--data-dir DIR ...]

Builds an ASD dataset (HDF5) from the strain files and PSD files listed in a YAML config
(see configs/asd_dataset_o1o2.yaml and docs/noise.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dingo_gw.cli._common import ArgumentParser, output_file, run_main


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="dingo_generate_asd_dataset", description=__doc__.split("\n\n")[1])
    p.add_argument("--config", required=True, help="YAML config (AsdDatasetConfig)")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--data-dir", action="append", default=None,
                   help="folder searched first for data files (repeatable); then $DINGO_GW_DATA, then data/")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


@run_main
def main(argv=None):
    from dingo_gw.config import load_config
    from dingo_gw.noise.asd_dataset import build_asd_dataset, save_asd_dataset
    from dingo_gw.noise.config import AsdDatasetConfig

    args = build_parser().parse_args(argv)
    config = load_config(args.config, AsdDatasetConfig)
    with output_file(args.out) as out:
        dataset = build_asd_dataset(config, args.data_dir, base_dir=Path(args.config).resolve().parent,
                                    progress=not args.quiet)
        save_asd_dataset(dataset, out)
    counts = ", ".join(f"{d}: {dataset.num_asds(d)}" for d in dataset.detectors)
    glitches = sum(len(r.get("glitches", {}).get("glitches", []) if r.get("glitches") else [])
                   for reps in dataset.metadata["reports"].values() for r in reps)
    print(f"wrote {out}: ASDs per detector {counts}; {glitches} glitch(es) handled (see metadata 'reports')")
    return 0
