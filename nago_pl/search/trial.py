"""One trial of a search: its hyper-parameters into the training config (a job), train it
(in whatever process runs the job), record its outcome."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nago_pl.errors import NagoError
from nago_pl.search.pruning import ReportFn
from nago_pl.search.study import Study, Trial
from nago_pl.space.generator import GeneratorConfig

LIST_PARAMS = {"stage_ratio": "generator.stage_ratios", "channel_ratio": "generator.channel_ratios",
               "edge": "space.ops", "G3_edge": "generator.G3_edges"}


def config_path(name: str) -> tuple[str, int | None]:
    """Where a search-space name lives in the training config.

    Generator fields (``G1_nodes``, ...) -> ``generator.<name>``; ``param_limit`` ->
    ``network.param_limit``; ``stage_ratio_<i>`` / ``channel_ratio_<i>`` -> element ``i`` of
    ``generator.stage_ratios`` / ``generator.channel_ratios``; ``edge_<i>`` -> the operation of
    edge ``i`` of the nb201 cell, ``space.ops[i]``; ``G3_edge_<i>`` -> whether a learned bottom
    cell has edge ``i``, ``generator.G3_edges[i]``.
    """
    if name in GeneratorConfig.__dataclass_fields__:
        return f"generator.{name}", None
    if name == "param_limit":
        return "network.param_limit", None
    prefix, _, index = name.rpartition("_")
    if prefix in LIST_PARAMS and index.isdigit():
        return LIST_PARAMS[prefix], int(index)
    raise NagoError(
        f"search.space.{name}: not a searchable name; allowed: generator fields "
        f"({', '.join(GeneratorConfig.__dataclass_fields__)}), param_limit, stage_ratio_<i>, "
        "channel_ratio_<i>, edge_<i> (space=nb201), G3_edge_<i> (generator.bottom_family=learned)"
    )


def trial_config(base: DictConfig, params: Mapping[str, Any], seed: int,
                 budget: int | None = None) -> DictConfig:
    """A copy of the training config with the trial's hyper-parameters, seed and epoch budget."""
    cfg = base.copy()
    for name, value in params.items():
        path, index = config_path(name)
        if index is None:
            OmegaConf.update(cfg, path, value, merge=False)
        else:
            values = list(OmegaConf.select(cfg, path))
            if index >= len(values):
                raise NagoError(f"search.space.{name}: {path} has only {len(values)} entries")
            values[index] = value
            OmegaConf.update(cfg, path, values, merge=False)
    cfg.seed = seed
    if budget is not None:
        cfg.trainer.max_epochs = budget
    return cfg


@dataclass(frozen=True)
class TrialJob:
    """What a worker needs to train one trial; plain data, so it pickles to any process."""

    trial_id: int
    number: int
    config: dict[str, Any]  # the resolved training config (hyper-parameters, seed, budget)
    run_dir: str
    epochs: int  # the epoch budget: reports at this epoch are final (never pruned)
    memory_mb: float | None = None  # the training-memory estimate, to pack trials on a GPU
    ranks: int = 1  # DDP processes (devices) the trial trains on


#: Lightning strategies that start their own processes: a trial's ranks are started for it.
SELF_LAUNCHING = ("spawn", "fork", "notebook")


def trial_ranks(trainer: Mapping[str, Any]) -> int:
    """How many DDP processes one trial trains on: ``trainer.devices`` with a ``ddp``
    strategy (an explicit count, on one machine), else 1."""
    strategy = str(trainer.get("strategy") or "auto")
    if "ddp" not in strategy:
        return 1
    if any(word in strategy for word in SELF_LAUNCHING):
        raise NagoError(f"trainer.strategy={strategy}: a search starts each trial's DDP "
                        "processes itself; use trainer.strategy=ddp")
    devices = trainer.get("devices")
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise NagoError(f"trainer.devices={devices}: a DDP trial in a search needs a device "
                        "count per trial, e.g. trainer.devices=2")
    if int(trainer.get("num_nodes") or 1) != 1:
        raise NagoError(f"trainer.num_nodes={trainer.get('num_nodes')}: a search trial runs on "
                        "one machine (its executor spreads trials over machines)")
    return devices


@dataclass(frozen=True)
class TrialOutcome:
    """What training one trial produced: ``complete``/``pruned`` with values, or ``failed``
    (the trial's own error), or ``lost`` (a process of a DDP trial died: the executor retries
    it, as for a dead worker)."""

    status: str
    values: dict[str, float] = field(default_factory=dict)
    epochs: int | None = None
    paths: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def trial_job(trial: Trial, base: DictConfig, trials_dir: Path, threads: int | None = None,
              memory_mb: float | None = None) -> TrialJob:
    """The job of ``trial``: its training config (``threads``: torch threads when the config
    leaves them unset) and run directory ``trials_dir/<number>``."""
    cfg = trial_config(base, trial.params, trial.seed, trial.budget)
    cfg.tracking.trial, cfg.tracking.name = trial.number, f"trial-{trial.number:04d}"
    if threads is not None and cfg.get("threads") is None:
        cfg.threads = threads
    return TrialJob(trial.id, trial.number, OmegaConf.to_container(cfg, resolve=True),
                    str(trials_dir / f"{trial.number:04d}"), int(cfg.trainer.max_epochs),
                    memory_mb, trial_ranks(cfg.trainer))


def quiet_lightning() -> None:
    """Keep Lightning's per-Trainer banners ("GPU available", tips, checkpoint restores) out of
    a search's output (one Trainer per trial), its warnings in, each printed once.

    Lightning resets its loggers to INFO when imported, so this imports it first. Its package
    logger has a handler of its own and also propagates to the root logger: where the root has
    handlers (Hydra's), Lightning's is removed, so a record is not printed twice."""
    import lightning.pytorch  # noqa: F401 - its import sets the levels this overrides

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    package = logging.getLogger("lightning")
    if logging.getLogger().hasHandlers() and package.propagate:
        for handler in list(package.handlers):
            package.removeHandler(handler)


def execute_trial(job: TrialJob, report: ReportFn) -> TrialOutcome:
    """Train ``job``, sending each epoch's metrics through ``report`` (which answers whether to
    go on). Any exception is the trial's failure (its error text), never the caller's.
    Lightning is imported here, where trials train, so a search that trains nothing (a table)
    starts without it."""
    from callbacks.study_reporter import StudyReporter
    from nago_pl.training.run import train_architecture

    quiet_lightning()
    reporter = StudyReporter(report)
    try:
        result = train_architecture(OmegaConf.create(job.config), job.run_dir,
                                    callbacks=[reporter])
    except Exception as err:  # noqa: BLE001 - isolation is the point
        return TrialOutcome("failed", error="".join(traceback.format_exception_only(err)).strip())
    paths = {"architecture": str(Path(job.run_dir) / "architecture.json"),
             "checkpoint": str(result.checkpoint) if result.checkpoint else ""}
    values = {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
    return TrialOutcome("pruned" if reporter.pruned else "complete", values,
                        int(result.metrics["epochs"]), paths)


def record_outcome(study: Study, trial_id: int, outcome: TrialOutcome) -> Trial:
    """Store ``outcome`` as the result of the running trial ``trial_id``."""
    if outcome.status == "failed":
        return study.fail(trial_id, outcome.error or "failed")
    return study.tell(trial_id, outcome.values, status=outcome.status, epochs=outcome.epochs,
                      paths=outcome.paths)
