"""A training run: the GNPE initialisation network (if GNPE is on), then the posterior network.

Outputs in ``output_dir`` (written by rank 0 only, atomically):

    config.yaml         the run config, paths resolved
    checkpoint.pt       after every epoch (and at a stop); resume with --resume
    history.csv         per-epoch log of the posterior network (init_history.csv: init network)
    init_network.pt     GNPE only: the initialisation network (a network file of its own)
    network.pt          the posterior network (best validation loss), with the init network
                        embedded in its metadata under "init_network" (a complete network dict)
    tensorboard/        if the tensorboard package is installed

The initialisation network is trained first: it is small and cheap, and the posterior network,
when its wall-time budget ends, is then written complete with it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from dingo_gw.errors import ConfigError, DataError
from dingo_gw.io.atomic import atomic_write
from dingo_gw.nn import build_model, network_dict, save_network
from dingo_gw.train import distributed
from dingo_gw.train.checkpoint import CHECKPOINT_NAME, checkpoint_dict, load_checkpoint, save_checkpoint
from dingo_gw.train.config import TrainConfig, added_stages, check_same_run, parse_train_config
from dingo_gw.train.data import TrainingData, load_training_data
from dingo_gw.train.progress import TrainingLog
from dingo_gw.train.trainer import JobSpec, Trainer

log = logging.getLogger(__name__)

NETWORK_NAME = "network.pt"
INIT_NETWORK_NAME = "init_network.pt"


@dataclass
class RunResult:
    """What a call of :func:`train` did: ``outcome`` "finished", "wall_time" (stopped at
    max_wall_time, network written), "stopped" (stop_after_epochs; checkpoint only) or
    "already_finished"; the files written; per-job training summaries."""

    outcome: str
    output_dir: Path
    network: Path | None = None
    init_network: Path | None = None
    checkpoint: Path | None = None
    summaries: dict = field(default_factory=dict)


def jobs_of(config: TrainConfig) -> list[JobSpec]:
    jobs = []
    if config.init_network is not None:
        jobs.append(JobSpec("init", config.init_network.model.model_dump(), config.init_network.training))
    jobs.append(JobSpec("main", config.model.network_config(), config.training))
    return jobs


def train(config: TrainConfig, *, resume: bool | str | Path = False, distributed_mode: bool = False,
          stop_after_epochs: int | None = None) -> RunResult:
    """Run (or resume) the training described by ``config``; see the module docstring.

    ``resume``: False = fresh run (refused if output_dir already holds a checkpoint); True =
    continue from output_dir/checkpoint.pt if it exists, else start; a path = continue from that
    checkpoint (its config must match ``config`` except local settings and max_wall_time).
    """
    ctx = distributed.setup(config.local.device, distributed_mode)
    try:
        return _train(config, ctx, resume, stop_after_epochs)
    finally:
        ctx.shutdown()


def train_from_checkpoint(path: str | Path, *, distributed_mode: bool = False,
                          stop_after_epochs: int | None = None) -> RunResult:
    """Resume the run of checkpoint ``path`` with the config stored in it."""
    ckpt = load_checkpoint(path)
    config = parse_train_config(ckpt["config"], source=f"config stored in {ckpt['path']}")
    return train(config, resume=ckpt["path"], distributed_mode=distributed_mode, stop_after_epochs=stop_after_epochs)


def _configure_torch(config: TrainConfig, ctx: distributed.Context) -> None:
    if config.local.num_threads is not None:
        torch.set_num_threads(config.local.num_threads)
    if ctx.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = config.local.tf32
        torch.backends.cudnn.allow_tf32 = config.local.tf32


def _prepare_output_dir(path: Path, ctx: distributed.Context) -> None:
    if ctx.is_main:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create output_dir {path}: {e.strerror or e}") from None
        if not os.access(path, os.W_OK):
            raise DataError(f"output_dir {path} is not writable")
    ctx.barrier()


def _find_checkpoint(config: TrainConfig, resume) -> dict | None:
    out = Path(config.output_dir)
    if resume is False:
        if (out / CHECKPOINT_NAME).exists():
            raise ConfigError(
                f"output_dir {out} already holds a training run ({CHECKPOINT_NAME}); continue it with --resume "
                f"or choose another output_dir"
            )
        return None
    path = out / CHECKPOINT_NAME if resume is True else Path(resume)
    if resume is True and not path.exists():
        log.info("no checkpoint in %s: starting a new run", out)
        return None
    ckpt = load_checkpoint(path)
    check_same_run(ckpt["config"], config.to_dict(), source=f"resuming {ckpt['path']}")
    return ckpt


def _train(config: TrainConfig, ctx: distributed.Context, resume, stop_after_epochs) -> RunResult:
    _configure_torch(config, ctx)
    out = Path(config.output_dir)
    ckpt = _find_checkpoint(config, resume)
    result = RunResult("finished", out, checkpoint=out / CHECKPOINT_NAME)
    extra = added_stages(ckpt["config"], config.to_dict()) if ckpt is not None else 0
    if extra > 0:
        log.info("extending the run in %s by %d stage(s) after its %d stored one(s)", out, extra,
                 len(ckpt["config"]["training"]["stages"]))
    if ckpt is not None and ckpt["finished"] and extra <= 0 and not (out / NETWORK_NAME).exists():
        log.warning("%s is missing: writing it again from the checkpoint's best weights", out / NETWORK_NAME)
    elif ckpt is not None and ckpt["finished"] and extra <= 0:
        log.info("the run in %s has already finished (%s)", out, NETWORK_NAME)
        result.outcome = "already_finished"
        result.network = out / NETWORK_NAME
        return result
    _prepare_output_dir(out, ctx)
    data = load_training_data(config, ctx.device)
    if ctx.is_main:
        with atomic_write(out / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

    completed: dict = dict(ckpt["completed"]) if ckpt else {}
    for spec in jobs_of(config):
        if spec.name in completed:
            result.init_network = out / INIT_NETWORK_NAME
            if ctx.is_main and not result.init_network.exists():  # deleted: the checkpoint holds it
                with atomic_write(result.init_network) as tmp:
                    torch.save(completed[spec.name], tmp)
            continue
        if stop_after_epochs == 0:
            result.outcome = "stopped"
            return result
        state = None
        if ckpt and ckpt["job"] is not None and ckpt["job"]["name"] == spec.name:
            state = ckpt["job"]["state"]
            log.info("resuming the %s network after epoch %d (+%d batches)", spec.name, state["epochs_done"],
                     state["batches_done"])

        def save(trainer_state, name=spec.name, finished=False):
            if ctx.is_main:
                save_checkpoint(out / CHECKPOINT_NAME,
                                checkpoint_dict(config.to_dict(), completed, {"name": name, "state": trainer_state},
                                                finished))

        training_log = TrainingLog(out, "history.csv" if spec.name == "main" else "init_history.csv",
                                   enabled=ctx.is_main, progress=config.local.progress, tb_tag=spec.name)
        try:
            trainer = Trainer(spec, data, config, ctx, training_log, save, state, stop_after_epochs)
            outcome = trainer.run()
        finally:
            training_log.close()
        result.summaries[spec.name] = trainer.summary()
        if outcome == "stopped":
            result.outcome = "stopped"
            return result
        if stop_after_epochs is not None:
            stop_after_epochs = max(stop_after_epochs - trainer.epochs_this_run, 0)

        metadata = _network_metadata(trainer, data, config, spec, completed.get("init"))
        model = build_model(trainer.model_config)
        weights, which = trainer.final_weights()
        model.load_state_dict(weights)
        path = out / (NETWORK_NAME if spec.name == "main" else INIT_NETWORK_NAME)
        if ctx.is_main:
            save_network(path, model, metadata)
            log.info("wrote %s (%s weights)", path, which)
        if spec.name == "init":
            completed["init"] = network_dict(model, metadata)
            result.init_network = path
            if ctx.is_main:
                save_checkpoint(out / CHECKPOINT_NAME, checkpoint_dict(config.to_dict(), completed, None, False))
        else:
            result.network = path
            save(trainer.state_dict(), finished=(outcome == "finished"))
        result.outcome = outcome
        ctx.barrier()
    return result


def _network_metadata(trainer: Trainer, data: TrainingData, config: TrainConfig, spec: JobSpec,
                      init_network: dict | None) -> dict:
    """Everything inference needs besides the weights (see docs/training.md, "The network file")."""
    pipe = trainer.pipeline_for(trainer.stages[trainer.stage_index])
    meta = pipe.metadata()
    meta.update(data.describe())
    intrinsic = data.intrinsic_prior()
    meta["network"] = "posterior" if spec.name == "main" else "gnpe_initialization"
    meta["intrinsic_prior"] = intrinsic
    if config.data.training_extrinsic_prior:
        # the pipeline drew training data from its own extrinsic prior; the analysis prior is extrinsic_prior
        from dingo_gw.pipeline.extrinsic import ExtrinsicSampler
        meta["training_extrinsic_prior"] = meta["extrinsic_prior"]
        meta["extrinsic_prior"] = ExtrinsicSampler(config.data.extrinsic_prior).prior_strings()
    meta["prior"] = {**intrinsic, **meta["extrinsic_prior"]}
    meta["asd_datasets"] = sorted({p for s in spec.training.stages for p in (s.asd_datasets or [])}
                                  | set(config.data.asd_datasets))
    summary = trainer.summary()
    summary["replicas"] = {"world_size": trainer.ctx.world_size, "weight_hashes": trainer.replica_hashes()}
    meta["training"] = {"config": config.to_dict(), "job": spec.name, "summary": summary}
    if spec.name == "main" and init_network is not None:
        meta["init_network"] = init_network
    return meta


def export_network(checkpoint: str | Path, out: str | Path, weights: str = "best") -> Path:
    """Write a network file from a training checkpoint, e.g. of a run still going on.

    ``weights``: "best" (lowest validation loss so far, what the run would write if it stopped
    now) or "last" (the weights after the checkpoint's last batch). The metadata are those the run
    writes (the same data, pipeline conventions and init network); the bank is opened from disk
    and not read into memory. Returns ``out``.
    """
    ckpt = load_checkpoint(checkpoint)
    job = ckpt["job"]
    if job is None or job["name"] != "main":
        raise DataError(f"{ckpt['path']}: the checkpoint holds no posterior-network state yet (the init network "
                        "is still training)")
    cfg = dict(ckpt["config"])
    cfg["data"] = dict(cfg["data"], bank_in_memory=False, decompress_bank=False)
    config = parse_train_config(cfg, source=f"the config stored in {ckpt['path']}")
    ctx = distributed.setup("cpu")
    data = load_training_data(config, ctx.device)
    spec = jobs_of(config)[-1]
    trainer = Trainer(spec, data, config, ctx, TrainingLog(Path(out).parent, "unused.csv", enabled=False,
                                                           progress=False, tb_tag="export"), lambda *_: None,
                      job["state"])
    trainer.stage_index = min(trainer.stage_index, len(trainer.stages) - 1)
    metadata = _network_metadata(trainer, data, config, spec, ckpt["completed"].get("init"))
    model = build_model(trainer.model_config)
    if weights == "best":
        state, which = trainer.final_weights()
    elif weights == "last":
        state, which = job["state"]["state_dict"], f"last (epoch {trainer.epochs_done})"
    else:
        raise ConfigError(f"weights must be best or last, got {weights!r}")
    model.load_state_dict(state)
    metadata["training"]["config"] = ckpt["config"]  # as trained (the bank was only opened differently here)
    metadata["training"]["exported"] = {"checkpoint": str(ckpt["path"]), "weights": which,
                                        "epochs_done": trainer.epochs_done, "samples_seen": trainer.samples_seen}
    save_network(out, model, metadata)
    log.info("wrote %s (%s weights of %s)", out, which, ckpt["path"])
    return Path(out)
