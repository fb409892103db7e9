"""Objectives known before training: NB201's exact costs, and MOBO computing them (no GP)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from shared_data import needs_shared

import nago_pl.search.strategies.mobo as mobo_module
from nago_pl.config import compose
from nago_pl.network.nb201 import Nb201Costs, Nb201Spec, measure_network
from nago_pl.search import MOBO, Objective, SearchSpace, Study, make_strategy
from nago_pl.search.constraints import DataShape
from nago_pl.search.known_costs import known_objectives, nb201_costs
from nago_pl.search.pareto import to_maximization
from nago_pl.search.runner import strategy_context
from nago_pl.search.strategies.mobo import WithKnownObjectives
from nago_pl.space.nb201 import OPS, Nb201Cell

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / ".." / "shared" / "data" / "nas-bench-201" / "nats_tss_test_acc_200ep.csv"
SPEC = Nb201Spec(3, 10, 32)
COSTS = Nb201Costs.measure(SPEC)
EDGES6 = {f"edge_{i}": {"type": "choice", "values": list(OPS)} for i in range(6)}
OBJECTIVES = [Objective("val_acc", "max"), Objective("params", "min", log=True)]


def space_of(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg.search.space, resolve=True)


def cell_of(config: dict, default: list[str]) -> Nb201Cell:
    return Nb201Cell(tuple(config.get(f"edge_{i}", default[i]) for i in range(6)))


@pytest.mark.parametrize("ops", [("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3",
                                  "nor_conv_1x1", "nor_conv_3x3"),
                                 ("none",) * 5 + ("nor_conv_1x1",)])
def test_additive_costs_equal_the_built_network(ops: tuple[str, ...]) -> None:
    cell = Nb201Cell(ops)
    assert COSTS.of(cell) == measure_network(cell, SPEC)


def test_known_costs_are_the_costs_of_the_cells_unit_points_decode_to() -> None:
    # some edges fixed or left to the config, restricted values, one conditional edge
    space = SearchSpace.from_config({
        "edge_0": {"type": "choice", "values": ["nor_conv_3x3", "none", "skip_connect"]},
        "edge_2": {"type": "choice", "values": list(OPS)},
        "edge_3": {"type": "choice", "values": ["avg_pool_3x3", "nor_conv_1x1"],
                   "when": {"edge_0": ["nor_conv_3x3"]}},
        "edge_5": {"value": "nor_conv_1x1"}})
    default = ["none", "skip_connect", "none", "none", "nor_conv_3x3", "none"]
    known = nb201_costs(space, COSTS, default)
    X = torch.rand(7, 3, space.dim, generator=torch.Generator().manual_seed(0),
                   dtype=torch.float64)
    params, flops = known["params"](X), known["flops"](X)
    assert params.shape == flops.shape == (7, 3)
    configs = space.from_unit(X.reshape(-1, space.dim))
    expected = torch.tensor([COSTS.of(cell_of(c, default)) for c in configs],
                            dtype=torch.float64)
    assert torch.equal(params.reshape(-1), expected[:, 0])
    assert torch.equal(flops.reshape(-1), expected[:, 1])
    assert len(set(expected[:, 0].tolist())) > 3  # the points differ in cost


def test_no_known_costs_when_the_space_searches_anything_but_edges() -> None:
    space = SearchSpace.from_config({**EDGES6, "G1_nodes": {"type": "int", "low": 4, "high": 8}})
    assert nb201_costs(space, COSTS, ["none"] * 6) == {}
    hnag = compose("search", [])
    assert strategy_context(hnag, Study.open(":memory:", "h", space_of(hnag), OBJECTIVES),
                            DataShape(1, 10, 8))["known"] == {}


def test_a_nb201_search_hands_mobo_its_costs_and_a_table_search_one_thread() -> None:
    cfg = compose("search", ["space=nb201", "evaluator=nb201_table", "dataset=cifar10"])
    study = Study.open(":memory:", "n", space_of(cfg), OBJECTIVES)
    context = strategy_context(cfg, study, DataShape(3, 10, 32), trains=False)
    assert set(context["known"]) == {"params", "flops"} and context["fit_ftol"] > 0
    assert {"num_threads", "fit_ftol"}.isdisjoint(strategy_context(cfg, study,
                                                                   DataShape(3, 10, 32)))
    # every core lost 2x and more beside other processes (BENCHMARKS.md): one thread, as
    # when trials train, unless the user asks for more
    mobo = make_strategy("mobo", context, space=study.space, objectives=OBJECTIVES)
    assert [o.name for o in mobo.modelled] == ["val_acc"] and mobo.num_threads == 1
    every_core = make_strategy("mobo", context, space=study.space, objectives=OBJECTIVES,
                               num_threads=None)
    assert every_core.num_threads is None
    # strategies that model nothing take nothing from the context
    make_strategy("random", context, space=study.space, objectives=OBJECTIVES)
    assert known_objectives(cfg, study.space, DataShape(3, 10, 32)).keys() == {"params", "flops"}


def test_the_acquisition_objective_joins_samples_and_exact_values() -> None:
    space = SearchSpace.from_config(EDGES6)
    known = nb201_costs(space, COSTS, ["none"] * 6)
    objective = WithKnownObjectives(OBJECTIVES, {"params": known["params"]}, space.dim)
    X = torch.rand(5, 1, space.dim + 1, dtype=torch.float64)  # + the fidelity column
    samples = torch.randn(16, 5, 1, 1, dtype=torch.float64)
    out = objective(samples, X)
    assert out.shape == (16, 5, 1, 2)
    assert torch.equal(out[..., 0], samples[..., 0])
    exact = to_maximization(known["params"](X[..., :-1]).unsqueeze(-1), OBJECTIVES[1:])[..., 0]
    assert torch.equal(out[..., 1], exact.expand(16, 5, 1))
    with pytest.raises(ValueError, match="computed from X"):
        objective(samples)


def test_mobo_models_only_what_is_not_known(monkeypatch: pytest.MonkeyPatch) -> None:
    space = SearchSpace.from_config(EDGES6)
    known = nb201_costs(space, COSTS, ["none"] * 6)
    seen = []
    make = mobo_module.make_acquisition

    def spy(model, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen.append((model.num_outputs, type(args[-1]) if len(args) > 4 else None))
        return make(model, *args, **kwargs)

    monkeypatch.setattr(mobo_module, "make_acquisition", spy)
    study = Study.open(":memory:", "k", EDGES6, OBJECTIVES)
    strategy = MOBO(space, OBJECTIVES, seed=0, n_init=4, known=known, num_restarts=4,
                    raw_samples=64, mc_samples=32)
    for step in range(8):
        trial = strategy.ask(study, 1)[0]
        cell = cell_of(trial.params, ["none"] * 6)
        study.tell(trial.id, {"val_acc": 0.5 + 0.01 * step, "params": COSTS.of(cell)[0]})
    assert seen and all(s == (1, WithKnownObjectives) for s in seen)
    configs = [tuple(t.params.values()) for t in study.trials()]
    assert len(set(configs)) == len(configs)


@needs_shared(TABLE)
def test_a_table_search_starts_without_lightning(tmp_path: Path) -> None:
    code = ("import sys, search; from nago_pl.config import compose; "
            "from nago_pl.search.runner import run_search; from rich.console import Console; "
            f"cfg = compose('search', ['space=nb201', 'evaluator=nb201_table', "
            f"'dataset=cifar10', 'search=random', 'search.trials=3', 'logger=none', "
            f"'evaluator.path={TABLE}']); "
            f"run_search(cfg, __import__('pathlib').Path({str(tmp_path)!r}), Console(quiet=True)); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'lightning'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "study.db").is_file()
