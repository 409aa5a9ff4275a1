"""dingo_build_svd: SVD-compress a waveform bank in place (atomically).

    dingo_build_svd --bank bank.h5 --size 200 --num-training-samples 20000 --whiten aLIGOZeroDetHighPower

Options not given are taken from the ``compression.svd`` section of the bank's config.
"""

from __future__ import annotations

import argparse

from dingo_gw.cli._common import ArgumentParser, number, output_file, run_main


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="dingo_build_svd",
        description="Fit an SVD basis to a (merged) bank, store the bank as SVD coefficients (in place, "
        "atomically) and record the held-out mismatch in its metadata.",
    )
    p.add_argument("--bank", required=True, help="uncompressed bank file (.h5), replaced by the compressed one")
    p.add_argument("--size", type=number(int, 1, 100000), help="number n of basis vectors")
    p.add_argument("--num-training-samples", type=number(int, 1, 10**9), help="waveforms used to fit the basis")
    p.add_argument("--num-validation-samples", type=number(int, 1, 10**9),
                   help="held-out waveforms for the mismatch (default 1000, or the config's)")
    p.add_argument("--whiten", help="design ASD that whitens the waveforms (e.g. aLIGOZeroDetHighPower), or 'none'")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@run_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    with output_file(args.bank) as path:
        return _compress(args, path)


def _compress(args, path) -> int:
    from dingo_gw.config import parse_config
    from dingo_gw.errors import ConfigError
    from dingo_gw.waveforms.bank import compress_bank, load_bank
    from dingo_gw.waveforms.config import SVDSettings

    bank = load_bank(path)
    stored = ((bank.metadata.get("config") or {}).get("compression") or {}).get("svd") or {}
    settings = dict(stored)
    for key, value in (("size", args.size), ("num_training_samples", args.num_training_samples),
                       ("num_validation_samples", args.num_validation_samples)):
        if value is not None:
            settings[key] = value
    if args.whiten is not None:
        settings["whiten"] = None if args.whiten.lower() == "none" else args.whiten
    for key in ("size", "num_training_samples"):
        if key not in settings:
            raise ConfigError(
                f"--{key.replace('_', '-')} is required (the bank's config has no compression.svd settings)"
            )
    svd = parse_config(settings, SVDSettings, source="dingo_build_svd options")
    print(compress_bank(path, svd, progress=not args.no_progress))
    return 0
