"""MOBO's qLogNEHVI baseline: the front it measures improvement against (issue 19).

Mutant killed: capping the baseline at a fixed 12 points (the old ``MAX_BASELINE``) drops most
of a many-point front, and MOBO's hypervolume on ZDT1 fell 0.4 decades below a plain BoTorch
loop's.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from botorch.test_functions.multi_objective import ZDT1
from botorch.utils.multi_objective.pareto import is_non_dominated

from nago_pl.search.strategies.mobo import (
    MAX_UNCERTAIN_BASELINE,
    fit_surrogate,
    make_acquisition,
    pareto_baseline,
    torch_threads,
)

BENCH = Path(__file__).parents[1] / "bench" / "optimizers.py"


def zdt1_observations(n_front: int, n_dominated: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ZDT1 (d=6) points: ``n_front`` on its true Pareto front (x1..x5 = 0) and ``n_dominated``
    uniform ones; values in maximisation form."""
    front = torch.zeros(n_front, 6, dtype=torch.float64)
    front[:, 0] = torch.linspace(0.0, 1.0, n_front, dtype=torch.float64)
    other = torch.rand(n_dominated, 6, generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64)
    X = torch.cat([front, other])
    return X, -ZDT1(dim=6)(X)


def test_baseline_keeps_every_point_of_a_front_larger_than_the_uncertain_cap() -> None:
    n_front = 2 * MAX_UNCERTAIN_BASELINE
    X, Y = zdt1_observations(n_front, 16)
    ref = torch.tensor([-1.1, -1.1], dtype=torch.float64)
    optimal = is_non_dominated(Y) & (Y > ref).all(dim=-1)
    assert int(optimal.sum()) >= n_front  # the constructed front really is the front
    torch.manual_seed(0)
    model = fit_surrogate(X, Y)
    kept = pareto_baseline(model, X, ref)
    kept_rows = {tuple(row.tolist()) for row in kept}
    assert {tuple(row.tolist()) for row in X[optimal]} <= kept_rows
    # and the acquisition is built over that baseline, with the study's reference point
    acqf = make_acquisition(model, X, ref, None, mc_samples=16)
    assert acqf.X_baseline.shape[0] == kept.shape[0]
    assert torch.equal(acqf.ref_point, ref)


def test_baseline_caps_only_the_uncertain_points() -> None:
    X, Y = zdt1_observations(6, 10)
    ref = torch.tensor([-1.1, -1.1], dtype=torch.float64)
    torch.manual_seed(0)
    # a GP fitted on the front only: the dominated points' values are guesses there
    model = fit_surrogate(X[:6], Y[:6])
    kept = pareto_baseline(model, X, ref)
    assert kept.shape[0] <= 6 + MAX_UNCERTAIN_BASELINE
    assert {tuple(r.tolist()) for r in X[:6]} <= {tuple(r.tolist()) for r in kept}


@pytest.mark.slow
def test_mobo_is_no_worse_than_a_plain_botorch_loop_on_zdt1() -> None:
    """Same seed, the issue's 60 evaluations: MOBO's hypervolume regret (log10) on ZDT1 is within
    0.15 decades of the plain BoTorch qLogNEHVI loop's (measured: −1.90 against −1.88; with the
    12-point cap MOBO scored −1.46, 0.4 worse; at 40 evaluations the gap was too small to tell)."""
    spec = importlib.util.spec_from_file_location("bench_optimizers", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_optimizers"] = bench
    spec.loader.exec_module(bench)
    problem = bench.PROBLEMS["zdt1"]()
    with torch_threads(1):  # as the benchmark measured it
        ours, _ = bench.run_ours(problem, "mobo", seed=0, evals=60, q=1)
        plain, _ = bench.run_botorch(problem, seed=0, evals=60)
    assert bench.score(problem, ours) <= bench.score(problem, plain) + 0.15
