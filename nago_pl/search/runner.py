"""The search loop: ask the strategy, train each trial, record it, write the outputs."""

from __future__ import annotations

import json
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linear_operator.utils.warnings import NumericalWarning
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape

from nago_pl.config.validate import validate_search
from nago_pl.errors import NagoError
from nago_pl.fused_kernel import load_fused_kernel
from nago_pl.jsonfile import write_json
from nago_pl.latest_link import point_latest
from nago_pl.oneshot import METHODS as ONESHOT_METHODS
from nago_pl.proxies.registry import PROXIES
from nago_pl.search.constraints import DataShape, FeasibilityCheck
from nago_pl.search.driver import Budget, SearchDriver, error_kind
from nago_pl.search.duplicates import network_key
from nago_pl.search.executors import make_executor
from nago_pl.search.known_costs import known_objectives
from nago_pl.search.nb201_table import (
    TableEvaluator,
    TableExecutor,
    forget_missing_cells,
    load_table,
)
from nago_pl.search.preflight import feasibility_check, load_data_shape, objectives_with_references
from nago_pl.search.pruning import PruningRule
from nago_pl.search.report import (
    front_table,
    plot_hypervolume,
    plot_pareto,
    write_pareto_json,
)
from nago_pl.search.settings import result_settings
from nago_pl.search.shrink.stage import EVALUATOR, shrink_stage
from nago_pl.search.space import SearchSpace
from nago_pl.search.strategies import Strategy, make_strategy
from nago_pl.search.study import FINISHED, Objective, Study
from nago_pl.search.trial import config_path, trial_config, trial_ranks

if TYPE_CHECKING:
    from nago_pl.search.prescreen import Prescreen, ProxyScore

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


def pin_study_name(cfg: DictConfig) -> str:
    """Fix ``cfg.study_name`` to its value now: a derived default is computed once, from the
    search's own config (a trial's copy carries the trial's seed and budget)."""
    cfg.study_name = str(cfg.study_name)
    return cfg.study_name


def announce_study(study: Study, run_dir: Path, console: Console) -> None:
    """One line: which study this search is, new or resumed, and where it lives; and point
    ``<runs>/latest`` at ``run_dir`` when it is the default ``<runs>/<study name>``."""
    if run_dir.name == study.name:
        point_latest(run_dir)
    done = study.n_trials()
    state = f"resuming, {done} trial(s) recorded" if done else "new"
    console.print(f"study {study.name} ({state}) in {run_dir}", highlight=False, soft_wrap=True)


def search_strategy(cfg: DictConfig, study: Study, feasible: FeasibilityCheck | None = None,
                    context: dict[str, Any] | None = None,
                    space: SearchSpace | None = None) -> Strategy:
    """The strategy ``cfg.search.strategy`` with its options, seeded by ``cfg.seed``, proposing
    only configurations ``feasible`` accepts (``context``: see :func:`make_strategy`), over
    ``space`` (default: the study's; a shrunk space's pockets: ``ShrunkSpace.search_space``)."""
    return make_strategy(cfg.search.strategy, context, space=space or study.space,
                         objectives=study.objectives, seed=int(cfg.seed), feasible=feasible,
                         **OmegaConf.to_container(cfg.search.options, resolve=True))


#: GP fit tolerance when proposals are the whole cost (BENCHMARKS.md: the 100-trial command).
FREE_TRIALS_FIT_FTOL = 1e-6


def strategy_context(cfg: DictConfig, study: Study, shape: DataShape,
                     trains: bool = True) -> dict[str, Any]:
    """What the search knows that a strategy may use: the objectives known exactly before
    training; and when no trial trains (``trains`` false: a table answers them), so proposing
    is the whole cost: GP fits to a looser tolerance (same answers measured on the table).
    Proposals keep the strategies' one torch thread even then: every core won little on a
    quiet machine and was 2-5.6x slower on a busy one (BENCHMARKS.md, "a busy machine").
    Options the user sets win (``+search.options.num_threads=null``: every core)."""
    context: dict[str, Any] = {"known": known_objectives(cfg, study.space, shape)}
    if not trains:
        context.update(fit_ftol=FREE_TRIALS_FIT_FTOL)
    return context


