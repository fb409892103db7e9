"""Structured-config schemas: a wrong key or type in any config fails at start-up.

Registered with Hydra's ConfigStore as ``train_schema``; ``conf/train.yaml`` puts it first in
its defaults list, so every YAML file and command-line override is checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from nago_pl.space.generator import GeneratorConfig


@dataclass
class DatasetConfig:
    """Arguments every ``nago_pl.data`` DataModule accepts; ``_target_`` names the class."""

    _target_: str = MISSING
    root: str | None = None
    batch_size: int = 128
    eval_batch_size: int | None = None
    val_fraction: float = 0.1
    split_seed: int = 0
    image_size: int | None = None
    max_train_samples: int | None = None
    num_workers: int = 0
    crop_padding: int = 0
    hflip: bool = False
    cutout: int = 0


@dataclass
class NetworkConfig:
    """Width and head of the built network; width comes from ``param_limit`` unless
    ``multiplier`` is given (then ``param_limit`` must be null)."""

    param_limit: int | None = 4_000_000
    multiplier: float | None = None
    head_channels: int = 1280
    dropout: float = 0.2


@dataclass
class ModelConfig:
    """Optimisation: ``optimizer`` / ``scheduler`` are ``_target_`` + ``_partial_`` configs."""

    optimizer: Any = MISSING
    scheduler: Any = None
    label_smoothing: float = 0.0


@dataclass
class TrainerConfig:
    """The ``lightning.Trainer`` arguments the project exposes."""

    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    max_epochs: int = 30
    min_epochs: int | None = None
    gradient_clip_val: float | None = 5.0
    accumulate_grad_batches: int = 1
    check_val_every_n_epoch: int = 1
    # Lightning's meaning: an int is a number of batches, a float a fraction of them (Any keeps
    # 150 an int and 0.5 a float; validate.check_batches checks them)
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    val_check_interval: Any = None  # validate every n batches (int) or fraction of an epoch
    log_every_n_steps: int = 10
    deterministic: bool = False
    benchmark: bool | None = None
    enable_progress_bar: bool = True
    enable_model_summary: bool = False


@dataclass
class FinetuneConfig:
    """Fine-tuning from ``init_from``: head-only epochs first, then the body at a lower rate."""

    freeze_epochs: int = 0
    body_lr_scale: float = 0.1


@dataclass
class TrackingConfig:
    """Where a run lands in an experiment tracker (W&B): ``search.py`` sets these for its runs,
    a NAGO-driven sweep passes them to its agents so results find their trial."""

    group: str | None = None    # run group: the study name for a search's runs
    job_type: str = "train"     # train (train.py), trial (search trials), final (final retrains)
    name: str | None = None     # run name (null: the tracker's own)
    trial: int | None = None    # the Study trial number this run trains, if any


@dataclass
class SpaceConfig:
    """Which search space builds the network: ``hnag`` (the ``generator`` group samples it) or
    ``nb201`` (the NAS-Bench-201 cell ``ops``, one per edge, at ``channels``/2x/4x with
    ``cells_per_stage`` cells per stage; used by nb201 only)."""

    name: str = "hnag"
    ops: list[str] = field(default_factory=lambda: [
        "nor_conv_3x3", "none", "nor_conv_3x3", "skip_connect", "none", "none"])
    channels: int = 16
    cells_per_stage: int = 5


@dataclass
class EvaluatorConfig:
    """How a search's trial gets its metrics: ``train`` (train the network) or ``nb201_table``
    (look the NAS-Bench-201 cell up in the table at ``path``, column ``dataset``)."""

    name: str = "train"
    path: str | None = None
    dataset: str = "cifar10"


@dataclass
class TrainConfig:
    """``train.py``: train one architecture (sampled from ``generator`` + ``seed``, or ``arch``)."""

    dataset: DatasetConfig = MISSING
    space: SpaceConfig = field(default_factory=SpaceConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: Any = None
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seed: int = 0
    arch: str | None = None
    threads: int | None = None  # torch intra-op threads on CPU (null: torch's default)
    init_from: str | None = None  # search run dir, trial/train run dir or .ckpt to start from
    pick: str = "best_acc"        # with a search run dir: best_acc, smallest or a trial number
    weights: bool = True          # false: take only the architecture, train from scratch
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    export: bool = False          # write a self-contained model folder into <run dir>/export


@dataclass
class PruningConfig:
    """Multi-objective early stopping: rungs at ``min_epochs * eta**k``."""

    enabled: bool = True
    min_epochs: int = 3
    eta: float = 2.0


@dataclass
class FinalConfig:
    """NAGO's final evaluation: ``samples`` seeds of each of the ``top`` front generators,
    retrained for ``max_epochs`` (null: the trainer's); ``top: 0`` skips it."""

    top: int = 0
    samples: int = 3
    max_epochs: int | None = None


@dataclass
class ExecutorConfig:
    """Where trials run: ``local`` (in the search's process, one at a time), ``process`` (one
    subprocess per trial) or ``ray`` (Ray tasks; ``address``: ``auto``, ``ray://host:10001``, ...,
    null starts a local Ray)."""

    kind: str = "local"
    address: str | None = None
    cpus_per_trial: int = 1            # CPU cores (and torch threads) each trial gets
    gpus: list[int] | None = None      # process: the GPU indices to use (null: all visible)
    trials_per_gpu: int = 1            # trials sharing one GPU (within its memory)
    gpu_order: str = "round_robin"     # process: round_robin or free_memory
    gpu_memory_mb: float | None = None  # ray: one GPU's memory for the packing check (null: local)


@dataclass
class ShrinkOptions:
    """``search.shrink=lissnas``'s options (nago_pl/search/shrink/lissnas.py explains each)."""

    queries: int = 80          # the stage's trials (the baseline included), of search.trials
    initial: int = 30          # of which the initial sample
    sampler: str = "sobol"     # sobol or random
    max_pockets: int = 8
    locality: float = 0.5      # radius: neighbours differ by at most this x random pairs
    max_radius: int = 3
    keep_quantile: float = 0.9  # a pocket's median must reach this quantile of the sample
    min_evidence: int = 3      # observations in a pocket before it is kept or rejected
    min_share: float = 0.015   # a smaller shrunk space is rebuilt with wider pockets
    max_share: float = 0.05    # the shrunk space's largest share of the space
    numeric_edit: float = 0.2  # an int/float moved this share of its range = one edit
    fill: str = "forest"       # choices only: a forest of the observations shapes the pockets
    score: str = "evaluator"   # or a zero-cost proxy (nwot, synflow, ...): free queries, not trials


@dataclass
class SearchSettings:
    """The search: strategy and its options, space, objectives, budget, pruning."""

    strategy: str = "mobo"
    options: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Any] = field(default_factory=dict)
    objectives: list[Any] = field(default_factory=list)
    trials: int = 20
    max_minutes: float | None = None  # stop starting trials after this much wall time
    batch_size: int = 1
    workers: int = 1            # trials at once (executor=process or ray for more than 1)
    max_retries: int = 1        # re-runs of a trial whose worker died, before it is failed
    baseline: bool = True       # trial 0: the generator/network config's own values
    min_width: int = 4          # channels every cell must reach at its parameter budget
    constraints: list[str] = field(default_factory=list)  # e.g. "params <= 5e6", "latency_ms <= 10"
    prescreen: int = 0          # >= 2: proxy-score this many candidates per proposal, train the best
    prescreen_proxy: str = "nwot"  # the zero-cost proxy that scores them (nago_pl.proxies)
    prescreen_batch: int = 64   # images the proxy sees
    pruning: PruningConfig = field(default_factory=PruningConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    wandb_sweep: bool = False   # trials trained by W&B sweep agents (needs a W&B server)
    allow_changed_settings: bool = False  # resume a study with other training settings
    shrink: str | None = None   # lissnas: shrink the space into pockets before the strategy
    shrink_options: ShrinkOptions = field(default_factory=ShrinkOptions)
    space_from: str | None = None  # a saved shrunk_space.json (or its search dir) to search in


@dataclass
class SearchConfig(TrainConfig):
    """``search.py``: the training config of every trial plus the search settings."""

    study_name: str = "${nago.study_name:}"  # derived from the study's settings (naming.py)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    search: SearchSettings = field(default_factory=SearchSettings)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)


def _scale(value: Any, factor: Any) -> int:
    """``${nago.scale:x,f}``: round(x * f), for search ranges relative to a default."""
    return round(float(value) * float(factor))


def _study_name(*, _root_: Any) -> str:
    """``${nago.study_name:}``: the study name derived from the config it appears in."""
    from nago_pl.search.naming import default_study_name  # the search stack: only when used

    return default_study_name(_root_)


def register_configs() -> None:
    """Make the schemas and the ``nago.scale`` / ``nago.study_name`` resolvers known to Hydra
    (idempotent)."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="search_schema", node=SearchConfig)
    if not OmegaConf.has_resolver("nago.scale"):
        OmegaConf.register_new_resolver("nago.scale", _scale)
    if not OmegaConf.has_resolver("nago.study_name"):
        OmegaConf.register_new_resolver("nago.study_name", _study_name)
