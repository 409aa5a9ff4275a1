"""The training loop of one network (the posterior network, or the GNPE initialisation network).

Epoch e is one pass over the training split of the bank in the order
``randperm(seed, job, e)``; batch b takes the next ``batch_size`` indices (the last incomplete
batch is dropped), rank r of R takes the r-th slice of them, and all randomness of that batch
(extrinsic parameters, ASD choice, noise, GNPE proxies: the pipeline's generator; FMPE training
times and base draws: torch's global generator) is seeded by (seed, job, e, b, r). Nothing else
is random, so a run resumed from a checkpoint — taken at the end of an epoch, or mid-epoch after
a signal or the wall-time limit — replays exactly the batches an uninterrupted run sees and
reaches the same weights.

Each stage starts a new optimizer and scheduler (stepped once per epoch) and freezes or unfreezes
the SVD-initialised projection layer. After every epoch the validation loss is computed on the
held-out bank entries with fixed randomness (comparable between epochs); the best weights by
validation loss are kept (the comparison restarts when a stage changes the ASD dataset, since
losses on different noise are not comparable).
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn.parallel import DistributedDataParallel

from dingo_gw.errors import ConfigError, DingoError
from dingo_gw.nn import build_model, complete_model_config
from dingo_gw.pipeline import DataPipeline
from dingo_gw.train import seeds
from dingo_gw.train.config import StageConfig, TrainConfig, TrainingConfig
from dingo_gw.train.data import Conventions, TrainingData
from dingo_gw.train.distributed import Context, state_hash
from dingo_gw.train.optim import build_optimizer, build_scheduler, current_lr, step_scheduler
from dingo_gw.train.progress import TrainingLog

log = logging.getLogger(__name__)

#: Bank entries per validation chunk (split across processes); fixed, so that the validation
#: randomness does not depend on the stage's batch size.
VALIDATION_CHUNK = 1024

#: Noise-free signals per pipeline call when collecting the SVD training set.
SVD_CHUNK = 512

#: Test hook: called as ``_after_batch(job, epoch, batch)`` after every optimizer step.
_after_batch: Callable[[str, int, int], None] | None = None


def top_singular_vectors(x: torch.Tensor, k: int) -> torch.Tensor:
    """First ``k`` right-singular vectors V (n_bins, k) of complex data x (N, n_bins), so that the
    coefficients of a row d are d·V (the convention of dingo_gw.nn.svd_basis), by a randomized SVD
    (Halko, Martinsson & Tropp 2011; torch.svd_lowrank, 16 extra vectors, 4 power iterations):
    ~10x faster than a full SVD for thousands of signals, with the same captured power. Uses
    torch's global RNG (seed it)."""
    q = min(k + 16, *x.shape)
    _, _, V = torch.svd_lowrank(x, q=q, niter=4)
    return V[:, :k].contiguous()


class TrainingDivergedError(DingoError):
    """The training loss became NaN or infinite."""


@dataclass
class JobSpec:
    """What to train: ``name`` "main" or "init", the network config (dingo_gw.nn.ModelConfig
    fields, data-dependent sizes left out) and the stages."""

    name: str
    model: dict
    training: TrainingConfig


class _StopFlag:
    """Set by SIGINT/SIGTERM while training; the loop checkpoints and stops after the batch."""

    def __init__(self):
        self.raised = False
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.raised:  # second signal: stop at once
            raise KeyboardInterrupt
        self.raised = True
        log.warning("signal %d received: stopping after this batch (checkpoint follows)", signum)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


