"""Study trials <-> W&B sweep runs, as plain functions (no network): what an agent is told to
train for a trial, what a finished sweep run means for its trial, and applying that once."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Protocol

from nago_pl.search.study import Study, Trial
from nago_pl.search.trial import config_path

#: Lightning's per-epoch names -> the Study's metric names, for runs stopped before the end.
LIGHTNING_NAMES = {"val/acc": "val_acc", "val/loss": "val_loss"}
IN_FLIGHT = ("pending", "running", "preempting")


class SweepRun(Protocol):
    """The fields of a sweep run the adapter reads (W&B's ``sweeps.SweepRun`` has them)."""

    name: str | None
    state: str
    config: Mapping[str, Any]
    summary_metrics: Mapping[str, Any] | None
    stopped: bool


class SweepResult(NamedTuple):
    """A finished sweep run's outcome for its trial: ``status`` is complete, pruned or failed."""

    trial: int
    values: dict[str, float]
    status: str


def override_name(name: str) -> str:
    """The ``train.py`` override for a search-space name (``G1_nodes`` -> ``generator.G1_nodes``,
    ``stage_ratio_1`` -> ``generator.stage_ratios.1``)."""
    path, index = config_path(name)
    return path if index is None else f"{path}.{index}"


def proposal_to_sweep_params(trial: Trial, group: str) -> dict[str, Any]:
    """The ``train.py`` overrides (name -> value) that train ``trial``: its hyper-parameters,
    seed and epoch budget, and the ``tracking.*`` values that lead its run back to it."""
    params = {override_name(name): value for name, value in trial.params.items()}
    params.update({"seed": trial.seed, "tracking.trial": trial.number, "tracking.group": group,
                   "tracking.job_type": "trial"})
    if trial.budget is not None:
        params["trainer.max_epochs"] = trial.budget
    return params


def config_value(config: Mapping[str, Any], key: str) -> Any:
    """A run config value; W&B's backend stores each as ``{"value": v, "desc": ...}``."""
    value = config.get(key)
    return value.get("value") if isinstance(value, Mapping) else value


def run_values(summary: Mapping[str, Any]) -> dict[str, float]:
    """The Study metrics in a run summary: the final ones ``train.py`` writes (``val_acc``,
    ``params``...) or, for a run stopped early, the last ``val/acc``, ``val/loss``, ``model/*``."""
    values: dict[str, float] = {}
    for key, value in summary.items():
        name = LIGHTNING_NAMES.get(key) or (key[6:] if key.startswith("model/") else None)
        if name is None and re.fullmatch(r"[a-z][a-z0-9_]*", key) and key != "epoch":
            name = key  # Lightning's own epoch counter is not a result
        if name and _is_number(value) and (name == key or name not in values):
            values[name] = float(value)
    return values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def sweep_run_to_result(run_summary: Mapping[str, Any] | None, run_config: Mapping[str, Any],
                        state: str = "finished", stopped: bool = False) -> SweepResult | None:
    """What a sweep run means for its trial (``tracking.trial`` in its config): finished ->
    complete; stopped early (early termination, or killed) with results -> pruned; crashed,
    failed, or stopped without results -> failed. None for runs still going or not a trial's."""
    number = config_value(run_config, "tracking.trial")
    if number is None or state in IN_FLIGHT:
        return None
    values = run_values(run_summary or {})
    if state == "finished" and not stopped:
        status = "complete"
    elif state in ("finished", "killed") and values:
        status = "pruned"
    else:
        status = "failed"
    return SweepResult(int(number), values, status)


def run_trial_number(run: SweepRun) -> int | None:
    """The trial a sweep run trains, if any."""
    number = config_value(run.config, "tracking.trial")
    return None if number is None else int(number)


def sync(study: Study, runs: Iterable[SweepRun]) -> list[Trial]:
    """Apply the outcome of every ended sweep run to its trial if that trial is still running,
    and return the trials changed: a trial is finished once, so syncing again changes nothing."""
    running = {t.number: t for t in study.trials(("running",))}
    changed = []
    for run in runs:
        result = sweep_run_to_result(run.summary_metrics, run.config, run.state, run.stopped)
        if result is None or result.trial not in running:
            continue
        trial = running.pop(result.trial)
        study.set_paths(trial.id, {"wandb_run": str(run.name)})
        missing = [o.name for o in study.objectives if o.name not in result.values]
        if result.status == "complete" and not missing:
            epochs = result.values.get("epochs")
            changed.append(study.tell(trial.id, result.values,
                                      epochs=None if epochs is None else int(epochs)))
        elif result.status == "pruned":
            changed.append(study.prune(trial.id, result.values))
        else:
            detail = f"without {missing}" if result.status == "complete" else ""
            changed.append(study.fail(trial.id, f"W&B run {run.name} {run.state} {detail}".strip()))
    return changed
