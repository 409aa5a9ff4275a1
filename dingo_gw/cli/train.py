"""dingo_train: train a posterior network (NPE or FMPE, with GNPE) from a YAML config.

    dingo_train configs/train_tiny.yaml                  # new run into the config's output_dir
    dingo_train configs/train_tiny.yaml --resume         # continue it after a kill (or start it)
    dingo_train --resume out/train_tiny/checkpoint.pt    # continue with the checkpoint's config
    dingo_train --export RUN/checkpoint.pt --out net.pt  # a network file from a (running) run's checkpoint
    torchrun --nproc_per_node 4 -m dingo_gw.cli.train configs/train_gpu.yaml   # DDP (or --distributed)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dingo_gw.cli._common import ArgumentParser, number, output_dir, run_main


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="dingo_train",
        description="Train a DINGO-style posterior network (NPE flow or FMPE, optionally GNPE) on a waveform bank "
        "and an ASD dataset, as described by a YAML config (see docs/training.md).",
    )
    p.add_argument("config", nargs="?", help="training config (YAML), e.g. configs/train_tiny.yaml")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue a run: alone, from output_dir/checkpoint.pt of CONFIG (starting it if there is "
                   "none); with a checkpoint file, from that file (with its stored config unless CONFIG is given)")
    p.add_argument("--distributed", action="store_true",
                   help="join a torch.distributed process group (set up by torchrun; automatic under torchrun)")
    p.add_argument("--device", help="override local.device (auto, cpu, cuda, cuda:N)")
    p.add_argument("--num-threads", type=number(int, 1, 1024), help="override local.num_threads")
    p.add_argument("--stop-after-epochs", type=number(int, 1, 10**6), metavar="N",
                   help="stop after N epochs of this invocation (checkpoint only; continue with --resume), e.g. to "
                   "fit a scheduler's time slot")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--export", metavar="CHECKPOINT",
                   help="write a network file from CHECKPOINT (e.g. of a run still training) to --out, and exit")
    p.add_argument("--out", help="with --export: the network file to write")
    p.add_argument("--weights", choices=("best", "last"), default="best",
                   help="with --export: the best weights by validation loss (default) or the last ones")
    return p


@run_main
def main(argv=None):
    from dingo_gw.config import parse_config
    from dingo_gw.train import load_checkpoint, load_train_config, parse_train_config, train
    from dingo_gw.train.config import TrainConfig

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.export is not None:
        from dingo_gw.io.atomic import check_output_path
        from dingo_gw.train.run import export_network

        if args.out is None or args.config is not None or args.resume:
            parser.error("--export CHECKPOINT needs --out FILE and no config or --resume")
        check_output_path(args.out)
        print(f"network: {export_network(args.export, args.out, args.weights)}")
        return 0
    resume = args.resume
    if isinstance(resume, str) and Path(resume).suffix in (".yaml", ".yml") and args.config is None:
        args.config, resume = resume, True  # "dingo_train --resume config.yaml"
    if args.config is None and not isinstance(resume, str):
        parser.error("give a config file, or --resume CHECKPOINT")

    if args.config is not None:
        config = load_train_config(args.config)
        source = args.config
    else:
        ckpt = load_checkpoint(resume)
        source = f"the config stored in {ckpt['path']}"
        config = parse_train_config(ckpt["config"], source=source)

    local = config.local.model_dump()
    for key, value in (("device", args.device), ("num_threads", args.num_threads)):
        if value is not None:
            local[key] = value
    if args.no_progress:
        local["progress"] = False
    if local != config.local.model_dump():
        data = config.to_dict()
        data["local"] = local
        config = parse_config(data, TrainConfig, source=f"{source} with command-line options")

    if not _is_main_process():  # rank 0 holds the output_dir's lock
        train(config, resume=resume, distributed_mode=args.distributed, stop_after_epochs=args.stop_after_epochs)
        return 0
    with output_dir(config.output_dir):
        result = train(config, resume=resume, distributed_mode=args.distributed,
                       stop_after_epochs=args.stop_after_epochs)
    print(f"{result.outcome}: {result.output_dir}")
    for name, summary in result.summaries.items():
        best = summary.get("best_val_loss")
        print(f"  {name} network: {summary['epochs']}/{summary['epochs_planned']} epochs, "
              f"best loss {best if best is None else f'{best:.4f}'} (epoch {summary.get('best_epoch')}), "
              f"{summary['wall_time_s'] / 60:.1f} min, {summary['samples_seen']} samples")
    for label, path in (("network", result.network), ("init network", result.init_network)):
        if path is not None:
            print(f"  {label}: {path}")
    if result.outcome == "stopped":
        print(f"  continue with: dingo_train --resume {result.checkpoint}")
    return 0


def _is_main_process() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0


if __name__ == "__main__":  # pragma: no cover
    main()
