"""LISSNAS-style shrinkage: pockets, the shrunk space's file, strategies confined to it, the
stage inside a search (table end to end, resume, bad input) and its quality on NB201."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from shared_data import SHARED, needs_shared

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.search import Objective, SearchSpace, Study
from nago_pl.search.nb201_table import Nb201Table, cell_string
from nago_pl.search.shrink import EditDistance, Lissnas, Pocket, ShrunkSpace
from nago_pl.search.shrink.fill import connected_parts, fill_pockets
from nago_pl.search.shrink.lissnas import grow_pockets
from nago_pl.search.strategies import make_strategy
from nago_pl.space.nb201 import OPS

ROOT = Path(__file__).resolve().parents[1]
TABLE = SHARED / "nas-bench-201" / "nats_tss_test_acc_200ep.csv"
NB201 = {f"edge_{i}": {"type": "choice", "values": list(OPS)} for i in range(6)}
OBJECTIVES = [Objective("val_acc", "max")]
#: A toy space: 5 choices of 4 values; accuracy grows with the values matching TARGET.
TOY = {f"c{i}": {"type": "choice", "values": ["a", "b", "c", "d"]} for i in range(5)}
TARGET = {"c0": "a", "c1": "b", "c2": "c", "c3": "d", "c4": "a"}


def toy_accuracy(config: dict[str, Any]) -> float:
    return 0.5 + 0.1 * sum(config[k] == v for k, v in TARGET.items())


def shrink(spec: dict, accuracy: Any, seed: int = 0, study: Study | None = None,
           **options: Any) -> tuple[Study, Lissnas]:
    """Run a whole stage on an in-memory study."""
    study = study or Study.open(":memory:", "shrink", spec, OBJECTIVES)
    stage = Lissnas(SearchSpace.from_config(spec), OBJECTIVES[0], seed, **options)
    while len(stage.stage_trials(study)) < stage.queries:
        trial = stage.ask(study, 1)[0]
        study.tell(trial.id, {"val_acc": accuracy(trial.params)})
    return study, stage


@pytest.mark.parametrize("name", ["random", "evolution"])
def test_every_proposal_after_shrinking_lies_in_the_shrunk_space(name: str) -> None:
    study, stage = shrink(TOY, toy_accuracy, queries=40, initial=15, max_share=0.3)
    shrunk = stage.result(study)
    assert shrunk.share < 0.3  # most of the space is outside: the check is not vacuous
    strategy = make_strategy(name, space=stage.space, objectives=OBJECTIVES, seed=1,
                             feasible=shrunk.restrict(None))
    for _ in range(40):
        trial = strategy.ask(study, 1)[0]
        assert shrunk.contains(trial.params), trial.params
        study.tell(trial.id, {"val_acc": toy_accuracy(trial.params)})


def test_pockets_never_overlap_after_merging() -> None:
    """Pockets grow around the best of many close observations (most would overlap), and
    come out disjoint: no architecture lies in two of them."""
    space = SearchSpace.from_config(TOY)
    metric = EditDistance(space)
    configs = space.uniform(300, seed=3)
    X = metric.unit(configs)
    y = torch.tensor([toy_accuracy(c) for c in configs], dtype=torch.float64)
    D = metric.pairwise(X, X)
    pockets = grow_pockets(D, y, 1.0, threshold=0.0, max_pockets=50, min_evidence=1)
    assert len(pockets) > 3
    shrunk = ShrunkSpace(space, [Pocket(configs[p.centre], 1.0, float(y[p.centre]))
                                 for p in pockets], metric)
    members = [set(map(tuple, shrunk.choice_ball(k)[0].tolist()))
               for k in range(len(shrunk.pockets))]
    assert sum(len(m) for m in members) == len(set().union(*members)) == shrunk.size
    for k, p in enumerate(pockets):  # every observation near a centre was merged into it
        assert all(float(D[p.centre, m]) <= 1 for m in p.members)
        assert all(float(D[p.centre, q.centre]) > 2 for q in pockets[k + 1:])


def test_only_observations_reaching_the_keep_threshold_centre_pockets() -> None:
    """A pocket around a worse architecture than the threshold could not be kept: such
    observations are not centres (they would spend the stage's queries on proving it)."""
    space = SearchSpace.from_config(TOY)
    metric = EditDistance(space)
    configs = space.uniform(300, seed=3)
    X = metric.unit(configs)
    y = torch.tensor([toy_accuracy(c) for c in configs], dtype=torch.float64)
    pockets = grow_pockets(metric.pairwise(X, X), y, 1.0, threshold=0.75, max_pockets=50,
                           min_evidence=1)
    assert pockets and all(float(y[p.centre]) >= 0.75 for p in pockets)
    assert float(y.min()) < 0.75  # worse observations were there to pick


def test_overlapping_pockets_are_refused() -> None:
    space = SearchSpace.from_config(TOY)
    near = {**TARGET, "c0": "b"}
    with pytest.raises(NagoError, match="overlap"):
        ShrunkSpace(space, [Pocket(TARGET, 1.0, 0.9), Pocket(near, 1.0, 0.8)],
                    EditDistance(space))


def test_a_saved_shrunk_space_reloads_to_the_same_architectures(tmp_path: Path) -> None:
    study, stage = shrink(TOY, toy_accuracy, queries=40, initial=15, max_share=0.3)
    shrunk = stage.result(study)
    shrunk.save(tmp_path / "shrunk_space.json")
    saved = json.loads((tmp_path / "shrunk_space.json").read_text())
    assert {"centre", "radius", "size", "share", "observed", "value"} <= set(saved["pockets"][0])
    again = ShrunkSpace.load(tmp_path, stage.space)  # the search directory works too
    assert again.members() == shrunk.members() and len(again.members()) == shrunk.size
    drawn = again.sample(200, torch.Generator().manual_seed(0))
    assert all(shrunk.contains(c) for c in drawn)
    assert len({tuple(sorted(c.items())) for c in drawn}) > len(again.pockets)


def test_a_strategy_that_finds_no_member_is_told_to_raise_min_share() -> None:
    space = SearchSpace.from_config(TOY)
    shrunk = ShrunkSpace(space, [Pocket(TARGET, 1.0, 0.9)], EditDistance(space))
    hint = shrunk.explain(NagoError("no feasible configuration in 1000 random draws"))
    assert "search.shrink_options.min_share" in str(hint) and "1.56 %" in str(hint)
    other = NagoError("the first 3 trials all failed")
    assert shrunk.explain(other) is other


def test_a_shrunk_search_is_a_study_of_its_own() -> None:
    """Shrinking, its options and a saved shrunk space change the default study name: the same
    command without them does not resume a shrunk study, nor the reverse."""
    table = ["space=nb201", "evaluator=nb201_table", "dataset=cifar10", "search=random"]
    names = {str(compose("search", [*table, *extra]).study_name) for extra in (
        [], ["search.shrink=lissnas"], ["search.shrink=lissnas",
                                        "search.shrink_options.queries=60"],
        ["search.space_from=runs/a"])}
    assert len(names) == 4


def test_loading_a_wrong_file_is_one_error_line(tmp_path: Path) -> None:
    space = SearchSpace.from_config(TOY)
    with pytest.raises(NagoError, match=r"search.space_from=.*not a readable shrunk_space"):
        ShrunkSpace.load(tmp_path, space)
    study, stage = shrink(TOY, toy_accuracy, queries=20, initial=10, max_share=0.3)
    stage.result(study).save(tmp_path / "shrunk_space.json")
    with pytest.raises(NagoError, match="another search space"):
        ShrunkSpace.load(tmp_path, SearchSpace.from_config(NB201))


def test_the_stage_resumes_as_if_never_interrupted() -> None:
    """A stage killed mid-way (its running trial re-queued, a new stage object) proposes
    what an uninterrupted one does: it is a function of the seed and the study."""
    whole, _ = shrink(TOY, toy_accuracy, seed=5, queries=40, initial=15)
    broken = Study.open(":memory:", "shrink", TOY, OBJECTIVES)
    first = Lissnas(SearchSpace.from_config(TOY), OBJECTIVES[0], 5, queries=40, initial=15)
    for _ in range(22):
        trial = first.ask(broken, 1)[0]
        broken.tell(trial.id, {"val_acc": toy_accuracy(trial.params)})
    broken.requeue(first.ask(broken, 1)[0].id)  # killed while running it
    shrink(TOY, toy_accuracy, seed=5, study=broken, queries=40, initial=15)
    assert [t.params for t in broken.trials()] == [t.params for t in whole.trials()]


@pytest.mark.parametrize(("option", "value", "match"), [
    ("queries", 1, "queries=1: must be an integer >= 2"),
    ("initial", 100, "initial=100: must be at most queries"),
    ("locality", 0.0, r"locality=0.0: must be a number in \(0, 1\]"),
    ("sampler", "grid", "sampler='grid': allowed: sobol, random"),
    ("fill", "box", "fill='box': allowed: forest, widen"),
])
def test_bad_options_name_the_setting(option: str, value: Any, match: str) -> None:
    with pytest.raises(NagoError, match=match):
        Lissnas(SearchSpace.from_config(TOY), OBJECTIVES[0], 0, **{option: value})


def nearest(space: SearchSpace, centre: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The ``n`` configurations of a space of choices fewest edits from ``centre`` (ties in
    enumeration order): one region of that size."""
    metric = EditDistance(space)
    X = ShrunkSpace(space, [Pocket(centre, float(space.dim), 0.0)], metric).choice_ball(0)[0]
    order = torch.argsort(metric.pairwise(X, metric.unit([centre]))[:, 0], stable=True)
    return space.from_unit(X[order[:n]])


@needs_shared(TABLE)
def test_the_shrunk_nb201_space_is_small_and_holds_good_cells() -> None:
    """CIFAR-10: at most 5 % of the 15,625 cells, a mean accuracy far above the whole space's
    87.06 %, more of the top 1 % of cells than one region of the same size around its best
    centre, and a cell within 0.1 point of the optimum (94.37 %)."""
    table = Nb201Table.load(TABLE, "cifar10")

    def accuracy(config: dict[str, Any]) -> float:
        return table.accuracy[cell_string([config[f"edge_{i}"] for i in range(6)])]

    study, stage = shrink(NB201, accuracy)
    shrunk = stage.result(study)
    inside = [accuracy(c) for c in stage.space.from_unit(
        torch.tensor(sorted(shrunk.members()), dtype=torch.float64))]
    region = [accuracy(c) for c in nearest(stage.space, shrunk.pockets[0].centre, len(inside))]
    top1 = sorted(table.accuracy.values())[-157]
    assert shrunk.size == len(inside) <= 0.05 * 15625
    assert sum(inside) / len(inside) >= 0.92
    assert sum(a >= top1 for a in inside) > sum(a >= top1 for a in region) >= 1
    assert max(inside) >= max(table.accuracy.values()) - 0.001


def test_a_forest_shapes_pockets_around_what_the_observations_favour() -> None:
    """On a space where some choices matter and others do not, the forest's pockets hold
    better architectures than the nearest ones to the same centre; every member lies within
    the radius of a centre, and the pockets are the parts connected by single edits."""
    space = SearchSpace.from_config(TOY)
    metric = EditDistance(space)

    def matters(config: dict[str, Any]) -> float:  # c0 and c1 decide; the rest is noise-free 0
        return float(config["c0"] == "a") + float(config["c1"] == "b")

    configs = space.uniform(40, seed=2)
    y = torch.tensor([matters(c) for c in configs], dtype=torch.float64)
    centre = {"c0": "a", "c1": "b", "c2": "a", "c3": "a", "c4": "a"}
    pockets = fill_pockets(space, metric, [centre], 3, configs, y, 40, seed=0,
                           natural=float)
    shrunk = ShrunkSpace(space, pockets, metric)  # disjoint, or this raises
    members = [c for p in pockets for c in p.members or []]
    assert shrunk.size == len(members) == 40
    assert all(metric.between(c, centre) <= 3 for c in members)
    region = nearest(space, centre, 40)
    assert sum(map(matters, members)) / 40 > sum(map(matters, region)) / 40 + 0.2
    for pocket in pockets:
        parts = connected_parts(space, space.bin_indices(metric.unit(pocket.members)).numpy())
        assert len(parts) == 1


def test_connected_parts_join_single_edits_only() -> None:
    space = SearchSpace.from_config(TOY)
    rows = [{"c0": "a", "c1": "a", "c2": "a", "c3": "a", "c4": "a"},
            {"c0": "b", "c1": "a", "c2": "a", "c3": "a", "c4": "a"},  # one edit from the first
            {"c0": "b", "c1": "b", "c2": "b", "c3": "a", "c4": "a"},  # two from the second
            {"c0": "b", "c1": "b", "c2": "a", "c3": "a", "c4": "a"}]  # joins the 2nd and 3rd
    bins = space.bin_indices(space.to_unit(rows)).numpy()
    assert connected_parts(space, bins[:3]) == [[0, 1], [2]]
    assert connected_parts(space, bins) == [[0, 1, 2, 3]]


def trials_so_far(db: Path) -> int:
    """Trials in the study file of a search still starting up (0 until its tables exist)."""
    try:
        return len(stored_trials(db)) if db.is_file() else 0
    except sqlite3.OperationalError:  # the file is there, its schema not yet
        return 0


def stored_trials(db: Path) -> list[tuple[dict, dict]]:
    """``(params, info)`` of every trial of the one study in ``db``, in creation order."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT params, info FROM trials ORDER BY number").fetchall()
    return [(json.loads(p), json.loads(i)) for p, i in rows]


def search_cli(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "search.py", f"hydra.run.dir={run_dir}", "space=nb201",
                           "evaluator=nb201_table", "dataset=cifar10", "logger=none",
                           *overrides], cwd=ROOT, capture_output=True, text=True, timeout=600)


