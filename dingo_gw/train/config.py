"""Typed configuration of a training run (``dingo_train config.yaml``).

One YAML file holds five sections (unknown keys are errors; :func:`load_train_config` reports
the first problem as one line naming the file and the key)::

    data:           bank, ASD dataset(s), detectors, ref_time, extrinsic prior, inference parameters
    model:          type npe|fmpe, sizes (dingo_gw.nn.config), gnpe {kernel, relative} or null
    training:       stages [{epochs, batch_size, optimizer, scheduler, freeze_projection, asd_dataset}]
    init_network:   the small GNPE initialisation network (model + training), or null
    local:          device, threads, prefetch workers, bf16 / TF32
    seed, output_dir

Relative paths (bank, ASD datasets, output_dir) are relative to the folder of the config file.
docs/training.md documents every key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from dingo_gw.config import ConfigModel, load_config, parse_config
from dingo_gw.detectors import check_detectors
from dingo_gw.errors import ConfigError, DingoError
from dingo_gw.nn.config import EmbeddingConfig, FlowConfig, ModelConfig

#: GPS time of GW150914, the default reference time (fixes GMST of the network's sky frame).
GW150914_GPS = 1126259462.4

#: Parameters inferred by default: all bilby BBH parameters except the phase, which importance
#: sampling recovers analytically (as in DINGO).
DEFAULT_INFERENCE_PARAMETERS = (
    "chirp_mass", "mass_ratio", "a_1", "a_2", "tilt_1", "tilt_2", "phi_12", "phi_jl", "theta_jn",
    "luminosity_distance", "geocent_time", "ra", "dec", "psi",
)


def _error(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as is (after the key path)."""
    return PydanticCustomError("dingo_gw", message.replace("{", "(").replace("}", ")"))


PathList = Union[str, list[str]]


def _as_list(paths: PathList | None) -> list[str] | None:
    if paths is None:
        return None
    return [paths] if isinstance(paths, str) else list(paths)


# --- data -----------------------------------------------------------------------------------

