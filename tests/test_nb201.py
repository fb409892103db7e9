"""The NAS-Bench-201 space: cell data, network, config selection, tabular evaluation."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from pathlib import Path

import pytest
import torch
from rich.console import Console
from shared_data import needs_shared

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.network.configured import build_model, resolve_architecture
from nago_pl.network.nb201 import Nb201Network, Nb201Spec
from nago_pl.search.driver import error_kind
from nago_pl.search.nb201_table import Nb201Table, all_cells, load_table
from nago_pl.search.runner import check_systematic_failure, run_search, write_outputs
from nago_pl.search.study import Objective, Study
from nago_pl.space.nb201 import OPS, Nb201Cell

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nas-bench-201"
TABLE = DATA / "nats_tss_test_acc_200ep.csv"
NASLIB = DATA / "naslib_zc_nasbench201_491archs.json"
needs_table = needs_shared(TABLE)
needs_naslib = needs_shared(NASLIB)
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_cell_string_round_trip_and_json(tmp_path: Path) -> None:
    cell = Nb201Cell.from_string(BEST)
    assert cell.ops == ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect",
                        "nor_conv_3x3", "nor_conv_3x3")
    assert cell.to_string() == BEST
    cell.save(tmp_path / "a.json")
    assert Nb201Cell.load(tmp_path / "a.json") == cell
    assert Nb201Cell.from_naslib(cell.to_naslib()) == cell


@pytest.mark.parametrize("text, fragment", [
    ("|nor_conv_3x3~0|+|none~0|", "expected 3"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "expected 'none~0'"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2"),
])
def test_bad_cell_strings(text: str, fragment: str) -> None:
    with pytest.raises(NagoError, match=fragment):
        Nb201Cell.from_string(text)


@needs_table
def test_every_table_string_round_trips() -> None:
    with open(TABLE, newline="") as f:
        strings = [r["ArchitectureString"] for r in csv.DictReader(f)]
    assert len(strings) == 15625
    assert all(Nb201Cell.from_string(s).to_string() == s for s in strings)


@needs_naslib
def test_parameter_counts_match_naslib() -> None:
    """The network is the benchmark's: NASLib's parameter counts (millions) for CIFAR-10."""
    data = json.loads(NASLIB.read_text())["nasbench201"]["cifar10"]
    for key in list(data)[:25]:
        cell = Nb201Cell.from_naslib(tuple(json.loads(key.replace("(", "[").replace(")", "]"))))
        with torch.device("meta"):
            net = Nb201Network(cell, Nb201Spec(3, 10, 32))
        assert sum(p.numel() for p in net.parameters()) / 1e6 == pytest.approx(
            data[key]["params"], abs=1e-6), cell.to_string()


def test_network_shapes_and_none_cell() -> None:
    torch.manual_seed(0)
    net = Nb201Network(Nb201Cell.from_string(BEST), Nb201Spec(3, 10, 32, channels=4,
                                                               cells_per_stage=1))
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    empty = Nb201Network(Nb201Cell(("none",) * 6), Nb201Spec(1, 5, 8, 4, 1)).eval()
    out = empty(torch.randn(3, 1, 8, 8))
    assert torch.allclose(out, out[:1].expand(3, -1)), "a none-only cell ignores its input"


def test_space_selected_by_config() -> None:
    cfg = compose("train", ["space=nb201", f"space.ops=[{','.join(OPS[:5])},none]"])
    cell = resolve_architecture(cfg)
    assert isinstance(cell, Nb201Cell) and cell.ops == (*OPS[:5], "none")
    assert isinstance(build_model(cell, cfg, 1, 10, 8), Nb201Network)
    assert not isinstance(resolve_architecture(compose("train")), Nb201Cell)


@pytest.mark.parametrize("overrides, fragment", [
    (["space.name=darts"], "space.name='darts'"),
    (["space=nb201", "space.ops=[none,none]"], "needs 6 operations"),
])
def test_bad_space_settings(overrides: list[str], fragment: str) -> None:
    from nago_pl.config.validate import validate_train
    with pytest.raises(NagoError, match=fragment):
        validate_train(compose("train", overrides))


def test_search_refuses_table_without_nb201(tmp_path: Path) -> None:
    cfg = compose("search", ["evaluator=nb201_table", "logger=none"])
    with pytest.raises(NagoError, match="space=nb201"):
        run_search(cfg, tmp_path, Console(quiet=True))


@needs_table
@pytest.mark.parametrize("strategy, trials", [("random", 30), ("mobo", 8)])
def test_tabular_search(tmp_path: Path, strategy: str, trials: int) -> None:
    cfg = compose("search", ["space=nb201", "evaluator=nb201_table", f"search={strategy}",
                             f"search.trials={trials}", "logger=none",
                             f"evaluator.path={TABLE}", "search.options.n_init=4"
                             if strategy == "mobo" else "search.baseline=true"])
    study = run_search(cfg, tmp_path, Console(quiet=True))
    write_outputs(study, tmp_path, Console(quiet=True))
    with open(TABLE, newline="") as f:
        table = {r["ArchitectureString"]: float(r["CIFAR10TestAccuracy200Epochs"]) / 100
                 for r in csv.DictReader(f)}
    trials_done = study.trials(("complete",))
    assert len(trials_done) == trials
    for trial in trials_done:
        cell = Nb201Cell(tuple(trial.params[f"edge_{i}"] for i in range(6)))
        assert trial.values["val_acc"] == pytest.approx(table[cell.to_string()])
        assert trial.values["params"] > 0 and trial.values["flops"] > 0
    for name in ("study.db", "pareto.json", "pareto.png", "hypervolume.png"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "trials" / "0000" / "architecture.json").is_file()


def test_missing_table_is_one_line_error(tmp_path: Path) -> None:
    cfg = compose("search", ["space=nb201", "evaluator=nb201_table", "logger=none",
                             f"evaluator.path={tmp_path / 'absent.csv'}"])
    with pytest.raises(NagoError, match="cannot read the NAS-Bench-201 table"):
        run_search(cfg, tmp_path, Console(quiet=True))


# ------------------------------------------------------------------ a damaged table (issue 18)
HEADER = "CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs," \
         "ImageNetTestAccuracy200Epochs,ArchitectureString,UniqueString"


def table_lines() -> list[str]:
    """A complete synthetic table: every cell, CIFAR-10 accuracies 10..94 %."""
    cells = sorted(all_cells())
    return [HEADER, *(f"{10 + 84 * i / len(cells)},{1 + i % 70},{1 + i % 40},{cell},u{i}"
                      for i, cell in enumerate(cells))]


def write_table(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text("\n".join(lines) + end)
    return path


@pytest.mark.parametrize("damage, fragment", [
    (lambda lines: [], "the NAS-Bench-201 table is empty"),
    (lambda lines: lines[:1], "lacks 15,625 of the 15,625 cells"),
    (lambda lines: lines[:5001], "lacks 10,625 of the 15,625 cells"),
    (lambda lines: [*lines[:-1], lines[-1][:40]], "line 15626 has "),
    (lambda lines: [*lines[:-1], lines[-1].rsplit(",", 3)[0]], "a cut-off or damaged row"),
    (lambda lines: [lines[0], *(f"{float(r.split(',')[0]) / 100},{r.split(',', 1)[1]}"
                                for r in lines[1:])], "not an accuracy in percent"),
    (lambda lines: [*lines, "nan,1,1,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,x"],
     "not an accuracy in percent"),
    (lambda lines: [*lines, "140,1,1,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,x"],
     "not an accuracy in percent"),
    (lambda lines: [*lines, lines[1].replace(lines[1].split(",")[0], "55.5", 1)],
     "appears again with another CIFAR10TestAccuracy200Epochs"),
    (lambda lines: ["a,b,c", "1,2,3"], "not a NAS-Bench-201 table"),
    (lambda lines: [*lines, "50,1,1,|conv~0|,x"], "'|conv~0|' is not a NAS-Bench-201 cell"),
])
def test_a_damaged_table_is_refused_when_loaded(tmp_path: Path, damage, fragment: str) -> None:
    path = write_table(tmp_path / "t.csv", damage(table_lines()), end="")
    with pytest.raises(NagoError, match=re.escape(fragment)) as err:
        Nb201Table.load(path, "cifar10")
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_complete_table_loads_and_identical_duplicates_are_harmless(tmp_path: Path) -> None:
    lines = table_lines()
    table = Nb201Table.load(write_table(tmp_path / "t.csv", [*lines, lines[7]]), "cifar10")
    assert len(table.accuracy) == 15625 and max(table.accuracy.values()) < 0.95
    assert all(Nb201Cell.from_string(s).to_string() == s for s in list(table.accuracy)[:50])


@needs_table
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
def test_the_real_table_passes_the_checks(dataset: str) -> None:
    assert len(Nb201Table.load(TABLE, dataset).accuracy) == 15625


def test_a_table_needs_only_the_cells_the_space_can_propose(tmp_path: Path) -> None:
    pair = ["none", "skip_connect"]
    restricted = [*(f"search.space.edge_{i}.values=[{','.join(pair)}]" for i in range(5)),
                  "~search.space.edge_5", "space.ops.5=none"]
    lines = [HEADER, *(line for line in table_lines()[1:] if all(
        op in pair for op in Nb201Cell.from_string(line.split(",")[3]).ops) and
        line.split(",")[3].endswith("|none~2|"))]
    path = write_table(tmp_path / "small.csv", lines)
    assert len(lines) == 1 + 2 ** 5
    cfg = compose("search", ["space=nb201", "evaluator=nb201_table", f"evaluator.path={path}",
                             *restricted])
    assert len(load_table(cfg).accuracy) == 32
    with pytest.raises(NagoError, match=r"lacks 15,593 of the 15,625 cells"):
        load_table(compose("search", ["space=nb201", "evaluator=nb201_table",
                                      f"evaluator.path={path}"]))


def test_a_search_on_an_incomplete_table_stops_before_its_first_trial(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.csv", table_lines()[:2000])
    cfg = compose("search", ["space=nb201", "evaluator=nb201_table", "search=random",
                             "logger=none", f"evaluator.path={path}", "search.trials=5"])
    with pytest.raises(NagoError, match="lacks 13,626 of the 15,625 cells"):
        run_search(cfg, tmp_path / "run", Console(quiet=True))
    assert not (tmp_path / "run" / "study.db").exists()


def test_trials_failed_for_a_missing_cell_are_asked_again(tmp_path: Path) -> None:
    """A study in which the table's missing cells failed trials (recorded before tables were
    checked): resumed with the complete table, those trials are asked again."""
    path = write_table(tmp_path / "t.csv", table_lines())
    cfg = compose("search", ["space=nb201", "evaluator=nb201_table", "search=random",
                             "logger=none", f"evaluator.path={path}", "search.trials=4"])
    run_search(cfg, tmp_path, Console(quiet=True)).close()
    with sqlite3.connect(tmp_path / "study.db") as conn:
        conn.execute("UPDATE trials SET status = 'failed', objective_values = NULL, error = "
                     "'cell ' || id || ' is not in the NAS-Bench-201 table' WHERE number >= 1")
    study = run_search(cfg, tmp_path, Console(quiet=True))
    assert [t.status for t in study.trials()] == ["complete"] * 4


def test_failures_naming_other_cells_are_one_error() -> None:
    """The same-error guard compares the kind of error, not the cell (ids, paths) it names."""
    study = Study.open(":memory:", "k", {"edge_0": {"type": "choice", "values": list(OPS)}},
                       [Objective("val_acc", "max")])
    cells = sorted(all_cells())[:3]
    for i, cell in enumerate(cells):
        trial = study.add_trial({"edge_0": OPS[i]}, seed=i)
        study.fail(trial.id, f"cell {cell} is not in the NAS-Bench-201 table")
    with pytest.raises(NagoError, match="first 3 trials all failed with the same error"):
        check_systematic_failure(study)
    assert study.n_trials() == 0


@pytest.mark.parametrize("a, b", [
    ("FileNotFoundError: [Errno 2] No such file: '/data/a/1.png'",
     "FileNotFoundError: [Errno 2] No such file: '/data/b/7.png'"),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
     "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 512.00 GiB"),
    ("nago_pl.errors.NagoError: trial-0003: loss is nan at epoch 2 (runs/x/trials/0003)",
     "nago_pl.errors.NagoError: trial-0007: loss is nan at epoch 5 (runs/x/trials/0007)"),
])
def test_error_kinds_ignore_what_names_the_case(a: str, b: str) -> None:
    assert error_kind(a) == error_kind(b)


@pytest.mark.parametrize("a, b", [
    ("ValueError: disk full", "OSError: disk full"),
    ("NagoError: loss is nan", "NagoError: cannot fit the parameter budget"),
])
def test_error_kinds_keep_what_differs(a: str, b: str) -> None:
    assert error_kind(a) != error_kind(b)
