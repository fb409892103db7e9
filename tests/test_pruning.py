"""Multi-objective pruning on scripted reports."""

import math

import pytest

from nago_pl.errors import NagoError
from nago_pl.search.pruning import rungs, should_continue
from nago_pl.search.space import NAGO_SPACE
from nago_pl.search.study import Objective, Study

OBJS = [Objective("val_acc", "max"), Objective("params", "min", log=True)]


def make_study(rows: list[tuple[float, float]], epoch: int = 1) -> tuple[Study, list[int]]:
    """One running trial per (val_acc, params) row, each reporting at ``epoch``."""
    study = Study.open(":memory:", "p", NAGO_SPACE, OBJS)
    ids = []
    for i, (acc, params) in enumerate(rows):
        t = study.add_trial(study.space.sobol(len(rows), 0)[i], seed=i)
        study.report(t.id, epoch, {"val_acc": acc, "params": params})
        ids.append(t.id)
    return study, ids


def decisions(study: Study, ids: list[int], epoch: int = 1, **kw: object) -> list[bool]:
    kw = {"min_epochs": 1, "eta": 2, **kw}
    return [should_continue(study, i, epoch, OBJS, **kw) for i in ids]  # type: ignore[arg-type]


def test_rungs() -> None:
    assert rungs(1, 27, 3) == [1, 3, 9]
    assert rungs(30, 120, 2) == [30, 60]
    assert rungs(1, 4, 2) == [1, 2]
    assert rungs(5, 5, 2) == []
    with pytest.raises(NagoError, match="eta must be > 1"):
        rungs(1, 10, 1)
    with pytest.raises(NagoError, match="min_epochs must be an integer >= 1"):
        rungs(0, 10, 2)


def test_dominated_trials_stop() -> None:
    # A and B form the front (A more accurate, B smaller); C is dominated by A; D by all.
    study, ids = make_study([(0.9, 1e6), (0.8, 5e5), (0.7, 2e6), (0.6, 3e6)])
    assert decisions(study, ids) == [True, True, False, False]


def test_front_members_continue_and_crowding_ranks_the_rest() -> None:
    # A dominates everything; the next front has four points and one more is behind them.
    # n = 6 keeps A (non-dominated) and fills ceil(6/2) = 3 places: the next front's extremes
    # (infinite crowding) beat its interior points.
    rows = [(0.95, 1e5), (0.9, 4e6), (0.85, 2e6), (0.84, 1.9e6), (0.6, 1.5e5), (0.5, 5e6)]
    study, ids = make_study(rows)
    assert decisions(study, ids) == [True, True, False, False, True, False]
    # one front of four: every member is Pareto-optimal at the rung, so none stops
    study, ids = make_study(rows[1:5])
    assert decisions(study, ids) == [True, True, True, True]


def test_off_rung_and_too_few_trials_continue() -> None:
    study, ids = make_study([(0.9, 1e6), (0.8, 5e5), (0.7, 2e6), (0.6, 3e6)], epoch=3)
    assert decisions(study, ids, epoch=3) == [True] * 4  # 3 is not a rung of (1, eta 2)
    assert decisions(study, ids, epoch=3, eta=3) == [True, True, False, False]
    study, ids = make_study([(0.9, 1e6), (0.1, 9e6)])
    assert decisions(study, ids, min_trials_at_rung=3) == [True, True]
    assert decisions(study, ids) == [True, False]  # default minimum: eta = 2 trials


def test_statuses_and_static_values_from_first_report() -> None:
    study = Study.open(":memory:", "p", NAGO_SPACE, OBJS)
    cfg = study.space.sobol(1, 0)[0]
    ids = {}
    script = [("done", 0.8, 1e6, "complete"), ("pruned", 0.7, 5e6, "pruned"),
              ("failed", 0.99, 1e3, "failed"), ("me", 0.75, 2e6, None)]
    for name, acc, params, status in script:
        t = study.add_trial(cfg, seed=0)
        study.report(t.id, 1, {"val_acc": acc / 2, "params": params})  # static value sent once
        study.report(t.id, 2, {"val_acc": acc})
        ids[name] = t.id
        if status == "complete":
            study.tell(t.id, {"val_acc": 0.95})  # its final value must not be used at the rung
        elif status == "pruned":
            study.prune(t.id)
        elif status == "failed":
            study.fail(t.id, "boom")
    # at epoch 2: done (0.8, 1e6) > me (0.75, 2e6) > pruned (0.7, 5e6); failed is ignored.
    # n = 3 keeps ceil(3/2) = 2, so "me" continues; with eta = 3 (rungs 2, 6) only one is kept.
    assert should_continue(study, ids["me"], 2, OBJS, min_epochs=1, eta=2)
    assert not should_continue(study, ids["me"], 2, OBJS, min_epochs=2, eta=3)
    assert should_continue(study, ids["done"], 2, OBJS, min_epochs=2, eta=3)


def test_diverged_trial_ranks_last_and_missing_objective_errors() -> None:
    study, ids = make_study([(math.nan, 1e3), (0.5, 1e6), (0.4, 2e6)])
    assert decisions(study, ids) == [False, True, True]
    with pytest.raises(NagoError, match=r"objective\(s\) \['flops'\]"):
        should_continue(study, ids[0], 1, [*OBJS, Objective("flops", "min")],
                        min_epochs=1, eta=2)
    with pytest.raises(ValueError, match="no report at epoch 2"):
        should_continue(study, ids[0], 2, OBJS, min_epochs=1, eta=2)
