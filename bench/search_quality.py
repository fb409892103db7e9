"""The answer a search gives, per method, at equal wall clock: nago's mobo (with and without
pruning), random search (with and without pruning), Optuna's GPSampler (multi-objective) and
Optuna's TPESampler + MedianPruner (val_acc), all driving the same training function; and mobo
with ``search.prescreen=8`` (8 candidates per proposal, scored by NASWOT, the best trains).

One run = one (dataset, method, seed) with a wall-clock budget; each writes a JSON record of its
trials into ``--out``. ``--report`` then prints one markdown table over every record found:
hypervolume against one fixed reference point (val_acc 0.2, params 1.1 x the budget, params on a
log scale), the best test accuracy on the front, the smallest front network within 1 % of that
accuracy, and the share of trial time spent on networks at or below the reference accuracy.

    python bench/search_quality.py --dataset digits --method mobo --seed 0 --trials 20
    python bench/search_quality.py --dataset digits --method random --seed 0 --minutes 9.5
    python bench/search_quality.py --report --out runs/bench-quality

``bench/search_quality_all.sh`` runs every method and seed at once with the same wall clock
(a machine with many cores, e.g. a GPU box: ``--set trainer=gpu``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from nago_pl.config import compose
from nago_pl.search.pareto import hypervolume, is_non_dominated
from nago_pl.search.runner import run_search, trial_base_config
from nago_pl.search.trial import trial_config
from nago_pl.training.run import train_architecture

DATASETS = {
    "digits": [],
    # a Fashion-MNIST subset that fits a loaded 2-core CPU (about 20 s a trial): 14x14 images,
    # 2k training images, 4 epochs, 25k parameters
    "fashion-small": ["dataset=fashion_mnist", "dataset.root=../shared/data/fashion-mnist",
                      "dataset.image_size=14", "dataset.max_train_samples=2000",
                      "dataset.batch_size=64", "dataset.val_fraction=0.03",
                      "trainer.max_epochs=4", "network.param_limit=25000",
                      "network.head_channels=128", "threads=1"],
    # a Fashion-MNIST subset for a GPU (--set trainer=gpu): 10k training images, 8 epochs, 100k
    "fashion": ["dataset=fashion_mnist", "dataset.root=../shared/data/fashion-mnist",
                "dataset.max_train_samples=10000", "trainer.max_epochs=8",
                "network.param_limit=100000", "network.head_channels=256", "threads=1"],
}
NAGO_METHODS = {
    "mobo": ["search=mobo"],
    "mobo-no-pruning": ["search=mobo", "search.pruning.enabled=false"],
    "random": ["search=random"],
    "random-no-pruning": ["search=random", "search.pruning.enabled=false"],
    "mobo-prescreen": ["search=mobo", "search.prescreen=8"],
}
OPTUNA_METHODS = ("optuna-gp", "optuna-tpe-median")
REF_ACC = 0.2


def nago_run(cfg: DictConfig, run_dir: Path, stop_file: Path | None) -> list[dict[str, Any]]:
    """Run the project's own search and return its trials as records."""
    started = time.time()
    stop = None if stop_file is None else stop_file.exists
    study = run_search(cfg, run_dir, Console(quiet=True), stop=stop)
    records = []
    for t in study.trials(("complete", "pruned", "failed")):
        values = t.values or {}
        finished = datetime.fromisoformat(t.finished).timestamp() if t.finished else started
        records.append({"status": t.status, "val_acc": values.get("val_acc"),
                        "params": values.get("params"), "test_acc": values.get("test_acc"),
                        "seconds": t.duration or 0.0, "source": t.info.get("source"),
                        "finished_at": finished - started})
    return records


class OptunaReporter(L.Callback):
    """Reports val_acc to an Optuna trial every epoch and stops the fit when it is pruned
    (``prune=False``: does nothing; Optuna has no reports for multi-objective studies)."""

    def __init__(self, trial: Any, prune: bool) -> None:
        self.trial, self.prune, self.pruned = trial, prune, False

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.prune:
            return
        epoch = trainer.current_epoch + 1
        self.trial.report(float(trainer.callback_metrics["val/acc"]), epoch)
        if self.prune and self.trial.should_prune():
            self.pruned = trainer.should_stop = True


