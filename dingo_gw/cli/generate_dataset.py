"""dingo_generate_dataset: generate a waveform bank (HDF5) from a YAML config.

    dingo_generate_dataset --config configs/bank_tiny.yaml --out out/bank_tiny.h5 --workers 2
    dingo_generate_dataset --config bank.yaml --out shards/bank_3.h5 --shard 3/8   # then merge
    dingo_generate_dataset --config bank.yaml --out bank.h5 --resume              # after a kill
    dingo_generate_dataset --config bank.yaml --out bank.h5 --submit slurm --shards 50   # job files
    dingo_generate_dataset --config bank.yaml --out bank.h5 --dask local:8 --shards 32   # Dask cluster
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dingo_gw.cli._common import ArgumentParser, SEED, WORKERS, number, output_file, run_main
from dingo_gw.errors import ConfigError, DataError


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


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="dingo_generate_dataset",
        description="Generate a waveform bank (HDF5) from a YAML config: LALSimulation waveforms "
        "for parameters drawn from a bilby prior, parallel, resumable, optionally sharded and SVD-compressed.",
    )
    p.add_argument("--config", required=True, help="bank config (YAML), e.g. configs/bank_tiny.yaml")
    p.add_argument("--out", required=True, help="output bank file (.h5)")
    p.add_argument("--num-samples", type=number(int, 1, 10**9), help="number of waveforms (overrides the config)")
    p.add_argument("--seed", type=SEED, help="random seed of the parameter draw (overrides the config)")
    p.add_argument("--workers", type=WORKERS, default=1, help="worker processes (default 1)")
    p.add_argument("--shard", type=shard_spec, metavar="I/N",
                   help="write only shard I of N (1-based) of the parameter draw; merge with dingo_merge_datasets")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run with the same settings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    cluster = p.add_argument_group("clusters (docs/cluster.md)")
    cluster.add_argument("--submit", choices=("slurm", "condor"),
                         help="write (do not run) job files: an array of --shards shard jobs, the merge and the SVD")
    cluster.add_argument("--dask", metavar="ADDRESS",
                         help="run the shards as tasks on the Dask scheduler at ADDRESS, or on a local cluster "
                              "of N worker processes with local[:N]; then merge (and compress) here")
    cluster.add_argument("--shards", type=number(int, 1, 100000), metavar="N",
                         help="number of shards (required with --submit; default with --dask: one per worker thread)")
    cluster.add_argument("--submit-dir", metavar="DIR",
                         help="folder of the job files, logs and shards (default: <out folder>/<out stem>_jobs)")
    cluster.add_argument("--scheduler-option", action="append", default=[], metavar="LINE",
                         help="extra line for every job (repeat): Slurm '#SBATCH LINE' (e.g. --scheduler-option=--partition=gpu), "
                              "HTCondor submit command (e.g. 'request_memory = 4GB')")
    cluster.add_argument("--shard-dir", metavar="DIR",
                         help="with --dask: folder of the shard files, shared with the workers "
                              "(default: <out folder>/.<out stem>_shards, removed after the merge)")
    return p


def check_cluster_options(args) -> None:
    """ConfigError for contradictory --submit/--dask/--shard/--shards combinations."""
    if args.submit and args.dask:
        raise ConfigError("--submit and --dask exclude each other")
    mode = "--submit" if args.submit else "--dask" if args.dask else None
    if mode and args.shard is not None:
        raise ConfigError(f"{mode} splits the bank into --shards N itself; --shard I/N is for a single shard job")
    if mode and args.resume:
        raise ConfigError(f"{mode} always resumes unfinished shards; drop --resume")
    if args.submit and args.shards is None:
        raise ConfigError("--submit needs --shards N (the number of shard jobs)")
    if args.shards is not None and mode is None:
        raise ConfigError("--shards needs --submit or --dask")
    for option, value, needs in (("--submit-dir", args.submit_dir, args.submit),
                                 ("--scheduler-option", args.scheduler_option, args.submit),
                                 ("--shard-dir", args.shard_dir, args.dask)):
        if value and not needs:
            raise ConfigError(f"{option} needs {'--dask' if option == '--shard-dir' else '--submit'}")


def write_job_files(args, config) -> int:
    """--submit: write the scheduler's job files and print how to submit them."""
    from dingo_gw.waveforms.submit import BankJobs, submit_hint, write_jobs

    out = Path(args.out)
    overrides = []
    if args.num_samples is not None:
        overrides += ["--num-samples", str(args.num_samples)]
    if args.seed is not None:
        overrides += ["--seed", str(args.seed)]
    jobs = BankJobs(config=Path(args.config), out=out, num_shards=args.shards,
                    submit_dir=Path(args.submit_dir) if args.submit_dir else out.parent / f"{out.stem}_jobs",
                    num_samples=config.num_samples, compress=config.svd is not None, workers=args.workers,
                    overrides=overrides, options=list(args.scheduler_option))
    paths = write_jobs(jobs, args.submit)
    for key, path in paths.items():
        print(f"wrote {path}")
    print(f"{args.shards} shard jobs of {config.num_samples} waveforms, then merge"
          f"{' and SVD' if config.svd is not None else ''} into {jobs.out}")
    print("submit with:", submit_hint(args.submit, paths))
    return 0


@run_main
def main(argv=None):
    from dingo_gw.config import parse_config
    from dingo_gw.waveforms.bank import generate_bank
    from dingo_gw.waveforms.config import BankConfig

    args = build_parser().parse_args(argv)
    check_cluster_options(args)
    config = BankConfig.load(args.config)
    updates = {k: v for k, v in (("num_samples", args.num_samples), ("seed", args.seed)) if v is not None}
    if updates:  # validate again with the overrides
        config = parse_config({**config.model_dump(), **updates}, BankConfig,
                              source=f"{args.config} with command-line options")
    if args.submit:
        return write_job_files(args, config)
    if args.dask:
        from dingo_gw.waveforms.dask_run import dask_client, generate_bank_dask

        with output_file(args.out) as out, dask_client(args.dask) as client:
            print(generate_bank_dask(config, out, client, args.shards, args.shard_dir, workers_per_shard=args.workers,
                                     progress=not args.no_progress))
        return 0
    with output_file(args.out) as out:
        summary = generate_bank(config, out, workers=args.workers, shard=args.shard, resume=args.resume,
                                progress=not args.no_progress)
    print(summary)
    if args.shard is None and config.svd is None:
        print("uncompressed; compress with: dingo_build_svd --bank", out, "--size N --num-training-samples M")
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()
