"""Compare this project's optimisers with Optuna's on BoTorch's multi-objective test problems.

    .venv/bin/python bench/optimizers.py [--problems branin_currin dtlz2_2 dtlz2_3 zdt1 zdt3]
        [--methods mobo botorch random tpe nsga2] [--seeds 5] [--evals 60] [--q 1]

Every (problem, method, seed) run gets ``--evals`` noise-free evaluations; the score is
log10(max_hv - hv) of all evaluated points against the problem's reference point (lower is
better). BoTorch's own reference points serve BraninCurrin and DTLZ2; ZDT1 (a convex front) and
ZDT3 (a front in five pieces), 6 inputs each, are measured against 1.1 x their true nadir (BoTorch's
ZDT reference, 11 x the nadir, leaves every score dominated by the region no front reaches), and
their maximum hypervolume is that of 20,000 points of the true front. ``mobo`` gets the problem's
reference point (in its natural, minimised units); ``mobo-capped`` is MOBO with its qLogNEHVI
baseline cut to the MAX_UNCERTAIN_BASELINE likeliest points whatever the front's size (the rule
before issue 19, kept to show what the whole front is worth); ``botorch`` is a plain BoTorch qLogNEHVI loop
(:func:`run_botorch`: 10 Sobol points, then one GP per objective, ``prune_baseline=True``,
BoTorch's tutorial optimiser settings), the yardstick MOBO's own shortcuts must not fall below;
``tpe`` and ``nsga2`` are Optuna's ``TPESampler`` and ``NSGAIISampler`` with their defaults except
the seed and an NSGA-II population of ``--population`` (the default 50 leaves 60 evaluations at
one generation). The median proposal time of ``mobo`` and ``botorch`` goes in the table too.
Progress goes to stderr, a markdown table to stdout; warnings are silenced (on these noise-free
problems BoTorch warns about Cholesky jitter and retried acquisition optimisation).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import optuna
import torch
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.transforms.input import Normalize
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf
from botorch.sampling.normal import SobolQMCNormalSampler
from botorch.test_functions.base import MultiObjectiveTestProblem
from botorch.test_functions.multi_objective import DTLZ2, ZDT1, ZDT3, BraninCurrin
from botorch.utils.sampling import draw_sobol_samples, manual_seed
from gpytorch.mlls import SumMarginalLogLikelihood
from torch import Tensor

import nago_pl.search.strategies.mobo as mobo_module
from nago_pl.search import MOBO, Objective, RandomSearch, Study, hypervolume, to_maximization


@dataclass(frozen=True)
class Problem:
    """A minimised test function with the reference point it is scored against."""

    function: MultiObjectiveTestProblem
    ref_point: Tensor  # natural (minimised) units
    max_hv: float

    @classmethod
    def botorch(cls, function: MultiObjectiveTestProblem) -> Problem:
        """Scored against BoTorch's own reference point and maximum hypervolume."""
        return cls(function, function.ref_point.double(), float(function.max_hv))

    @classmethod
    def near_nadir(cls, function: MultiObjectiveTestProblem, points: int = 20_000) -> Problem:
        """Scored against 1.1 x the true nadir, with the hypervolume of ``points`` points of the
        true Pareto front as the maximum."""
        front = function.gen_pareto_front(points).double()
        ref = 1.1 * front.max(dim=0).values
        return cls(function, ref, hypervolume(-front, -ref))


PROBLEMS: dict[str, Callable[[], Problem]] = {
    "branin_currin": lambda: Problem.botorch(BraninCurrin()),
    "dtlz2_2": lambda: Problem.botorch(DTLZ2(dim=6, num_objectives=2)),
    "dtlz2_3": lambda: Problem.botorch(DTLZ2(dim=6, num_objectives=3)),
    "zdt1": lambda: Problem.near_nadir(ZDT1(dim=6)),
    "zdt3": lambda: Problem.near_nadir(ZDT3(dim=6)),
}
LABELS = {"branin_currin": "BraninCurrin (d=2, m=2)", "dtlz2_2": "DTLZ2 (d=6, m=2)",
          "dtlz2_3": "DTLZ2 (d=6, m=3)", "zdt1": "ZDT1 (d=6, m=2)", "zdt3": "ZDT3 (d=6, m=2)"}
METHODS = ["mobo", "mobo-capped", "botorch", "random", "tpe", "nsga2"]


def evaluate(problem: Problem, x: list[float]) -> list[float]:
    return problem.function(torch.tensor([x], dtype=torch.float64))[0].tolist()


def run_ours(problem: Problem, method: str, seed: int, evals: int,
             q: int) -> tuple[Tensor, list[float]]:
    """This project's ``mobo`` or ``random`` through the ask/tell API: every evaluated point and
    the wall time of each model-based ask."""
    function = problem.function
    names = [f"x{i}" for i in range(function.dim)]
    space = {n: {"type": "float", "low": float(lo), "high": float(hi)}
             for n, (lo, hi) in zip(names, function.bounds.T.tolist(), strict=True)}
    objectives = [Objective(f"f{j}", "min", ref=float(r))
                  for j, r in enumerate(problem.ref_point.tolist())]
    study = Study.open(":memory:", "bench", space, objectives)
    strategy = (MOBO(study.space, objectives, seed=seed)
                if method == "mobo" else RandomSearch(study.space, objectives, seed=seed))
    seconds = []
    while study.n_trials() < evals:
        start = time.perf_counter()
        trials = strategy.ask(study, min(q, evals - study.n_trials()))
        if all(t.info.get("source") == "bo" for t in trials):
            seconds.append(time.perf_counter() - start)
        for trial in trials:
            y = evaluate(problem, [trial.params[n] for n in names])
            study.tell(trial.id, {f"f{j}": v for j, v in enumerate(y)})
    return study.observations()[1], seconds


