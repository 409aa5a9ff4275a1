"""Detector noise: PSD estimation and files, glitches, ASD datasets, PSD forecasting.

Public API::

    estimate_psd(strain, domain, exclude=None, roll_off=0.4, ...) -> PSD on the domain grid
    read_psd_file(path, domain, kind="psd", column=None) -> PSD on the domain grid
    find_glitches(strain, ...), gate(strain, times, ...)
    ASDDataset, load_asd_dataset(path), save_asd_dataset(dataset, path), combine_asd_datasets(...)
    fit_psd_model(dataset, config), load_psd_model(path), write_synthetic_asd_dataset(...)
"""

from dingo_gw.noise.asd_dataset import ASDDataset, combine_asd_datasets, load_asd_dataset, save_asd_dataset
from dingo_gw.noise.glitch import Glitch, find_glitches, gate
from dingo_gw.noise.psd import BELOW_FMIN, estimate_psd, estimate_psd_report, psd_to_domain, read_psd_file

__all__ = [
    "ASDDataset", "BELOW_FMIN", "Glitch", "combine_asd_datasets", "estimate_psd", "estimate_psd_report",
    "find_glitches", "gate", "load_asd_dataset", "psd_to_domain", "read_psd_file", "save_asd_dataset",
]
