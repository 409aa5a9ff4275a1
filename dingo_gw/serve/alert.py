"""Alerts: the JSON schema, its validation, and what a job needs to run (see docs/serve.md).

An alert names a trigger: ``alert_id``, ``gps`` (GPS s), ``detectors`` and optionally where the
strain is (``strain``: detector -> file in a data folder; else the service finds GWOSC-named
files covering the analysis segment in its data folders), PSD files (``psd``: detector -> file
or "design:<name>"), a ``chirp_mass`` estimate (detector frame, solar masses) used to choose the
network, or an ``injection`` (bilby parameters, geocent_time relative to ``gps``: a simulated
signal in Gaussian noise, for drills). Files must lie in the service's data folders.

The content hash covers the alert's fields and the sha256 of every data file it resolves to:
the same alert sent twice is one job; a changed GPS time, field or data file is a new version.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dingo_gw.errors import DataError, DingoError
from dingo_gw.io.checksum import sha256_file


class AlertError(DingoError):
    """A rejected alert: ``status`` is the HTTP status (400 malformed, 413 too large, 422 invalid)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Alert(BaseModel):
    """The alert JSON (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    gps: float
    detectors: list[str] = Field(min_length=1)
    strain: dict[str, str] = Field(default_factory=dict)
    psd: dict[str, str] = Field(default_factory=dict)
    chirp_mass: float | None = Field(default=None, gt=0, lt=1000)
    injection: dict[str, float] | None = None

    @field_validator("injection")
    @classmethod
    def _finite_values(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        bad = [k for k, x in (v or {}).items() if not math.isfinite(x)]
        if bad:
            raise ValueError(f"must be finite numbers: {', '.join(bad)}")
        return v

    @field_validator("gps")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"must be a finite positive GPS time, got {v}")
        return v

    @field_validator("detectors")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"detectors repeated: {v}")
        return v


@dataclass
class PreparedAlert:
    """A validated alert resolved against the service: the network to use, absolute data paths,
    and the content hash."""

    alert: Alert
    network: str
    strain_files: dict[str, str]
    psd_files: dict[str, str]
    content_hash: str

    def request(self) -> dict:
        """What the worker needs to run the analysis (stored with the job)."""
        return {"gps": self.alert.gps, "network": self.network, "strain_files": self.strain_files,
                "psd_files": self.psd_files, "injection": self.alert.injection}


def parse_alert(body: bytes | str | dict) -> Alert:
    """Alert from a request body or a decoded dict; AlertError 400 (not JSON) or 422 (schema)."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError, too many digits
            raise AlertError(400, f"malformed JSON: {e}") from None
        except RecursionError:
            raise AlertError(400, "malformed JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise AlertError(422, f"the alert must be a JSON object, got {type(body).__name__}")
    try:
        return Alert.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "<alert>"
        msg = "unknown key" if err["type"] == "extra_forbidden" else (
            "required key is missing" if err["type"] == "missing" else err["msg"])
        raise AlertError(422, f"invalid alert: {loc}: {msg}") from None


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/-])/(?:[^\s/'\"]+/)*([^\s/'\",;)\]]*)")


def redact_paths(message: str) -> str:
    """``message`` without the server's absolute paths (each replaced by its last component)."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "<folder>", message)


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    real = os.path.realpath(path)
    return any(real == os.path.realpath(r) or real.startswith(os.path.realpath(r) + os.sep) for r in roots)


def resolve_data_file(name: str, data_dirs: Sequence[str]) -> Path:
    """A file named in an alert: in one of the data folders (absolute paths must lie inside one)."""
    from dingo_gw.io.datafind import find_data_file, search_dirs

    roots = search_dirs(data_dirs)
    path = find_data_file(name, data_dirs)
    if not _inside(path, roots):
        raise DataError(f"{name} is not inside the service's data folders")
    return path


def _strain_span(path: Path, detector: str) -> tuple[float, float]:
    """GPS span of a strain file: from its GWOSC name, else by reading it."""
    from dingo_gw.io.strain import parse_gwosc_filename, read_strain

    name = parse_gwosc_filename(path)
    if name is not None:
        return float(name.gps_start), float(name.gps_end)
    s = read_strain(path, detector)
    return s.t0, s.t_end


def prepare_alert(alert: Alert, networks, data_dirs: Sequence[str]) -> PreparedAlert:
    """Check an alert against the service (detectors, network, data) and resolve its files.

    ``networks``: a :class:`dingo_gw.serve.networks.NetworkRegistry`. AlertError 422 naming the
    problem: unknown detector, no network for these detectors / chirp mass, a data file missing or
    outside the data folders, no strain covering the analysis segment.
    """
    from dingo_gw.noise.event_psd import read_psd_spec
    from dingo_gw.noise.event_strain import analysis_segment, post_trigger
    from dingo_gw.inference.injection import injection_parameters
    from dingo_gw.io.datafind import find_strain_file
    from dingo_gw.io.strain import check_detector

    try:
        for det in [*alert.detectors, *alert.strain, *alert.psd]:
            check_detector(det)
        for det in [*alert.strain, *alert.psd]:
            if det not in alert.detectors:
                raise DataError(f"{det} has data in the alert but is not in its detectors {alert.detectors}")
        name = networks.choose(alert.detectors, alert.chirp_mass)
        warm = networks[name]
        domain = warm.network.domain
        post = post_trigger(domain)
        segment = analysis_segment(alert.gps, domain, post)
        strain: dict[str, str] = {}
        psd: dict[str, str] = {}
        files: dict[str, str] = {}
        if alert.injection is not None:  # strain files are not read for an injection, but must be valid names
            for spec in alert.strain.values():
                resolve_data_file(spec, data_dirs)
        for det in warm.network.detectors:
            if alert.injection is not None:
                break
            if det in alert.strain:
                path = resolve_data_file(alert.strain[det], data_dirs)
                t0, t1 = _strain_span(path, det)
                if t0 > segment[0] or t1 < segment[1]:
                    raise DataError(f"{det} strain {path.name} covers GPS [{t0:.3f}, {t1:.3f}], not the analysis "
                                    f"segment [{segment[0]:.3f}, {segment[1]:.3f}]")
            else:
                path = find_strain_file(det, alert.gps, data_dirs, margin=domain.duration - post)
            strain[det] = str(path)
        for det, spec in alert.psd.items():
            if det not in warm.network.detectors:
                continue
            psd[det] = spec if spec.startswith("design:") else str(resolve_data_file(spec, data_dirs))
            read_psd_spec(psd[det], det, domain, data_dirs)  # a design curve's name, a readable PSD file
        if alert.injection is not None:
            injection_parameters(alert.injection, warm.network.prior, alert.gps)
        for det, p in [*strain.items(), *psd.items()]:
            if not p.startswith("design:"):
                files[p] = sha256_file(p)
    except AlertError:
        raise
    except DingoError as e:
        raise AlertError(422, redact_paths(str(e))) from None
    content = {"alert": alert.model_dump(mode="json"), "files": files}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return PreparedAlert(alert, name, strain, psd, digest)