def optuna_run(cfg: DictConfig, run_dir: Path, method: str, seed: int, trials: int,
               deadline: float, stop_file: Path | None) -> list[dict[str, Any]]:
    """Optuna drives the same training function over the same box until the deadline (or
    ``trials`` trials)."""
    import optuna

    space = OmegaConf.to_container(cfg.search.space, resolve=True)
    base = trial_base_config(cfg, "trial")
    records: list[dict[str, Any]] = []
    run_started = time.monotonic()

    def suggest(trial: optuna.Trial) -> dict[str, Any]:
        out = {}
        for name, spec in space.items():
            kind = trial.suggest_int if spec["type"] == "int" else trial.suggest_float
            out[name] = kind(name, spec["low"], spec["high"], log=bool(spec.get("log", False)))
        return out

    def objective(trial: optuna.Trial) -> Any:
        params = suggest(trial)
        started = time.perf_counter()
        reporter = OptunaReporter(trial, prune=method == "optuna-tpe-median")
        record: dict[str, Any] = {"status": "failed", "val_acc": None, "params": None,
                                  "test_acc": None, "source": method}
        try:
            result = train_architecture(trial_config(base, params, seed * 1000 + trial.number),
                                        run_dir / f"{trial.number:04d}", callbacks=[reporter])
            m = result.metrics
            record.update(status="pruned" if reporter.pruned else "complete",
                          val_acc=m["val_acc"], params=m["params"], test_acc=m["test_acc"])
        finally:
            record["seconds"] = time.perf_counter() - started
            record["finished_at"] = time.monotonic() - run_started
            records.append(record)
        if stop_file is not None and stop_file.exists():
            trial.study.stop()
        if reporter.pruned:
            raise optuna.TrialPruned()
        if method == "optuna-gp":
            return record["val_acc"], math.log(record["params"])
        return record["val_acc"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if method == "optuna-gp":
        study = optuna.create_study(directions=["maximize", "minimize"],
                                    sampler=optuna.samplers.GPSampler(seed=seed))
    else:
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=seed),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=3,
                                                                        n_warmup_steps=3))
    left = deadline - time.monotonic()
    study.optimize(objective, n_trials=trials, catch=(Exception,),
                   timeout=max(1.0, left) if math.isfinite(left) else None)
    return records


def run_one(dataset: str, method: str, seed: int, minutes: float | None, trials: int,
            out: Path, stop_file: Path | None = None, extra: list[str] | None = None) -> Path:
    """One (dataset, method, seed) under a wall-clock and trial budget (``extra``: Hydra
    overrides after the dataset's own); returns its record file."""
    run_dir = out / f"{dataset}-{method}-{seed}"
    overrides = [*DATASETS[dataset], *(extra or []), f"seed={seed}", "logger=none",
                 f"search.trials={trials}",
                 f"search.max_minutes={'null' if minutes is None else minutes}",
                 f"study_name={method}-{seed}"]
    overrides += NAGO_METHODS.get(method, [])
    cfg = compose("search", overrides)
    started = time.monotonic()
    if method in NAGO_METHODS:
        records = nago_run(cfg, run_dir, stop_file)
    else:
        records = optuna_run(cfg, run_dir, method, seed, trials,
                             started + 60 * (minutes or math.inf), stop_file)
    limit = cfg.search.space.param_limit.high if "param_limit" in cfg.search.space \
        else cfg.network.param_limit
    path = out / f"{dataset}-{method}-{seed}.json"
    path.write_text(json.dumps({"dataset": dataset, "method": method, "seed": seed,
                                "minutes": minutes, "param_budget": float(limit),
                                "wall_seconds": time.monotonic() - started,
                                "trials": records}, indent=1) + "\n")
    return path


