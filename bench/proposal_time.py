"""Wall time of one MOBO proposal (q=1) vs the number of observations, 8-D NAGO space.

    .venv/bin/python bench/proposal_time.py [--sizes 10 50 100 200 400] [--reps 5] [--threads 1]

Each size gets a Study with that many complete trials (uniform configs, two synthetic objectives:
a bumpy accuracy to maximise and a log-modelled parameter count to minimise); every timed
``MOBO.ask(study, 1)`` proposal is then failed so it does not pile up as a pending point.
Prints a markdown table: median/min/max proposal time, median GP fit time on its own, and how many
baseline points qLogNEHVI keeps after pruning.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from nago_pl.search import MOBO, NAGO_SPACE, Objective, SearchSpace, Study, to_maximization
from nago_pl.search.strategies.mobo import fit_surrogate, make_acquisition, torch_threads

OBJECTIVES = [Objective("val_acc", "max"), Objective("params", "min", log=True)]


def synthetic(x: torch.Tensor) -> dict[str, float]:
    """Accuracy-like and size-like objectives of a unit point (conflicting, smooth + bumps)."""
    acc = 0.95 - 0.4 * float(((x - 0.65) ** 2).mean()) + 0.02 * math.sin(12 * float(x[2]))
    params = 2e5 * math.exp(3.0 * float(x[[0, 3, 5]].mean()) + 0.5 * float(x[6]))
    return {"val_acc": acc, "params": params}


def make_study(space: SearchSpace, n: int, seed: int) -> Study:
    study = Study.open(":memory:", f"bench-{n}", NAGO_SPACE, OBJECTIVES)
    for i, config in enumerate(space.uniform(n, seed)):
        trial = study.add_trial(config, seed=i)
        study.tell(trial.id, synthetic(space.to_unit([config])[0]))
    return study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100, 200, 400])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads while proposing (MOBO's num_threads); 0: torch default")
    args = parser.parse_args()
    space = SearchSpace.from_config(NAGO_SPACE)
    print("| observations | proposal median (s) | min | max | GP fit median (s) "
          "| baseline kept |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        study = make_study(space, n, seed=n)
        mobo = MOBO(space, OBJECTIVES, seed=0, n_init=0, num_threads=args.threads or None)
        mobo.ask(study, 1)  # warm-up (lazy imports, first autograd call)
        times = []
        for trial in study.trials(("running",)):
            study.fail(trial.id, "warm-up")
        for _ in range(args.reps):
            start = time.perf_counter()
            (trial,) = mobo.ask(study, 1)
            times.append(time.perf_counter() - start)
            study.fail(trial.id, "timing only")
        params, values = study.observations()
        X, Y = space.to_unit(params), to_maximization(values, OBJECTIVES)
        fits, kept = [], 0
        with torch_threads(args.threads or None):
            for _ in range(args.reps):
                start = time.perf_counter()
                model = fit_surrogate(X, Y)
                fits.append(time.perf_counter() - start)
            kept = make_acquisition(model, X, Y, None, None, 128).X_baseline.shape[0]
        print(f"| {n} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} "
              f"| {statistics.median(fits):.2f} | {kept} |", flush=True)


if __name__ == "__main__":
    main()
