"""Compare this project's optimisers with Optuna's on BoTorch's multi-objective test problems.

    .venv/bin/python bench/optimizers.py [--problems branin_currin dtlz2_2 dtlz2_3]
        [--methods mobo random tpe nsga2] [--seeds 5] [--evals 60] [--q 1]

Every (problem, method, seed) run gets ``--evals`` noise-free evaluations; the score is
log10(max_hv - hv) of all evaluated points against the problem's reference point (lower is
better). ``mobo`` gets the problem's reference point (in its natural, minimised units), ``tpe`` and
``nsga2`` are Optuna's ``TPESampler`` and ``NSGAIISampler`` with their defaults except the seed
and an NSGA-II population of ``--population`` (the default 50 leaves 60 evaluations at one
generation). Progress goes to stderr, a markdown table to stdout; warnings are silenced (on these
noise-free problems BoTorch warns about Cholesky jitter and retried acquisition optimisation).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import optuna
import torch
from botorch.test_functions.base import MultiObjectiveTestProblem
from botorch.test_functions.multi_objective import DTLZ2, BraninCurrin

from nago_pl.search import MOBO, Objective, RandomSearch, Study, hypervolume, to_maximization

PROBLEMS: dict[str, Callable[[], MultiObjectiveTestProblem]] = {
    "branin_currin": BraninCurrin,
    "dtlz2_2": lambda: DTLZ2(dim=6, num_objectives=2),
    "dtlz2_3": lambda: DTLZ2(dim=6, num_objectives=3),
}
LABELS = {"branin_currin": "BraninCurrin (d=2, m=2)", "dtlz2_2": "DTLZ2 (d=6, m=2)",
          "dtlz2_3": "DTLZ2 (d=6, m=3)"}


def evaluate(problem: MultiObjectiveTestProblem, x: list[float]) -> list[float]:
    return problem(torch.tensor([x], dtype=torch.float64))[0].tolist()


def run_ours(problem: MultiObjectiveTestProblem, method: str, seed: int, evals: int,
             q: int) -> torch.Tensor:
    names = [f"x{i}" for i in range(problem.dim)]
    space = {n: {"type": "float", "low": float(lo), "high": float(hi)}
             for n, (lo, hi) in zip(names, problem.bounds.T.tolist(), strict=True)}
    objectives = [Objective(f"f{j}", "min", ref=float(r))
                  for j, r in enumerate(problem.ref_point.tolist())]
    study = Study.open(":memory:", "bench", space, objectives)
    strategy = (MOBO(study.space, objectives, seed=seed)
                if method == "mobo" else RandomSearch(study.space, objectives, seed=seed))
    while study.n_trials() < evals:
        for trial in strategy.ask(study, min(q, evals - study.n_trials())):
            y = evaluate(problem, [trial.params[n] for n in names])
            study.tell(trial.id, {f"f{j}": v for j, v in enumerate(y)})
    return study.observations()[1]


def run_optuna(problem: MultiObjectiveTestProblem, method: str, seed: int, evals: int,
               population: int) -> torch.Tensor:
    sampler = (optuna.samplers.TPESampler(seed=seed) if method == "tpe"
               else optuna.samplers.NSGAIISampler(seed=seed, population_size=population))
    study = optuna.create_study(directions=["minimize"] * problem.num_objectives,
                                sampler=sampler)
    bounds = problem.bounds.T.tolist()

    def objective(trial: optuna.Trial) -> list[float]:
        return evaluate(problem, [trial.suggest_float(f"x{i}", lo, hi)
                                  for i, (lo, hi) in enumerate(bounds)])

    study.optimize(objective, n_trials=evals)
    return torch.tensor([t.values for t in study.trials], dtype=torch.float64)


def score(problem: MultiObjectiveTestProblem, values: torch.Tensor) -> float:
    """log10 of the hypervolume gap to the problem's maximum (minimised objectives)."""
    objectives = [Objective(f"f{j}", "min") for j in range(problem.num_objectives)]
    hv = hypervolume(to_maximization(values, objectives),
                     to_maximization(problem.ref_point.double(), objectives))
    return math.log10(max(problem.max_hv - hv, 1e-12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--methods", nargs="+", default=["mobo", "random", "tpe", "nsga2"],
                        choices=["mobo", "random", "tpe", "nsga2"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--evals", type=int, default=60)
    parser.add_argument("--q", type=int, default=1, help="mobo batch size")
    parser.add_argument("--population", type=int, default=20, help="NSGA-II population")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # noise-free problems make BoTorch warn about Cholesky jitter and retried L-BFGS-B runs
    warnings.simplefilter("ignore")
    rows = []
    for name in args.problems:
        problem = PROBLEMS[name]()
        for method in args.methods:
            scores, seconds = [], []
            for seed in range(args.seeds):
                start = time.perf_counter()
                values = (run_ours(problem, method, seed, args.evals, args.q)
                          if method in ("mobo", "random")
                          else run_optuna(problem, method, seed, args.evals, args.population))
                seconds.append(time.perf_counter() - start)
                scores.append(score(problem, values))
                print(f"{name} {method} seed {seed}: {scores[-1]:.3f} ({seconds[-1]:.1f} s)",
                      file=sys.stderr, flush=True)
            std = statistics.stdev(scores) if len(scores) > 1 else 0.0
            rows.append((LABELS[name], method, statistics.mean(scores), std,
                         statistics.mean(seconds)))
    print(f"\nlog10 hypervolume difference after {args.evals} evaluations, mean ± std over "
          f"{args.seeds} seeds (lower is better)\n")
    print("| problem | method | log10 HV diff | s / run |")
    print("|---|---|---:|---:|")
    for label, method, mean, std, secs in rows:
        print(f"| {label} | {method} | {mean:.3f} ± {std:.3f} | {secs:.1f} |")


if __name__ == "__main__":
    main()
