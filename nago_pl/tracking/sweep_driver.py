"""``search.wandb_sweep=true``: the project's strategy proposes, W&B sweep agents train.

The search creates a W&B sweep run by W&B's local controller (``wandb.controller``) with a
custom search: every controller step syncs ended sweep runs into the Study
(:func:`~nago_pl.tracking.sweep_adapter.sync`) and schedules the next trial as ``train.py``
overrides, which any ``wandb agent`` (on any machine, started from the project root) trains.
Needs a W&B server (cloud or ``wandb server``), credentials and W&B's ``sweeps`` package
(``make setup`` installs it; by hand: ``pip install --no-deps sweeps==0.3.0 jsonref``).
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console

from nago_pl.config.validate import validate_search
from nago_pl.errors import NagoError
from nago_pl.search.preflight import feasibility_check, load_data_shape, objectives_with_references
from nago_pl.search.runner import (
    open_study,
    search_strategy,
    strategy_context,
    trial_base_config,
)
from nago_pl.search.strategies import Strategy
from nago_pl.search.study import FINISHED, Study, Trial
from nago_pl.tracking.mode import DEFAULT_PROJECT, import_wandb, resolve_mode
from nago_pl.tracking.sweep_adapter import (
    SweepRun,
    override_name,
    proposal_to_sweep_params,
    run_trial_number,
    sync,
)
from nago_pl.tracking.sweep_config import COMMAND

POLL_SECONDS = 5.0
#: search.py overrides that are not the agents' business (they set these per trial or not at all).
NOT_FORWARDED = ("search", "study_name", "seed", "logger", "tracking", "hydra")


class NothingToSchedule(Exception):
    """No new trial this step: the budget is handed out and trials are still training."""


@dataclass(frozen=True)
class Proposal:
    """What the local controller schedules: ``config`` is ``{override: {"value": v}}``."""

    config: dict[str, dict[str, Any]]


class NagoSearch:
    """The controller's custom search: sync ended runs into ``study``, then propose a trial no
    run trains yet (one the controller could not schedule last time first), else a new one while
    fewer than ``total`` are finished or running; None once all ``total`` have finished."""

    def __init__(self, study: Study, strategy: Strategy, total: int, group: str,
                 fixed: Mapping[str, Any]) -> None:
        self.study = study
        self.strategy = strategy
        self.total = total
        self.group = group
        self.fixed = dict(fixed)

    def __call__(self, sweep_config: Mapping[str, Any], runs: Sequence[SweepRun]) -> Proposal | None:
        sync(self.study, runs)
        trial = self.next_trial(runs)
        if trial is None:
            return None
        params = {**self.fixed, **proposal_to_sweep_params(trial, self.group)}
        return Proposal({name: {"value": value} for name, value in params.items()})

    def next_trial(self, runs: Sequence[SweepRun]) -> Trial | None:
        """The trial to schedule; raises :class:`NothingToSchedule` when none is due yet."""
        claimed = {run_trial_number(run) for run in runs}
        running = self.study.trials(("running",))
        unclaimed = [t for t in running if t.number not in claimed]
        if unclaimed:
            return unclaimed[0]
        if len(self.study.trials(FINISHED)) + len(running) < self.total:
            return self.strategy.ask(self.study, 1)[0]
        if running:
            raise NothingToSchedule
        return None


def forwarded_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """The search's command-line overrides that every agent's ``train.py`` must get too
    (``dataset=cifar10``, ``dataset.root=...``), as sweep parameters."""
    forwarded = {}
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+~").split(".")[0] in NOT_FORWARDED:
            continue
        if key.startswith(("+", "~")) or not value:
            raise NagoError(f"search.wandb_sweep=true: the override {override!r} cannot be "
                            "passed to sweep agents; set it in a config file instead")
        forwarded[key] = value
    return forwarded


def build_sweep(cfg: DictConfig, study: Study, group: str,
                fixed: Mapping[str, Any]) -> dict[str, Any]:
    """The W&B sweep (``method: custom``, local controller) for ``study``: every name a
    proposal sets (searched ones with their ranges, ``fixed`` ones with their values) and the
    first objective as its metric."""
    parameters: dict[str, Any] = {name: {"value": value} for name, value in fixed.items()}
    for p in study.space.params:
        spec: dict[str, Any] = {"values": list(p.values)} if p.kind == "choice" \
            else {"min": p.low, "max": p.high}
        if p.log and p.kind == "float":
            spec["distribution"] = "log_uniform_values"
        parameters[override_name(p.name)] = spec
    parameters |= {"tracking.group": {"value": group}, "tracking.job_type": {"value": "trial"},
                   "seed": {"min": 0, "max": 2**63 - 1},
                   "tracking.trial": {"min": 0, "max": 2**31 - 1},
                   "trainer.max_epochs": {"min": 1, "max": max(int(cfg.trainer.max_epochs), 1)}}
    first = study.objectives[0]
    return {"name": f"nago-{study.name}", "program": "train.py", "method": "custom",
            "controller": {"type": "local"}, "command": list(COMMAND),
            "metric": {"name": first.name,
                       "goal": "maximize" if first.direction == "max" else "minimize"},
            "parameters": parameters}


def fixed_params(study: Study, forwarded: Mapping[str, str]) -> dict[str, Any]:
    """Overrides every trial's run gets: the forwarded ones, the space's fixed values, logging
    to W&B (the controller reads results from there)."""
    return {**forwarded, **{override_name(name): value for name, value in study.space.fixed.items()},
            "logger": "wandb", "trainer.enable_progress_bar": False}


def drive_sweep(cfg: DictConfig, run_dir: Path, console: Console,
                overrides: Sequence[str] = ()) -> Study:
    """Run (or resume: the sweep id is kept in ``<run_dir>/wandb_sweep.txt``) the search with
    W&B sweep agents training its trials, until ``cfg.search.trials`` have finished."""
    validate_search(cfg)
    wandb = import_wandb("search.wandb_sweep=true")
    logger = cfg.get("logger") or {}
    mode = resolve_mode(logger.get("mode"), "logger.mode")
    if mode != "online":
        raise NagoError(f"search.wandb_sweep=true needs a W&B server (W&B cloud, or `wandb server "
                        f"start`) and `wandb login`; W&B is {mode} here")
    if importlib.util.find_spec("sweeps") is None:
        raise NagoError("search.wandb_sweep=true needs W&B's local controller: "
                        "make setup, or pip install --no-deps sweeps==0.3.0 jsonref")
    shape = load_data_shape(cfg)
    feasible = feasibility_check(cfg, trial_base_config(cfg, "trial"), shape)
    study = open_study(cfg, run_dir, requeue=False,  # running trials may still be on agents
                       objectives=objectives_with_references(cfg, shape))
    project = logger.get("project") or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
    entity = logger.get("entity") or os.environ.get("WANDB_ENTITY")
    group = cfg.tracking.group or study.name
    fixed = fixed_params(study, forwarded_overrides(overrides))
    id_file = run_dir / "wandb_sweep.txt"
    try:
        if not id_file.is_file():
            sweep = build_sweep(cfg, study, group, fixed)
            id_file.write_text(wandb.sweep(sweep, entity=entity, project=project) + "\n")
        sweep_id = id_file.read_text().strip()
        controller = wandb.controller(sweep_id, entity=entity, project=project)
    except wandb.errors.Error as err:
        raise NagoError(f"W&B sweep: {err}".splitlines()[0]) from None
    console.print(f"sweep {sweep_id}: start agents from the project root with `wandb agent "
                  f"{f'-e {entity} ' if entity else ''}-p {project} {sweep_id}`", highlight=False)
    total = int(cfg.search.trials)
    strategy = search_strategy(cfg, study, feasible, strategy_context(cfg, study, shape))
    search = NagoSearch(study, strategy, total, group, fixed)
    controller.configure_search(search)
    with console.status("") as status:
        while (done := len(study.trials(FINISHED))) < total:
            status.update(f"sweep {sweep_id}: {done}/{total} trials finished, "
                          f"{len(study.trials(('running',)))} training")
            try:
                controller.step()
            except NothingToSchedule:
                pass
            time.sleep(POLL_SECONDS)
    controller.step()  # the search now returns None: the sweep schedules no more runs
    return study
