"""One place that parses YAML configs into typed objects and reports errors.

Every config model derives from :class:`ConfigModel` (pydantic, unknown keys forbidden).
:func:`load_config` reads YAML with ``yaml.safe_load`` and turns any problem into a single
:class:`~dingo_gw.errors.ConfigError` line naming the file and the offending key, e.g.::

    config error in bank.yaml: waveform.f_ref: Input should be a valid number
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DingoError

T = TypeVar("T", bound="ConfigModel")

#: Configs are small YAML files; anything larger is refused unread.
MAX_CONFIG_BYTES = 16 * 2**20


class ConfigModel(BaseModel):
    """Base for typed configs: unknown keys are errors; values are validated on load."""

    model_config = ConfigDict(extra="forbid", frozen=False, protected_namespaces=())


class DomainConfig(ConfigModel):
    """Frequency domain in Hz (see :class:`dingo_gw.domain.FrequencyDomain`)."""

    f_min: float
    f_max: float
    delta_f: float

    def build(self) -> FrequencyDomain:
        try:
            return FrequencyDomain(self.f_min, self.f_max, self.delta_f)
        except DingoError as e:
            raise ConfigError(str(e)) from None


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping with safe_load; ConfigError if missing or malformed."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"config error in {path}: not a regular file")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config error in {path}: larger than {MAX_CONFIG_BYTES // 2**20} MiB; not a config")
        text = path.read_bytes().decode("utf-8")
        if "\x00" in text:
            raise ConfigError(f"config error in {path}: binary file (NUL bytes), not YAML")
        data = yaml.safe_load(text)
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config error in {path}: not UTF-8 text (byte {e.start}); not a YAML config") from None
    except RecursionError:
        raise ConfigError(f"config error in {path}: nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config error in {path}: malformed YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config error in {path}: top level must be a mapping, got {type(data).__name__}")
    return data


def parse_config(data: dict[str, Any], model: type[T], source: str = "<config>") -> T:
    """Validate a dict into ``model``; ConfigError with the first problem's key path."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"config error in {source}: {_first_error(e)}") from None
    except DingoError as e:
        raise ConfigError(f"config error in {source}: {e}") from None


def load_config(path: str | Path, model: type[T]) -> T:
    """Read YAML file ``path`` and validate it into ``model``."""
    return parse_config(read_yaml(path), model, source=str(path))


def _first_error(e: ValidationError) -> str:
    errs = e.errors()
    err = errs[0]
    loc = ".".join(str(x) for x in err["loc"]) or "<top level>"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
    return f"{loc}: {msg}{more}"
