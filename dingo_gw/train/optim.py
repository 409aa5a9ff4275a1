"""Optimizers and learning-rate schedules of a training stage (stepped once per epoch)."""

from __future__ import annotations

from typing import Iterable

import torch

from dingo_gw.train.config import (
    ConstantScheduler, CosineScheduler, OptimizerConfig, PlateauScheduler, StageConfig, StepScheduler,
)


def build_optimizer(params: Iterable[torch.nn.Parameter], config: OptimizerConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over ``params`` (only the trainable ones are passed)."""
    cls = torch.optim.Adam if config.name == "adam" else torch.optim.AdamW
    return cls(list(params), lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, stage: StageConfig):
    """The stage's schedule, or None for a constant learning rate."""
    s = stage.scheduler
    if isinstance(s, CosineScheduler):
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=stage.epochs, eta_min=s.min_lr)
    if isinstance(s, StepScheduler):
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.step_size, gamma=s.gamma)
    if isinstance(s, PlateauScheduler):
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=s.factor,
                                                          patience=s.patience, min_lr=s.min_lr)
    assert isinstance(s, ConstantScheduler)
    return None


def step_scheduler(scheduler, val_loss: float | None) -> None:
    """Advance the schedule by one epoch (plateau schedules use the validation loss)."""
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if val_loss is not None:
            scheduler.step(val_loss)
    else:
        scheduler.step()


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])
