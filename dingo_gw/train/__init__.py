"""Training: ``dingo_train config.yaml`` — stages, checkpoints and exact resume, DDP.

>>> from dingo_gw.train import load_train_config, train
>>> result = train(load_train_config("configs/train_tiny.yaml"))
>>> result.network      # output_dir/network.pt

See docs/training.md for the config keys, the outputs and distributed training.
"""

from dingo_gw.train.checkpoint import load_checkpoint
from dingo_gw.train.config import TrainConfig, load_train_config, parse_train_config
from dingo_gw.train.run import INIT_NETWORK_NAME, NETWORK_NAME, RunResult, train, train_from_checkpoint
from dingo_gw.train.trainer import TrainingDivergedError

__all__ = [
    "INIT_NETWORK_NAME",
    "NETWORK_NAME",
    "RunResult",
    "TrainConfig",
    "TrainingDivergedError",
    "load_checkpoint",
    "load_train_config",
    "parse_train_config",
    "train",
    "train_from_checkpoint",
]
