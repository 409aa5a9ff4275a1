"""Processes and devices: single process, or DistributedDataParallel under torchrun.

``torchrun --nproc_per_node N -m dingo_gw.cli.train config.yaml`` sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`setup` then joins the process group (nccl on
CUDA, gloo on CPU) and pins rank r to cuda:LOCAL_RANK. Every rank builds the same model and
pipeline; each takes a disjoint slice of every batch; DDP averages the gradients, so all
replicas hold identical weights. Only rank 0 writes files.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dingo_gw.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Context:
    """This process's rank, the number of processes and the training device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Sum of float64 values over ranks (identity in a single process)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu().tolist()

    def any(self, flag: bool) -> bool:
        """True if ``flag`` is true on any rank (a collective: call it on every rank)."""
        if not self.distributed:
            return bool(flag)
        return self.all_reduce_sum([1.0 if flag else 0.0])[0] > 0

    def all_gather_strings(self, value: str) -> list[str]:
        if not self.distributed:
            return [value]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, value)
        return [str(v) for v in out]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    @property
    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def shutdown(self) -> None:
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def resolve_device(setting: str, local_rank: int = 0) -> torch.device:
    """auto -> cuda:LOCAL_RANK if CUDA is available else cpu; ConfigError for unavailable CUDA."""
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"local.device = {setting} but CUDA is not available (use auto or cpu)")
        if setting == "cuda":
            setting = f"cuda:{local_rank}"
    return torch.device(setting)


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device_setting: str, distributed: bool = False) -> Context:
    """The process context: joins the process group when launched by torchrun (or when
    ``distributed`` is set, which then requires torchrun's environment variables)."""
    if not (distributed or launched_by_torchrun()):
        return Context(device=resolve_device(device_setting))
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(
            f"--distributed needs the environment of torchrun (missing {', '.join(missing)}); launch with "
            "torchrun --nproc_per_node N -m dingo_gw.cli.train config.yaml"
        )
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = resolve_device(device_setting, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    initialized_here = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        initialized_here = True
    if rank != 0:  # one log, from rank 0
        logging.getLogger("dingo_gw").setLevel(logging.WARNING)
    log.info("%d processes, backend %s; rank 0 on %s", world, backend, device)
    return Context(rank=rank, world_size=world, local_rank=local_rank, device=device,
                   initialized_here=initialized_here)


def state_hash(state_dict: dict) -> str:
    """SHA-256 of a state dict's tensors (names, dtypes, shapes and bytes), to compare replicas."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous().reshape(-1)
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
