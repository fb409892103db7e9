"""Reference points: nothing no better than the reference is ever called optimal."""

import json
from pathlib import Path

import pytest
import torch

from nago_pl.errors import NagoError
from nago_pl.search import Objective, Study
from nago_pl.search.pareto import reference_point, to_maximization
from nago_pl.search.pruning import should_continue
from nago_pl.search.report import current_hypervolume, hypervolume_history, write_pareto_json
from nago_pl.search.space import NAGO_SPACE

OBJS = [Objective("val_acc", "max", ref=0.2), Objective("params", "min", log=True, ref=1.1e5)]


def study_with(rows: list[tuple[float, float]], status: str = "complete") -> Study:
    study = Study.open(":memory:", "ref", NAGO_SPACE, OBJS)
    for i, (acc, params) in enumerate(rows):
        trial = study.add_trial(study.space.sobol(len(rows), 0)[i], seed=i)
        study.tell(trial.id, {"val_acc": acc, "params": params}, status=status)
    return study


def test_dead_network_never_reaches_the_front(tmp_path: Path) -> None:
    # the smallest network is at chance level: without a reference it would be Pareto-optimal
    study = study_with([(0.97, 9e4), (0.95, 4e4), (0.12, 1.6e4)])
    front = [t.values["val_acc"] for t in study.best_trials()]
    assert front == [0.97, 0.95]
    records = write_pareto_json(study, tmp_path / "pareto.json")
    assert [r["values"]["val_acc"] for r in records] == [0.97, 0.95]
    assert json.loads((tmp_path / "pareto.json").read_text())["front"] == records
    curve = hypervolume_history(study)
    assert curve[2] == curve[1] > 0  # the dead one adds no hypervolume
    trial = study.add_trial(study.space.sobol(4, 0)[3], seed=3)  # pruned: scored, never on it
    study.tell(trial.id, {"val_acc": 0.99, "params": 1e4}, status="pruned")
    assert current_hypervolume(study) == hypervolume_history(study)[-1] == curve[2]
    assert current_hypervolume(Study.open(":memory:", "empty", NAGO_SPACE, OBJS)) is None


def test_reference_point_from_refs_or_the_worst_value_seen() -> None:
    objs = [Objective("val_acc", "max", ref=0.2), Objective("flops", "min")]
    Y = to_maximization(torch.tensor([[0.9, 100.0], [0.5, 300.0]]), objs)
    ref = reference_point(objs, Y)
    assert ref[0] == pytest.approx(0.2)
    assert ref[1] == pytest.approx(-320.0)  # worst (300) minus 10 % of the range


def test_below_reference_stops_at_its_rung_even_when_smallest() -> None:
    study = Study.open(":memory:", "rung", NAGO_SPACE, OBJS)
    ids = []
    for i, (acc, params) in enumerate([(0.9, 9e4), (0.8, 5e4), (0.15, 1e4)]):
        trial = study.add_trial(study.space.sobol(3, 0)[i], seed=i)
        study.report(trial.id, 3, {"val_acc": acc, "params": params})
        ids.append(trial.id)
    keep = [should_continue(study, i, 3, OBJS, min_epochs=3, eta=2, learned=("val_acc",))
            for i in ids]
    assert keep == [True, True, False]
    # without the learned-objective rule the tiny dead network is non-dominated and kept
    assert should_continue(study, ids[2], 3, OBJS, min_epochs=3, eta=2)


def test_objective_ref_validation_and_resume_with_a_new_ref(tmp_path: Path) -> None:
    with pytest.raises(NagoError, match="ref must be a finite number"):
        Objective.from_config({"name": "val_acc", "direction": "max", "ref": "high"})
    with pytest.raises(NagoError, match="a log objective needs ref > 0"):
        Objective("params", "min", log=True, ref=0)
    db = tmp_path / "s.db"
    Study.open(db, "s", NAGO_SPACE, OBJS).close()
    moved = [Objective("val_acc", "max", ref=0.5), OBJS[1]]
    with Study.open(db, "s", NAGO_SPACE, moved) as study:
        assert study.objectives[0].ref == 0.5
    with pytest.raises(NagoError, match="created with objectives"):
        Study.open(db, "s", NAGO_SPACE, [Objective("val_acc", "min", ref=0.5), OBJS[1]])
