"""Run one trial of a search: its hyper-parameters into the training config, train, tell."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from callbacks.study_reporter import PruningRule, StudyReporter
from nago_pl.errors import NagoError
from nago_pl.search.study import Study, Trial
from nago_pl.space.generator import GeneratorConfig
from nago_pl.training.run import train_architecture

LIST_PARAMS = {"stage_ratio": "generator.stage_ratios", "channel_ratio": "generator.channel_ratios",
               "edge": "space.ops"}


def config_path(name: str) -> tuple[str, int | None]:
    """Where a search-space name lives in the training config.

    Generator fields (``G1_nodes``, ...) -> ``generator.<name>``; ``param_limit`` ->
    ``network.param_limit``; ``stage_ratio_<i>`` / ``channel_ratio_<i>`` -> element ``i`` of
    ``generator.stage_ratios`` / ``generator.channel_ratios``; ``edge_<i>`` -> the operation of
    edge ``i`` of the nb201 cell, ``space.ops[i]``.
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
        "channel_ratio_<i>, edge_<i> (space=nb201)"
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


def run_trial(study: Study, trial: Trial, base: DictConfig, trials_dir: Path,
              pruning: PruningRule | None,
              on_epoch: Callable[[int], None] | None = None) -> Trial:
    """Train ``trial`` and record the outcome; any exception marks it failed (with its error)
    instead of propagating, so one bad trial never stops the search."""
    run_dir = trials_dir / f"{trial.number:04d}"
    study.set_paths(trial.id, {"run_dir": str(run_dir)})
    reporter = StudyReporter(study, trial.id, study.objectives, pruning, on_epoch)
    try:
        cfg = trial_config(base, trial.params, trial.seed, trial.budget)
        cfg.tracking.trial, cfg.tracking.name = trial.number, f"trial-{trial.number:04d}"
        result = train_architecture(cfg, run_dir, callbacks=[reporter])
    except Exception as err:  # noqa: BLE001 - isolation is the point
        detail = "".join(traceback.format_exception_only(err)).strip()
        return study.fail(trial.id, detail)
    paths = {"architecture": str(run_dir / "architecture.json"),
             "checkpoint": str(result.checkpoint) if result.checkpoint else ""}
    values = {k: v for k, v in result.metrics.items() if isinstance(v, int | float)}
    status = "pruned" if reporter.pruned else "complete"
    return study.tell(trial.id, values, status=status, epochs=result.metrics["epochs"],
                      paths=paths)