@needs_shared(TABLE)
def test_a_table_search_shrinks_first_and_writes_the_shrunk_space(tmp_path: Path) -> None:
    """The issue's command: the stage's trials count toward search.trials, the strategy's
    trials all lie in the saved shrunk space, and search.space_from reuses it."""
    done = search_cli(tmp_path / "a", "search.shrink=lissnas", "search.trials=150",
                      "search=random")
    assert done.returncode == 0, done.stderr
    assert "shrunk space:" in done.stdout
    trials = stored_trials(tmp_path / "a" / "study.db")
    shrunk = ShrunkSpace.load(tmp_path / "a", SearchSpace.from_config(NB201))
    sources = [info["source"] for _, info in trials]
    assert len(trials) == 150 and sources.count("shrink") + sources.count("baseline") == 80
    assert all(shrunk.contains(p) for p, info in trials if info["source"] == "random")
    again = search_cli(tmp_path / "b", f"search.space_from={tmp_path / 'a'}", "search.trials=20",
                       "search=evolution")
    assert again.returncode == 0, again.stderr
    later = stored_trials(tmp_path / "b" / "study.db")
    assert all(shrunk.contains(p) for p, info in later if info["source"] != "baseline")
    assert (tmp_path / "b" / "shrunk_space.json").is_file()


