"""Strategies on tabular NAS-Bench-201 (CIFAR-10): regret of the best cell and hypervolume.

Every (strategy, seed) searches the 6 categorical edges of the NB201 cell, maximising the
table's 200-epoch test accuracy and minimising the network's parameters (log), for ``--trials``
trials. ``mobo``, ``random``, ``evolution`` and ``graphpnas`` are the project's strategies
(in-memory Study, ask/tell, default options);
``mobo-refit-every`` is mobo fitting its GPs at every proposal (``refit_growth=1``),
``mobo-mc64`` mobo with 64 MC samples (default 128), ``mobo-modelled-params`` mobo with a GP
on the parameter count instead of computing it (``search.py`` computes it, ``known_costs``),
``mobo-refit1.5`` mobo with ``refit_growth=1.5`` (default 1.2), ``mobo-pool128`` mobo scoring
128 random cells before its local search (``raw_samples``, default 256);
``<strategy>-prescreen`` runs ``search.prescreen`` (``--prescreen`` candidates per proposal,
scored by ``--proxy`` on ``--prescreen-batch`` CIFAR-10 training images); ``tpe`` and ``gp`` are Optuna's
TPESampler and GPSampler (multi-objective) on the same table.
Regret = 94.37 % minus the best accuracy found; hypervolume of (accuracy, -log params) against
(10 %, log 1.6e6). Prints markdown tables of mean ± std at every ``--every`` trials.

    python bench/nb201_table.py --strategies random tpe gp mobo --seeds 0 1 2 --trials 50
    python bench/nb201_table.py --strategies random random-prescreen --prescreen 8 --proxy nwot
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import time
from pathlib import Path

import optuna
import torch
from omegaconf import OmegaConf
from zero_cost_proxies import cifar10_batch

from nago_pl.config import compose
from nago_pl.search import MOBO, STRATEGIES, Objective, SearchSpace, Study
from nago_pl.search.constraints import DataShape
from nago_pl.search.known_costs import nb201_costs
from nago_pl.search.nb201_table import Nb201Table, TableEvaluator
from nago_pl.search.pareto import hypervolume_curve
from nago_pl.search.prescreen import Prescreen
from nago_pl.search.runner import trial_base_config
from nago_pl.space.nb201 import OPS, Nb201Cell

TABLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nas-bench-201" / \
    "nats_tss_test_acc_200ep.csv"
OPTIMUM = 0.9437
REF = (0.10, -math.log(1.6e6))
SPACE = {f"edge_{i}": {"type": "choice", "values": list(OPS)} for i in range(6)}
OBJECTIVES = [Objective("val_acc", "max", ref=REF[0]),
              Objective("params", "min", log=True, ref=math.exp(-REF[1]))]
#: MOBO as configured by default, with its GPs refitted at every proposal, with half the
#: default MC samples in its acquisition, with a GP on the parameter count, refitting its GPs
#: when the data grew by 1.5x (default 1.2), and scoring 128 random cells (default 256) before
#: its local search.
MOBO_VARIANTS = {"mobo": {}, "mobo-refit-every": {"refit_growth": 1.0},
                 "mobo-mc64": {"mc_samples": 64}, "mobo-modelled-params": {},
                 "mobo-refit1.5": {"refit_growth": 1.5}, "mobo-pool128": {"raw_samples": 128},
                 "mobo-ftol1e-6": {"fit_ftol": 1e-6}}


class Lookup:
    """(accuracy, params) of a cell from the table and the cost model."""

    def __init__(self) -> None:
        self.table = Nb201Table.load(TABLE, "cifar10")
        base = OmegaConf.create({"space": {"channels": 16, "cells_per_stage": 5}})
        self.costs = TableEvaluator(self.table, base)
        self.known = nb201_costs(SearchSpace.from_config(SPACE), self.costs.costs, ["none"] * 6)

    def __call__(self, params: dict) -> tuple[float, float]:
        cell = Nb201Cell(tuple(params[f"edge_{i}"] for i in range(6)))
        return self.table.accuracy[cell.to_string()], float(self.costs.costs.of(cell)[0])


def run_ours(name: str, seed: int, trials: int, lookup: Lookup,
             prescreen: Prescreen | None = None) -> list[tuple[float, float]]:
    space = SearchSpace.from_config(SPACE)
    study = Study.open(":memory:", "b", SPACE, OBJECTIVES)
    inner = name.removesuffix("-prescreen")
    known = None if inner == "mobo-modelled-params" else lookup.known
    strategy = MOBO(space, OBJECTIVES, seed=seed, known=known, **MOBO_VARIANTS[inner]) \
        if inner in MOBO_VARIANTS else STRATEGIES[inner](space, OBJECTIVES, seed=seed)
    out = []
    for _ in range(trials):
        trial = strategy.ask(study, 1)[0]
        if name.endswith("-prescreen") and prescreen is not None:
            trial = prescreen(study, trial)
        acc, params = lookup(trial.params)
        study.tell(trial.id, {"val_acc": acc, "params": params})
        out.append((acc, params))
    return out


def make_prescreen(candidates: int, proxy: str, images: int) -> Prescreen:
    """``search.prescreen`` as a search on the table would run it, on ``images`` CIFAR-10
    training images."""
    cfg = compose("search", ["space=nb201", "evaluator=nb201_table", "dataset=cifar10",
                             "dataset.root=unused"])
    batch = cifar10_batch(images, seed=0)
    return Prescreen(SearchSpace.from_config(SPACE), trial_base_config(cfg, "trial"),
                     DataShape(3, 10, 32), batch, candidates, proxy)


def run_optuna(name: str, seed: int, trials: int, lookup: Lookup) -> list[tuple[float, float]]:
    sampler = optuna.samplers.TPESampler(seed=seed) if name == "tpe" else \
        optuna.samplers.GPSampler(seed=seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    out = []
    for _ in range(trials):
        trial = study.ask()
        params = {f"edge_{i}": trial.suggest_categorical(f"edge_{i}", list(OPS)) for i in range(6)}
        acc, size = lookup(params)
        study.tell(trial, [acc, math.log(size)])
        out.append((acc, size))
    return out


def curves(results: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Regret (percentage points) and hypervolume after each trial."""
    best, regret = 0.0, []
    for acc, _ in results:
        best = max(best, acc)
        regret.append(100 * (OPTIMUM - best))
    Y = torch.tensor([[acc, -math.log(p)] for acc, p in results], dtype=torch.float64)
    return regret, hypervolume_curve(Y, torch.tensor(REF, dtype=torch.float64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=["random", "tpe", "gp", "mobo"])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--prescreen", type=int, default=8,
                        help="candidates per proposal of the *-prescreen strategies")
    parser.add_argument("--proxy", default="nwot", help="their zero-cost proxy")
    parser.add_argument("--prescreen-batch", type=int, default=64, help="images the proxy sees")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("linear_operator").setLevel(logging.ERROR)
    lookup = Lookup()
    prescreen = make_prescreen(args.prescreen, args.proxy, args.prescreen_batch) \
        if any(n.endswith("-prescreen") for n in args.strategies) else None
    marks = list(range(args.every, args.trials + 1, args.every))
    rows = {}
    for name in args.strategies:
        runs, started = [], time.perf_counter()
        for seed in args.seeds:
            if name.removesuffix("-prescreen") in (*MOBO_VARIANTS, *STRATEGIES):
                runs.append(curves(run_ours(name, seed, args.trials, lookup, prescreen)))
            else:
                runs.append(curves(run_optuna(name, seed, args.trials, lookup)))
        rows[name] = (runs, (time.perf_counter() - started) / len(args.seeds))
    for title, k, fmt in (("regret of the best cell (pp of CIFAR-10 test accuracy)", 0, ".2f"),
                          ("hypervolume (accuracy x -log params)", 1, ".4f")):
        print(f"\n{title}, mean ± std over seeds {args.seeds}\n")
        print("| strategy | " + " | ".join(f"{m} trials" for m in marks) + " | s / run |")
        print("|---" * (len(marks) + 2) + "|")
        for name, (runs, seconds) in rows.items():
            cells = []
            for m in marks:
                values = [r[k][m - 1] for r in runs]
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.fmean(values):{fmt}} ± {spread:{fmt}}")
            print(f"| {name} | " + " | ".join(cells) + f" | {seconds:.1f} |")


if __name__ == "__main__":
    main()
