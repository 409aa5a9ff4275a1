"""Deterministic seeds for every random choice of a training run.

Every random stream is derived from the run's ``seed`` and integers saying what it is for
(numpy's SeedSequence hashing), so nothing depends on the history of a generator: the shuffled
order of epoch e, the extrinsic parameters / ASDs / noise of batch b of epoch e on rank r, the
FMPE training times of that batch... Resuming after a kill therefore replays exactly the batches
an uninterrupted run would have seen.
"""

from __future__ import annotations

import numpy as np
import torch

# What a stream is for (the second integer of every seed).
SPLIT, SHUFFLE, BATCH, STEP_RNG, VALIDATION, SVD, WEIGHTS, STANDARDIZATION = range(1, 9)

#: Job codes (the third integer): the main network and the GNPE initialisation network.
JOBS = {"main": 0, "init": 1}


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from non-negative integers (different tuples give independent streams)."""
    words = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1])) & ((1 << 63) - 1)


def generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g
