"""The search loop: ask the strategy, train each trial, record it, write the outputs."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from callbacks.study_reporter import PruningRule
from nago_pl.config.validate import validate_search
from nago_pl.errors import NagoError
from nago_pl.jsonfile import write_json
from nago_pl.search.constraints import FeasibilityCheck
from nago_pl.search.nb201_table import Nb201Table, TableEvaluator
from nago_pl.search.preflight import feasibility_check, load_data_shape, objectives_with_references
from nago_pl.search.report import (
    front_table,
    hypervolume_history,
    plot_hypervolume,
    plot_pareto,
    write_pareto_json,
)
from nago_pl.search.settings import result_settings
from nago_pl.search.strategies import Strategy, make_strategy
from nago_pl.search.study import FINISHED, Objective, Study
from nago_pl.search.trial import config_path, run_trial, trial_config
from nago_pl.training.run import train_architecture

#: What every trial reports (per epoch or once) and a search may optimise.
OBJECTIVE_METRICS = ("val_acc", "val_loss", "params", "flops", "latency_ms", "memory_mb")


def open_study(cfg: DictConfig, run_dir: Path, requeue: bool = True,
               objectives: list[Objective] | None = None) -> Study:
    """Create or reopen the study ``cfg.study_name`` in ``<run_dir>/study.db`` (``requeue``: see
    :meth:`Study.open`; ``objectives``: the configured ones with their reference points filled)."""
    space = OmegaConf.to_container(cfg.search.space, resolve=True)
    for name in space:
        config_path(name)  # every searched name must map into the training config
    if objectives is None:
        objectives = [Objective.from_config(o)
                      for o in OmegaConf.to_container(cfg.search.objectives)]
    for objective in objectives:
        if objective.name not in OBJECTIVE_METRICS:
            hint = " (searching on the test split would bias it)" if objective.name.startswith(
                "test") else ""
            raise NagoError(f"search.objectives: {objective.name!r} is not a trial metric{hint}; "
                            f"allowed: {', '.join(OBJECTIVE_METRICS)}")
    return Study.open(run_dir / "study.db", cfg.study_name, space, objectives, requeue=requeue,
                      settings=result_settings(cfg),
                      allow_changed_settings=bool(cfg.search.allow_changed_settings))


def search_strategy(cfg: DictConfig, study: Study,
                    feasible: FeasibilityCheck | None = None) -> Strategy:
    """The strategy ``cfg.search.strategy`` with its options, seeded by ``cfg.seed``, proposing
    only configurations ``feasible`` accepts."""
    return make_strategy(cfg.search.strategy, space=study.space, objectives=study.objectives,
                         seed=int(cfg.seed), feasible=feasible,
                         **OmegaConf.to_container(cfg.search.options))


def trial_base_config(cfg: DictConfig, job_type: str) -> DictConfig:
    """The training config every trial (or final retrain) starts from."""
    base = cfg.copy()
    base.trainer.enable_progress_bar = False
    base.tracking.group, base.tracking.job_type = cfg.tracking.group or cfg.study_name, job_type
    return base


def enqueue_baseline(cfg: DictConfig, study: Study, feasible: FeasibilityCheck,
                     console: Console) -> None:
    """Queue the generator/network config's own values as trial 0 (a status-quo arm), trained
    with the search's seed like ``python train.py seed=<seed>``; skipped with a notice when a
    value lies outside the search box or the network is infeasible."""
    params = {name: OmegaConf.select(cfg, path) if index is None
              else OmegaConf.select(cfg, path)[index]
              for name, (path, index) in ((n, config_path(n)) for n in study.space.names)}
    try:
        study.space.to_unit([params])
    except NagoError as err:
        console.print(f"[yellow]baseline skipped:[/] {escape(str(err))}", highlight=False)
        return
    reason = feasible.reason(int(cfg.seed), params)
    if reason is not None:
        console.print(f"[yellow]baseline skipped:[/] {escape(reason)}", highlight=False)
        return
    study.enqueue(params, int(cfg.seed), info={"source": "baseline"})


#: A search whose first trials all fail with one error stops: the error is not theirs.
SYSTEMATIC_FAILURES = 3


def check_systematic_failure(study: Study) -> None:
    """Raise NagoError (and forget those trials, so the fixed command starts afresh) when the
    study's first SYSTEMATIC_FAILURES trials all failed with the same error."""
    trials = study.trials()
    if len(trials) < SYSTEMATIC_FAILURES or any(t.status != "failed" for t in trials):
        return
    errors = {t.error for t in trials}
    if len(errors) == 1:
        study.discard([t.id for t in trials])
        raise NagoError(f"the first {len(trials)} trials all failed with the same error, so "
                        f"it is not theirs (nothing recorded; fix it and re-run): {errors.pop()}")


