"""Categorical (choice) parameters: encoding, storage, and every strategy on a mixed space."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.search import BOHB, MOBO, Objective, RandomSearch, SearchSpace, Study
from nago_pl.search.strategies.mobo import MemoisedScores, hamming_neighbours
from nago_pl.search.trial import trial_config

MIXED = {"x": {"type": "float", "low": 0.0, "high": 1.0},
         "family": {"type": "choice", "values": ["er", "ws", "ba"]}}
#: The best family is the middle one of the list: an ordinal model would not find it by luck.
SHIFT = {"er": 0.0, "ws": 1.0, "ba": 0.3}


def score(params: dict) -> float:
    return SHIFT[params["family"]] - (params["x"] - 0.3) ** 2


def test_choice_round_trip_and_config() -> None:
    space = SearchSpace.from_config(MIXED)
    assert space.choice_dims == [1]
    configs = [{"x": 0.5, "family": f} for f in ("er", "ws", "ba")]
    assert space.from_unit(space.to_unit(configs)) == configs
    assert space.to_config()["family"] == {"type": "choice", "values": ["er", "ws", "ba"]}
    assert SearchSpace.from_config(space.to_config()).to_config() == space.to_config()
    draws = {c["family"] for c in space.uniform(200, seed=0)}
    assert draws == {"er", "ws", "ba"}


@pytest.mark.parametrize("spec, fragment", [
    ({"type": "choice", "values": ["a"]}, "two or more"),
    ({"type": "choice", "values": ["a", "a"]}, "distinct"),
    ({"type": "choice", "values": [["a"], "b"]}, "strings, numbers"),
    ({"type": "choice", "values": ["a", "b"], "low": 0}, "exactly type and values"),
])
def test_bad_choices(spec: dict, fragment: str) -> None:
    with pytest.raises(NagoError, match=fragment):
        SearchSpace.from_config({"c": spec})


def test_unknown_value_refused() -> None:
    space = SearchSpace.from_config(MIXED)
    with pytest.raises(NagoError, match="not one of"):
        space.to_unit([{"x": 0.1, "family": "chain"}])


def test_study_stores_and_resumes_choice_space(tmp_path: Path) -> None:
    objectives = [Objective("score", "max")]
    with Study.open(tmp_path / "s.db", "c", MIXED, objectives) as study:
        trial = study.add_trial({"x": 0.2, "family": "ba"}, seed=1)
        study.tell(trial.id, {"score": 0.1})
    with Study.open(tmp_path / "s.db", "c", MIXED, objectives) as study:
        assert study.trials()[0].params == {"x": 0.2, "family": "ba"}
    changed = {**MIXED, "family": {"type": "choice", "values": ["er", "ws"]}}
    with pytest.raises(NagoError, match="family changed"):
        Study.open(tmp_path / "s.db", "c", changed, objectives)


def run(strategy, space_config: dict, objective, n: int) -> Study:
    study = Study.open(":memory:", "t", space_config, [Objective("score", "max")])
    for _ in range(n):
        for trial in strategy.ask(study, 1):
            study.tell(trial.id, {"score": objective(trial.params)})
    return study


FAST = {"num_restarts": 2, "raw_samples": 32, "mc_samples": 32, "maxiter": 20}


@pytest.mark.parametrize("make", [
    lambda space: RandomSearch(space, [Objective("score", "max")], seed=0),
    lambda space: MOBO(space, [Objective("score", "max")], seed=0, n_init=3, **FAST),
])
def test_strategies_find_the_best_family(make) -> None:
    space = SearchSpace.from_config(MIXED)
    study = run(make(space), MIXED, score, 12)
    best = max(study.trials(), key=lambda t: t.values["score"])
    assert best.params["family"] == "ws"
    assert all(t.params["family"] in SHIFT for t in study.trials())


def test_bohb_proposes_choices() -> None:
    space = SearchSpace.from_config(MIXED)
    bohb = BOHB(space, [Objective("score", "max")], seed=0, min_budget=1, max_budget=2, **FAST)
    study = run(bohb, MIXED, score, 12)
    assert {t.params["family"] for t in study.trials()} <= set(SHIFT)


def test_mobo_all_categorical_space_uses_local_search() -> None:
    """64 combinations (over MAX_ENUMERATED): the pool + Hamming-1 search; the best cell has
    every choice at a value in the middle of its list."""
    config = {f"c{i}": {"type": "choice", "values": [0, 1, 2, 3]} for i in range(3)}

    def objective(p: dict) -> float:
        return -sum(abs(p[f"c{i}"] - 2) for i in range(3))

    study = run(MOBO(SearchSpace.from_config(config), [Objective("score", "max")], seed=1,
                     n_init=4, **FAST), config, objective, 16)
    assert max(t.values["score"] for t in study.trials()) >= -1
    assert len({tuple(t.params.values()) for t in study.trials()}) == 16, "no repeats"


def test_hamming_neighbours_move_one_choice_to_each_other_value() -> None:
    """Mixed space (a float, two choices of 3 and 4 values): each point gets 2 + 3 distinct
    neighbours, each differing from it in exactly one choice and never in the float."""
    space = SearchSpace.from_config({"x": {"type": "float", "low": 0.0, "high": 1.0},
                                     "a": {"type": "choice", "values": ["p", "q", "r"]},
                                     "b": {"type": "choice", "values": [1, 2, 3, 4]}})
    points = space.round_unit(torch.rand(5, space.dim, dtype=torch.float64,
                                         generator=torch.Generator().manual_seed(0)))
    centres = {j: space.choice_centres(j) for j in space.choice_dims}
    neighbours = hamming_neighbours(points, centres)
    assert neighbours.shape == (5, 5, space.dim)
    for point, moved in zip(points, neighbours, strict=True):
        differs = moved != point
        assert (differs.sum(dim=-1) == 1).all()
        assert not differs[:, 0].any(), "the ordered coordinate never moves"
        assert len({tuple(row.tolist()) for row in moved}) == 5
        assert space.round_unit(moved).equal(moved), "every neighbour is a valid config"


def test_memoised_scores_evaluate_each_distinct_point_once() -> None:
    asked: list[int] = []

    def acqf(X: torch.Tensor) -> torch.Tensor:  # b x 1 x d -> b
        asked.append(X.shape[0])
        return X[:, 0, :].sum(dim=-1) ** 2

    score = MemoisedScores(acqf)
    points = torch.tensor([[0.1, 0.3], [0.5, 0.7], [0.1, 0.3], [0.9, 0.1]], dtype=torch.float64)
    assert score(points).tolist() == acqf(points[:, None, :]).tolist()
    assert asked == [3, 4], "the repeated row was scored once"
    again = score(torch.cat([points[1:2], torch.tensor([[0.2, 0.2]], dtype=torch.float64)]))
    assert asked[-1] == 1 and again.tolist() == [pytest.approx(1.44), pytest.approx(0.16)]


def test_linear_truncated_refused_with_choices() -> None:
    with pytest.raises(NagoError, match="linear_truncated"):
        MOBO(SearchSpace.from_config(MIXED), [Objective("score", "max")],
             fidelity_kernel="linear_truncated")


def test_hnag_family_is_searchable() -> None:
    cfg = compose("search", ["+search.space.mid_family={type:choice,values:[er,ws,ba]}"])
    space = SearchSpace.from_config(
        {"mid_family": OmegaConf.to_container(cfg.search.space.mid_family)})
    trial = trial_config(cfg, {"mid_family": "ba"}, seed=3)
    assert trial.generator.mid_family == "ba" and space.params[0].values == ("er", "ws", "ba")
    assert torch.isfinite(space.to_unit([{"mid_family": "ws"}])).all()


#: K matters for ws and ba, P for ws and er (as in the HNAG generator's graph families).
CONDITIONAL = {"family": {"type": "choice", "values": ["er", "ws", "ba"]},
               "K": {"type": "int", "low": 2, "high": 5, "when": {"family": ["ws", "ba"]}},
               "P": {"type": "float", "low": 0.1, "high": 1.0, "when": {"family": ["ws", "er"]}}}


def conditional_score(params: dict) -> float:
    """Best: ws with K = 4 and P = 0.6; er and ba score by the parameter they use."""
    if params["family"] == "ws":
        return 1.0 - abs(params["K"] - 4) / 4 - abs(params["P"] - 0.6)
    if params["family"] == "er":
        return 0.5 - abs(params["P"] - 0.6)
    return 0.3 - abs(params["K"] - 4) / 4


def test_an_inactive_parameter_rests_in_configs_and_in_the_unit_cube() -> None:
    space = SearchSpace.from_config(CONDITIONAL)
    assert SearchSpace.from_config(space.to_config()).conditions == space.conditions
    configs = space.uniform(300, seed=0)
    for config in configs:
        if config["family"] == "er":
            assert config["K"] == 2
        if config["family"] == "ba":
            assert config["P"] == 0.1
    # values that do not matter are not told apart
    a, b = {"family": "er", "K": 5, "P": 0.3}, {"family": "er", "K": 3, "P": 0.3}
    assert space.to_unit([a]).equal(space.to_unit([b]))
    assert space.normalise(a) == space.normalise(b) == {"family": "er", "K": 2, "P": 0.3}
    assert space.to_unit([{"family": "ba", "K": 3}]).shape == (1, 3), "inactive may be absent"


def test_bin_indices_are_what_from_unit_decodes_for_any_batch_shape() -> None:
    space = SearchSpace.from_config({**{k: v for k, v in CONDITIONAL.items() if k != "P"},
                                     "size": {"type": "int", "low": 1, "high": 1000, "log": True}})
    X = torch.rand(4, 50, space.dim, generator=torch.Generator().manual_seed(1),
                   dtype=torch.float64)
    index = space.bin_indices(X)
    assert index.shape == X.shape and index.dtype == torch.int64
    for row, config in zip(index.reshape(-1, space.dim), space.from_unit(X.reshape(-1, 3)),
                           strict=True):
        family, k, size = row.tolist()
        assert space.params[0].values[family] == config["family"]
        assert (2 + k, 1 + size) == (config["K"], config["size"])  # K rests at 2 for er
    assert (index[..., 1][index[..., 0] == 0] == 0).all()
    with pytest.raises(ValueError, match="int and choice parameters only"):
        SearchSpace.from_config(CONDITIONAL).bin_indices(X)


def test_a_choice_space_snaps_in_one_operation_exactly_as_by_decoding() -> None:
    space = SearchSpace.from_config({
        "family": {"type": "choice", "values": ["er", "ws", "ba"]},
        "op": {"type": "choice", "values": ["a", "b", "c", "d", "e"],
               "when": {"family": ["ws"]}},
        "flag": {"type": "choice", "values": [True, False, 3]}})
    X = torch.rand(500, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    X[:3] = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 1 / 3], [2 / 3, 0.2, 2 / 3]])  # bin edges
    assert torch.equal(space.round_unit(X), space.to_unit(space.from_unit(X)))


@pytest.mark.parametrize("when, fragment", [
    ({"fam": ["ws"]}, "another searched choice"),
    ({"P": [0.5]}, "another searched choice"),
    ({"family": ["chain"]}, "one or more of family's values"),
    ({"family": []}, "one or more of family's values"),
    ({"family": ["ws"], "P": [0.2]}, "when must be one"),
    ("family", "when must be one"),
])
def test_bad_conditions(when, fragment: str) -> None:
    with pytest.raises(NagoError, match=fragment):
        SearchSpace.from_config({**CONDITIONAL, "K": {**CONDITIONAL["K"], "when": when}})


def test_conditions_do_not_nest_and_fixed_values_take_none() -> None:
    nested = {**CONDITIONAL, "sub": {"type": "choice", "values": ["a", "b"],
                                     "when": {"family": ["ws"]}},
              "Q": {"type": "int", "low": 0, "high": 3, "when": {"sub": ["a"]}}}
    with pytest.raises(NagoError, match="itself conditional"):
        SearchSpace.from_config(nested)
    with pytest.raises(NagoError, match="only 'value'"):
        SearchSpace.from_config({**CONDITIONAL, "Z": {"value": 1, "when": {"family": ["ws"]}}})


@pytest.mark.parametrize("make, repeats", [
    (lambda space: RandomSearch(space, [Objective("score", "max")], seed=0), True),
    (lambda space: MOBO(space, [Objective("score", "max")], seed=0, n_init=4, **FAST), False),
    (lambda space: BOHB(space, [Objective("score", "max")], seed=0, min_budget=1, max_budget=1,
                        **FAST), False),
])
def test_strategies_propose_resting_values_in_a_conditional_space(make, repeats: bool) -> None:
    """Every strategy's configs hold inactive parameters at rest; the model-based ones never
    propose a config twice (ba has only 4 distinct configs, so values that do not matter
    must not make new ones)."""
    space = SearchSpace.from_config(CONDITIONAL)
    study = run(make(space), CONDITIONAL, conditional_score, 16)
    params = [t.params for t in study.trials()]
    assert all(p == space.normalise(p) for p in params), "inactive values rest"
    if not repeats:
        assert len({tuple(p.values()) for p in params}) == len(params), "no config twice"
    assert {p["family"] for p in params} == {"er", "ws", "ba"}


@pytest.mark.slow
def test_a_digits_search_over_families_with_conditional_values(tmp_path: Path) -> None:
    """``python search.py`` with the top graph family as a choice, its K and P conditional:
    every trial trains, and the values its family ignores rest."""
    proc = subprocess.run(
        [sys.executable, "search.py", f"hydra.run.dir={tmp_path}", "logger=none",
         "search.trials=4", "search.baseline=false", "search.options.n_init=2",
         "trainer.max_epochs=1", "dataset.max_train_samples=200",
         "network.param_limit=20000", "search.space.param_limit.low=15000",
         "search.space.G1_nodes.high=4", "search.space.G2_nodes.high=2",
         "search.space.G3_nodes.high=4",
         "+search.space.top_family={type:choice,values:[ws,er,ba]}",
         "+search.space.G1_K.when={top_family:[ws,ba]}",
         "+search.space.G1_P.when={top_family:[ws,er]}"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with sqlite3.connect(tmp_path / "study.db") as conn:
        rows = conn.execute("SELECT status, params FROM trials ORDER BY number").fetchall()
    assert [status for status, _ in rows] == ["complete"] * 4
    params = [json.loads(p) for _, p in rows]
    assert {p["top_family"] for p in params} - {"ws"}, "a family with an inactive value ran"
    for p in params:
        assert p["top_family"] != "er" or p["G1_K"] == 2
        assert p["top_family"] != "ba" or p["G1_P"] == 0.1
