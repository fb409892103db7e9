"""Constraints known before training: an infeasible configuration is never proposed."""

import pytest

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.network import build_network
from nago_pl.network.budget import count_parameters
from nago_pl.network.configured import resolve_architecture
from nago_pl.network.model import NetworkSpec
from nago_pl.search import BOHB, MOBO, Objective, RandomSearch, SearchSpace, Study
from nago_pl.search.constraints import (
    Constraint,
    DataShape,
    FeasibilityCheck,
    conv_parameters_lower_bound,
)
from nago_pl.search.runner import check_systematic_failure
from nago_pl.search.space import NAGO_SPACE
from nago_pl.search.trial import trial_config

UNIT2 = {"x0": {"type": "float", "low": 0.0, "high": 1.0},
         "x1": {"type": "float", "low": 0.0, "high": 1.0}}
OBJS = [Objective("f", "max", ref=0.0), Objective("g", "max", ref=0.0)]
DIGITS = DataShape(in_channels=1, num_classes=10, image_size=8)


def feasible(seed: int, config: dict) -> bool:
    """A synthetic constraint that rules out most of the best region (x0 + x1 > 0.8)."""
    return config["x0"] + config["x1"] <= 0.8


@pytest.mark.parametrize("strategy", [MOBO, RandomSearch, BOHB])
def test_an_infeasible_configuration_is_never_proposed(strategy: type) -> None:
    study = Study.open(":memory:", "c", UNIT2, OBJS)
    options = {"num_restarts": 2, "raw_samples": 32} if strategy is not RandomSearch else {}
    if strategy is BOHB:
        options.update(min_budget=1, max_budget=4)
    if strategy is MOBO:
        options["n_init"] = 3
    search = strategy(study.space, OBJS, seed=0, feasible=feasible, **options)
    for _ in range(8):
        (trial,) = search.ask(study, 1)
        x0, x1 = trial.params["x0"], trial.params["x1"]
        study.tell(trial.id, {"f": x0 + x1, "g": x0 * x1 + 0.1})  # best where infeasible
    assert all(feasible(0, t.params) for t in study.trials())


def test_feasibility_check_agrees_with_the_built_network() -> None:
    cfg = compose("search", ["logger=none"])
    check = FeasibilityCheck(cfg, DIGITS, min_width=4)
    space = SearchSpace.from_config({**NAGO_SPACE, "param_limit": {
        "type": "int", "low": 20000, "high": 100000, "log": True}})
    verdicts = []
    for i, config in enumerate(space.uniform(8, 3)):
        seed = 100 + i
        trial_cfg = trial_config(cfg, config, seed)
        net = build_network(resolve_architecture(trial_cfg), in_channels=1, num_classes=10,
                            image_size=8, param_limit=config["param_limit"],
                            head_channels=int(cfg.network.head_channels))
        narrowest = min(net.spec.channels(cell.width) for cell in net.arch.cells)
        verdicts.append(check(seed, config))
        assert verdicts[-1] == (narrowest >= 4), (config, narrowest)
    assert any(verdicts) and not all(verdicts)  # both kinds were seen


def test_cost_constraints_are_checked_before_training() -> None:
    cfg = compose("search", ["logger=none"])
    config = {"G1_nodes": 3, "G2_nodes": 1, "G3_nodes": 3, "param_limit": 60000}
    loose = FeasibilityCheck(cfg, DIGITS, constraints=[Constraint.parse("params <= 6e4")])
    tight = FeasibilityCheck(cfg, DIGITS, constraints=[Constraint.parse("flops <= 1000")])
    assert loose(0, config)
    assert "flops <= 1000" in (tight.reason(0, config) or "")


@pytest.mark.parametrize("text, message", [
    ("params < 5", "cannot read"), ("depth <= 3", "not a property known before training"),
    ("params <= 1e999", "must be finite"),
])
def test_bad_constraints_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(NagoError, match=message):
        Constraint.parse(text)


def test_first_trials_failing_alike_stop_the_search_and_are_forgotten() -> None:
    study = Study.open(":memory:", "f", UNIT2, OBJS)
    for i in range(3):
        trial = study.add_trial({"x0": 0.1 * i, "x1": 0.5}, seed=i)
        study.fail(trial.id, "FileNotFoundError: /data/missing")
        if i < 2:
            check_systematic_failure(study)  # not yet: two failures prove nothing
    with pytest.raises(NagoError, match="first 3 trials all failed with the same error"):
        check_systematic_failure(study)
    assert study.n_trials() == 0  # the budget is not spent on them


def test_different_failures_do_not_stop_the_search() -> None:
    study = Study.open(":memory:", "g", UNIT2, OBJS)
    for i, error in enumerate(["out of memory", "loss is nan", "cannot fit its budget"]):
        trial = study.add_trial({"x0": 0.1 * i, "x1": 0.5}, seed=i)
        study.fail(trial.id, f"{error} in trial {i}")
    check_systematic_failure(study)
    assert study.n_trials() == 3


def test_the_cheap_bound_never_exceeds_the_exact_count() -> None:
    cfg = compose("search", ["logger=none", "generator.ops=[conv3x3,conv1x3,avgpool3x3]"])
    space = SearchSpace.from_config(NAGO_SPACE)
    for i, config in enumerate(space.uniform(6, 5)):
        arch = resolve_architecture(trial_config(cfg, config, i))
        spec = NetworkSpec(1, 10, 8, 2.5, 64)
        assert 0 < conv_parameters_lower_bound(arch, spec) <= count_parameters(arch, spec)
