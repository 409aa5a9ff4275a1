"""Posterior networks: embedding, NPE (zuko spline flow), FMPE (flow matching), network files.

All models share :class:`PosteriorModel`'s interface (``loss``, ``sample``,
``sample_and_log_prob``, ``log_prob``), so trainers and samplers need not know which kind
they hold. Build one from a config with :func:`build_model`; save/load with
:func:`save_network` / :func:`load_network`.
"""

from dingo_gw.nn.config import (
    EmbeddingConfig,
    FieldConfig,
    FlowConfig,
    ModelConfig,
    ODEConfig,
    complete_model_config,
    parse_model_config,
)
from dingo_gw.nn.embedding import DetectorProjection, EmbeddingNet, projection_basis, svd_basis
from dingo_gw.nn.fmpe import FMPE, VectorField
from dingo_gw.nn.network_file import (
    NETWORK_KIND,
    build_model,
    load_network,
    model_from_dict,
    network_dict,
    read_network_dict,
    save_network,
)
from dingo_gw.nn.npe import NPE
from dingo_gw.nn.posterior import PosteriorModel

__all__ = [
    "DetectorProjection",
    "EmbeddingConfig",
    "EmbeddingNet",
    "FMPE",
    "FieldConfig",
    "FlowConfig",
    "ModelConfig",
    "NETWORK_KIND",
    "NPE",
    "ODEConfig",
    "PosteriorModel",
    "VectorField",
    "build_model",
    "complete_model_config",
    "load_network",
    "model_from_dict",
    "network_dict",
    "parse_model_config",
    "projection_basis",
    "read_network_dict",
    "save_network",
    "svd_basis",
]
