"""Training checkpoints: one torch file of plain dicts and tensors, written atomically.

Loaded with ``torch.load(weights_only=True)``; a missing, truncated or foreign file, or one of
another format version, raises FileFormatError with one line. Layout::

    kind              "dingo_gw_checkpoint"
    format_version    dingo_gw.FORMAT_VERSION
    dingo_gw_version  writer's version
    config            the run config (TrainConfig.to_dict(), paths resolved)
    completed         {"init": network dict of the finished GNPE initialisation network} or {}
    job               {"name": "init" | "main", "state": trainer state} or None (next job fresh)
    finished          True once network.pt has been written for the last job

The trainer state (:meth:`dingo_gw.train.trainer.Trainer.state_dict`) holds the model config and
weights, the conventions (standardisation, ASD reference), stage and epoch counters, the number of
batches done in the current epoch (mid-epoch checkpoints after a signal or the wall-time limit),
optimizer and scheduler states, the best weights and validation loss, the history, the wall time
and torch's RNG states.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dingo_gw import FORMAT_VERSION, __version__
from dingo_gw.errors import FileFormatError
from dingo_gw.io.atomic import atomic_write, save_torch
from dingo_gw.nn.network_file import load_torch_dict

CHECKPOINT_KIND = "dingo_gw_checkpoint"
CHECKPOINT_NAME = "checkpoint.pt"
_REQUIRED = ("kind", "format_version", "config", "completed", "job", "finished")
_STATE_REQUIRED = ("model_config", "state_dict", "conventions", "stage", "epochs_done", "batches_done",
                   "optimizer", "scheduler", "best", "history", "wall_time", "samples_seen")


def checkpoint_dict(config: dict, completed: dict, job: dict | None, finished: bool) -> dict:
    return {
        "kind": CHECKPOINT_KIND,
        "format_version": FORMAT_VERSION,
        "dingo_gw_version": __version__,
        "config": config,
        "completed": completed,
        "job": job,
        "finished": bool(finished),
    }


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` (from :func:`checkpoint_dict`) atomically."""
    with atomic_write(path) as tmp:
        save_torch(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict:
    """Read and validate a checkpoint (on CPU)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    d = load_torch_dict(path, CHECKPOINT_KIND, "checkpoint")
    missing = [k for k in _REQUIRED if k not in d]
    job = d.get("job")
    if job is not None:
        if not isinstance(job, dict) or "name" not in job or not isinstance(job.get("state"), dict):
            missing.append("job.state")
        else:
            missing += [f"job.state.{k}" for k in _STATE_REQUIRED if k not in job["state"]]
    if missing:
        raise FileFormatError(f"{path} is an incomplete checkpoint (missing {', '.join(missing)})")
    if not isinstance(d["config"], dict):
        raise FileFormatError(f"{path}: checkpoint config is not a mapping")
    d["path"] = str(path)
    return d