def until(run: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The run as it stood ``seconds`` after it started (trials finished by then)."""
    return {**run, "trials": [t for t in run["trials"] if t["finished_at"] <= seconds]}


def summarise(run: dict[str, Any]) -> dict[str, float]:
    """Hypervolume, best front test accuracy, smallest front net within 1 %, dead time share."""
    ref_params = 1.1 * run["param_budget"]
    ref = torch.tensor([REF_ACC, -math.log(ref_params)], dtype=torch.float64)
    done = [t for t in run["trials"] if t["status"] == "complete" and t["val_acc"] is not None]
    Y = torch.tensor([[t["val_acc"], -math.log(t["params"])] for t in done],
                     dtype=torch.float64).reshape(-1, 2)
    alive = (Y > ref).all(dim=-1)
    front = [t for t, a, nd in zip(done, alive.tolist(), is_non_dominated(Y).tolist(),
                                   strict=True) if a and nd] if done else []
    best = max((t["test_acc"] for t in front), default=float("nan"))
    near = [t["params"] for t in front if t["test_acc"] >= best - 0.01]
    total = sum(t["seconds"] for t in run["trials"]) or 1.0
    dead = sum(t["seconds"] for t in run["trials"]
               if t["val_acc"] is None or t["val_acc"] <= REF_ACC)
    baseline = [t for t in done if t.get("source") == "baseline"]
    return {"hv": hypervolume(Y[alive], ref) if done else 0.0, "best_test": best,
            "smallest_near_best": min(near, default=float("nan")), "dead_share": dead / total,
            "trials": len(run["trials"]),
            "baseline_test": baseline[0]["test_acc"] if baseline else float("nan")}


def report(out: Path, reference_method: str = "mobo") -> None:
    """Markdown tables (per dataset: mean ± std over seeds, then per seed) of every record, each
    run cut at the wall clock the ``reference_method`` run of the same seed took (equal cost)."""
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    for dataset in sorted({r["dataset"] for r in runs}):
        mine = [r for r in runs if r["dataset"] == dataset]
        cutoff = {r["seed"]: max((t["finished_at"] for t in r["trials"]), default=0.0)
                  for r in mine if r["method"] == reference_method}
        summaries = [(r, summarise(until(r, cutoff.get(r["seed"], math.inf)))) for r in mine]
        print(f"\n### {dataset} (each run cut at the wall clock of {reference_method}'s run of "
              f"its seed: {', '.join(f'seed {k} {v / 60:.1f} min' for k, v in cutoff.items())})"
              "\n")
        print("| method | seeds | HV | best front test acc | smallest within 1 % (params) "
              "| time below ref | trials |")
        print("|---|---|---|---|---|---|---|")
        by_method: dict[str, list[dict[str, float]]] = {}
        for run, summary in summaries:
            by_method.setdefault(run["method"], []).append(summary)
        for method, rows in by_method.items():
            def cell(key: str, fmt: Callable[[float], str], rows=rows) -> str:
                values = [r[key] for r in rows]
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                return f"{fmt(statistics.fmean(values))} ± {fmt(spread)}"
            print(f"| {method} | {len(rows)} | {cell('hv', lambda v: f'{v:.3f}')} | "
                  f"{cell('best_test', lambda v: f'{v:.4f}')} | "
                  f"{cell('smallest_near_best', lambda v: f'{v:,.0f}')} | "
                  f"{cell('dead_share', lambda v: f'{100 * v:.1f} %')} | "
                  f"{cell('trials', lambda v: f'{v:.1f}')} |")
        print("\nper seed (HV / best front test acc / smallest within 1 % / time below ref):\n")
        for run, s in sorted(summaries, key=lambda rs: (rs[0]["seed"], rs[0]["method"])):
            print(f"- seed {run['seed']} {run['method']}: {s['hv']:.3f} / {s['best_test']:.4f} / "
                  f"{s['smallest_near_best']:,.0f} / {100 * s['dead_share']:.1f} % "
                  f"({s['trials']} trials; default architecture test acc "
                  f"{s['baseline_test']:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="digits")
    parser.add_argument("--method", choices=[*NAGO_METHODS, *OPTUNA_METHODS], default="mobo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=None,
                        help="wall-clock budget (new trials start until it is spent)")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--stop-file", type=Path, default=None,
                        help="start no new trial once this file exists (written by --done-file "
                             "of a concurrent run: equal wall clock)")
    parser.add_argument("--done-file", type=Path, default=None,
                        help="create this file when the run ends")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="extra Hydra override, e.g. trainer=gpu or "
                        "dataset.root=/data/fashion-mnist (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-quality"))
    parser.add_argument("--report", action="store_true", help="only print the tables")
    args = parser.parse_args()
    if args.report:
        report(args.out)
        return
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    args.out.mkdir(parents=True, exist_ok=True)
    path = run_one(args.dataset, args.method, args.seed, args.minutes, args.trials, args.out,
                   args.stop_file, args.overrides)
    if args.done_file is not None:
        args.done_file.touch()
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