def trial_base_config(cfg: DictConfig, job_type: str) -> DictConfig:
    """The training config every trial (or final retrain) starts from."""
    base = cfg.copy()
    base.trainer.enable_progress_bar = False
    base.tracking.group, base.tracking.job_type = cfg.tracking.group or cfg.study_name, job_type
    return base


def enqueue_baseline(cfg: DictConfig, study: Study, feasible: FeasibilityCheck,
                     console: Console) -> None:
    """Queue the generator/network config's own values as trial 0 (a status-quo arm) of a study
    without trials, trained with the search's seed like ``python train.py seed=<seed>``; skipped
    with a notice when a value lies outside the search box or the network is infeasible."""
    if study.n_trials() > 0:
        return
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
    study.enqueue(params, int(cfg.seed), info={"source": "baseline"}, if_empty=True)


#: GPyTorch's note that a covariance matrix factorised only with jitter on its diagonal.
JITTER_WARNING = r"A not p\.d\., added jitter"


#: A search whose first trials all fail with one error stops: the error is not theirs.
SYSTEMATIC_FAILURES = 3


def check_systematic_failure(study: Study) -> None:
    """Raise NagoError (and forget those trials, so the fixed command starts afresh) when the
    study's first SYSTEMATIC_FAILURES trials all failed with the same kind of error (its
    text but for the numbers, quoted names, paths and cells in it: :func:`error_kind`)."""
    trials = study.trials()
    if len(trials) < SYSTEMATIC_FAILURES or any(t.status != "failed" for t in trials):
        return
    if len({error_kind(t.error or "") for t in trials}) == 1:
        study.discard([t.id for t in trials])
        raise NagoError(f"the first {len(trials)} trials all failed with the same error, so "
                        f"it is not theirs (nothing recorded; fix it and re-run): "
                        f"{trials[0].error}")


def run_search(cfg: DictConfig, run_dir: Path, console: Console,
               stop: Callable[[], bool] | None = None) -> Study:
    """Run (or resume, or join) the search until ``cfg.search.trials`` trials have finished, or
    ``cfg.search.max_minutes`` have passed, or ``stop()`` (asked before new trials) is true.
    Trials run on ``cfg.executor``, ``cfg.search.workers`` at once."""
    settings = cfg.search
    pin_study_name(cfg)
    if trial_ranks(cfg.trainer) > 1 and cfg.executor.kind == "local":
        raise NagoError(f"trainer.strategy={cfg.trainer.strategy} in a search: a trial's DDP "
                        "processes need a worker of their own; use executor=process or "
                        "executor=ray (or trainer=gpu: one device per trial)")
    validate_search(cfg)
    base = trial_base_config(cfg, "trial")
    table = None
    if cfg.evaluator.name == "nb201_table":
        table = TableEvaluator(load_table(cfg), base)
    shape = table.table.shape if table else load_data_shape(cfg)
    feasible = feasibility_check(cfg, base, shape)
    executor, packing = (TableExecutor(table), False) if table else make_executor(cfg)
    with executor:
        study = open_study(cfg, run_dir, objectives=objectives_with_references(cfg, shape))
        announce_study(study, run_dir, console)
        if table and (forgotten := forget_missing_cells(study)):
            console.print(f"forgot {forgotten} trial(s) that failed for a cell the table "
                          "lacked: they are asked again")
        if study.requeued:
            console.print(f"resuming: {len(study.requeued)} interrupted trial(s) will be re-run")
        study.start_heartbeat()
        if settings.baseline:
            enqueue_baseline(cfg, study, feasible, console)
        pruning = PruningRule(settings.pruning.min_epochs, settings.pruning.eta) \
            if settings.pruning.enabled else None
        parallel = cfg.executor.kind != "local"
        prescreen = make_prescreen(cfg, study, base, shape, feasible)

        def make_driver(strategy: Strategy) -> SearchDriver:
            return SearchDriver(
                study, strategy, executor, base, run_dir / "trials",
                pruning, int(settings.max_retries), int(settings.batch_size), console,
                threads=int(cfg.executor.cpus_per_trial) if parallel else None,
                memory_mb=(lambda t: feasible.memory_mb(t.seed, t.params)) if packing else None,
                on_failure=check_systematic_failure,
                prescreen=prescreen, network_key=None if table else (lambda t: network_key(feasible, t)))

        if settings.strategy == "mobo":
            load_fused_kernel(lambda line: console.print(line, highlight=False, soft_wrap=True))
        deadline = None if settings.max_minutes is None else \
            time.monotonic() + 60 * float(settings.max_minutes)
        try:
            with warnings.catch_warnings():
                # a GP whose covariance needed jitter to factorise: handled, nothing to report
                warnings.filterwarnings("ignore", JITTER_WARNING, NumericalWarning)
                # search.shrink / search.space_from: the strategy searches only the pockets
                shrunk = shrink_stage(cfg, study, run_dir, console, feasible, lambda stage, n:
                                      make_driver(stage).run(Budget(n, deadline, stop)),
                                      lambda proxy: proxy_score(cfg, base, shape, proxy))
                allowed = shrunk.restrict(feasible) if shrunk else feasible
                if settings.strategy in ONESHOT_METHODS:  # train the supernet: its cells
                    from nago_pl.oneshot.stage import oneshot_strategy  # Lightning: when used

                    strategy = oneshot_strategy(cfg, study, run_dir, console, shape, allowed,
                                                shrunk.member_values() if shrunk else None,
                                                shrunk.member_configs() if shrunk else None)
                else:
                    strategy = search_strategy(
                        cfg, study, allowed,
                        strategy_context(cfg, study, shape, trains=table is None),
                        shrunk.search_space() if shrunk else None)
                try:
                    make_driver(strategy).run(Budget(int(settings.trials), deadline, stop))
                except NagoError as err:
                    if shrunk is None:
                        raise
                    raise shrunk.explain(err) from None
        finally:
            study.release()  # trials left unfinished (an error, Ctrl-C): re-run by the next driver
    return study


