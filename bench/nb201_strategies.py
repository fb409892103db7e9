"""Every strategy on tabular NAS-Bench-201 with accuracy as the only objective.

Each (strategy, dataset, seed) searches the six edges of the NB201 cell for ``--trials``
queries of the table's 200-epoch test accuracy and records the best accuracy found after every
checkpoint (10/25/50/100/200 queries) and its wall time. ``uniform`` draws cells uniformly
(with replacement); ``random``, ``evolution``, ``mobo`` and ``graphpnas`` are the project's
strategies through the ask/tell API on an in-memory Study (their default options; mobo with
its single-objective acquisition, qLogNEI); ``tpe`` is Optuna's TPESampler. Results go to
``--out`` (JSON lines, one per run; runs already there are skipped, so the benchmark can be
split across processes and resumed), then every result file given is summarised as markdown
tables of mean ± std.

    python bench/nb201_strategies.py --strategies uniform random evolution tpe --seeds 20
    python bench/nb201_strategies.py --strategies graphpnas --datasets cifar10 --seeds 20
    python bench/nb201_strategies.py --strategies graphpnas --datasets cifar10 --trials 100 \
        --options '{"temperature": 1.0}' --out runs/bench/graphpnas_t1.jsonl
    python bench/nb201_strategies.py --report runs/bench/nb201_strategies.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna

from nago_pl.search import Objective, SearchSpace, Study
from nago_pl.search.nb201_table import Nb201Table
from nago_pl.search.strategies import make_strategy
from nago_pl.space.nb201 import OPS, Nb201Cell

TABLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nas-bench-201" / \
    "nats_tss_test_acc_200ep.csv"
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
SPACE = {f"edge_{i}": {"type": "choice", "values": list(OPS)} for i in range(6)}
OBJECTIVES = [Objective("val_acc", "max")]
CHECKPOINTS = (10, 25, 50, 100, 200)
OURS = ("random", "evolution", "mobo", "graphpnas")

Search = Callable[[int, int, Callable[[dict], float]], list[float]]


def run_ours(name: str, options: dict) -> Search:
    """The project's strategy ``name`` (with ``options``) through ask/tell."""
    def search(seed: int, trials: int, accuracy: Callable[[dict], float]) -> list[float]:
        study = Study.open(":memory:", "bench", SPACE, OBJECTIVES)
        strategy = make_strategy(name, space=SearchSpace.from_config(SPACE),
                                 objectives=OBJECTIVES, seed=seed, **options)
        found = []
        for _ in range(trials):
            trial = strategy.ask(study, 1)[0]
            found.append(accuracy(trial.params))
            study.tell(trial.id, {"val_acc": found[-1]})
        return found
    return search


def run_uniform(seed: int, trials: int, accuracy: Callable[[dict], float]) -> list[float]:
    """Cells drawn uniformly at random, with replacement."""
    rng = np.random.default_rng(seed)
    return [accuracy({f"edge_{i}": OPS[k] for i, k in enumerate(rng.integers(len(OPS), size=6))})
            for _ in range(trials)]


def run_tpe(seed: int, trials: int, accuracy: Callable[[dict], float]) -> list[float]:
    """Optuna's TPESampler (default settings)."""
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    found = []
    for _ in range(trials):
        trial = study.ask()
        found.append(accuracy({f"edge_{i}": trial.suggest_categorical(f"edge_{i}", list(OPS))
                               for i in range(6)}))
        study.tell(trial, found[-1])
    return found


def searches(options: dict) -> dict[str, Search]:
    """Every benchmarked strategy by name (``options`` for the project's strategies)."""
    return {"uniform": run_uniform, "tpe": run_tpe, **{n: run_ours(n, options) for n in OURS}}


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["strategy"], r["dataset"], r["seed"]) for r in load([out])} if out.exists() \
        else set()
    for dataset in args.datasets:
        table = Nb201Table.load(TABLE, dataset)

        def accuracy(params: dict, table: Nb201Table = table) -> float:
            cell = Nb201Cell(tuple(params[f"edge_{i}"] for i in range(6)))
            return 100 * table.accuracy[cell.to_string()]

        for name in args.strategies:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                if (name, dataset, seed) in done:
                    continue
                start = time.perf_counter()
                found = searches(json.loads(args.options))[name](seed, args.trials, accuracy)
                seconds = time.perf_counter() - start
                best = {n: max(found[:n]) for n in CHECKPOINTS if n <= len(found)}
                with out.open("a") as f:
                    f.write(json.dumps({"strategy": name, "dataset": dataset, "seed": seed,
                                        "best": best, "seconds": seconds}) + "\n")
                print(f"{name} {dataset} seed {seed}: {best} in {seconds:.1f} s", flush=True)


def load(paths: list[Path]) -> list[dict]:
    """Every result line of ``paths``."""
    return [json.loads(line) for p in paths for line in p.read_text().splitlines() if line]


def report(paths: list[Path]) -> None:
    results = load(paths)
    order = [n for n in ("uniform", "random", "tpe", "evolution", "mobo", "graphpnas")
             if any(r["strategy"] == n for r in results)]
    for dataset in DATASETS:
        rows = [r for r in results if r["dataset"] == dataset]
        if not rows:
            continue
        print(f"\n{dataset}: best test accuracy (%) found after N queries, mean ± std (seeds)\n")
        print("| strategy | seeds | " + " | ".join(f"N={n}" for n in CHECKPOINTS)
              + " | s / run |")
        print("| --- | ---: |" + " ---: |" * (len(CHECKPOINTS) + 1))
        for name in order:
            runs = [r for r in rows if r["strategy"] == name]
            if not runs:
                continue
            cells = []
            for n in CHECKPOINTS:
                values = [r["best"][str(n)] for r in runs if str(n) in r["best"]]
                fewer = f" ({len(values)} seeds)" if len(values) < len(runs) else ""
                cells.append(f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"
                             f"{fewer}" if len(values) > 1 else "")
            seconds = statistics.mean(r["seconds"] for r in runs)
            print(f"| {name} | {len(runs)} | " + " | ".join(cells) + f" | {seconds:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=["uniform", "random", "tpe", *OURS[1:]],
                        choices=["uniform", "tpe", *OURS])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--options", default="{}",
                        help="JSON options of the project's strategies, e.g. '{\"steps\": 100}'")
    parser.add_argument("--out", default="runs/bench/nb201_strategies.jsonl")
    parser.add_argument("--report", nargs="*", type=Path,
                        help="only summarise these result files")
    args = parser.parse_args()
    logging.getLogger("optuna").setLevel(logging.WARNING)
    if args.report is None:
        run(args)
    report(args.report or [Path(args.out)])


if __name__ == "__main__":
    main()
