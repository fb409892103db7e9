"""search.prescreen: candidates around a proposal, scored by a zero-cost proxy; the best trains."""

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
from nago_pl.proxies import score
from nago_pl.search import Objective, RandomSearch, SearchSpace, Study
from nago_pl.search.constraints import DataShape
from nago_pl.search.prescreen import Prescreen, step
from nago_pl.search.runner import trial_base_config

ROOT = Path(__file__).resolve().parents[1]
OBJS = [Objective("val_acc", "max")]


def nb201_setup(candidates: int, proxy: str = "params") -> tuple[Study, Prescreen, RandomSearch]:
    cfg = compose("search", ["space=nb201", "space.cells_per_stage=1", "space.channels=8"])
    space = OmegaConf.to_container(cfg.search.space, resolve=True)
    study = Study.open(":memory:", "p", space, OBJS)
    batch = (torch.randn(8, 3, 32, 32), torch.randint(10, (8,)))
    prescreen = Prescreen(study.space, trial_base_config(cfg, "trial"), DataShape(3, 10, 32),
                          batch, candidates, proxy)
    return study, prescreen, RandomSearch(study.space, OBJS, seed=3)


def test_step_moves_one_value_one_step_inside_the_bounds() -> None:
    space = SearchSpace.from_config({
        "c": {"type": "choice", "values": ["a", "b", "c"]},
        "i": {"type": "int", "low": 1, "high": 4},
        "f": {"type": "float", "low": 0.0, "high": 1.0}})
    gen = torch.Generator().manual_seed(0)
    c, i, f = space.params
    assert {step(c, "a", gen) for _ in range(30)} == {"b", "c"}
    assert {step(i, 1, gen) for _ in range(30)} == {2}  # at the bound: inward
    assert {step(i, 3, gen) for _ in range(30)} == {2, 4}
    moved = {round(step(f, 0.5, gen), 6) for _ in range(30)}
    assert moved == {0.4, 0.6}


def test_the_best_scoring_candidate_replaces_the_proposal() -> None:
    study, prescreen, strategy = nb201_setup(candidates=5)
    proposal = strategy.ask(study)[0]
    options = [(proposal.params, proposal.seed), *prescreen.around(study, proposal)]
    assert len(options) == 5
    for params, _ in options[1:]:  # one edge changed
        assert sum(params[k] != proposal.params[k] for k in params) == 1
    scores = [prescreen.score(p, s) for p, s in options]
    chosen = prescreen(study, proposal)
    best = max(range(5), key=lambda k: (scores[k], -k))
    assert (chosen.params, chosen.seed) == options[best]
    assert chosen.id == proposal.id and chosen.status == "running"
    info = chosen.info["prescreen"]
    assert info["scored"] == 5 and info["score"] == max(scores)
    assert info["moved"] == (best != 0) and info["proposal_score"] == scores[0]
    assert prescreen(study, chosen) == chosen  # prescreened once (e.g. when re-queued)


def test_the_baseline_and_a_training_trial_are_left_alone() -> None:
    study, prescreen, strategy = nb201_setup(candidates=3)
    baseline = study.add_trial(strategy.ask(study)[0].params, 0, info={"source": "baseline"})
    assert prescreen(study, baseline) == baseline
    trial = strategy.ask(study)[0]
    study.report(trial.id, 1, {"val_acc": 0.5})
    with pytest.raises(ValueError, match="has reports: it trains already"):
        study.revise(trial.id, trial.params, trial.seed, {})


def test_an_unscorable_candidate_ranks_last() -> None:
    study, prescreen, strategy = nb201_setup(candidates=4, proxy="nwot")
    none_cell = {f"edge_{i}": "none" for i in range(6)}
    trial = study.add_trial(none_cell, 1, info={"source": "bo"})
    assert torch.isnan(torch.tensor(prescreen.score(none_cell, 1)))  # nothing to score
    chosen = prescreen(study, trial)
    assert chosen.info["prescreen"]["moved"]  # any scorable neighbour beats the NaN
    assert chosen.info["prescreen"]["score"] == pytest.approx(
        score("nwot", prescreen_net(prescreen, chosen), prescreen.batch))


def prescreen_net(prescreen: Prescreen, trial: object) -> torch.nn.Module:
    from nago_pl.network.configured import build_model, resolve_architecture
    from nago_pl.search.trial import trial_config

    cfg = trial_config(prescreen.base, trial.params, trial.seed)
    torch.manual_seed(trial.seed)
    return build_model(resolve_architecture(cfg), cfg, 3, 10, 32)


def test_an_unknown_proxy_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(NagoError, match="search.prescreen_proxy='accuracy': allowed: jacov, nwot"):
        nb201_setup(candidates=3, proxy="accuracy")
    proc = subprocess.run([sys.executable, "search.py", "logger=none", "search.prescreen=4",
                           "search.prescreen_proxy=accuracy", f"hydra.run.dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "search.prescreen_proxy='accuracy': allowed: jacov, nwot" in line


@pytest.mark.slow
def test_a_digits_search_trains_prescreened_trials(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "search.py", f"hydra.run.dir={tmp_path}", "logger=none",
         "search=random", "search.trials=3", "search.prescreen=4", "trainer.max_epochs=2",
         "dataset.max_train_samples=300", "network.param_limit=30000",
         "network.head_channels=64", "search.space.G1_nodes.high=4",
         "search.space.G2_nodes.high=2", "search.space.G3_nodes.high=4"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with sqlite3.connect(tmp_path / "study.db") as conn:
        rows = conn.execute("SELECT status, info FROM trials ORDER BY number").fetchall()
    assert [r[0] for r in rows] == ["complete"] * 3
    for _, info in rows:
        screened = json.loads(info)["prescreen"]
        assert screened["proxy"] == "nwot" and screened["scored"] == 4
