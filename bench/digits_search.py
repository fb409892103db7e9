"""HNAG search on digits: hypervolume vs. trials for ``mobo`` vs. ``random``, several seeds.

Each (strategy, seed) is a real default search (``conf/search.yaml``: digits, CPU, val_acc vs.
params) in its own run directory. A strategy is a ``search=`` name, or ``<name>-cells`` for
``graphpnas``, ``mobo`` or ``random`` on the learned bottom-cell space (``generator=
learned_cells search_space=hnag_learned``: GraphPNAS learns the cells' graph).
``--max-minutes`` gives every search the same wall clock (``search.max_minutes``; ``--trials``
is then an upper bound). The hypervolume uses one fixed reference point for every run (val_acc
0.5, params at the dataset's budget), so the curves are comparable. Prints a markdown table of
mean ± std hypervolume after every ``--every`` trials (up to the fewest trials a run made), at
the end, and the trials and wall time of each search.

    python bench/digits_search.py --seeds 0 1 2 --trials 20 --out runs/bench-digits
    python bench/digits_search.py --strategies graphpnas-cells mobo-cells random-cells mobo random \
        --max-minutes 4 --trials 15 --every 3 --out runs/bench-digits-cells
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console

from nago_pl.config import compose
from nago_pl.search.pareto import hypervolume_curve, to_maximization
from nago_pl.search.report import scored_trials
from nago_pl.search.runner import run_search


def hypervolumes(study, ref_natural: list[float]) -> list[float]:
    """HV after each trial (failed trials repeat the previous value)."""
    ref = to_maximization(torch.tensor(ref_natural, dtype=torch.float64), study.objectives)
    scored = {t.id for t in scored_trials(study)}
    curve, done = [], []
    for trial in study.trials():
        if trial.id in scored:
            done.append([trial.values[o.name] for o in study.objectives])
        if not done:
            curve.append(0.0)
            continue
        Y = to_maximization(torch.tensor(done, dtype=torch.float64), study.objectives)
        curve.append(hypervolume_curve(Y, ref)[-1])
    return curve


#: Strategies that are more than a ``search=`` choice: ``<strategy>-cells`` searches the learned
#: bottom-cell space (every bottom cell one DAG, searched edge by edge).
CELLS = ["generator=learned_cells", "search_space=hnag_learned"]
SPECS = {f"{name}-cells": [f"search={name}", *CELLS] for name in ("graphpnas", "mobo", "random")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=["mobo", "random"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-digits"))
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="wall clock of every search (equal cost)")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    curves: dict[str, list[list[float]]] = {}
    minutes: dict[str, list[float]] = {}
    for seed in args.seeds:  # strategies interleaved: each seed sees them in the same load
        for strategy in args.strategies:
            budget = [] if args.max_minutes is None else \
                [f"search.max_minutes={args.max_minutes}"]
            cfg = compose("search", [*SPECS.get(strategy, [f"search={strategy}"]),
                                     f"seed={seed}", "logger=none", *budget,
                                     f"search.trials={args.trials}",
                                     f"study_name={strategy}-{seed}"])
            limit = float(cfg.network.param_limit)
            started = time.perf_counter()
            study = run_search(cfg, args.out / f"{strategy}-{seed}", Console(quiet=True))
            minutes.setdefault(strategy, []).append((time.perf_counter() - started) / 60)
            curves.setdefault(strategy, []).append(hypervolumes(study, [0.5, limit]))
            print(f"{strategy} seed {seed}: HV {curves[strategy][-1][-1]:.4f} after "
                  f"{len(curves[strategy][-1])} trials in {minutes[strategy][-1]:.1f} min",
                  flush=True)
    done = min(len(run) for runs in curves.values() for run in runs)
    marks = list(range(args.every, done + 1, args.every))
    print("\n| strategy | " + " | ".join(f"HV @ {m}" for m in marks)
          + " | HV at the end | trials | minutes/search |")
    print("|---|" + "---|" * (len(marks) + 3))
    for strategy, runs in curves.items():
        cells = []
        for m in marks:
            values = [run[m - 1] for run in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.fmean(values):.4f} ± {spread:.4f}")
        mins = minutes[strategy]
        final = [run[-1] for run in runs]
        spread = statistics.stdev(final) if len(final) > 1 else 0.0
        print(f"| {strategy} | " + " | ".join(cells) +
              f" | {statistics.fmean(final):.4f} ± {spread:.4f} | "
              f"{'/'.join(str(len(run)) for run in runs)} | "
              f"{statistics.fmean(mins):.1f} ({min(mins):.1f}–{max(mins):.1f}) |")


if __name__ == "__main__":
    main()