def run_search(cfg: DictConfig, run_dir: Path, console: Console,
               stop: Callable[[], bool] | None = None) -> Study:
    """Run (or resume) the search until ``cfg.search.trials`` trials have finished, or
    ``cfg.search.max_minutes`` have passed, or ``stop()`` (asked before each new trial) is true."""
    settings = cfg.search
    if "ddp" in str(cfg.trainer.strategy):
        raise NagoError(f"trainer.strategy={cfg.trainer.strategy}: search.py trains its trials "
                        "in-process, one device each; multi-process strategies (ddp) are for "
                        "train.py (e.g. retraining a found architecture); use trainer=gpu")
    validate_search(cfg)
    base = trial_base_config(cfg, "trial")
    table = None
    if cfg.evaluator.name == "nb201_table":
        table = TableEvaluator(Nb201Table.load(cfg.evaluator.path, cfg.evaluator.dataset), base)
    shape = table.table.shape if table else load_data_shape(cfg)
    feasible = feasibility_check(cfg, base, shape)
    study = open_study(cfg, run_dir, objectives=objectives_with_references(cfg, shape))
    if study.requeued:
        console.print(f"resuming: {len(study.requeued)} interrupted trial(s) will be re-run")
    if settings.baseline and study.n_trials() == 0:
        enqueue_baseline(cfg, study, feasible, console)
    strategy = search_strategy(cfg, study, feasible)
    pruning = PruningRule(settings.pruning.min_epochs, settings.pruning.eta) \
        if settings.pruning.enabled else None
    trials_dir = run_dir / "trials"
    total = int(settings.trials)
    deadline = None if settings.max_minutes is None else \
        time.monotonic() + 60 * float(settings.max_minutes)

    def finished() -> int:
        return len(study.trials(FINISHED))

    columns = (TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=total, completed=finished())
        while (done := finished()) < total:
            if deadline is not None and time.monotonic() >= deadline:
                console.print(f"search.max_minutes={settings.max_minutes} reached after "
                              f"{done} trials")
                break
            if stop is not None and stop():
                break
            batch = strategy.ask(study, n=min(int(settings.batch_size), total - done))
            for trial in batch:
                best = _best_hv(study)

                def show_epoch(epoch: int, number: int = trial.number, hv: str = best) -> None:
                    progress.update(task, description=f"trial {number} epoch {epoch} · best HV {hv}")

                show_epoch(0)
                # the status-quo arm trains to the full budget: the front never loses to it
                rule = None if trial.info.get("source") == "baseline" else pruning
                outcome = table.run(study, trial, trials_dir) if table else \
                    run_trial(study, trial, base, trials_dir, rule, show_epoch)
                if outcome.status == "failed":
                    console.print(f"[yellow]trial {outcome.number} failed:[/] "
                                  f"{escape(outcome.error or '')}", highlight=False)
                    check_systematic_failure(study)
                progress.update(task, completed=finished())
    return study


def _best_hv(study: Study) -> str:
    history = hypervolume_history(study)
    return f"{history[-1]:.4g}" if history else "-"


def write_outputs(study: Study, run_dir: Path, console: Console) -> list[dict[str, Any]]:
    """``pareto.json``, ``pareto.png``, ``hypervolume.png`` and the front as a table."""
    records = write_pareto_json(study, run_dir / "pareto.json")
    plot_pareto(study, run_dir / "pareto.png")
    plot_hypervolume(study, run_dir / "hypervolume.png")
    console.print(front_table(study, records))
    counts = {s: len(study.trials((s,))) for s in FINISHED}
    console.print(" · ".join(f"{n} {s}" for s, n in counts.items()) + f" · outputs in {run_dir}")
    return records


def final_evaluation(cfg: DictConfig, records: list[dict[str, Any]], run_dir: Path,
                     console: Console) -> dict[str, Any]:
    """NAGO's protocol: retrain ``samples`` architectures (other seeds) of each of the ``top``
    front generators for ``max_epochs`` and report test accuracy mean ± std (``final.json``).
    Samples already trained (their ``metrics.json`` exists) are not trained again."""
    final = cfg.search.final
    base = trial_base_config(cfg, "final")
    results: dict[Any, Any] = {}
    failures: list[str] = []
    for record in records[: int(final.top)]:
        accuracies = []
        for sample in range(int(final.samples)):
            sample_dir = run_dir / "final" / f"trial{record['trial']:04d}" / f"sample{sample}"
            metrics_file = sample_dir / "metrics.json"
            if not metrics_file.is_file():
                seed = 1_000_003 * (sample + 1) + int(record["seed"])
                cfg_sample = trial_config(base, record["params"], seed,
                                          final.max_epochs)
                cfg_sample.tracking.name = f"final-{record['trial']:04d}-sample{sample}"
                try:
                    train_architecture(cfg_sample, sample_dir)
                except Exception as err:  # noqa: BLE001 - one bad retrain must not stop the rest
                    failures.append(f"trial {record['trial']} sample {sample}: {err}")
                    console.print(f"[yellow]final: {escape(failures[-1])}[/]", highlight=False)
                    continue
            accuracies.append(json.loads(metrics_file.read_text())["test_acc"])
        if not accuracies:
            continue
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        results[record["trial"]] = {"params": record["params"], "test_acc": accuracies,
                                    "mean": statistics.fmean(accuracies), "std": spread}
        console.print(f"final: trial {record['trial']} test acc "
                      f"{results[record['trial']]['mean']:.4f} ± {spread:.4f} "
                      f"over {len(accuracies)} samples")
    if failures:
        results["failed"] = failures
    write_json(run_dir / "final.json", results)
    return results