class DataConfig(ConfigModel):
    """Where training data come from and which parameters the network infers.

    ``bank``: waveform bank (HDF5, dingo_generate_dataset). ``asd_dataset``: one ASD dataset or a
    list (concatenated per detector; all on the bank's domain). ``ref_time``: GPS time (s) whose
    GMST fixes the network's sky frame (the network serves any event time: ra is converted).
    ``extrinsic_prior``: bilby prior strings/numbers for luminosity_distance (Mpc), geocent_time
    (s, relative to the event time), ra, dec, psi; null = dingo_gw.priors.DEFAULT_EXTRINSIC_PRIOR.
    ``training_extrinsic_prior``: replacements of ``extrinsic_prior`` entries used only to draw
    training data, for parameters the network does not infer (e.g. ``luminosity_distance:
    Uniform(100, 2000)`` shows the network more loud signals); the analysis prior in the network
    file stays ``extrinsic_prior``, and importance sampling corrects to it.
    ``window_roll_off``: Tukey roll-off (s per side) of the time-domain window applied to event
    strain at inference; sets the domain's window factor (noise level), null = no window.
    ``validation_fraction`` of the bank is held out (fixed by ``seed``).
    ``standardization_samples``: parameter draws that estimate the standardisation.
    ``decompress_bank``: hold the whole bank as h+/h× arrays (faster batches, much more memory)
    instead of decompressing SVD coefficients per batch.
    ``bank_in_memory``: false = the bank stays on disk and every batch reads its rows from the HDF5
    file in whole chunks (banks larger than RAM; :class:`dingo_gw.train.data.DiskPolarizationSource`);
    epochs then visit the bank in a chunk-aligned shuffled order: the chunk order is shuffled and
    rows are shuffled within windows of ``disk_shuffle_window`` consecutive chunks.
    """

    bank: str
    asd_dataset: PathList
    detectors: list[str] = Field(default_factory=lambda: ["H1", "L1"])
    ref_time: float = GW150914_GPS
    extrinsic_prior: dict[str, Union[str, float]] | None = None
    training_extrinsic_prior: dict[str, Union[str, float]] | None = None
    inference_parameters: list[str] = Field(default_factory=lambda: list(DEFAULT_INFERENCE_PARAMETERS))
    window_roll_off: float | None = Field(default=0.4, ge=0.0)
    validation_fraction: float = Field(default=0.05, ge=0.0, lt=0.5)
    standardization_samples: int = Field(default=100_000, ge=100)
    decompress_bank: bool = False
    bank_in_memory: bool = True
    disk_shuffle_window: int = Field(default=16, ge=1)

    @field_validator("detectors")
    @classmethod
    def _known_detectors(cls, v: list[str]) -> list[str]:
        try:
            return check_detectors(v)
        except DingoError as e:
            raise _error(str(e)) from None

    @field_validator("asd_dataset")
    @classmethod
    def _some_asds(cls, v):
        if isinstance(v, list) and not v:
            raise _error("needs at least one ASD dataset file")
        return v

    @field_validator("inference_parameters")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if not v:
            raise _error("needs at least one parameter")
        dup = sorted({k for k in v if v.count(k) > 1})
        if dup:
            raise _error(f"duplicate parameter(s) {', '.join(dup)}")
        return v

    @property
    def asd_datasets(self) -> list[str]:
        return _as_list(self.asd_dataset)

    @model_validator(mode="after")
    def _training_prior_only_for_marginalised(self):
        from dingo_gw.priors import EXTRINSIC_PARAMETERS
        for key in self.training_extrinsic_prior or {}:
            if key not in EXTRINSIC_PARAMETERS:
                raise _error(f"training_extrinsic_prior: {key!r} is not an extrinsic parameter "
                             f"({', '.join(EXTRINSIC_PARAMETERS)})")
            if key in self.inference_parameters:
                raise _error(f"training_extrinsic_prior: {key!r} is inferred by the network; only parameters "
                             f"recovered at importance sampling may have a training prior of their own")
        return self

    def training_prior_spec(self) -> dict | None:
        """The extrinsic prior that draws training data: ``extrinsic_prior`` (or the default)
        with the ``training_extrinsic_prior`` entries replaced."""
        if not self.training_extrinsic_prior:
            return self.extrinsic_prior
        from dingo_gw.priors import DEFAULT_EXTRINSIC_PRIOR
        return {**(self.extrinsic_prior or DEFAULT_EXTRINSIC_PRIOR), **self.training_extrinsic_prior}

    @model_validator(mode="after")
    def _on_disk_is_not_decompressed(self):
        if not self.bank_in_memory and self.decompress_bank:
            raise _error("decompress_bank: true holds the whole bank in memory; it contradicts bank_in_memory: false")
        return self


# --- model ----------------------------------------------------------------------------------

class GNPEConfig(ConfigModel):
    """GNPE arrival-time proxies: kernel half-width in seconds; relative proxies (exact time
    translation equivariance) or not."""

    kernel: float = Field(default=1e-3, gt=0.0, lt=0.1)
    relative: bool = True


class TrainModelConfig(ModelConfig):
    """A posterior network (dingo_gw.nn.ModelConfig) plus its GNPE setting (null: no GNPE).

    ``theta_dim``, ``proxy_dim``, ``embedding.n_detectors`` and ``embedding.n_bins`` follow
    from the data and are filled in by the trainer.
    """

    gnpe: GNPEConfig | None = Field(default_factory=GNPEConfig)

    def network_config(self) -> dict:
        """The ModelConfig part as a dict (without gnpe)."""
        return self.model_dump(exclude={"gnpe"})


# --- training stages ------------------------------------------------------------------------

class OptimizerConfig(ConfigModel):
    """``name``: adam or adamw; ``lr`` learning rate; ``weight_decay`` (L2 for adam, decoupled
    for adamw); ``betas``."""

    name: Literal["adam", "adamw"] = "adam"
    lr: float = Field(gt=0.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)


