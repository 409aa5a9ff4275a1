"""Typed configuration of a waveform bank (YAML via :func:`dingo_gw.config.load_config`).

Example (frequencies in Hz)::

    domain: {f_min: 20.0, f_max: 1024.0, delta_f: 0.125}
    waveform: {approximant: IMRPhenomPv2, f_ref: 20.0}
    prior: default            # or a mapping of bilby prior strings / numbers, or a .prior file
    num_samples: 100000
    seed: 0
    compression: {svd: {size: 200, num_training_samples: 20000, whiten: aLIGOZeroDetHighPower}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from dingo_gw.config import ConfigModel, DomainConfig, load_config
from dingo_gw.design_curves import DESIGN_PSDS
from dingo_gw.errors import ConfigError


def _error(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as is (after the key path)."""
    return PydanticCustomError("dingo_gw", message.replace("{", "(").replace("}", ")"))


class WaveformSettings(ConfigModel):
    """LALSimulation settings: frequency-domain approximant, reference and start frequency [Hz].

    ``f_start`` (default: domain.f_min) is where LALSimulation starts the waveform; it must not
    exceed f_min. Bins below f_min are zero in the bank either way.
    """

    approximant: str
    f_ref: float = Field(gt=0)
    f_start: float | None = Field(default=None, gt=0)

    @field_validator("approximant")
    @classmethod
    def _known_approximant(cls, name: str) -> str:
        from dingo_gw.waveforms.generator import check_approximant

        try:
            check_approximant(name)
        except ConfigError as e:
            raise _error(str(e)) from None
        return name


class SVDSettings(ConfigModel):
    """SVD compression: keep ``size`` basis vectors fitted to the first ``num_training_samples``
    waveforms (both polarisations), whitened by the design ASD ``whiten`` (null: not whitened).

    The mismatch is measured on the next ``num_validation_samples`` (held-out) waveforms,
    noise-weighted with ``whiten`` (or aLIGOZeroDetHighPower when ``whiten`` is null).
    """

    size: int = Field(ge=1)
    num_training_samples: int = Field(ge=1)
    num_validation_samples: int = Field(default=1000, ge=1)
    whiten: str | None = "aLIGOZeroDetHighPower"

    @field_validator("whiten")
    @classmethod
    def _known_psd(cls, name: str | None) -> str | None:
        if name is not None and name not in DESIGN_PSDS:
            raise _error(f"unknown design PSD {name!r}; available: {', '.join(DESIGN_PSDS)}")
        return name

    @model_validator(mode="after")
    def _size_fits(self):
        if self.size > 2 * self.num_training_samples:
            raise _error(
                f"size ({self.size}) must be <= 2 * num_training_samples "
                f"({2 * self.num_training_samples} training vectors: h_plus and h_cross)"
            )
        return self


class CompressionSettings(ConfigModel):
    svd: SVDSettings | None = None


class BankConfig(ConfigModel):
    """A waveform bank: domain, waveform model, intrinsic prior, size, seed, compression.

    ``prior``: a mapping of bilby prior strings or numbers (numbers are fixed values), a path to
    a bilby ``.prior`` file (relative paths are relative to the config file), or ``default`` /
    omitted for :data:`dingo_gw.priors.DEFAULT_INTRINSIC_PRIOR`. Extrinsic parameters are not
    sampled: banks are generated at :data:`dingo_gw.priors.REFERENCE_EXTRINSIC`.
    ``chunk_size`` waveforms are generated, written and recorded as done together (the unit of
    resumption and of the memory bound).
    """

    domain: DomainConfig
    waveform: WaveformSettings
    prior: Union[dict[str, Union[str, float]], str, None] = None
    num_samples: int = Field(ge=1)
    seed: int = Field(default=0, ge=0)
    chunk_size: int = Field(default=64, ge=1)
    compression: CompressionSettings | None = None

    @field_validator("prior")
    @classmethod
    def _default_prior(cls, v):
        if isinstance(v, str) and v.strip().lower() == "default":
            return None
        return v

    @field_validator("domain")
    @classmethod
    def _domain_for_waveforms(cls, v: DomainConfig) -> DomainConfig:
        v.build()  # f_max a multiple of delta_f, f_min < f_max, ...
        if v.f_min <= 0:
            raise _error("f_min must be > 0 Hz: LALSimulation cannot start a waveform at 0 Hz")
        return v

    @field_validator("waveform")
    @classmethod
    def _waveform_fits_domain(cls, v: WaveformSettings, info: ValidationInfo) -> WaveformSettings:
        domain = info.data.get("domain")
        if domain is None:  # the domain itself is invalid; that error is reported
            return v
        if v.f_start is not None and v.f_start > domain.f_min:
            raise _error(
                f"f_start = {v.f_start} Hz is above domain.f_min = {domain.f_min} Hz; "
                "the waveform must start at or below f_min"
            )
        if v.f_ref > domain.f_max:
            raise _error(f"f_ref = {v.f_ref} Hz is above domain.f_max = {domain.f_max} Hz")
        return v

    @field_validator("compression")
    @classmethod
    def _svd_leaves_held_out_samples(cls, v: CompressionSettings | None, info: ValidationInfo):
        num_samples = info.data.get("num_samples")
        if v is not None and v.svd is not None and num_samples is not None and v.svd.num_training_samples >= num_samples:
            raise _error(
                f"svd.num_training_samples = {v.svd.num_training_samples} must be smaller than "
                f"num_samples = {num_samples}, to leave held-out waveforms for the mismatch"
            )
        return v

    @property
    def svd(self) -> SVDSettings | None:
        return self.compression.svd if self.compression is not None else None

    @classmethod
    def load(cls, path: str | Path) -> "BankConfig":
        """Load a YAML bank config; a relative prior file path is resolved against its folder."""
        cfg = load_config(path, cls)
        if isinstance(cfg.prior, str):
            p = Path(cfg.prior)
            if not p.is_absolute():
                cfg.prior = str((Path(path).parent / p).resolve())
        return cfg