@needs_shared(TABLE)
def test_a_proxy_shrinks_for_free_and_repeats_itself_on_resume(tmp_path: Path,
                                                               cifar_small: Path) -> None:
    """search.shrink_options.score=nwot: the stage ranks cells by NASWOT on real CIFAR-10
    images, none of its queries is a trial (search.trials are all the strategy's, inside the
    pockets), and a re-run rebuilds the same shrunk space without new trials."""
    args = ["space.channels=4", "space.cells_per_stage=1", "dataset=image_folder",
            f"dataset.root={cifar_small}", "search=random", "search.trials=12",
            "search.shrink=lissnas", "search.shrink_options.score=nwot",
            "search.shrink_options.queries=24", "search.shrink_options.initial=12"]
    done = search_cli(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "shrunk_space.json").read_text())
    assert saved["objective"] == "nwot" and all(p["value"] > 0 for p in saved["pockets"])
    shrunk = ShrunkSpace.load(tmp_path, SearchSpace.from_config(NB201))
    trials = stored_trials(tmp_path / "study.db")
    assert len(trials) == 12 and all(info["source"] in ("random", "baseline")
                                     for _, info in trials)
    assert all(shrunk.contains(p) for p, info in trials if info["source"] == "random")
    again = search_cli(tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "shrunk_space.json").read_text()) == saved
    assert stored_trials(tmp_path / "study.db") == trials