class CosineScheduler(ConfigModel):
    """Cosine annealing from the optimizer's lr to ``min_lr`` over the stage's epochs."""

    name: Literal["cosine"]
    min_lr: float = Field(default=0.0, ge=0.0)


class StepScheduler(ConfigModel):
    """lr multiplied by ``gamma`` every ``step_size`` epochs."""

    name: Literal["step"]
    step_size: int = Field(ge=1)
    gamma: float = Field(default=0.5, gt=0.0, le=1.0)


class PlateauScheduler(ConfigModel):
    """lr multiplied by ``factor`` when the validation loss has not improved for ``patience``
    epochs (not below ``min_lr``)."""

    name: Literal["plateau"]
    factor: float = Field(default=0.5, gt=0.0, lt=1.0)
    patience: int = Field(default=5, ge=0)
    min_lr: float = Field(default=0.0, ge=0.0)


class ConstantScheduler(ConfigModel):
    """Constant learning rate."""

    name: Literal["none"]


SchedulerConfig = Annotated[
    Union[CosineScheduler, StepScheduler, PlateauScheduler, ConstantScheduler], Field(discriminator="name")
]


class StageConfig(ConfigModel):
    """One training stage. Every stage starts a fresh optimizer and scheduler; the weights carry
    over. ``asd_dataset`` overrides data.asd_dataset for this stage (same domain; the
    standardisation and the ASD reference of the first stage are kept). ``freeze_projection``
    keeps the SVD-initialised first embedding layer fixed. ``gradient_clip``: max gradient norm
    (null: none). ``batch_size`` is global (split across DDP processes)."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    optimizer: OptimizerConfig
    scheduler: SchedulerConfig = Field(default_factory=lambda: ConstantScheduler(name="none"))
    freeze_projection: bool = False
    asd_dataset: PathList | None = None
    gradient_clip: float | None = Field(default=None, gt=0.0)

    @property
    def asd_datasets(self) -> list[str] | None:
        return _as_list(self.asd_dataset)


class TrainingConfig(ConfigModel):
    """Stages run in order. ``max_wall_time`` (hours, cumulative over resumes; null: none): when
    exceeded, training stops after the current batch, checkpoints, and writes the network from the
    best weights so far. ``svd_samples``: noise-free training signals whose per-detector SVD
    initialises the embedding's projection layer."""

    stages: list[StageConfig] = Field(min_length=1)
    max_wall_time: float | None = Field(default=None, gt=0.0)
    svd_samples: int = Field(default=2000, ge=1)

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages)


def _default_init_model() -> ModelConfig:
    return ModelConfig(
        type="npe",
        embedding=EmbeddingConfig(n_basis=16, hidden_dims=[256, 128], output_dim=64),
        flow=FlowConfig(transforms=4, bins=8, hidden_features=[128, 128]),
    )


def _default_init_training() -> TrainingConfig:
    return TrainingConfig(stages=[StageConfig(
        epochs=4, batch_size=512, optimizer=OptimizerConfig(lr=1e-3),
        scheduler=CosineScheduler(name="cosine"),
    )])


class InitNetworkConfig(ConfigModel):
    """The GNPE initialisation network: infers the detector arrival times {det}_time (s, relative
    to the event time) without GNPE, to start Gibbs sampling. Trained first, by the same command,
    on the same bank/ASDs; written to init_network.pt and embedded in network.pt."""

    model: ModelConfig = Field(default_factory=_default_init_model)
    training: TrainingConfig = Field(default_factory=_default_init_training)


# --- local settings -------------------------------------------------------------------------

class LocalConfig(ConfigModel):
    """Machine-specific settings (may change between resumes).

    ``device``: auto (CUDA if available, else CPU), cpu, cuda or cuda:N. ``num_threads``: torch
    intra-op threads (null: torch's default). ``workers``: 0 = make each batch in the training
    loop; 1 = a background thread prepares the next batch while the step runs. ``bf16``: bfloat16
    autocast of the forward pass and ``tf32``: TensorFloat-32 matmuls; both CUDA only (ignored on
    CPU). ``progress``: tqdm progress bar.
    """

    device: str = "auto"
    num_threads: int | None = Field(default=None, ge=1)
    workers: int = Field(default=0, ge=0, le=1)
    bf16: bool = False
    tf32: bool = True
    progress: bool = True

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise _error(f"must be auto, cpu, cuda or cuda:N, got {v!r}")