class Trainer:
    """Trains one network through its stages; see the module docstring.

    ``state``: a trainer state from a checkpoint (:meth:`state_dict`) to resume, else None.
    ``save(state)`` is called (on every rank) after every epoch and at a stop; the caller writes
    the checkpoint on rank 0. ``stop_after_epochs``: stop (outcome "stopped") after this many
    epochs in this invocation.
    """

    def __init__(self, spec: JobSpec, data: TrainingData, config: TrainConfig, ctx: Context,
                 training_log: TrainingLog, save: Callable[[dict], None], state: dict | None = None,
                 stop_after_epochs: int | None = None):
        self.spec, self.data, self.config, self.ctx = spec, data, config, ctx
        self.log, self._save = training_log, save
        self.job = spec.name
        self.stages = spec.training.stages
        self.stop_after_epochs = stop_after_epochs
        self.device = ctx.device
        self._check_batch_sizes()

        first_asds = self._stage_asds(self.stages[0])
        if state is None:
            pipe = data.pipeline(self.job, first_asds)
            self.conventions = Conventions.of(pipe)
            self.model_config = complete_model_config(spec.model, theta_dim=pipe.theta_dim, proxy_dim=pipe.proxy_dim,
                                                      input_shape=pipe.input_shape)
            torch.manual_seed(seeds.derive_seed(config.seed, seeds.WEIGHTS, seeds.JOBS[self.job]))
            self.model = build_model(self.model_config).to(self.device)
            self._init_projection(pipe)
            self._restore_counters(None)
        else:
            self.conventions = Conventions.from_dict(state["conventions"])
            pipe = data.pipeline(self.job, first_asds, self.conventions)
            self.model_config = state["model_config"]
            self.model = build_model(self.model_config).to(self.device)
            self.model.load_state_dict(state["state_dict"])
            self._restore_counters(state)
        self._pipelines: dict[tuple, DataPipeline] = {tuple(first_asds): pipe}
        self.optimizer = self.scheduler = None
        self._ddp = None
        self.stop_reason: str | None = None

    # -- setup --------------------------------------------------------------------------
    def _check_batch_sizes(self) -> None:
        n_train = len(self.data.train_indices)
        for i, s in enumerate(self.stages, 1):
            if s.batch_size % self.ctx.world_size:
                raise ConfigError(
                    f"{self._where(i)}.batch_size = {s.batch_size} is not divisible by the "
                    f"{self.ctx.world_size} training processes"
                )
            if s.batch_size > n_train:
                raise ConfigError(
                    f"{self._where(i)}.batch_size = {s.batch_size} exceeds the {n_train} training waveforms of the bank"
                )

    def _where(self, stage: int) -> str:
        return f"{'training' if self.job == 'main' else 'init_network.training'}.stages[{stage}]"

    def _stage_asds(self, stage: StageConfig) -> list[str]:
        return stage.asd_datasets or self.config.data.asd_datasets

    def pipeline_for(self, stage: StageConfig) -> DataPipeline:
        key = tuple(self._stage_asds(stage))
        if key not in self._pipelines:
            self._pipelines[key] = self.data.pipeline(self.job, key, self.conventions)
        return self._pipelines[key]

    @torch.no_grad()
    def _init_projection(self, pipe: DataPipeline) -> None:
        """Projection layer := per-detector SVD basis of noise-free whitened training signals."""
        n_basis = self.model.embedding.projection.n_basis
        n, n_train = self.spec.training.svd_samples, len(self.data.train_indices)
        g = seeds.generator(seeds.derive_seed(self.config.seed, seeds.SVD, seeds.JOBS[self.job]), self.device)
        if n <= n_train:  # distinct waveforms; with replacement if more signals than waveforms are asked
            pick = torch.randperm(n_train, device=self.device, generator=g)[:n]
        else:
            pick = torch.randint(n_train, (n,), device=self.device, generator=g)
        idx = self.data.train_indices.to(self.device)[pick]
        parts = []
        for chunk in idx.split(SVD_CHUNK):
            d = pipe.batch(chunk, g, noise=False).data
            parts.append(torch.complex(d[:, :, 0], d[:, :, 1]))
        signals = torch.cat(parts)
        k = min(n_basis, n)
        torch.manual_seed(seeds.derive_seed(self.config.seed, seeds.SVD, seeds.JOBS[self.job], 1))
        V = torch.stack([top_singular_vectors(signals[:, i], k) for i in range(signals.shape[1])])
        self.model.embedding.projection.init_from_basis(V)
        log.info("%s network: projection initialised from the SVD of %d whitened signals (%d of %d basis "
                 "vectors per detector)", self.job, n, k, n_basis)

    def _restore_counters(self, state: dict | None) -> None:
        s = state or {}
        self.stage_index = int(s.get("stage", 0))
        self.epochs_done = int(s.get("epochs_done", 0))
        self.batches_done = int(s.get("batches_done", 0))
        partial = s.get("partial") or {}
        self._partial = (float(partial.get("loss_sum", 0.0)), float(partial.get("samples", 0.0)),
                         float(partial.get("time", 0.0)))
        self.best = s.get("best")
        self.history = list(s.get("history", []))
        self._wall_before = float(s.get("wall_time", 0.0))
        self.samples_seen = int(s.get("samples_seen", 0))
        self._pending = (s.get("stage"), s.get("optimizer"), s.get("scheduler")) if state else None
        rng = s.get("rng") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if rng.get("cuda") and torch.cuda.is_available():
            with contextlib.suppress(Exception):
                torch.cuda.set_rng_state_all(rng["cuda"])
        self._t0 = time.monotonic()
        self.epochs_this_run = 0

    @property
    def wall_time(self) -> float:
        """Training wall time (s), cumulative over resumes."""
        return self._wall_before + (time.monotonic() - self._t0)

    def _enter_stage(self, index: int) -> None:
        stage = self.stages[index]
        self.stage_index = index
        self.model.set_projection_trainable(not stage.freeze_projection)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(params, stage.optimizer)
        self.scheduler = build_scheduler(self.optimizer, stage)
        if self._pending is not None and self._pending[0] == index and self._pending[1] is not None:
            self.optimizer.load_state_dict(self._pending[1])
            if self.scheduler is not None and self._pending[2] is not None:
                self.scheduler.load_state_dict(self._pending[2])
        self._pending = None
        self._ddp = None
        if self.ctx.distributed:
            ids = [self.device] if self.device.type == "cuda" else None
            self._ddp = DistributedDataParallel(self.model, device_ids=ids)
        log.info("%s network, stage %d/%d: %d epochs, batch %d, %s lr %.2e, scheduler %s, projection %s",
                 self.job, index + 1, len(self.stages), stage.epochs, stage.batch_size, stage.optimizer.name,
                 stage.optimizer.lr, stage.scheduler.name, "frozen" if stage.freeze_projection else "trained")

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> str:
        """Train until all stages are done ("finished"), ``max_wall_time`` is reached ("wall_time")
        or ``stop_after_epochs`` epochs ran ("stopped"). A signal checkpoints and raises
        KeyboardInterrupt."""
        ends = [sum(s.epochs for s in self.stages[: i + 1]) for i in range(len(self.stages))]
        with _StopFlag() as flag:
            for index, stage in enumerate(self.stages):
                if self.epochs_done >= ends[index]:
                    continue
                self._enter_stage(index)
                while self.epochs_done < ends[index]:
                    if self._over_time(flag):  # e.g. resumed with the wall-time budget already spent
                        return self._stop(flag)
                    if not self._train_epoch(self.epochs_done + 1, stage, flag):
                        return self._stop(flag)
                    if self._over_time(flag):
                        return self._stop(flag)
                    if (self.stop_after_epochs is not None and self.epochs_this_run >= self.stop_after_epochs
                            and self.epochs_done < ends[-1]):
                        self.stop_reason = "stopped"
                        return "stopped"
        self.stop_reason = None
        return "finished"

    def _over_time(self, flag: _StopFlag) -> bool:
        limit = self.spec.training.max_wall_time
        over = limit is not None and self.wall_time > limit * 3600.0
        return self.ctx.any(over or flag.raised)

    def _stop(self, flag: _StopFlag) -> str:
        signalled = self.ctx.any(flag.raised)
        self.stop_reason = "signal" if signalled else "wall_time"
        self._save(self.state_dict())
        if signalled:
            raise KeyboardInterrupt
        log.info("%s network: max_wall_time of %.3g h reached after %d epochs (+%d batches)", self.job,
                 self.spec.training.max_wall_time, self.epochs_done, self.batches_done)
        return "wall_time"

    def _train_epoch(self, epoch: int, stage: StageConfig, flag: _StopFlag) -> bool:
        """One epoch from batch ``self.batches_done`` on; False if stopped mid-epoch."""
        pipe = self.pipeline_for(stage)
        order = self.data.epoch_order(self.job, epoch)
        B, R, r = stage.batch_size, self.ctx.world_size, self.ctx.rank
        n_batches = len(order) // B
        local = B // R
        lr = current_lr(self.optimizer)
        loss_sum_prev, samples_prev, time_prev = self._partial
        loss_acc = torch.zeros((), dtype=torch.float64, device=self.device)
        n_local = 0
        seed, job = self.config.seed, seeds.JOBS[self.job]

        def make(b: int):
            idx = order[b * B + r * local: b * B + (r + 1) * local].to(self.device)
            g = seeds.generator(seeds.derive_seed(seed, seeds.BATCH, job, epoch, b, r), self.device)
            return pipe.batch(idx, g)

        bar = self.log.bar(n_batches, self.batches_done, f"{self.job} epoch {epoch}/{self.spec.training.total_epochs}")
        executor = ThreadPoolExecutor(1) if self.config.local.workers > 0 else None
        t_start = time.monotonic()
        stopped = False
        try:
            pending = executor.submit(make, self.batches_done) if executor and self.batches_done < n_batches else None
            for b in range(self.batches_done, n_batches):
                if executor is not None:
                    batch = pending.result()
                    pending = executor.submit(make, b + 1) if b + 1 < n_batches else None
                else:
                    batch = make(b)
                torch.manual_seed(seeds.derive_seed(seed, seeds.STEP_RNG, job, epoch, b, r))
                loss = self._step(batch, stage)
                loss_acc += loss.detach().double() * local
                n_local += local
                self.batches_done = b + 1
                self.samples_seen += B
                if _after_batch is not None:
                    _after_batch(self.job, epoch, b)
                if (b + 1) % 10 == 0 or b + 1 == n_batches:
                    running = float(loss_acc) / n_local
                    if not math.isfinite(running):
                        raise TrainingDivergedError(
                            f"{self.job} network: training loss is {running} in epoch {epoch} (batch {b + 1}); "
                            f"lower optimizer.lr or set gradient_clip (last good checkpoint: previous epoch)"
                        )
                    elapsed = time.monotonic() - t_start
                    bar.set_postfix(loss=f"{running:.3f}", samples_s=f"{n_local * R / max(elapsed, 1e-9):.0f}")
                bar.update(1)
                if b + 1 < n_batches and self._over_time(flag):
                    stopped = True
                    break
        finally:
            bar.close()
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        train_time = time.monotonic() - t_start + time_prev
        loss_sum, samples = self.ctx.all_reduce_sum([float(loss_acc), float(n_local)])
        loss_sum += loss_sum_prev
        samples += samples_prev
        if stopped:
            self._partial = (loss_sum, samples, train_time)
            return False
        train_loss = loss_sum / max(samples, 1.0)
        if not math.isfinite(train_loss):
            raise TrainingDivergedError(f"{self.job} network: training loss is {train_loss} in epoch {epoch}; "
                                        f"lower optimizer.lr or set gradient_clip")
        val_loss = self.validate(pipe)
        monitor = val_loss if val_loss is not None else train_loss
        step_scheduler(self.scheduler, monitor)
        self.epochs_done, self.batches_done, self._partial = epoch, 0, (0.0, 0.0, 0.0)
        self.epochs_this_run += 1
        self._update_best(monitor, epoch, stage)
        self.history.append({
            "epoch": epoch, "stage": self.stage_index + 1, "lr": lr, "train_loss": train_loss,
            "val_loss": val_loss, "samples_per_s": samples / max(train_time, 1e-9), "epoch_time_s": train_time,
            "wall_time_s": self.wall_time,
        })
        self._save(self.state_dict())
        self.log.epoch_done(self.history)
        return True

    def _step(self, batch, stage: StageConfig) -> torch.Tensor:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        net = self._ddp if self._ddp is not None else self.model
        with self._autocast():
            loss = net(batch.theta, batch.data, batch.proxies)
        loss.backward()
        if stage.gradient_clip is not None:
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad],
                                           stage.gradient_clip)
        self.optimizer.step()
        return loss

    def _autocast(self):
        if self.device.type == "cuda" and self.config.local.bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def validate(self, pipe: DataPipeline | None = None) -> float | None:
        """Mean loss on the validation split with fixed randomness; None without a split."""
        val = self.data.val_indices
        if len(val) == 0:
            return None
        pipe = pipe or self.pipeline_for(self.stages[self.stage_index])
        self.model.eval()
        job, R, r = seeds.JOBS[self.job], self.ctx.world_size, self.ctx.rank
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        n = 0
        for c, chunk in enumerate(val.split(VALIDATION_CHUNK)):
            mine = chunk.tensor_split(R)[r].to(self.device)
            if len(mine) == 0:
                continue
            g = seeds.generator(seeds.derive_seed(self.config.seed, seeds.VALIDATION, job, c, r), self.device)
            batch = pipe.batch(mine, g)
            torch.manual_seed(seeds.derive_seed(self.config.seed, seeds.VALIDATION, job, c, r, 1))
            with self._autocast():
                loss = self.model(batch.theta, batch.data, batch.proxies)
            total += loss.double() * len(mine)
            n += len(mine)
        s, m = self.ctx.all_reduce_sum([float(total), float(n)])
        return s / m

    def _update_best(self, loss: float, epoch: int, stage: StageConfig) -> None:
        key = list(self._stage_asds(stage))
        best = self.best
        if best is None or best.get("asd") != key or loss < best["loss"]:
            self.best = {"loss": float(loss), "epoch": epoch, "asd": key,
                         "state_dict": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}}

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume (plain dicts and tensors; see checkpoint.py)."""
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        loss_sum, samples, t = self._partial
        return {
            "model_config": self.model_config,
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "conventions": self.conventions.to_dict(),
            "stage": self.stage_index,
            "epochs_done": self.epochs_done,
            "batches_done": self.batches_done,
            "partial": {"loss_sum": loss_sum, "samples": samples, "time": t},
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "best": self.best,
            "history": self.history,
            "wall_time": self.wall_time,
            "samples_seen": self.samples_seen,
            "stop_reason": self.stop_reason,
            "rng": rng,
        }

    def final_weights(self) -> tuple[dict, str]:
        """(state dict for the network file, which) — the best weights by validation loss, or the
        current ones if no epoch completed."""
        if self.best is not None:
            return self.best["state_dict"], f"best (epoch {self.best['epoch']})"
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}, "last"

    def replica_hashes(self) -> list[str]:
        """Hash of the current weights on every rank (a collective); equal for healthy DDP."""
        return self.ctx.all_gather_strings(state_hash(self.model.state_dict()))

    def summary(self) -> dict:
        """Training summary for the network file."""
        last = self.history[-1] if self.history else {}
        return {
            "epochs": self.epochs_done,
            "epochs_planned": self.spec.training.total_epochs,
            "final_train_loss": last.get("train_loss"),
            "final_val_loss": last.get("val_loss"),
            "best_val_loss": None if self.best is None else self.best["loss"],
            "best_epoch": None if self.best is None else self.best["epoch"],
            "wall_time_s": self.wall_time,
            "samples_seen": self.samples_seen,
            "mean_samples_per_s": (sum(h["samples_per_s"] * h["epoch_time_s"] for h in self.history)
                                   / max(sum(h["epoch_time_s"] for h in self.history), 1e-9))
            if self.history else None,
            "stop_reason": self.stop_reason,
            "world_size": self.ctx.world_size,
            "device": str(self.device),
            "history": self.history,
        }
