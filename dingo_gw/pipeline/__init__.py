"""Training-time transforms: extrinsic sampling, projection, whitening, noise, GNPE, standardisation.

The :class:`DataPipeline` simulates training batches; :class:`NetworkInput` holds the
conventions shared with inference (whitening, input channels, GNPE shifts, standardisation).
"""

from dingo_gw.pipeline.data_pipeline import Batch, DataPipeline
from dingo_gw.pipeline.extrinsic import ExtrinsicSampler
from dingo_gw.pipeline.gnpe import GNPESettings, GNPETimeProxies, is_time_parameter
from dingo_gw.pipeline.network_input import CHANNELS, EventInput, NetworkInput
from dingo_gw.pipeline.polarizations import PolarizationSource
from dingo_gw.pipeline.standardization import Standardization

__all__ = [
    "Batch",
    "CHANNELS",
    "DataPipeline",
    "EventInput",
    "ExtrinsicSampler",
    "GNPESettings",
    "GNPETimeProxies",
    "NetworkInput",
    "PolarizationSource",
    "Standardization",
    "is_time_parameter",
]