def proxy_score(cfg: DictConfig, base: DictConfig, shape: DataShape, proxy: str) -> ProxyScore:
    """``proxy`` of a trial's untrained network on ``search.prescreen_batch`` training images
    (the shrinking stage's ``search.shrink_options.score``)."""
    from nago_pl.search.prescreen import ProxyScore, proxy_batch  # Lightning: only when used

    where = "search.shrink_options.score"
    if proxy not in PROXIES:
        raise NagoError(f"{where}={proxy!r}: allowed: evaluator, {', '.join(PROXIES)}")
    batch = proxy_batch(cfg, int(cfg.search.prescreen_batch), shape, f"{where}={proxy}",
                        off=f"{where}={EVALUATOR}")
    return ProxyScore(base, shape, batch, proxy, where)


def make_prescreen(cfg: DictConfig, study: Study, base: DictConfig, shape: DataShape,
                   feasible: FeasibilityCheck) -> Prescreen | None:
    """The prescreen of ``search.prescreen`` candidates per proposal (None when below 2)."""
    candidates = int(cfg.search.prescreen)
    if candidates < 2:
        return None
    from nago_pl.search.prescreen import Prescreen, proxy_batch  # Lightning: only when used

    batch = proxy_batch(cfg, int(cfg.search.prescreen_batch), shape)
    return Prescreen(study.space, base, shape, batch, candidates,
                     str(cfg.search.prescreen_proxy), feasible)


def write_outputs(study: Study, run_dir: Path, console: Console) -> list[dict[str, Any]]:
    """``pareto.json``, ``pareto.png``, ``hypervolume.png`` and the front as a table; and the
    study's write-ahead log checkpointed, so ``study.db`` alone holds the study."""
    study.checkpoint()
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
    from nago_pl.training.run import train_architecture  # Lightning: only when retraining

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
                cfg_sample = trial_config(base, record["hparams"], seed,
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
        results[record["trial"]] = {"hparams": record["hparams"], "test_acc": accuracies,
                                    "mean": statistics.fmean(accuracies), "std": spread}
        console.print(f"final: trial {record['trial']} test acc "
                      f"{results[record['trial']]['mean']:.4f} ± {spread:.4f} "
                      f"over {len(accuracies)} samples")
    if failures:
        results["failed"] = failures
    write_json(run_dir / "final.json", results)
    return results
