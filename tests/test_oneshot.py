"""One-shot search (SNAS, the DARTS control): the relaxed sample, one loss reaching θ and α,
the cost term, restricted edges, derived cells, bad settings, and ``search.py search=snas``
end to end on real CIFAR-10 JPEGs with the NB201 table and with trained trials, resumed after
``kill -9``."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from rich.console import Console
from shared_data import SHARED, needs_shared
from test_executors import ROOT, rows, wait_for
from test_wandb import ended_offline_runs, offline_wandb  # noqa: F401 (a fixture)
from torch.utils.data import DataLoader

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.network.nb201 import Nb201Spec, measure_network
from nago_pl.oneshot.module import OneShotSearch, OneShotSettings, relaxed_sample
from nago_pl.oneshot.stage import edge_ops
from nago_pl.oneshot.strategy import DerivedCells
from nago_pl.oneshot.supernet import (
    CellCost,
    Supernet,
    allowed_mask,
    derived_cell,
    one_hot,
)
from nago_pl.search.runner import run_search
from nago_pl.search.shrink.pockets import ShrunkSpace
from nago_pl.search.space import SearchSpace
from nago_pl.search.study import Objective, Study
from nago_pl.space.nb201 import EDGES, OPS, Nb201Cell
from nago_pl.transfer import load_model

TABLE = SHARED / "nas-bench-201" / "nats_tss_test_acc_200ep.csv"
TINY = Nb201Spec(3, 10, 8, 4, 1)
ALL_OPS = [list(OPS)] * len(EDGES)
CELLS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
         "skip_connect~2|",
         "|none~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|",
         "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|"
         "skip_connect~2|"]


def tiny_module(method: str = "snas", edge_ops: list[list[str]] | None = None,
                **settings: float) -> OneShotSearch:
    mask = allowed_mask(edge_ops or ALL_OPS)
    torch.manual_seed(0)
    return OneShotSearch(Supernet(TINY, mask), mask, CellCost(TINY, "flops"),
                         OneShotSettings(method=method, epochs=2, **settings))


class RandomBatches(L.LightningDataModule):
    """Random 8x8 images and labels as one-shot batches (``arch`` too for DARTS)."""

    def __init__(self, bilevel: bool, batches: int = 2) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.pairs = [(torch.randn(8, 3, 8, 8, generator=gen),
                       torch.randint(10, (8,), generator=gen)) for _ in range(batches)]
        self.bilevel = bilevel

    def train_dataloader(self) -> DataLoader:
        return DataLoader([{"train": p, "arch": p} if self.bilevel else {"train": p}
                           for p in self.pairs], batch_size=None)


def fit(module: OneShotSearch, epochs: int = 1) -> None:
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, datamodule=RandomBatches(module.settings.method == "darts"))


# --------------------------------------------------------------------------- the relaxation
def test_relaxed_sample_becomes_one_hot_as_tau_goes_to_zero() -> None:
    logits = torch.randn(200, 5, generator=torch.Generator().manual_seed(0))
    # the same Gumbel noise at every τ: each row tends to the one-hot of argmax(logits + noise)
    samples = [relaxed_sample(logits, tau, torch.Generator().manual_seed(1))
               for tau in (1.0, 0.1, 0.01, 1e-4)]
    for z in samples:
        assert torch.allclose(z.sum(-1), torch.ones(200))
    peaks = [z.max(-1).values for z in samples]
    assert peaks[0].mean() < 0.8  # a real mixture at τ = 1
    for warmer, colder in zip(peaks, peaks[1:], strict=False):
        assert (colder >= warmer - 1e-6).all()
    assert (peaks[-1] > 0.99).float().mean() >= 0.99 and peaks[-1].mean() > 0.999
    assert torch.equal(samples[0].argmax(-1), samples[-1].argmax(-1))
    # and it is a sample: the argmax follows softmax(logits), not just the largest logit
    draws = relaxed_sample(torch.tensor([[0.0, 1.0]]).repeat(4000, 1), 0.01,
                           torch.Generator().manual_seed(2)).argmax(-1)
    assert abs(draws.float().mean() - torch.sigmoid(torch.tensor(1.0))) < 0.03


def test_tau_schedules_anneal_from_start_to_end() -> None:
    for schedule in ("linear", "exponential"):
        settings = OneShotSettings(epochs=11, tau_schedule=schedule)
        taus = [settings.tau(e) for e in range(11)]
        assert taus[0] == pytest.approx(1.0) and taus[-1] == pytest.approx(0.03)
        assert all(a > b for a, b in zip(taus, taus[1:], strict=False))
    assert OneShotSettings(epochs=11).tau(5) == pytest.approx((1.0 + 0.03) / 2)
    assert OneShotSettings(epochs=11, tau_schedule="exponential").tau(5) == \
        pytest.approx(0.03 ** 0.5)


# --------------------------------------------------------------------------- one loss, θ and α
def test_one_snas_loss_reaches_weights_and_alpha() -> None:
    module = tiny_module(cost_weight=0.5)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(10, (4,))
    weights = relaxed_sample(module.logits(), 1.0)
    loss = torch.nn.functional.cross_entropy(module(x, weights), y) + module.penalty(weights)
    loss.backward()
    assert module.alpha.grad is not None and module.alpha.grad.abs().min() > 0
    convs = [p for n, p in module.supernet.named_parameters() if "edges" in n]
    assert convs and all(p.grad is not None and p.grad.abs().sum() > 0 for p in convs)


@pytest.mark.parametrize("method", ["snas", "darts"])
def test_a_training_step_updates_weights_and_alpha(method: str) -> None:
    module = tiny_module(method, alpha_lr=0.01)
    alpha, stem = module.alpha.detach().clone(), module.supernet.stem[0].weight.detach().clone()
    fit(module)
    assert not torch.equal(module.alpha.detach(), alpha)
    assert not torch.equal(module.supernet.stem[0].weight.detach(), stem)


def test_a_diverging_supernet_stops_with_one_error() -> None:
    module = tiny_module()
    with torch.no_grad():
        module.alpha.fill_(float("nan"))
    with pytest.raises(NagoError, match="diverged"):
        fit(module)


# --------------------------------------------------------------------------- the cost term
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("metric", ["params", "flops"])
def test_expected_cost_of_a_one_hot_alpha_is_the_cells_cost(cell: str, metric: str) -> None:
    spec = Nb201Spec(3, 10, 32, 16, 5)
    params, flops = measure_network(Nb201Cell.from_string(cell), spec)
    cost = CellCost(spec, metric)(one_hot(Nb201Cell.from_string(cell)))
    assert float(cost) == pytest.approx(params if metric == "params" else flops, rel=1e-6)


def test_a_larger_cost_weight_pushes_alpha_to_cheaper_ops() -> None:
    """The cost term's gradient on α lowers the expensive ops (descent raises skip_connect
    over the 3x3 convolution on every edge), in proportion to the weight."""
    gradients = []
    for weight in (0.1, 1.0):
        module = tiny_module(cost_weight=weight)
        module.penalty(module.probabilities()).backward()
        gradients.append(module.alpha.grad.clone())
    conv3, skip = OPS.index("nor_conv_3x3"), OPS.index("skip_connect")
    for grad in gradients:
        assert (grad[:, conv3] > grad[:, skip]).all()  # descent lowers α of the 3x3 conv
    assert torch.allclose(gradients[1], 10 * gradients[0], rtol=1e-4)


# --------------------------------------------------------------------------- restricted edges
def test_a_restricted_edge_never_selects_an_excluded_op() -> None:
    edge_ops = [["nor_conv_3x3", "skip_connect"], ["none"], *ALL_OPS[2:]]
    module = tiny_module(edge_ops=edge_ops)
    with torch.no_grad():  # α pushed hard towards excluded ops
        module.alpha[0, OPS.index("avg_pool_3x3")] = 50.0
        module.alpha[1, OPS.index("nor_conv_3x3")] = 50.0
    assert len(module.supernet.blocks[0].edges[0].ops) == 2
    assert len(module.supernet.blocks[0].edges[1].ops) == 1
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        z = relaxed_sample(module.logits(), 0.5, gen)
        assert z[0, [OPS.index(op) for op in OPS if op not in edge_ops[0]]].eq(0).all()
        assert z[1, OPS.index("none")] == 1.0
    cell = module.cell()
    assert cell.ops[0] in edge_ops[0] and cell.ops[1] == "none"
    space = SearchSpace.from_config({f"edge_{k}": {"type": "choice", "values": list(OPS)}
                                     for k in range(6)})
    study = Study.open(":memory:", "restricted", space, [Objective("val_acc", "max")])
    cells = DerivedCells(space, study.objectives, 0, module.probabilities().detach(), "snas")
    for trial in cells.ask(study, 40):
        assert trial.params["edge_0"] in edge_ops[0] and trial.params["edge_1"] == "none"


def test_fixed_searched_and_shrunk_edges_restrict_the_supernet() -> None:
    """space.ops fixes an edge the search space leaves out; a searched edge mixes its values;
    a shrunk space keeps only the values some member of it takes."""
    cfg = compose("search", ["space=nb201", "search=snas", "~search.space.edge_5",
                             "search.space.edge_0.values=[nor_conv_3x3,skip_connect]"])
    space = SearchSpace.from_config(OmegaConf.to_container(cfg.search.space))
    assert edge_ops(cfg, space) == [["skip_connect", "nor_conv_3x3"], *ALL_OPS[1:5],
                                    [cfg.space.ops[5]]]
    shrunk = {**{f"edge_{k}": set(OPS) for k in range(5)}, "edge_2": {"none", "avg_pool_3x3"}}
    restricted = edge_ops(cfg, space, shrunk)
    assert restricted[2] == ["none", "avg_pool_3x3"] and restricted[5] == [cfg.space.ops[5]]
    mask = allowed_mask(restricted)
    assert mask.sum(-1).tolist() == [2, 5, 2, 5, 5, 1]


def test_an_unknown_op_is_one_error() -> None:
    with pytest.raises(NagoError, match="'conv_7x7'.*allowed: none, skip_connect"):
        allowed_mask([["conv_7x7"], *ALL_OPS[1:]])


# --------------------------------------------------------------------------- derived cells
def test_derived_cells_round_trip_through_the_cell_string() -> None:
    gen = torch.Generator().manual_seed(3)
    for _ in range(20):
        probabilities = torch.softmax(torch.randn(6, 5, generator=gen), -1)
        cell = derived_cell(probabilities)
        assert Nb201Cell.from_string(cell.to_string()) == cell
        assert cell.ops == tuple(OPS[int(i)] for i in probabilities.argmax(-1))
        assert torch.equal(one_hot(cell).argmax(-1), probabilities.argmax(-1))


def test_derived_cells_are_the_argmax_then_new_samples() -> None:
    space = SearchSpace.from_config({f"edge_{k}": {"type": "choice", "values": list(OPS)}
                                     for k in range(6)})
    study = Study.open(":memory:", "derived", space, [Objective("val_acc", "max")])
    probabilities = torch.full((6, 5), 0.02).index_fill_(1, torch.tensor([3]), 0.92)
    cells = DerivedCells(space, study.objectives, 0, probabilities, "snas")
    trials = cells.ask(study, 6)
    assert trials[0].info["derived"] == "argmax"
    assert trials[0].params == {f"edge_{k}": "nor_conv_3x3" for k in range(6)}
    keys = {tuple(t.params.values()) for t in trials}
    assert len(keys) == 6 and all(t.info["derived"] == "sampled" for t in trials[1:])
    # the learned distribution, not a uniform draw: most sampled edges are its mode
    modes = sum(v == "nor_conv_3x3" for t in trials[1:] for v in t.params.values())
    assert modes >= 0.6 * 5 * 6


def test_derived_cells_of_a_shrunk_space_are_its_likeliest_members() -> None:
    """Given a shrunk space's members, trial 0 is the member the distribution likes best
    (not the per-edge argmax, which lies outside), and later trials are members only."""
    space = SearchSpace.from_config({f"edge_{k}": {"type": "choice", "values": list(OPS)}
                                     for k in range(6)})
    study = Study.open(":memory:", "derived", space, [Objective("val_acc", "max")])
    probabilities = torch.full((6, 5), 0.02).index_fill_(1, torch.tensor([3]), 0.92)
    probabilities[0] = torch.tensor([0.05, 0.35, 0.05, 0.5, 0.05])  # skip second on edge 0
    modal = {f"edge_{k}": "nor_conv_3x3" for k in range(6)}
    members = [{**modal, "edge_0": op, "edge_4": fourth, "edge_5": last}
               for op in ("none", "skip_connect") for fourth in OPS
               for last in OPS]  # the modal cell is no member: edge 0 is never a 3x3 conv
    cells = DerivedCells(space, study.objectives, 0, probabilities, "snas", members=members)
    trials = cells.ask(study, 11)
    assert trials[0].params == {**modal, "edge_0": "skip_connect"}
    assert all(t.params in members for t in trials)
    assert len({tuple(t.params.values()) for t in trials}) == 11
    # drawn by likelihood (a 3x3 conv on edge 4 or 5 is 46 times likelier than another op),
    # not uniformly (uniform: 9 of 25 members have one)
    likely = sum("nor_conv_3x3" in (t.params["edge_4"], t.params["edge_5"]) for t in trials[1:])
    assert likely >= 8


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize("override, fragment", [
    ("search.options.tau_start=0", "tau_start=0: expected a number > 0"),
    ("search.options.tau_end=-1", "tau_end=-1: expected a number > 0"),
    ("search.options.tau_schedule=cosine", "tau_schedule='cosine': allowed: linear"),
    ("search.options.channels=0", "channels=0: expected an integer >= 1"),
    ("+search.options.bogus=1", "no option(s) ['bogus']; allowed: epochs"),
    ("search_space=nb201 +search.space.edge_0.values=[none,conv_7x7]", "conv_7x7"),
])
def test_bad_settings_are_one_line_errors(tmp_path: Path, override: str, fragment: str) -> None:
    cfg = compose("search", ["space=nb201", "evaluator=nb201_table", "search=snas",
                             "logger=none", f"evaluator.path={TABLE}",
                             "dataset=image_folder", f"dataset.root={tmp_path}",
                             *override.split()])
    with pytest.raises(NagoError, match=fragment.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")) as err:
        run_search(cfg, tmp_path, Console(quiet=True))
    assert "\n" not in str(err.value)


def test_snas_outside_nb201_is_one_error(tmp_path: Path) -> None:
    cfg = compose("search", ["search=snas", "logger=none"])
    with pytest.raises(NagoError, match="space=hnag is not supported.*space=nb201"):
        run_search(cfg, tmp_path, Console(quiet=True))


# --------------------------------------------------------------------------- search.py
def search_command(run_dir: Path, data: Path, *overrides: str) -> list[str]:
    return [sys.executable, "search.py", f"hydra.run.dir={run_dir}", "space=nb201",
            "search=snas", "logger=csv", "dataset=image_folder", f"dataset.root={data}",
            "dataset.batch_size=32", "search.options.train_images=240",
            "search.options.val_images=60", "search.options.channels=4", *overrides]


def study_trials(run_dir: Path) -> list[dict]:
    """Every trial of the study in ``run_dir`` (number order): status, params, info, paths."""
    return [{"status": status, "params": json.loads(params), "info": json.loads(info or "{}"),
             "paths": json.loads(paths or "{}")}
            for status, params, info, paths in rows(
                run_dir / "study.db",
                "SELECT status, params, info, paths FROM trials ORDER BY number")]


def alpha_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "oneshot" / "alpha.csv").open() as f:
        return list(csv.DictReader(f))


@needs_shared(TABLE)
def test_snas_search_with_the_table_writes_the_usual_outputs(tmp_path: Path,
                                                             cifar_small: Path) -> None:
    done = subprocess.run(search_command(tmp_path, cifar_small, "evaluator=nb201_table",
                                         f"evaluator.path={TABLE}", "search.trials=5",
                                         "search.options.epochs=3"),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "snas: derived cell |" in done.stdout
    saved = json.loads((tmp_path / "oneshot" / "alpha.json").read_text())
    rows = alpha_rows(tmp_path)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and saved["epochs"] == 3
    assert [float(r["tau"]) for r in rows] == pytest.approx([1.0, 0.515, 0.03])
    assert rows[-1]["cell"] == saved["cell"]
    probabilities = torch.tensor(saved["probabilities"])
    assert torch.allclose(probabilities.sum(-1), torch.ones(6))
    assert (tmp_path / "oneshot" / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "oneshot" / "csv" / "metrics.csv").is_file()  # the loggers' copy
    trials = study_trials(tmp_path)
    assert [t["status"] for t in trials] == ["complete"] * 5
    assert trials[0]["info"]["source"] == "baseline"
    argmax = next(t for t in trials if t["info"].get("derived") == "argmax")
    assert Nb201Cell(tuple(argmax["params"][f"edge_{k}"] for k in range(6))).to_string() == \
        saved["cell"]
    assert sum(t["info"].get("derived") == "sampled" for t in trials) == 3
    for name in ("pareto.json", "pareto.png", "hypervolume.png"):
        assert (tmp_path / name).is_file(), name
    # the same command again: the search is done, nothing is trained again
    again = subprocess.run(search_command(tmp_path, cifar_small, "evaluator=nb201_table",
                                          f"evaluator.path={TABLE}", "search.trials=5",
                                          "search.options.epochs=3"),
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "snas: the supernet is trained" in again.stdout
    assert len(alpha_rows(tmp_path)) == 3 and len(study_trials(tmp_path)) == 5


@needs_shared(TABLE)
def test_searching_other_data_than_the_table_scores_is_one_error(tmp_path: Path,
                                                                 cifar_small: Path) -> None:
    cfg = compose("search", ["space=nb201", "evaluator=nb201_table", "search=snas",
                             "logger=none", f"evaluator.path={TABLE}", "evaluator.dataset=cifar100",
                             "dataset=image_folder", f"dataset.root={cifar_small}"])
    with pytest.raises(NagoError, match="the dataset has 10 classes of 3x32x32 images, but the "
                       "cells are scored on 100 classes"):
        run_search(cfg, tmp_path, Console(quiet=True))


@needs_shared(TABLE)
def test_a_supernet_of_other_settings_is_never_resumed(tmp_path: Path,
                                                       cifar_small: Path) -> None:
    command = search_command(tmp_path, cifar_small, "evaluator=nb201_table", "study_name=mine",
                             f"evaluator.path={TABLE}", "search.trials=1",
                             "search.options.epochs=1")
    assert subprocess.run(command, cwd=ROOT, capture_output=True, timeout=600).returncode == 0
    other = subprocess.run([*command, "search.options.cost_weight=0.5"], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert other.returncode == 2  # a user error
    assert "holds a one-shot search of other settings" in other.stderr
    assert "Traceback" not in other.stderr


@pytest.mark.slow
def test_snas_supernet_resumes_after_kill_9_then_trains_its_cells(tmp_path: Path,
                                                                   cifar_small: Path) -> None:
    """kill -9 during the supernet's training: the re-run resumes from its last checkpoint
    (the epochs already done are not trained again), then its cells train as trials."""
    command = search_command(tmp_path, cifar_small, "search=darts", "search.trials=2",
                             "search.options.epochs=6", "search.baseline=false",
                             "trainer.max_epochs=1", "search.pruning.enabled=false")
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    alpha_csv = tmp_path / "oneshot" / "alpha.csv"
    wait_for(lambda: alpha_csv.is_file() and len(alpha_rows(tmp_path)) >= 2, proc,
             timeout=600)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    before = len(alpha_rows(tmp_path))
    assert 2 <= before < 6 and not (tmp_path / "oneshot" / "alpha.json").exists()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "darts: resuming the supernet from" in done.stdout
    assert [int(r["epoch"]) for r in alpha_rows(tmp_path)] == [1, 2, 3, 4, 5, 6]
    trials = study_trials(tmp_path)
    assert [t["status"] for t in trials] == ["complete", "complete"]
    assert trials[0]["info"] == {**trials[0]["info"], "source": "darts", "derived": "argmax"}
    for trial in trials:
        metrics = json.loads((Path(trial["paths"]["run_dir"]) / "metrics.json").read_text())
        assert metrics["epochs"] == 1 and 0 <= metrics["val_acc"] <= 1
    # what it found fine-tunes and exports like any search's result (its argmax cell, trial 0:
    # a front of 1-epoch trials on 240 images may well be empty)
    tuned = tmp_path / "tuned"
    done = subprocess.run([sys.executable, "train.py", f"init_from={tmp_path}", "pick=0",
                           "logger=none",
                           "dataset=image_folder", f"dataset.root={cifar_small}",
                           "trainer.max_epochs=1", "export=true", f"hydra.run.dir={tuned}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    cell = Nb201Cell(tuple(trials[0]["params"][f"edge_{k}"] for k in range(6)))
    assert Nb201Cell.load(tuned / "architecture.json") == cell
    model = load_model(tuned / "export")
    assert model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 10)


@needs_shared(TABLE)
def test_snas_logs_alpha_entropy_tau_and_cell_to_a_wandb_run(
        tmp_path: Path, cifar_small: Path, offline_wandb: Path) -> None:  # noqa: F811
    done = subprocess.run([*search_command(tmp_path, cifar_small, "evaluator=nb201_table",
                                           f"evaluator.path={TABLE}", "search.trials=1",
                                           "search.options.epochs=2", "study_name=wbsnas"),
                           "logger=wandb"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    [run] = [r for r in ended_offline_runs(offline_wandb, 2) if r.job_type == "oneshot"]
    assert run.group == "wbsnas" and run.exit_code == 0
    epochs = [row for row in run.history if "alpha/entropy" in row]
    assert len(epochs) == 2
    assert [row["alpha/tau"] for row in epochs] == pytest.approx([1.0, 0.03])
    assert all(0 < row["alpha/entropy"] <= 1.61 for row in epochs)
    assert sum(v for k, v in epochs[-1].items() if k.startswith("alpha/p_e0_")) == \
        pytest.approx(1.0, abs=1e-5)
    saved = json.loads((tmp_path / "oneshot" / "alpha.json").read_text())
    assert run.summary["oneshot/cell"] == saved["cell"]
    assert "val/acc" in run.summary


@needs_shared(TABLE)
def test_a_restricted_search_space_restricts_the_supernet(tmp_path: Path,
                                                         cifar_small: Path) -> None:
    done = subprocess.run(search_command(tmp_path, cifar_small, "evaluator=nb201_table",
                                         f"evaluator.path={TABLE}", "search.trials=3",
                                         "search.options.epochs=1", "~search.space.edge_5",
                                         "search.space.edge_1.values=[none,skip_connect]"),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    probabilities = json.loads((tmp_path / "oneshot" / "alpha.json").read_text())["probabilities"]
    used = [{op for op, p in zip(OPS, row, strict=True) if p > 0} for row in probabilities]
    assert used[1] == {"none", "skip_connect"} and used[5] == {"none"}  # space.ops[5]: none
    assert all(used[k] == set(OPS) for k in (0, 2, 3, 4))
    for trial in study_trials(tmp_path)[1:]:
        assert trial["params"]["edge_1"] in used[1] and "edge_5" not in trial["params"]


@needs_shared(TABLE)
def test_cells_derived_in_a_shrunk_space_lie_in_its_pockets(tmp_path: Path,
                                                           cifar_small: Path) -> None:
    """A union of pockets is no product of per-edge op sets: the supernet mixes every op some
    member takes on an edge, and what it proposes stays in the pockets."""
    shrink = subprocess.run([sys.executable, "search.py", f"hydra.run.dir={tmp_path / 'a'}",
                             "space=nb201", "evaluator=nb201_table", f"evaluator.path={TABLE}",
                             "logger=none", "search=random", "search.shrink=lissnas",
                             "search.trials=80"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert shrink.returncode == 0, shrink.stderr
    space = SearchSpace.from_config({f"edge_{k}": {"type": "choice", "values": list(OPS)}
                                     for k in range(6)})
    shrunk = ShrunkSpace.load(tmp_path / "a", space)
    run_dir = tmp_path / "b"
    done = subprocess.run(search_command(run_dir, cifar_small, "evaluator=nb201_table",
                                         f"evaluator.path={TABLE}", "search.trials=6",
                                         "search.options.epochs=1",
                                         f"search.space_from={tmp_path / 'a'}"),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    derived = [t for t in study_trials(run_dir) if t["info"]["source"] == "snas"]
    assert len(derived) == 5 and all(shrunk.contains(t["params"]) for t in derived)
