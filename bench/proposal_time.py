"""Wall time of one MOBO proposal (q=1) vs the number of trials, 8-D NAGO space, with and
without per-epoch reports.

    .venv/bin/python bench/proposal_time.py [--sizes 10 50 100 200 400] [--reps 5] [--threads 1]
        [--baselines front capped]

Each size gets two Studies of that many trials (uniform configs, two synthetic objectives: a
bumpy accuracy to maximise and a log-modelled parameter count to minimise). ``final``: every
trial complete with its final values only (what the surrogate saw before the fidelity model).
``curves``: every trial reports a 20-epoch learning curve; 60 % are pruned at epoch 3, 6 or 12,
the rest complete, so the fidelity model sees early points. Every timed ``MOBO.ask(study, 1)``
proposal is then failed so it does not pile up as a pending point. Prints a markdown table:
median/min/max proposal time, median GP fit time on its own, the GP training points, and the
qLogNEHVI baseline size of the last proposal.

``--baselines`` times qLogNEHVI baseline rules side by side, their proposals interleaved so that
both see the same machine load: ``front`` (MOBO's: the whole likely front plus at most
MAX_UNCERTAIN_BASELINE uncertain points) and ``capped`` (every point counted uncertain: at most
MAX_UNCERTAIN_BASELINE points in all, the rule before issue 19).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

import nago_pl.search.strategies.mobo as mobo_module
from nago_pl.search import MOBO, NAGO_SPACE, Objective, SearchSpace, Study
from nago_pl.search.fidelity import curve_data
from nago_pl.search.strategies.mobo import fit_curve_models, torch_threads

#: MOBO's CERTAIN_PARETO under each ``--baselines`` rule (above 1: nothing counts as certain).
BASELINE_RULES = {"front": mobo_module.CERTAIN_PARETO, "capped": 2.0}

OBJECTIVES = [Objective("val_acc", "max", ref=0.2), Objective("params", "min", log=True)]
EPOCHS = 20


def synthetic(x: torch.Tensor) -> dict[str, float]:
    """Accuracy-like and size-like objectives of a unit point (conflicting, smooth + bumps)."""
    acc = 0.95 - 0.4 * float(((x - 0.65) ** 2).mean()) + 0.02 * math.sin(12 * float(x[2]))
    params = 2e5 * math.exp(3.0 * float(x[[0, 3, 5]].mean()) + 0.5 * float(x[6]))
    return {"val_acc": acc, "params": params}


def make_study(space: SearchSpace, n: int, seed: int, curves: bool) -> Study:
    study = Study.open(":memory:", f"bench-{n}-{curves}", NAGO_SPACE, OBJECTIVES)
    for i, config in enumerate(space.uniform(n, seed)):
        trial = study.add_trial(config, seed=i)
        final = synthetic(space.to_unit([config])[0])
        if not curves:
            study.tell(trial.id, final)
            continue
        stop = (3, 6, 12, EPOCHS, EPOCHS)[i % 5]
        for epoch in range(1, stop + 1):
            acc = 0.1 + (final["val_acc"] - 0.1) * (1 - math.exp(-epoch / (2 + i % 7)))
            extra = {"params": final["params"]} if epoch == 1 else {}
            study.report(trial.id, epoch, {"val_acc": acc, **extra})
        study.tell(trial.id, None, status="complete" if stop == EPOCHS else "pruned",
                   epochs=stop)
    return study


class BaselineSize:
    """Records the size of the baseline each qLogNEHVI built by MOBO keeps."""

    def __init__(self) -> None:
        self.last = 0
        self.rule = mobo_module.pareto_baseline

    def __call__(self, *args: object, **kwargs: object) -> torch.Tensor:
        baseline = self.rule(*args, **kwargs)
        self.last = baseline.shape[0]
        return baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100, 200, 400])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads while proposing (MOBO's num_threads); 0: torch default")
    parser.add_argument("--fidelity-kernel", default="product",
                        help="MOBO's fidelity_kernel (product, the default, or linear_truncated)")
    parser.add_argument("--max-early-points", type=int, default=None,
                        help="MOBO's cap on early learning-curve points (default: its own)")
    parser.add_argument("--baselines", nargs="+", default=["front"], choices=list(BASELINE_RULES),
                        help="qLogNEHVI baseline rules to time side by side")
    args = parser.parse_args()
    space = SearchSpace.from_config(NAGO_SPACE)
    size = BaselineSize()
    mobo_module.pareto_baseline = size
    print("| trials | data | baseline rule | proposal median (s) | min | max | GP fit median (s) "
          "| GP points (acc / params) | baseline kept |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        for curves in (False, True):
            study = make_study(space, n, seed=n, curves=curves)
            mobo = MOBO(space, OBJECTIVES, seed=0, n_init=0, num_threads=args.threads or None,
                        fidelity_kernel=args.fidelity_kernel,
                        max_early_points=args.max_early_points)
            mobo.ask(study, 1)  # warm-up (lazy imports, first autograd call)
            for trial in study.trials(("running",)):
                study.fail(trial.id, "warm-up")
            times: dict[str, list[float]] = {rule: [] for rule in args.baselines}
            kept: dict[str, int] = {}
            for _ in range(args.reps):
                for rule in args.baselines:
                    mobo_module.CERTAIN_PARETO = BASELINE_RULES[rule]
                    start = time.perf_counter()
                    (trial,) = mobo.ask(study, 1)
                    times[rule].append(time.perf_counter() - start)
                    kept[rule] = size.last
                    study.fail(trial.id, "timing only")
            datasets = curve_data(study, OBJECTIVES, max_early_points=mobo.early_point_cap(n))
            fits = []
            with torch_threads(args.threads or None):
                for _ in range(args.reps):
                    start = time.perf_counter()
                    fit_curve_models(datasets, mobo.fidelity_kernel)
                    fits.append(time.perf_counter() - start)
            points = " / ".join(str(d.X.shape[0]) for d in datasets)
            for rule in args.baselines:
                t = times[rule]
                print(f"| {n} | {'curves' if curves else 'final'} | {rule} "
                      f"| {statistics.median(t):.2f} | {min(t):.2f} | {max(t):.2f} "
                      f"| {statistics.median(fits):.2f} | {points} | {kept[rule]} |", flush=True)


if __name__ == "__main__":
    main()