@needs_shared(TABLE)
@pytest.mark.parametrize(("overrides", "match"), [
    (["search.shrink=pockets"], "search.shrink='pockets': unknown shrinkage; allowed: lissnas"),
    (["search.space_from=/nowhere"], "search.space_from=/nowhere: not a readable"),
    (["search.shrink=lissnas", "search.space_from=/nowhere"], "give one"),
    (["search.shrink=lissnas", "search.shrink_options.max_share=2"],
     r"max_share=2.0: must be a number in \(0, 1\]"),
    (["search.shrink=lissnas", "search.shrink_options.fill=box"],
     "search.shrink_options.fill='box': allowed: forest, widen"),
    (["search.shrink=lissnas", "search.shrink_options.score=accuracy"],
     r"score='accuracy': allowed: evaluator, .*nwot"),
    (["search.shrink=lissnas", "search.shrink_options.score=nwot"],
     r"search.shrink_options.score=nwot scores networks on training images: cannot load "
     r"the dataset \(dataset.root is not set"),
])
def test_bad_shrink_settings_are_one_error_line(tmp_path: Path, overrides: list[str],
                                                match: str) -> None:
    done = search_cli(tmp_path, *overrides, "search.trials=5")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert re.search(match, lines[0]), lines[0]


def test_a_pocket_of_numbers_is_a_box_measured_and_sampled_exactly() -> None:
    """ints, floats (log too) and a choice: a pocket's share is what uniform draws of the
    whole space find inside it, and its own draws all lie inside."""
    spec = {"n": {"type": "int", "low": 1, "high": 8}, "p": {"type": "float", "low": 0.1,
                                                               "high": 1.0},
            "w": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
            "op": {"type": "choice", "values": ["a", "b", "c"]}}
    space = SearchSpace.from_config(spec)
    centre = {"n": 2, "p": 0.9, "w": 0.05, "op": "b"}
    shrunk = ShrunkSpace(space, [Pocket(centre, 1.5, 0.9)], EditDistance(space, 0.3))
    assert shrunk.size is None and 0.05 < shrunk.share < 0.5
    inside = sum(shrunk.contains(c) for c in space.uniform(4000, seed=0)) / 4000
    assert inside == pytest.approx(shrunk.share, abs=0.02)
    drawn = shrunk.sample(300, torch.Generator().manual_seed(1))
    assert all(shrunk.contains(c) for c in drawn)
    assert {c["op"] for c in drawn} == {"a", "b", "c"}  # half an edit left: other choices too


