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
from shared_data import needs_shared

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.proxies import score
from nago_pl.search import Objective, RandomSearch, SearchSpace, Study
from nago_pl.search.constraints import DataShape
from nago_pl.search.prescreen import Prescreen, ProxyScore, step
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
        score("nwot", prescreen_net(prescreen, chosen), prescreen.score.batch))


def prescreen_net(prescreen: Prescreen, trial: object) -> torch.nn.Module:
    from nago_pl.network.configured import build_model, resolve_architecture
    from nago_pl.search.trial import trial_config

    cfg = trial_config(prescreen.score.base, trial.params, trial.seed)
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


# ------------------------------------------------------------ with the table (issue 18)
TABLE = ROOT / ".." / "shared" / "data" / "nas-bench-201" / "nats_tss_test_acc_200ep.csv"
needs_table = needs_shared(TABLE)


def table_search(run_dir: Path, *overrides: str):
    from rich.console import Console

    from nago_pl.search.runner import run_search

    cfg = compose("search", ["space=nb201", "evaluator=nb201_table", "search=random",
                             "logger=none", f"evaluator.path={TABLE}", "search.trials=3",
                             "search.prescreen=2", "search.prescreen_batch=8",
                             "space.cells_per_stage=1", *overrides])
    return run_search(cfg, run_dir, Console(quiet=True))


@pytest.fixture
def rgb_folder(tmp_path: Path) -> Path:
    """An ImageFolder pool of CIFAR-10's shape: 10 classes of 32x32 RGB images."""
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for c in range(10):
        (tmp_path / "images" / f"class{c}").mkdir(parents=True)
        for k in range(3):
            pixels = torch.randint(256, (32, 32, 3), generator=gen, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(tmp_path / "images" / f"class{c}" / f"{k}.png")
    return tmp_path / "images"


def statuses(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM trials ORDER BY number")]


@needs_table
def test_table_search_refuses_to_prescreen_on_images_of_another_shape(tmp_path: Path) -> None:
    """The table loads no data: the default digits (1x8x8) cannot score CIFAR-10 cells."""
    with pytest.raises(NagoError, match=r"search.prescreen=2 scores networks on training images "
                                        r"of their input: evaluator.dataset=cifar10's 3x32x32 "
                                        r"images of 10 classes, but .* has 1x8x8 images"):
        table_search(tmp_path)
    assert "running" not in statuses(tmp_path / "study.db")


@needs_table
def test_table_search_prescreens_on_images_of_the_table_shape(tmp_path: Path,
                                                             rgb_folder: Path) -> None:
    study = table_search(tmp_path, "dataset=image_folder", f"dataset.root={rgb_folder}",
                         "dataset.val_fraction=0.2")
    trials = study.trials()
    assert [t.status for t in trials] == ["complete"] * 3
    screened = [t for t in trials if t.info["source"] != "baseline"]
    assert screened and all(t.info["prescreen"]["scored"] == 2 for t in screened)


@needs_table
def test_an_error_while_prescreening_leaves_no_trial_running(
        tmp_path: Path, rgb_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fails_on_the_second_trial(self, params, seed):
        calls.append(seed)
        if len(calls) > 2:  # trial 0's two candidates scored, then the proxy breaks
            raise RuntimeError("proxy broke")
        return float(len(calls))

    monkeypatch.setattr(ProxyScore, "__call__", fails_on_the_second_trial)
    with pytest.raises(RuntimeError, match="proxy broke"):
        table_search(tmp_path, "dataset=image_folder", f"dataset.root={rgb_folder}",
                     "search.batch_size=2")
    after = statuses(tmp_path / "study.db")
    assert "running" not in after and after[-1] == "queued"  # asked again when re-run
