"""Ask/tell strategies on cheap analytic objectives."""

import math
import textwrap
from pathlib import Path

import pytest
import torch
from botorch.test_functions.multi_objective import BraninCurrin

import nago_pl.search
from nago_pl.errors import NagoError
from nago_pl.search import (
    BOHB,
    MOBO,
    NAGO_SPACE,
    Objective,
    RandomSearch,
    SearchSpace,
    Study,
    hypervolume,
    make_strategy,
    to_maximization,
    trial_seed,
)

NAGO = SearchSpace.from_config(NAGO_SPACE)
OBJS = [Objective("val_acc", "max"), Objective("params", "min", log=True)]
UNIT2 = {"x0": {"type": "float", "low": 0.0, "high": 1.0},
         "x1": {"type": "float", "low": 0.0, "high": 1.0}}
BC_OBJS = [Objective("branin", "min", ref=18.0), Objective("currin", "min", ref=6.0)]


def nago_objectives(params: dict) -> dict:
    """A smooth synthetic (accuracy, parameter count) trade-off on the NAGO space."""
    x = NAGO.to_unit([params])[0]
    return {"val_acc": 0.9 - 0.3 * float(((x - 0.6) ** 2).mean()),
            "params": 1e5 * math.exp(4 * float(x[[0, 3, 5]].mean()))}


def assert_valid(space: SearchSpace, params: dict) -> None:
    for p in space.params:
        v = params[p.name]
        assert type(v) is (int if p.kind == "int" else float)
        assert p.low <= v <= p.high


def run_branin_currin(strategy_cls: type, seed: int, evals: int, q: int, **kw: object) -> float:
    problem = BraninCurrin()
    study = Study.open(":memory:", "bc", UNIT2, BC_OBJS)
    strategy = strategy_cls(study.space, BC_OBJS, seed=seed, **kw)
    while study.n_trials() < evals:
        for trial in strategy.ask(study, min(q, evals - study.n_trials())):
            assert_valid(study.space, trial.params)
            x = torch.tensor([[trial.params["x0"], trial.params["x1"]]], dtype=torch.float64)
            y0, y1 = problem(x)[0].tolist()
            study.tell(trial.id, {"branin": y0, "currin": y1})
    _, values = study.observations()
    assert values.shape == (evals, 2)
    ref = to_maximization(torch.tensor([18.0, 6.0]), BC_OBJS)
    return hypervolume(to_maximization(values, BC_OBJS), ref)


def test_random_search_is_seeded_and_valid() -> None:
    a, b, c = (Study.open(":memory:", "r", NAGO_SPACE, OBJS) for _ in range(3))
    ta = RandomSearch(NAGO, OBJS, seed=1).ask(a, 5)
    tb = RandomSearch(NAGO, OBJS, seed=1).ask(b, 3) + RandomSearch(NAGO, OBJS, seed=1).ask(b, 2)
    tc = RandomSearch(NAGO, OBJS, seed=2).ask(c, 5)
    assert [t.status for t in ta] == ["running"] * 5
    assert [(t.params, t.seed) for t in ta] == [(t.params, t.seed) for t in tb]
    assert [t.params for t in ta] != [t.params for t in tc]
    assert len({t.seed for t in ta}) == 5
    for t in ta:
        assert_valid(NAGO, t.params)


def test_mobo_beats_random_on_branin_currin() -> None:
    mobo = run_branin_currin(MOBO, 0, 16, 2)
    random = [run_branin_currin(RandomSearch, s, 16, 2) for s in range(5)]
    assert mobo > max(random)