@needs_shared(TABLE)
def test_a_shrinking_search_killed_mid_stage_resumes_to_the_same_trials(tmp_path: Path) -> None:
    """kill -9 while the stage runs, then the same command: the trials and the shrunk space
    are those of a search never interrupted."""
    # 150 stage queries: ~3 s from the 30th to the last here (80 left ~1 s to catch it in)
    command = ["search.shrink=lissnas", "search.shrink_options.queries=150", "search.trials=170",
               "search=evolution"]
    whole = search_cli(tmp_path / "whole", *command)
    assert whole.returncode == 0, whole.stderr
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "search.py", f"hydra.run.dir={run_dir}",
                             "space=nb201", "evaluator=nb201_table", "dataset=cifar10",
                             "logger=none", *command], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if trials_so_far(run_dir / "study.db") >= 30:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(stored_trials(run_dir / "study.db")) < 150  # killed inside the stage
    again = search_cli(run_dir, *command)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout
    assert [p for p, _ in stored_trials(run_dir / "study.db")] == \
        [p for p, _ in stored_trials(tmp_path / "whole" / "study.db")]
    assert (run_dir / "shrunk_space.json").read_text() == \
        (tmp_path / "whole" / "shrunk_space.json").read_text()


FAST_DIGITS = ["search.space.G1_nodes.high=4", "search.space.G2_nodes.high=2",
               "search.space.G3_nodes.high=4", "network.param_limit=30000",
               "network.head_channels=64", "trainer.max_epochs=3", "search.pruning.min_epochs=1",
               "logger=none"]


@pytest.mark.slow
def test_a_digits_search_shrinks_its_box_then_runs_mobo_inside(tmp_path: Path) -> None:
    """HNAG (ints, floats, a log int): a pocket is a box of the unit cube; MOBO's trials after
    the stage all lie in it, though it is well under 1 % of the space (MOBO draws its
    candidates' starts from it: rejection from the whole cube would miss it)."""
    done = subprocess.run(
        [sys.executable, "search.py", f"hydra.run.dir={tmp_path}", *FAST_DIGITS,
         "search.shrink=lissnas", "search.trials=16", "search.shrink_options.queries=10",
         "search.shrink_options.initial=6", "search.shrink_options.min_evidence=1",
         "search.shrink_options.min_share=0.001", "search.shrink_options.max_share=0.01"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "shrunk_space.json").read_text())
    shrunk = ShrunkSpace.load(tmp_path, SearchSpace.from_config(saved["space"]))
    assert shrunk.size is None and 0.001 <= shrunk.share <= 0.01
    trials = stored_trials(tmp_path / "study.db")
    assert len(trials) == 16
    assert all(shrunk.contains(p) for p, info in trials if info["source"] not in
               ("shrink", "baseline"))
