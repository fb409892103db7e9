"""The NAS-Bench-201 space: cell data, network, config selection, tabular evaluation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.network.configured import build_model, resolve_architecture
from nago_pl.network.nb201 import Nb201Network, Nb201Spec
from nago_pl.search.runner import run_search, write_outputs
from nago_pl.space.nb201 import OPS, Nb201Cell

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nas-bench-201"
TABLE = DATA / "nats_tss_test_acc_200ep.csv"
NASLIB = DATA / "naslib_zc_nasbench201_491archs.json"
needs_table = pytest.mark.skipif(not TABLE.is_file(), reason=f"{TABLE} absent (shared data)")
needs_naslib = pytest.mark.skipif(not NASLIB.is_file(), reason=f"{NASLIB} absent (shared data)")
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
    (["space=nb201", "init_from=x"], "init_from"),
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