# --- the run --------------------------------------------------------------------------------

class TrainConfig(ConfigModel):
    """A complete training run; see the module docstring and docs/training.md."""

    data: DataConfig
    model: TrainModelConfig
    training: TrainingConfig
    init_network: InitNetworkConfig | None = Field(default_factory=InitNetworkConfig)
    local: LocalConfig = Field(default_factory=LocalConfig)
    seed: int = Field(default=0, ge=0)
    output_dir: str = "training"

    @model_validator(mode="after")
    def _init_network_needs_gnpe(self):
        if self.model.gnpe is None:
            self.init_network = None  # nothing to initialise without GNPE
        return self

    def resolve_paths(self, base: str | Path) -> "TrainConfig":
        """Make relative file paths absolute, relative to ``base`` (the config's folder)."""
        base = Path(base)

        def fix(p: str) -> str:
            q = Path(p).expanduser()
            return str(q if q.is_absolute() else (base / q).resolve())

        self.data.bank = fix(self.data.bank)
        self.data.asd_dataset = [fix(p) for p in self.data.asd_datasets]
        for stage in self.training.stages + (self.init_network.training.stages if self.init_network else []):
            if stage.asd_dataset is not None:
                stage.asd_dataset = [fix(p) for p in stage.asd_datasets]
        self.output_dir = fix(self.output_dir)
        return self

    def to_dict(self) -> dict:
        """Plain JSON-able dict (stored in checkpoints and network files)."""
        return self.model_dump(mode="json")


def parse_train_config(data: dict, source: str = "<config>", base: str | Path | None = None) -> TrainConfig:
    """Validate a dict into a TrainConfig; resolve relative paths against ``base`` if given."""
    cfg = parse_config(data, TrainConfig, source=source)
    return cfg.resolve_paths(base) if base is not None else cfg


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a training YAML; relative paths are resolved against the config file's folder."""
    cfg = load_config(path, TrainConfig)
    return cfg.resolve_paths(Path(path).resolve().parent)


#: Config keys that may differ between a checkpoint and the config used to resume it.
RESUMABLE_CHANGES = ("local", "output_dir", "training.max_wall_time", "init_network.training.max_wall_time")
#: Stage lists that a resume may extend: the checkpoint's stages must be a prefix of the new ones.
EXTENSIBLE_STAGES = "training.stages"


def added_stages(stored: dict, current: dict) -> int:
    """How many posterior-network stages ``current`` appends to the checkpoint config ``stored``."""
    return len(current["training"]["stages"]) - len(stored["training"]["stages"])


def check_same_run(stored: dict, current: dict, source: str) -> None:
    """ConfigError naming the first key where ``current`` differs from the checkpoint's config
    (outside :data:`RESUMABLE_CHANGES`): resuming must continue the same run. The posterior
    network's stage list may grow (:data:`EXTENSIBLE_STAGES`): stages appended to a finished or
    running schedule are trained after the stored ones, which run exactly as before."""

    def walk(a, b, path):
        if path in RESUMABLE_CHANGES:
            return
        if path == EXTENSIBLE_STAGES and isinstance(a, list) and isinstance(b, list) and len(b) > len(a):
            b = b[: len(a)]
        if isinstance(a, dict) and isinstance(b, dict):
            for k in list(a) + [k for k in b if k not in a]:
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        elif a != b:
            raise ConfigError(
                f"{source}: {path} = {b!r} differs from the checkpoint's {a!r}; resuming needs the same "
                f"run config (only {', '.join(RESUMABLE_CHANGES)} may change, and stages may be appended to "
                f"{EXTENSIBLE_STAGES})"
            )

    walk(stored, current, "")
