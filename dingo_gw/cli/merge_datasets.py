"""dingo_merge_datasets: merge the shards of a waveform bank into one bank.

    dingo_merge_datasets --out bank.h5 shards/bank_*.h5
    dingo_build_svd --bank bank.h5          # then compress once (settings from the config)
"""

from __future__ import annotations

import argparse

from dingo_gw.cli._common import ArgumentParser, output_file, run_main


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="dingo_merge_datasets",
        description="Merge the complete set of shards (dingo_generate_dataset --shard I/N) of one bank; "
        "the result equals the bank generated in one run. Compress it afterwards with dingo_build_svd.",
    )
    p.add_argument("--out", required=True, help="merged bank file (.h5)")
    p.add_argument("shards", nargs="+", help="shard files, in any order")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@run_main
def main(argv=None):
    from dingo_gw.waveforms.bank import merge_banks

    args = build_parser().parse_args(argv)
    with output_file(args.out) as out:
        summary = merge_banks(args.shards, out, progress=not args.no_progress)
    print(summary)
    return 0
