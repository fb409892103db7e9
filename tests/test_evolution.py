"""Regularised evolution: one-value mutation, ageing tournament, NSGA-II-like order, and that it
beats uniform sampling on the NAS-Bench-201 table (the shared suite, test_strategy_suite.py,
checks what every strategy must do)."""

from __future__ import annotations

import statistics

import pytest
import torch
from shared_data import SHARED, needs_shared
from test_graphpnas import table_search

from nago_pl.errors import NagoError
from nago_pl.search import Objective, SearchSpace, Study
from nago_pl.search.nb201_table import Nb201Table
from nago_pl.search.strategies import Evolution, RandomSearch
from nago_pl.search.strategies.evolution import reflect
from nago_pl.space.nb201 import OPS

MIXED = {"n": {"type": "int", "low": 1, "high": 9}, "lr": {"type": "float", "low": 1e-4,
                                                           "high": 1.0, "log": True},
         "act": {"type": "choice", "values": ["relu", "gelu", "silu"]},
         "drop": {"type": "float", "low": 0.0, "high": 0.5, "when": {"act": ["gelu"]}}}
NB201 = {f"edge_{i}": {"type": "choice", "values": list(OPS)} for i in range(6)}
ACC = [Objective("acc", "max")]
NB201_TABLE = SHARED / "nas-bench-201" / "nats_tss_test_acc_200ep.csv"


def test_a_mutant_differs_from_its_parent_in_exactly_one_active_value() -> None:
    space = SearchSpace.from_config(MIXED)
    rea = Evolution(space, ACC, seed=0)
    gen = torch.Generator().manual_seed(0)
    parent = space.uniform(1, 1)[0] | {"act": "relu"}
    parent = space.normalise(parent)
    changed = set()
    for _ in range(200):
        child, name = rea.mutate(parent, gen)
        diff = [k for k in MIXED if child[k] != parent[k]]
        assert diff == [name]
        assert name != "drop"  # inactive while act is relu
        changed.add(name)
    assert changed == {"n", "lr", "act"}


def test_reflect_folds_steps_back_into_the_unit_interval() -> None:
    assert reflect(1.25) == pytest.approx(0.75)
    assert reflect(-0.25) == pytest.approx(0.25)
    assert reflect(0.4) == pytest.approx(0.4)


def test_the_tournament_draws_from_the_youngest_population_only() -> None:
    """The oldest results age out: once the best trial is older than the population, no child
    of it appears, although it is still the best of the study."""
    space = SearchSpace.from_config({"x": {"type": "int", "low": 0, "high": 1000}})
    study = Study.open(":memory:", "s", space, ACC)
    rea = Evolution(space, ACC, seed=0, population=4, tournament=4)
    for i in range(30):
        (trial,) = rea.ask(study, 1)
        study.tell(trial.id, {"acc": 100.0 if i == 0 else float(trial.params["x"]) / 1000})
    later = [t.info["parent"] for t in study.trials()[5:]]
    assert later and 0 not in later  # trial 0, the best, left once trial 4 had its result
    # with tournament = population the winner is the best of the 4 youngest results
    for trial in study.trials()[4:]:
        youngest = [t for t in study.trials() if t.number < trial.number][-4:]
        best = max(youngest, key=lambda t: t.values["acc"])
        assert trial.info["parent"] == best.number


def test_two_objectives_use_non_dominated_rank_then_crowding() -> None:
    space = SearchSpace.from_config({"x": {"type": "int", "low": 0, "high": 10_000}})
    objectives = [Objective("a", "max"), Objective("b", "max")]
    study = Study.open(":memory:", "s", space, objectives)
    rea = Evolution(space, objectives, seed=1, population=5, tournament=5)
    for _ in range(5):
        (trial,) = rea.ask(study, 1)
        x = trial.params["x"] / 10_000
        study.tell(trial.id, {"a": x, "b": 1 - x})  # all five on one front
    dominated = study.add_trial({"x": 1}, 0)
    study.tell(dominated.id, {"a": -1.0, "b": -1.0})
    (child,) = rea.ask(study, 1)
    front = sorted(study.trials()[1:5], key=lambda t: t.values["a"])
    assert child.info["parent"] in (front[0].number, front[-1].number)  # an extreme: inf crowding


def test_options_are_checked() -> None:
    space = SearchSpace.from_config(MIXED)
    with pytest.raises(NagoError, match="tournament .* at most population"):
        Evolution(space, ACC, population=3, tournament=4)
    with pytest.raises(NagoError, match="mutation_scale"):
        Evolution(space, ACC, mutation_scale=0)


@needs_shared(NB201_TABLE)
def test_evolution_beats_uniform_sampling_on_the_nb201_table() -> None:
    """Best CIFAR-10 accuracy after 100 table queries over 10 seeds: REA above random search
    (the issue measured 94.12 vs 93.86 over 100 seeds)."""
    table = Nb201Table.load(NB201_TABLE, "cifar10")
    space = SearchSpace.from_config(NB201)
    rea = [table_search(Evolution(space, ACC, seed=s), table, space, 100) for s in range(10)]
    uniform = [table_search(RandomSearch(space, ACC, seed=s), table, space, 100)
               for s in range(10)]
    assert statistics.mean(rea) > statistics.mean(uniform) + 0.001