def test_mobo_refits_its_gps_only_as_the_observations_grow(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import nago_pl.search.strategies.mobo as mobo_module

    fitted_on: list[int] = []
    real_fit = mobo_module.fit_gpytorch_mll

    def counting_fit(mll, **kwargs):  # noqa: ANN001, ANN003, ANN202 - BoTorch's signature
        fitted_on.append(mll.model.models[0].train_inputs[0].shape[0])
        return real_fit(mll, **kwargs)

    monkeypatch.setattr(mobo_module, "fit_gpytorch_mll", counting_fit)
    run_branin_currin(MOBO, 0, 16, 1, n_init=4, refit_growth=1.5)
    # one proposal per trial from 4 observations on; a fit once they grew 1.5x since the last
    assert fitted_on == [4, 6, 9, 14]
    fitted_on.clear()
    run_branin_currin(MOBO, 0, 8, 1, n_init=4, refit_growth=1.0)
    assert fitted_on == [4, 5, 6, 7]


def test_mobo_pending_points_and_batches_are_distinct() -> None:
    study = Study.open(":memory:", "m", NAGO_SPACE, OBJS)
    mobo = MOBO(NAGO, OBJS, seed=0, n_init=6)
    init = mobo.ask(study, 6)
    assert [t.info["source"] for t in init] == ["sobol"] * 6
    assert [t.params for t in init] == NAGO.sobol(6, _sobol_seed(mobo))
    for t in init:
        study.tell(t.id, nago_objectives(t.params))
    first = mobo.ask(study, 1)[0]
    second = mobo.ask(study, 1)[0]  # `first` is pending: the proposal must move away from it
    batch = mobo.ask(study, 2)
    proposals = [first, second, *batch]
    assert [t.info["source"] for t in proposals] == ["bo"] * 4
    X = NAGO.to_unit([t.params for t in proposals])
    observed = NAGO.to_unit([t.params for t in init])
    for i, t in enumerate(proposals):
        assert_valid(NAGO, t.params)
        others = torch.cat([observed, X[:i], X[i + 1:]])
        # without pending points the second proposal lands ~0.002 from the first
        assert (others - X[i]).abs().max(dim=-1).values.min() > 0.05
    assert study.pending() == [t.params for t in proposals]


def _sobol_seed(mobo: MOBO) -> int:
    return trial_seed(mobo.seed, 0, stream=1)


def test_requeued_trials_are_handed_out_first(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    study = Study.open(db, "m", NAGO_SPACE, OBJS)
    mobo = MOBO(NAGO, OBJS, seed=3)
    started = mobo.ask(study, 3)
    study.tell(started[1].id, nago_objectives(started[1].params))
    study.close()  # the process dies with trials 0 and 2 running
    study = Study.open(db, "m", NAGO_SPACE, OBJS)
    assert [t.id for t in study.requeued] == [started[0].id, started[2].id]
    again = mobo.ask(study, 3)
    assert [(t.id, t.params, t.seed) for t in again[:2]] == \
        [(t.id, t.params, t.seed) for t in (started[0], started[2])]
    assert again[2].number == 3 and again[2].params == NAGO.sobol(4, _sobol_seed(mobo))[3]
    assert [t.status for t in again] == ["running"] * 3


def test_mobo_avoids_evaluated_configs_in_small_integer_space() -> None:
    space = {"a": {"type": "int", "low": 1, "high": 3}, "b": {"type": "int", "low": 1, "high": 3}}
    objs = [Objective("f", "max"), Objective("g", "max")]
    study = Study.open(":memory:", "grid", space, objs)
    mobo = MOBO(study.space, objs, seed=0, n_init=2, num_restarts=2, raw_samples=32)
    for _ in range(9):
        (t,) = mobo.ask(study, 1)
        a, b = t.params["a"], t.params["b"]
        study.tell(t.id, {"f": a - 0.1 * b, "g": b - 0.1 * a})
    seen = {(t.params["a"], t.params["b"]) for t in study.trials()}
    assert len(seen) == 9  # all nine grid points, none twice


def test_single_objective_mobo() -> None:
    objs = [Objective("loss", "min", ref=1.0)]
    study = Study.open(":memory:", "one", UNIT2, objs)
    mobo = MOBO(study.space, objs, seed=0, n_init=4)

    def loss(p: dict) -> float:
        return (p["x0"] - 0.3) ** 2 + (p["x1"] - 0.7) ** 2

    for _ in range(5):
        for t in mobo.ask(study, 2):
            study.tell(t.id, {"loss": loss(t.params)})
    trials = study.trials()
    assert [t.info["source"] for t in trials] == ["sobol"] * 4 + ["bo"] * 6
    best_init = min(t.values["loss"] for t in trials[:4])
    best_bo = min(t.values["loss"] for t in trials[4:])
    assert best_bo < best_init and best_bo < 0.01


def run_bohb_sequential(bohb: BOHB, study: Study, n: int, fail_numbers: tuple = ()) -> list:
    """Ask/tell one trial at a time; the objective is x0 (larger is better)."""
    out = []
    for _ in range(n):
        (t,) = bohb.ask(study, 1)
        if t.number in fail_numbers:
            study.fail(t.id, "scripted failure")
        else:
            study.tell(t.id, {"val_acc": t.params["x0"] + t.budget / 100})
        out.append(t)
    return out


def test_bohb_bracket_structure() -> None:
    objs = [Objective("val_acc", "max")]
    study = Study.open(":memory:", "bohb", UNIT2, objs)
    bohb = BOHB(study.space, objs, seed=0, min_budget=1, max_budget=4, eta=2)
    assert bohb.budgets == [1, 2, 4]
    trials = run_bohb_sequential(bohb, study, 12)
    assert [t.budget for t in trials] == [1, 1, 1, 1, 2, 2, 4, 2, 2, 4, 4, 1]
    assert [(t.info["bracket"], t.info["rung"]) for t in trials] == [
        (0, 0), (0, 0), (0, 0), (0, 0), (0, 1), (0, 1), (0, 2),
        (1, 0), (1, 0), (1, 1), (2, 0), (3, 0)]
    by_id = {t.id: t for t in trials}
    top2 = sorted(trials[:4], key=lambda t: -t.params["x0"])[:2]
    assert [t.info["parent"] for t in trials[4:6]] == [t.id for t in top2]
    for child in trials[4:7] + trials[9:10]:
        parent = by_id[child.info["parent"]]
        assert (child.params, child.seed) == (parent.params, parent.seed)
    best_rung1 = max(trials[4:6], key=lambda t: t.params["x0"])
    assert trials[6].info["parent"] == best_rung1.id
    assert trials[9].info["parent"] == max(trials[7:9], key=lambda t: t.params["x0"]).id
    # rung-0 configs of bracket 0 are random (no data); once 4 = d + 2 budget-1 results exist,
    # new configurations come from the GP
    assert [t.info["source"] for t in trials[:4]] == ["random"] * 4
    assert [t.info["source"] for t in trials if t.info["rung"] == 0][4:] == ["bo"] * 4
    assert len({(t.params["x0"], t.params["x1"]) for t in trials if t.info["rung"] == 0}) == 8


def test_bohb_parallel_asks_and_failures() -> None:
    objs = [Objective("val_acc", "max")]
    study = Study.open(":memory:", "bohb", UNIT2, objs)
    bohb = BOHB(study.space, objs, seed=0, min_budget=1, max_budget=4, eta=2)
    first = bohb.ask(study, 8)  # rung 0 of bracket 0 is waiting: later brackets start
    assert [t.budget for t in first] == [1, 1, 1, 1, 2, 2, 4, 1]
    assert [t.info["bracket"] for t in first] == [0, 0, 0, 0, 1, 1, 2, 3]
    for t in first[:3]:
        study.tell(t.id, {"val_acc": t.params["x0"]})
    study.fail(first[3].id, "out of memory")
    (promo,) = bohb.ask(study, 1)  # bracket 0's rung closed: its promotion jumps the queue
    assert promo.info["rung"] == 1 and promo.budget == 2
    best = max(first[:3], key=lambda t: t.params["x0"])
    assert promo.info["parent"] == best.id
    (promo2,) = bohb.ask(study, 1)
    assert promo2.info["parent"] in {t.id for t in first[:3]} - {best.id}
    (nxt,) = bohb.ask(study, 1)
    assert (nxt.info["bracket"], nxt.info["rung"]) == (3, 0)  # failed trial not promoted


def test_make_strategy() -> None:
    mobo = make_strategy("mobo", space=NAGO, objectives=OBJS, seed=1, n_init=3)
    assert isinstance(mobo, MOBO) and mobo.n_init == 3
    assert isinstance(make_strategy("random", space=NAGO, objectives=OBJS), RandomSearch)
    with pytest.raises(NagoError, match="unknown search strategy 'tpe'; allowed: bohb, evolution, "
                                        "graphpnas, mobo, random"):
        make_strategy("tpe", space=NAGO, objectives=OBJS)
    with pytest.raises(NagoError, match=r"has no option\(s\) \['n_initial'\]"):
        make_strategy("mobo", space=NAGO, objectives=OBJS, n_initial=3)
    with pytest.raises(NagoError, match="fidelity_kernel must be one of product, linear_truncated"):
        make_strategy("mobo", space=NAGO, objectives=OBJS, fidelity_kernel="rbf")
    with pytest.raises(NagoError, match="refit_growth must be a number >= 1, got 0.5"):
        make_strategy("mobo", space=NAGO, objectives=OBJS, refit_growth=0.5)
    with pytest.raises(NagoError, match=r"fit_ftol must be a number in \(0, 1\) or null"):
        make_strategy("mobo", space=NAGO, objectives=OBJS, fit_ftol=0)
    with pytest.raises(NagoError, match="eta >= 2"):
        make_strategy("bohb", space=NAGO, objectives=OBJS, eta=1)
    with pytest.raises(NagoError, match="non-negative integer"):
        make_strategy("random", space=NAGO, objectives=OBJS, seed=-1)


def test_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    doc = nago_pl.search.__doc__
    assert doc is not None
    exec(textwrap.dedent(doc.split("::\n", 1)[1]), {})
    out = capsys.readouterr().out
    assert "Pareto-optimal trials, hypervolume" in out
