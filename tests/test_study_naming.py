"""The default study name: the same command resumes its study, a different one gets its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nago_pl.config import compose
from nago_pl.latest_link import point_latest

TABLE = ["space=nb201", "evaluator=nb201_table", "dataset=cifar10"]


def name(*overrides: str) -> str:
    return str(compose("search", list(overrides)).study_name)


def test_the_same_command_gets_the_same_readable_name() -> None:
    assert name() == name()
    assert re.fullmatch(r"hnag-digits-mobo-[0-9a-f]{6}", name())
    assert re.fullmatch(r"nb201-table-cifar10-mobo-[0-9a-f]{6}", name(*TABLE))


@pytest.mark.parametrize("override", [
    "search.trials=40", "search.final.top=2", "executor=process", "search.workers=2",
    "search.max_minutes=5", "+search.objectives.0.ref=0.5", "logger=none",
    "+search.options.num_threads=1", "search.allow_changed_settings=true",
    "generator.G2_nodes=2",  # searched: each trial sets it
])
def test_what_a_resumed_study_may_change_keeps_its_name(override: str) -> None:
    assert name(override) == name()


@pytest.mark.parametrize("overrides", [
    TABLE, ["search=random"], ["search=bohb"], ["seed=1"], ["trainer.max_epochs=5"],
    ["+search.space.mid_family={type:choice,values:[er,ws,ba]}"],
    ["search.space.G1_nodes.high=6"], ["search.objectives=[{name:val_acc,direction:max}]"],
    ["dataset=fashion_mnist", "dataset.root=../shared/data/fashion-mnist"],
    ["generator.mid_family=ws"], ["model=adamw_cosine"],
])
def test_a_command_that_defines_another_study_gets_another_name(overrides: list[str]) -> None:
    assert name(*overrides) != name()


def test_the_table_column_is_part_of_the_name() -> None:
    assert name(*TABLE, "evaluator.dataset=cifar100").startswith("nb201-table-cifar100-mobo-")
    assert name(*TABLE, "evaluator.dataset=cifar100") != name(*TABLE)


def test_an_explicit_study_name_wins() -> None:
    assert name("search=random", "study_name=baseline") == "baseline"


def test_latest_points_at_the_newest_run_and_leaves_a_real_folder_alone(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    point_latest(first)
    assert (tmp_path / "latest").resolve() == first.resolve()
    assert point_latest(second) == tmp_path / "latest"
    assert (tmp_path / "latest").resolve() == second.resolve()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    other = tmp_path / "other"
    (other / "latest").mkdir(parents=True)
    (other / "run").mkdir()
    assert point_latest(other / "run") is None
    assert (other / "latest").is_dir() and not (other / "latest").is_symlink()
