"""Where MOBO's proposals on the tabular NB201 space spend their time, and what they propose.

Runs one in-process MOBO search on the table (``bench/nb201_table.py``'s space, objectives and
lookup) and prints the time of its asks, how many acquisition calls and points they scored,
and its regret and hypervolume; ``--proposals FILE`` writes the proposed cells as JSON, so two
code versions can be checked to propose the same cells.

    python bench/nb201_asks.py --trials 100 --seed 0 --proposals /tmp/before.json
    python bench/nb201_asks.py --trials 100 --options '{"mc_samples": 64}'
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botorch.acquisition import AcquisitionFunction
from nb201_table import OBJECTIVES, SPACE, Lookup, curves
from torch import Tensor

import nago_pl.search.strategies.mobo as mobo_module
from nago_pl.search import MOBO, SearchSpace, Study


def count_acquisition_points(counts: dict[str, int]) -> None:
    """Make MOBO's restart optimiser count the calls and points of its acquisition function."""
    optimise: Callable[..., Any] = mobo_module.optimize_restarts

    def counted(acqf: AcquisitionFunction, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        forward = acqf.forward

        def counting(X: Tensor) -> Tensor:
            counts["calls"] += 1
            counts["points"] += X.shape[0]
            return forward(X)

        acqf.forward = counting
        try:
            return optimise(acqf, *args, **kwargs)
        finally:
            del acqf.forward

    mobo_module.optimize_restarts = counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--options", default="{}", help="MOBO keyword options, as JSON")
    parser.add_argument("--proposals", type=Path, help="write the proposed cells here")
    parser.add_argument("--modelled-params", action="store_true",
                        help="a GP on the parameter count (search.py computes it)")
    args = parser.parse_args()
    logging.getLogger("linear_operator").setLevel(logging.ERROR)
    counts = {"calls": 0, "points": 0}
    count_acquisition_points(counts)
    lookup = Lookup()
    study = Study.open(":memory:", "asks", SPACE, OBJECTIVES)
    strategy = MOBO(SearchSpace.from_config(SPACE), OBJECTIVES, seed=args.seed,
                    known=None if args.modelled_params else lookup.known,
                    **json.loads(args.options))
    results, cells, asking = [], [], 0.0
    for _ in range(args.trials):
        started = time.perf_counter()
        trial = strategy.ask(study, 1)[0]
        asking += time.perf_counter() - started
        accuracy, params = lookup(trial.params)
        study.tell(trial.id, {"val_acc": accuracy, "params": params})
        results.append((accuracy, params))
        cells.append([trial.params[f"edge_{i}"] for i in range(6)])
    regret, hv = curves(results)
    print(f"{args.trials} asks: {asking:.1f} s; acquisition calls {counts['calls']}, points "
          f"{counts['points']}; regret {regret[-1]:.2f} pp, hypervolume {hv[-1]:.4f}")
    if args.proposals:
        args.proposals.write_text(json.dumps(cells))


if __name__ == "__main__":
    main()
