"""Waveform banks: LALSimulation generation, HDF5 storage, SVD compression.

>>> from dingo_gw.waveforms import load_bank
>>> bank = load_bank("bank.h5")
>>> bank.parameters["chirp_mass"], bank.h_plus.shape

Names are imported on first use, so that pool workers, which need only the generator, do not
import h5py and pydantic.
"""

import importlib

_EXPORTS = {
    "BankSummary": "bank", "WaveformBank": "bank", "compress_bank": "bank", "generate_bank": "bank",
    "load_bank": "bank", "merge_banks": "bank",
    "BankConfig": "config", "SVDSettings": "config", "WaveformSettings": "config",
    "WAVEFORM_PARAMETERS": "generator", "WaveformFailedError": "generator", "WaveformGenerator": "generator",
    "SequenceWaveformGenerator": "generator",
    "fd_approximants": "generator", "lal_parameters": "generator",
    "SVDBasis": "svd", "fit_svd": "svd", "mismatch": "svd",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__():
    return __all__
