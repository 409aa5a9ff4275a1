"""dingo_generate_dataset: generate a waveform bank (HDF5) from a YAML config.

    dingo_generate_dataset --config configs/bank_tiny.yaml --out out/bank_tiny.h5 --workers 2
    dingo_generate_dataset --config bank.yaml --out shards/bank_3.h5 --shard 3/8   # then merge
    dingo_generate_dataset --config bank.yaml --out bank.h5 --resume              # after a kill
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from dingo_gw.cli._common import run_main
from dingo_gw.errors import DataError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def shard_spec(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N), 1 <= I <= N."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N (e.g. 2/8), got {text!r}") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"shard I/N needs 1 <= I <= N, got {text!r}")
    return index, count


@contextlib.contextmanager
def output_folder(path: str | Path):
    """Create the missing folders of an output path (DataError if impossible); remove the ones
    created here again if the block fails and leaves them empty. Yields the path."""
    path = Path(path)
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the folder of {path}: {e.strerror or e}") from None
    try:
        yield path
    except BaseException:
        for folder in missing:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dingo_generate_dataset",
        description="Generate a waveform bank (HDF5) from a YAML config: LALSimulation waveforms "
        "for parameters drawn from a bilby prior, parallel, resumable, optionally sharded and SVD-compressed.",
    )
    p.add_argument("--config", required=True, help="bank config (YAML), e.g. configs/bank_tiny.yaml")
    p.add_argument("--out", required=True, help="output bank file (.h5)")
    p.add_argument("--num-samples", type=positive_int, help="number of waveforms (overrides the config)")
    p.add_argument("--seed", type=non_negative_int, help="random seed of the parameter draw (overrides the config)")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default 1)")
    p.add_argument("--shard", type=shard_spec, metavar="I/N",
                   help="write only shard I of N (1-based) of the parameter draw; merge with dingo_merge_datasets")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run with the same settings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@run_main
def main(argv=None):
    from dingo_gw.config import parse_config
    from dingo_gw.waveforms.bank import generate_bank
    from dingo_gw.waveforms.config import BankConfig

    args = build_parser().parse_args(argv)
    config = BankConfig.load(args.config)
    updates = {k: v for k, v in (("num_samples", args.num_samples), ("seed", args.seed)) if v is not None}
    if updates:  # validate again with the overrides
        config = parse_config({**config.model_dump(), **updates}, BankConfig,
                              source=f"{args.config} with command-line options")
    with output_folder(args.out) as out:
        summary = generate_bank(config, out, workers=args.workers, shard=args.shard, resume=args.resume,
                                progress=not args.no_progress)
    print(summary)
    if args.shard is None and config.svd is None:
        print("uncompressed; compress with: dingo_build_svd --bank", out, "--size N --num-training-samples M")
    return 0
