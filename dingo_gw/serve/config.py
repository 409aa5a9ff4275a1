"""``dingo_serve`` configuration (YAML, see configs/serve.yaml and docs/serve.md).

Relative paths (networks, data folders, state and results folders, watch folder) are relative
to the folder of the config file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from dingo_gw.config import ConfigModel, load_config


class NetworkEntry(ConfigModel):
    """One network kept warm. ``chirp_mass``: [min, max] detector-frame chirp mass (solar masses)
    of alerts it takes (default: its prior's range); its detectors come from the network file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    path: str
    chirp_mass: tuple[float, float] | None = None

    @field_validator("chirp_mass")
    @classmethod
    def _range(cls, v):
        if v is not None and not 0 < v[0] < v[1]:
            raise ValueError(f"chirp_mass must be [min, max] with 0 < min < max, got {list(v)}")
        return v


class AnalysisConfig(ConfigModel):
    """Settings of every analysis (see dingo_gw.inference.analyze.AnalysisSettings)."""

    num_samples: int = Field(default=10000, ge=1)
    gibbs_iterations: int = Field(default=30, ge=1)
    gibbs_chains: int | None = Field(default=None, ge=1)
    workers: int = Field(default=2, ge=1)
    threads: int = Field(default=1, ge=1)
    glitch: str = Field(default="gate", pattern="^(gate|error|ignore)$")
    #: spectral-line bins of the network input: Gaussian noise (replace) or the data (keep); dingo_analyze --lines
    lines: str = Field(default="keep", pattern="^(replace|keep)$")
    #: refine a network proposal whose sample efficiency is below refine_efficiency (docs/analyze.md)
    refine: str = Field(default="auto", pattern="^(auto|never)$")
    refine_efficiency: float = Field(default=0.1, gt=0, le=1)
    refine_particles: int = Field(default=2000, ge=100)
    refine_passes: int = Field(default=1, ge=1, le=10)
    refine_samples: int = Field(default=100000, ge=1000)
    relative_binning: bool = True
    distance_marginalization: bool = True
    #: draw proposal batches until n_eff reaches target_neff, within max_samples draws / max_time s (docs/analyze.md)
    target_neff: float | None = Field(default=None, gt=0)
    max_samples: int | None = Field(default=None, ge=1)
    max_time: float | None = Field(default=None, gt=0)
    seed: int = 0
    #: result file <job_id>_result.hdf5 (default) or <job_id>_result.json, bilby's formats both
    result_format: str = Field(default="hdf5", pattern="^(hdf5|json)$")
    corner: bool = True
    skymap: bool = True
    #: posterior samples used for the sky map KDE (a random subset if there are more)
    skymap_samples: int = Field(default=2000, ge=10)

    @model_validator(mode="after")
    def _budget_needs_target(self):
        if (self.max_samples is not None or self.max_time is not None) and self.target_neff is None:
            raise ValueError("max_samples and max_time are the budget of target_neff: give it too")
        return self


class ServeConfig(ConfigModel):
    """The service: address, folders, networks, limits, optional consumers."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    state_dir: str = "serve_state"
    results_dir: str = "serve_results"
    data_dirs: list[str] = Field(default_factory=list)
    networks: list[NetworkEntry] = Field(min_length=1)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    #: largest accepted request body (bytes)
    max_body_bytes: int = Field(default=65536, ge=256)
    #: folder watched for alert JSON files (None: no watcher); poll interval in s
    watch_dir: str | None = None
    watch_interval: float = Field(default=1.0, gt=0)
    #: optional Kafka consumer (needs hop-client): {"url": "kafka://host/topic"}
    kafka: dict[str, str] | None = None

    @model_validator(mode="after")
    def _unique_names(self):
        names = [n.name for n in self.networks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"network names must be unique, repeated: {', '.join(dup)}")
        return self

    def resolve_paths(self, base: Path) -> "ServeConfig":
        """Copy with every relative path made relative to ``base`` (the config file's folder)."""

        def r(p: str | None) -> str | None:
            if p is None:
                return None
            q = Path(p).expanduser()
            return str(q if q.is_absolute() else base / q)

        data = self.model_copy(deep=True)
        data.state_dir, data.results_dir, data.watch_dir = r(self.state_dir), r(self.results_dir), r(self.watch_dir)
        data.data_dirs = [r(d) for d in self.data_dirs]
        for n in data.networks:
            n.path = r(n.path)
        return data


def load_serve_config(path: str | Path) -> ServeConfig:
    """Read and validate a serve YAML file; relative paths resolved against its folder."""
    path = Path(path)
    return load_config(path, ServeConfig).resolve_paths(path.resolve().parent)