def run_botorch(problem: Problem, seed: int, evals: int, n_init: int = 10,
                mc_samples: int = 128) -> tuple[Tensor, list[float]]:
    """A plain BoTorch loop as its tutorials write it: ``n_init`` scrambled Sobol points, then
    one proposal at a time from qLogNEHVI (``prune_baseline=True``: every point with a chance
    of being Pareto-optimal) over one ``SingleTaskGP`` per objective, refitted every step.
    Returns every evaluated point (minimised units) and the wall time of each proposal."""
    function = problem.function
    bounds = function.bounds.double()
    X = draw_sobol_samples(bounds, n=n_init, q=1, seed=seed).squeeze(1)
    Y = -function(X)
    ref = -problem.ref_point
    seconds = []
    while X.shape[0] < evals:
        start = time.perf_counter()
        with manual_seed(seed * 100_003 + X.shape[0]):
            model = ModelListGP(*[
                SingleTaskGP(X, Y[:, j:j + 1], input_transform=Normalize(d=X.shape[-1],
                                                                         bounds=bounds),
                             outcome_transform=Standardize(m=1))
                for j in range(Y.shape[-1])])
            fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
            acqf = qLogNoisyExpectedHypervolumeImprovement(
                model, ref_point=ref, X_baseline=X, prune_baseline=True,
                sampler=SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples])))
            candidate, _ = optimize_acqf(acqf, bounds=bounds, q=1, num_restarts=10,
                                         raw_samples=512,
                                         options={"batch_limit": 5, "maxiter": 200})
        seconds.append(time.perf_counter() - start)
        X = torch.cat([X, candidate.detach()])
        Y = torch.cat([Y, -function(candidate.detach())])
    return -Y, seconds


def run_optuna(problem: Problem, method: str, seed: int, evals: int,
               population: int) -> Tensor:
    function = problem.function
    sampler = (optuna.samplers.TPESampler(seed=seed) if method == "tpe"
               else optuna.samplers.NSGAIISampler(seed=seed, population_size=population))
    study = optuna.create_study(directions=["minimize"] * function.num_objectives,
                                sampler=sampler)
    bounds = function.bounds.T.tolist()

    def objective(trial: optuna.Trial) -> list[float]:
        return evaluate(problem, [trial.suggest_float(f"x{i}", lo, hi)
                                  for i, (lo, hi) in enumerate(bounds)])

    study.optimize(objective, n_trials=evals)
    return torch.tensor([t.values for t in study.trials], dtype=torch.float64)


def score(problem: Problem, values: Tensor) -> float:
    """log10 of the hypervolume gap to the problem's maximum (minimised objectives)."""
    objectives = [Objective(f"f{j}", "min") for j in range(values.shape[-1])]
    hv = hypervolume(to_maximization(values, objectives),
                     to_maximization(problem.ref_point, objectives))
    return math.log10(max(problem.max_hv - hv, 1e-12))


def run(problem: Problem, method: str, seed: int, args: argparse.Namespace
        ) -> tuple[Tensor, list[float]]:
    """Every evaluated point of one run, and its proposal times (model-based methods only)."""
    if method == "mobo-capped":
        certain, mobo_module.CERTAIN_PARETO = mobo_module.CERTAIN_PARETO, 2.0  # none is certain
        try:
            return run_ours(problem, "mobo", seed, args.evals, args.q)
        finally:
            mobo_module.CERTAIN_PARETO = certain
    if method in ("mobo", "random"):
        return run_ours(problem, method, seed, args.evals, args.q)
    if method == "botorch":
        return run_botorch(problem, seed, args.evals)
    return run_optuna(problem, method, seed, args.evals, args.population), []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--evals", type=int, default=60)
    parser.add_argument("--q", type=int, default=1, help="mobo batch size")
    parser.add_argument("--population", type=int, default=20, help="NSGA-II population")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # noise-free problems make BoTorch warn about Cholesky jitter and retried L-BFGS-B runs
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)  # MOBO proposes on one thread; the plain loop gets the same
    rows = []
    for name in args.problems:
        problem = PROBLEMS[name]()
        for method in args.methods:
            scores, seconds, proposals = [], [], []
            for seed in range(args.seeds):
                start = time.perf_counter()
                values, proposal_seconds = run(problem, method, seed, args)
                seconds.append(time.perf_counter() - start)
                proposals += proposal_seconds
                scores.append(score(problem, values))
                print(f"{name} {method} seed {seed}: {scores[-1]:.3f} ({seconds[-1]:.1f} s)",
                      file=sys.stderr, flush=True)
            std = statistics.stdev(scores) if len(scores) > 1 else 0.0
            median = f"{statistics.median(proposals):.2f}" if proposals else "–"
            rows.append((LABELS[name], method, statistics.mean(scores), std,
                         statistics.mean(seconds), median, scores))
    print(f"\nlog10 hypervolume difference after {args.evals} evaluations, mean ± std over "
          f"{args.seeds} seeds (lower is better)\n")
    print("| problem | method | log10 HV diff | per seed | s / run | median proposal (s) |")
    print("|---|---|---:|---|---:|---:|")
    for label, method, mean, std, secs, median, scores in rows:
        per_seed = " ".join(f"{s:.2f}" for s in scores)
        print(f"| {label} | {method} | {mean:.3f} ± {std:.3f} | {per_seed} | {secs:.1f} "
              f"| {median} |")


if __name__ == "__main__":
    main()
