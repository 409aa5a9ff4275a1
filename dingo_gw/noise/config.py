"""Typed configs for ASD datasets and the PSD-forecasting model (YAML via dingo_gw.config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from dingo_gw.config import ConfigModel, DomainConfig
from dingo_gw.io.strain import VALID_DETECTORS
from dingo_gw.noise.glitch import DEFAULT_HALF_WIDTH, DEFAULT_TAPER, DEFAULT_THRESHOLD
from dingo_gw.noise.psd import DEFAULT_MIN_SEGMENTS


def _check_detectors(v: list[str] | None) -> list[str] | None:
    if v is None:
        return v
    for d in v:
        if d not in VALID_DETECTORS:
            raise ValueError(f"unknown detector {d!r}; valid detectors: {', '.join(VALID_DETECTORS)}")
    if len(set(v)) != len(v):
        raise ValueError("detectors are listed twice")
    return v


class PsdEstimationConfig(ConfigModel):
    """Welch settings (see dingo_gw.noise.psd). Times in seconds.

    ``segment_duration``: Welch segment length; null = the domain's duration 1/delta_f.
    ``event_window``: seconds [before, after] an event's GPS time that are excluded.
    """

    segment_duration: float | None = Field(default=None, gt=0)
    roll_off: float = Field(default=0.4, ge=0)
    overlap: float = Field(default=0.0, ge=0, lt=1)
    average: Literal["median", "mean"] = "median"
    min_segments: int = Field(default=DEFAULT_MIN_SEGMENTS, ge=1)
    event_window: tuple[float, float] = (6.0, 2.0)
    glitch_action: Literal["exclude", "gate", "error", "ignore"] = "exclude"
    glitch_threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0)
    gate_half_width: float = Field(default=DEFAULT_HALF_WIDTH, ge=0)
    gate_taper: float = Field(default=DEFAULT_TAPER, ge=0)

    @field_validator("event_window")
    @classmethod
    def _window(cls, v):
        if v[0] < 0 or v[1] < 0 or v[0] + v[1] <= 0:
            raise ValueError("event_window must be [seconds before, seconds after], both >= 0, not both 0")
        return v


class StrainSourceConfig(ConfigModel):
    """One strain file (``file``) or an event's files (``event``; ``detectors`` default: all found).

    ``file`` is a path (absolute, relative to the config file, or inside a data folder).
    With ``event`` the event window around its GPS time is excluded; ``exclude`` gives an
    explicit GPS interval [start, end] instead.
    """

    file: str | None = None
    event: str | None = None
    detectors: list[str] | None = None
    exclude: tuple[float, float] | None = None

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, v):
        return _check_detectors(v)

    @model_validator(mode="after")
    def _one_of(self):
        if self.file is None and self.event is None:
            raise ValueError("a strain source needs 'file' or 'event'")
        if self.file is not None and self.detectors is not None and len(self.detectors) != 1:
            raise ValueError("a strain file holds one detector; list at most one under 'detectors'")
        if self.exclude is not None and not self.exclude[1] > self.exclude[0]:
            raise ValueError("exclude must be [start, end] with end > start (GPS s)")
        return self


class PsdFileSourceConfig(ConfigModel):
    """A published PSD/ASD text file. ``kind``: 'psd' [1/Hz] or 'asd' [1/sqrt(Hz)].

    ``detectors``: the detector of a two-column file, or the columns (matched by header name)
    to take from a multi-column file such as the GWTC-1 release. ``gps``: the time it
    describes (or ``event``). ``welch_segments`` / ``segment_duration`` [s]: how the PSD was
    estimated, if it is a Welch estimate (used by the forecast model; null for smooth PSDs).
    """

    file: str
    kind: Literal["psd", "asd"]
    detectors: list[str]
    gps: float | None = None
    event: str | None = None
    welch_segments: int | None = Field(default=None, ge=1)
    segment_duration: float | None = Field(default=None, gt=0)

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, v):
        return _check_detectors(v)


class AsdDatasetConfig(ConfigModel):
    """Config of ``dingo_generate_asd_dataset``: a domain, Welch settings and the inputs."""

    domain: DomainConfig
    psd_estimation: PsdEstimationConfig = PsdEstimationConfig()
    strain: list[StrainSourceConfig] = []
    psd_files: list[PsdFileSourceConfig] = []
    detectors: list[str] | None = None

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, v):
        return _check_detectors(v)

    @model_validator(mode="after")
    def _something(self):
        if not self.strain and not self.psd_files:
            raise ValueError("no inputs: give 'strain' and/or 'psd_files'")
        return self


class PsdModelConfig(ConfigModel):
    """Settings of the parametric PSD model (dingo_gw.noise.forecast).

    Broadband: natural cubic spline in (ln f, ln S) through ``num_nodes`` log-spaced nodes.
    Lines: Lorentzians found where the PSD exceeds the broadband by a noise-aware threshold
    (at least ``line_min_height`` times the broadband), at most ``max_lines`` per PSD.
    Distribution: Gaussian in node space with covariance shrunk (weight ``shrinkage``)
    towards a smooth target with correlation length ``correlation_length`` in ln f.
    """

    num_nodes: int = Field(default=60, ge=4, le=200)
    line_min_height: float = Field(default=2.0, gt=1.0)
    line_false_alarm: float = Field(default=0.05, gt=0, lt=1)
    max_lines: int = Field(default=100, ge=0)
    min_inputs: int = Field(default=3, ge=2)
    shrinkage: float = Field(default=0.3, ge=0, le=1)
    correlation_length: float = Field(default=0.3, gt=0)
    detectors: list[str] | None = None

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, v):
        return _check_detectors(v)
