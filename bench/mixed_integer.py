"""How should MOBO model integer and log-scale inputs? A mixed-integer two-objective benchmark.

    PYTHONPATH=. .venv/bin/python bench/mixed_integer.py [--problems nago dtlz2_mixed]
        [--methods mobo plain random n10 ...] [--seeds 5] [--first-seed 0] [--evals 40]
        [--num-restarts 4] [--raw-samples 64] [--mc-samples 64] [--maxiter 30] [--fit-maxiter 60]

Problems (every input integer or float, some on a log scale; two objectives):

* ``nago``: the nine searched NAGO values (``conf/search.yaml``: five ints, three floats, and the
  log-scale int ``param_limit`` in 2e4..1e5) on a cheap analytic surrogate of a NAGO training run.
  ``params`` (min, modelled in log) follows from filling the budget with an integer channel count
  (a staircase just under ``param_limit``); ``val_acc`` (max) grows with capacity and has an
  interior optimum in every structural value, interactions (depth G1+G3, width vs. graph size)
  and integer-level ruggedness; it is observed with N(0, 0.003) training noise. Scored on the
  noise-free values.
* ``dtlz2_mixed``: BoTorch's DTLZ2 (d=6, m=2) with inputs x1..x4 discretised: x1 = k/4
  (k in 0..4), x2 = k/9 (0..9), x3 = (k-1)/7 (1..8) and x4 = log(k)/log(64) (log int 1..64);
  x0 and x5 stay floats.
* ``branin_currin_int``: BoTorch's BraninCurrin with Branin's first input an integer (-5..10).

Methods, all at batch 1 and the same evaluation count (``--evals``):

* ``mobo``: ``nago_pl.search.MOBO`` as it is (Sobol design of 2(d+1), GP on bin centres,
  restarts snapped to their bins, the best restart not already taken).
* ``plain``: a plain BoTorch loop: 10 Sobol points, a GP per objective on the continuous
  relaxation (the GP sees the unrounded points), qLogNEHVI, the best L-BFGS-B restart; inputs
  are rounded only to evaluate.
* ``random``: ``nago_pl.search.RandomSearch``.
* one change at a time to ``mobo`` (class :class:`Variant`):
  ``n10`` (Sobol design of 10), ``contX`` (the GP is fitted on the continuous proposals, not on
  bin centres, Sobol points included), ``snapval`` (restarts ranked by the acquisition value of
  their snapped point, not of the continuous optimum), ``notaken`` (no "not yet taken" rule),
  ``warp`` (BoTorch ``Warp`` input transform, Kumaraswamy CDF on every input with LogNormal
  priors, as in BoTorch's tutorial), ``round`` (BoTorch ``Round`` input transform inside the GP:
  unit -> integer index -> round (straight-through gradient, Daulton et al. 2022) -> bin
  centre, for the linear ints), ``mixed`` (``optimize_acqf_mixed_alternating``: discrete local
  search over bin centres alternating with L-BFGS-B on the floats);
  combinations are written with ``+`` (e.g. ``n10+warp``).

The score is the hypervolume of all evaluated points (noise-free values, maximisation orientation,
log for log-modelled objectives) against the problem's fixed reference point (higher is better).
Every method gets the problem's reference point. Progress goes to stderr, markdown to stdout;
per-run scores (and the hypervolume after every evaluation) are also appended as JSON lines to
``--out``, and ``--table A.jsonl B.jsonl`` prints the table of such files without running.
``--fit-maxiter`` caps the L-BFGS-B iterations of every GP fit, MOBO's included (time).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.fit import fit_gpytorch_mll
from botorch.fit import fit_gpytorch_mll as _fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms.input import ChainedInputTransform, Normalize, Round, Warp
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf
from botorch.optim.optimize_mixed import optimize_acqf_mixed_alternating
from botorch.test_functions.multi_objective import DTLZ2, BraninCurrin
from botorch.utils.sampling import manual_seed
from gpytorch.mlls import SumMarginalLogLikelihood
from gpytorch.priors import LogNormalPrior
from torch import Tensor

from nago_pl.search import (
    MOBO,
    NAGO_SPACE,
    Objective,
    RandomSearch,
    SearchSpace,
    Study,
    hypervolume,
    hypervolume_curve,
    to_maximization,
    trial_seed,
)
from nago_pl.search.strategies import mobo as mobo_module
from nago_pl.search.strategies.mobo import _is_taken, make_acquisition, torch_threads

# ----------------------------------------------------------------------------------- problems


@dataclass
class Problem:
    """A benchmark: space (config form), objectives, fixed reference point (natural units), and
    ``evaluate(config, rng) -> (observed values, noise-free values)``."""

    label: str
    space: dict[str, dict[str, Any]]
    objectives: list[Objective]
    ref_point: list[float]
    evaluate: Callable[[dict[str, Any], torch.Generator], tuple[dict[str, float],
                                                                  dict[str, float]]]
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


NAGO_BENCH_SPACE: dict[str, dict[str, Any]] = {
    **NAGO_SPACE,
    "param_limit": {"type": "int", "low": 20_000, "high": 100_000, "log": True},
}


def nago_surrogate(c: dict[str, Any]) -> tuple[float, float]:
    """(val_acc, params) of a NAGO-like network, noise-free."""
    n1, k1, p1 = c["G1_nodes"], c["G1_K"], c["G1_P"]
    n2, p2 = c["G2_nodes"], c["G2_P"]
    n3, k3, p3 = c["G3_nodes"], c["G3_K"], c["G3_P"]
    budget = c["param_limit"]
    # cost of one channel^2 unit: nodes x edges per node, repeated over the stages of G2
    edges1 = n1 * (1 + 0.25 * min(k1, n1 - 1)) * (0.7 + 0.3 * p1)
    edges3 = n3 * (1 + 0.25 * min(k3, n3 - 1)) * (0.7 + 0.3 * p3)
    width = (edges1 + edges3) * (1 + 0.15 * n2 * (0.5 + p2))
    channels = max(1, math.floor(math.sqrt((budget - 2_000) / (9 * width))))
    params = 9 * width * channels ** 2 + 2_000
    # accuracy: capacity (saturating in log params), too few channels, structure, ruggedness
    acc = 0.96 - 0.22 * math.exp(-(math.log(params) - math.log(1.2e4)) / 0.8)
    acc -= 0.06 * max(0.0, 8 - channels) ** 1.5 / 8 ** 1.5
    acc -= 0.0025 * (n1 + n3 - 13) ** 2                    # total depth ~ 13
    acc -= 0.004 * abs(n1 - 7)                             # G1 a bit deeper than G3
    acc -= 0.012 * (k1 - 4) ** 2 + 0.010 * (k3 - 3) ** 2   # ring lattice degree
    acc -= 0.10 * (p1 - 0.35) ** 2 + 0.08 * (p3 - 0.6) ** 2
    acc -= 0.006 * abs(n2 - 4) ** 1.3 + 0.06 * (p2 - 0.5) ** 2 * (n2 > 1)
    acc += 0.008 * math.cos(1.9 * n1 + 1.3 * n3 + 2.0 * n2) * (0.5 + p1)
    acc += 0.006 * math.sin(2.3 * k1 * k3 + 0.7 * n2)
    return acc, params


def _nago_evaluate(config: dict[str, Any], rng: torch.Generator
                   ) -> tuple[dict[str, float], dict[str, float]]:
    acc, params = nago_surrogate(config)
    noise = 0.003 * float(torch.randn(1, generator=rng, dtype=torch.float64))
    return {"val_acc": acc + noise, "params": params}, {"val_acc": acc, "params": params}


def _botorch_evaluate(problem: Any, to_x: Callable[[dict[str, Any]], list[float]]):
    def evaluate(config: dict[str, Any], rng: torch.Generator
                 ) -> tuple[dict[str, float], dict[str, float]]:
        y = problem(torch.tensor([to_x(config)], dtype=torch.float64))[0].tolist()
        values = {f"f{j}": v for j, v in enumerate(y)}
        return values, values
    return evaluate


def _dtlz2_x(c: dict[str, Any]) -> list[float]:
    return [c["x0"], c["k1"] / 4, c["k2"] / 9, (c["k3"] - 1) / 7,
            math.log(c["k4"]) / math.log(64), c["x5"]]


def _branin_x(c: dict[str, Any]) -> list[float]:
    return [(c["k0"] + 5) / 15, c["x1"]]


def make_problem(name: str) -> Problem:
    if name == "nago":
        return Problem("NAGO surrogate (d=9: 5 int + log int + 3 float)", NAGO_BENCH_SPACE,
                       [Objective("val_acc", "max"), Objective("params", "min", log=True)],
                       [0.7, 100_000.0], _nago_evaluate)
    if name == "dtlz2_mixed":
        space = {"x0": {"type": "float", "low": 0.0, "high": 1.0},
                 "k1": {"type": "int", "low": 0, "high": 4},
                 "k2": {"type": "int", "low": 0, "high": 9},
                 "k3": {"type": "int", "low": 1, "high": 8},
                 "k4": {"type": "int", "low": 1, "high": 64, "log": True},
                 "x5": {"type": "float", "low": 0.0, "high": 1.0}}
        problem = DTLZ2(dim=6, num_objectives=2)
        return Problem("DTLZ2 mixed (d=6: 3 int + log int + 2 float)", space,
                       [Objective("f0", "min"), Objective("f1", "min")],
                       problem.ref_point.tolist(), _botorch_evaluate(problem, _dtlz2_x))
    if name == "branin_currin_int":
        space = {"k0": {"type": "int", "low": -5, "high": 10},
                 "x1": {"type": "float", "low": 0.0, "high": 1.0}}
        problem = BraninCurrin()
        return Problem("BraninCurrin, int x0 (d=2: 1 int + 1 float)", space,
                       [Objective("f0", "min"), Objective("f1", "min")],
                       problem.ref_point.tolist(), _botorch_evaluate(problem, _branin_x))
    raise ValueError(name)


PROBLEMS = ["nago", "dtlz2_mixed", "branin_currin_int"]

# ------------------------------------------------------------------------------------ methods

#: Variant options of each method name (combined with "+"); "mobo" and "random" are the
#: project's own classes, "plain" the plain BoTorch loop.
CHANGES: dict[str, dict[str, Any]] = {
    "n10": {"n_init": 10},
    "contX": {"gp_x": "continuous"},
    "snapval": {"select": "snapped"},
    "notaken": {"taken": False},
    "warp": {"warp": True},
    "round": {"round": True},
    "mixed": {"optimizer": "mixed"},
}
PLAIN = {"n_init": 10, "gp_x": "continuous", "taken": False}


class Variant(MOBO):
    """``MOBO`` with one or more modelling choices changed (batch 1 only; defaults = MOBO).

    gp_x: "rounded" (bin centres of what was evaluated, as MOBO) or "continuous" (the unrounded
    point the optimiser or the Sobol sequence produced); select: "continuous" (restarts ranked by
    the acquisition value at their continuous optimum, as MOBO) or "snapped" (at their snapped
    point); taken: skip restarts whose snapped point is an existing trial (as MOBO); warp / round:
    input transforms of every GP; optimizer: "lbfgs" (``optimize_acqf``) or "mixed"
    (``optimize_acqf_mixed_alternating``).
    """

    def __init__(self, space: SearchSpace, objectives: list[Objective], seed: int = 0, *,
                 gp_x: str = "rounded", select: str = "continuous", taken: bool = True,
                 warp: bool = False, round: bool = False, optimizer: str = "lbfgs",
                 **kwargs: Any) -> None:
        super().__init__(space, objectives, seed, **kwargs)
        self.gp_x, self.select, self.taken_rule = gp_x, select, taken
        self.warp, self.round, self.optimizer = warp, round, optimizer
        self._u: dict[int, Tensor] = {}  # trial id -> the continuous unit point it came from

    # -- model
    def _input_transform(self) -> Any:
        d = self.space.dim
        if self.warp and self.round:
            raise ValueError("warp and round together are not implemented")
        if self.warp:
            return Warp(d=d, indices=list(range(d)), bounds=self.space.bounds(),
                        concentration1_prior=LogNormalPrior(0.0, 0.75 ** 0.5),
                        concentration0_prior=LogNormalPrior(0.0, 0.75 ** 0.5))
        if self.round:
            ints = [j for j, p in enumerate(self.space.params) if p.kind == "int" and not p.log]
            if not ints:
                return None
            # unit -> integer index space (bin j of n spans [j - 0.5, j + 0.5]) -> round -> unit
            index_bounds = torch.zeros(2, d, dtype=torch.float64)
            index_bounds[1] = 1.0
            for j in ints:
                index_bounds[:, j] = torch.tensor([-0.5, self.space.params[j].n_values - 0.5])
            return ChainedInputTransform(
                to_index=Normalize(d=d, indices=ints, bounds=index_bounds[:, ints],
                                   reverse=True, transform_on_train=False),
                round=Round(integer_indices=ints, transform_on_train=False),
                to_unit=Normalize(d=d, indices=ints, bounds=index_bounds[:, ints],
                                  transform_on_train=False))
        return None

    def _fit(self, X: Tensor, Y: Tensor) -> Model:
        gps = [SingleTaskGP(X, Y[:, j:j + 1], outcome_transform=Standardize(m=1),
                            input_transform=self._input_transform())
               for j in range(Y.shape[-1])]
        model = ModelListGP(*gps)
        fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
        return model

    # -- candidates: (restarts x d continuous points, their ranking values)
    def _candidates(self, acqf: AcquisitionFunction) -> tuple[Tensor, Tensor]:
        if self.optimizer == "mixed":
            bounds = self.space.bounds()
            discrete: dict[int, list[float]] = {}
            for j, p in enumerate(self.space.params):
                if p.kind == "int" and p.n_values <= 20:
                    centres = [p.encode(v) for v in range(int(p.low), int(p.high) + 1)]
                    discrete[j] = centres
                    bounds[:, j] = torch.tensor([centres[0], centres[-1]],
                                                dtype=torch.float64)
            cand, value = optimize_acqf_mixed_alternating(
                acqf, bounds=bounds, discrete_dims=discrete, q=1,
                num_restarts=self.num_restarts, raw_samples=self.raw_samples,
                options={"maxiter_continuous": 8, "maxiter_alternating": 16})
            return cand.detach(), value.detach().reshape(1)
        cands, values = optimize_acqf(acqf, bounds=self.space.bounds(), q=1,
                                      num_restarts=self.num_restarts,
                                      raw_samples=self.raw_samples,
                                      options={"maxiter": self.maxiter},
                                      return_best_only=False)
        cands = cands[:, 0, :].detach()
        if self.select == "snapped":
            with torch.no_grad():
                values = acqf(self.space.round_unit(cands)[:, None, :])
        return cands, values.detach()

    def ask(self, study: Study, n: int = 1) -> list:
        assert n == 1 and not study.pending(), "Variant supports batch 1 only"
        start = study.n_trials()
        done = [t for t in study.trials(("complete", "pruned"))
                if all(math.isfinite((t.values or {}).get(o.name, math.nan))
                       for o in self.objectives)]
        if start < self.n_init or len(done) < 2:
            engine = torch.quasirandom.SobolEngine(self.space.dim, scramble=True,
                                                   seed=trial_seed(self.seed, 0, stream=1))
            u = engine.draw(start + 1, dtype=torch.float64)[-1]
            return [self._add(study, u, start, "sobol")]
        values = torch.tensor([[t.values[o.name] for o in self.objectives] for t in done],
                              dtype=torch.float64)
        Y = to_maximization(values, self.objectives)
        if self.gp_x == "continuous":
            X = torch.stack([self._u[t.id] for t in done])
        else:
            X = self.space.to_unit([t.params for t in done])
        taken = self.space.to_unit([t.params for t in study.trials()])
        rng_seed = trial_seed(self.seed, start, stream=1)
        with manual_seed(rng_seed), torch_threads(self.num_threads):
            model = self._fit(X, Y)
            acqf = make_acquisition(model, X, study.reference_point(), None, self.mc_samples)
            cands, scores = self._candidates(acqf)
        order = scores.argsort(descending=True).tolist()
        snapped = self.space.round_unit(cands)
        pick = order[0]
        if self.taken_rule:
            pick = next((i for i in order if not _is_taken(snapped[i], taken)), None)
            if pick is None:  # every restart taken: a random new point (as MOBO)
                gen = torch.Generator().manual_seed(rng_seed)
                fallback = self.space.round_unit(
                    torch.rand(100, self.space.dim, generator=gen, dtype=torch.float64))
                u = next((x for x in fallback if not _is_taken(x, taken)), snapped[order[0]])
                return [self._add(study, u, start, "bo")]
        return [self._add(study, cands[pick], start, "bo")]

    def _add(self, study: Study, u: Tensor, index: int, source: str):
        config = self.space.from_unit(u[None])[0]
        trial = study.add_trial(config, trial_seed(self.seed, index), info={"source": source})
        self._u[trial.id] = u.clone()
        return trial


def cap_fit_iterations(maxiter: int) -> None:
    """Cap the L-BFGS-B iterations of every GP fit, MOBO's included (to save time uniformly)."""
    global fit_gpytorch_mll

    def capped(mll: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("optimizer_kwargs", {"options": {"maxiter": maxiter}})
        return _fit_gpytorch_mll(mll, **kwargs)

    fit_gpytorch_mll = capped
    mobo_module.fit_gpytorch_mll = capped


def make_method(method: str, space: SearchSpace, objectives: list[Objective], seed: int,
                opts: dict[str, int]) -> Any:
    """``objectives`` carry the reference point (``ref``). ``mobo`` and the variants keep the
    Sobol design this study started from, 2·(d+1), unless a variant changes it."""
    if method == "random":
        return RandomSearch(space, objectives, seed=seed)
    design = {"n_init": 2 * (space.dim + 1)}
    if method == "mobo":
        return MOBO(space, objectives, seed=seed, **design, **opts)
    changes: dict[str, Any] = {}
    for part in method.split("+"):
        changes.update(PLAIN if part == "plain" else CHANGES[part])
    return Variant(space, objectives, seed=seed, **{**design, **changes}, **opts)


def run(problem: Problem, method: str, seed: int, evals: int, opts: dict[str, int]
        ) -> tuple[float, int, list[float]]:
    """Final hypervolume (noise-free values), the number of distinct configs evaluated and the
    hypervolume after every evaluation."""
    objectives = [Objective(o.name, o.direction, o.log, ref)
                  for o, ref in zip(problem.objectives, problem.ref_point, strict=True)]
    study = Study.open(":memory:", "bench", problem.space, objectives)
    strategy = make_method(method, study.space, objectives, seed, opts)
    rng = torch.Generator().manual_seed(10_007 * seed + 1)
    true_rows, configs = [], set()
    while study.n_trials() < evals:
        for trial in strategy.ask(study, 1):
            observed, true = problem.evaluate(trial.params, rng)
            study.tell(trial.id, observed)
            true_rows.append([true[o.name] for o in problem.objectives])
            configs.add(tuple(sorted(trial.params.items())))
    Y = to_maximization(torch.tensor(true_rows, dtype=torch.float64), problem.objectives)
    ref = to_maximization(torch.tensor(problem.ref_point, dtype=torch.float64),
                          problem.objectives)
    curve = hypervolume_curve(Y, ref)
    return hypervolume(Y, ref), len(configs), curve


# --------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", default=["nago", "dtlz2_mixed"],
                        choices=PROBLEMS)
    parser.add_argument("--methods", nargs="+",
                        default=["mobo", "plain", "n10", "random", "contX", "notaken", "warp",
                                 "round", "mixed"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--evals", type=int, default=40)
    parser.add_argument("--num-restarts", type=int, default=4)
    parser.add_argument("--raw-samples", type=int, default=64)
    parser.add_argument("--mc-samples", type=int, default=64)
    parser.add_argument("--maxiter", type=int, default=30)
    parser.add_argument("--fit-maxiter", type=int, default=60,
                        help="cap on L-BFGS-B iterations of every GP fit (all methods)")
    parser.add_argument("--out", default=None, help="JSON lines file of per-run results")
    parser.add_argument("--table", nargs="+", default=None, metavar="JSONL",
                        help="only print the table of earlier --out files (no runs)")
    args = parser.parse_args()
    if args.table:
        print(table_from_jsonl(args.table))
        return
    torch.set_num_threads(1)
    if args.fit_maxiter is not None:
        cap_fit_iterations(args.fit_maxiter)
    # noise-free problems make BoTorch warn about Cholesky jitter and retried L-BFGS-B runs
    warnings.simplefilter("ignore")
    opts = {"num_restarts": args.num_restarts, "raw_samples": args.raw_samples,
            "mc_samples": args.mc_samples, "maxiter": args.maxiter, "num_threads": 1}
    results: dict[tuple[str, str], list[float]] = {}
    seconds: dict[tuple[str, str], list[float]] = {}
    for name in args.problems:
        problem = make_problem(name)
        for method in args.methods:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                start = time.perf_counter()
                hv, distinct, curve = run(problem, method, seed, args.evals, opts)
                secs = time.perf_counter() - start
                results.setdefault((name, method), []).append(hv)
                seconds.setdefault((name, method), []).append(secs)
                print(f"{name} {method} seed {seed}: hv {hv:.4f} distinct {distinct} "
                      f"({secs:.1f} s)", file=sys.stderr, flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps({"problem": name, "method": method, "seed": seed,
                                            "hv": hv, "distinct": distinct,
                                            "seconds": secs,
                                            "curve": [round(h, 6) for h in curve]}) + "\n")
    print(table(results, seconds, args.problems, args.methods))


def table_from_jsonl(paths: list[str]) -> str:
    results: dict[tuple[str, str], list[float]] = {}
    seconds: dict[tuple[str, str], list[float]] = {}
    problems: list[str] = []
    methods: list[str] = []
    for path in paths:
        with open(path) as f:
            rows = sorted((json.loads(line) for line in f if line.strip()),
                          key=lambda r: r["seed"])
        for row in rows:
            key = (row["problem"], row["method"])
            results.setdefault(key, []).append(row["hv"])
            seconds.setdefault(key, []).append(row["seconds"])
            problems += [row["problem"]] * (row["problem"] not in problems)
            methods += [row["method"]] * (row["method"] not in methods)
    return table(results, seconds, problems, methods)


def table(results: dict[tuple[str, str], list[float]], seconds: dict[tuple[str, str], list[float]],
          problems: list[str], methods: list[str]) -> str:
    lines = ["| problem | method | final HV (mean ± std) | wins vs mobo | s / run |",
             "|---|---|---:|---:|---:|"]
    for name in problems:
        base = results.get((name, "mobo"))
        for method in methods:
            hv = results.get((name, method))
            if not hv:
                continue
            std = statistics.stdev(hv) if len(hv) > 1 else 0.0
            wins = ("—" if method == "mobo" or not base else
                    f"{sum(h > b + 1e-12 for h, b in zip(hv, base, strict=False))}/{len(hv)}")
            lines.append(f"| {make_problem(name).label} | {method} | "
                         f"{statistics.mean(hv):.4f} ± {std:.4f} | {wins} | "
                         f"{statistics.mean(seconds[(name, method)]):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
