"""search.py end to end on digits: outputs, resume after kill -9, failure isolation, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from shared_data import needs_shared

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.search.runner import open_study, run_search, write_outputs
from nago_pl.search.study import Objective, Study
from nago_pl.search.trial import trial_config
from nago_pl.training import run as run_module  # trials import train_architecture from here

ROOT = Path(__file__).resolve().parents[1]
# A small, fast slice of the space: few nodes, small networks, short trainings.
FAST = [
    "search.space.G1_nodes.high=4", "search.space.G2_nodes.high=2", "search.space.G3_nodes.high=4",
    "network.param_limit=30000", "network.head_channels=64", "trainer.max_epochs=3",
    "search.pruning.min_epochs=1", "logger=none",
]


def run_search_cli(run_dir: Path, *overrides: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "search.py", f"hydra.run.dir={run_dir}", *FAST,
                             *overrides], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def rows(db: Path, query: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.slow
def test_search_writes_its_outputs(tmp_path: Path) -> None:
    proc = run_search_cli(tmp_path, "search.trials=5", "study_name=e2e",
                          "search.options.n_init=3")
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    for name in ("study.db", "pareto.json", "pareto.png", "hypervolume.png"):
        assert (tmp_path / name).is_file(), name
    statuses = [r[0] for r in rows(tmp_path / "study.db", "SELECT status FROM trials")]
    assert len(statuses) == 5 and set(statuses) <= {"complete", "pruned", "failed"}
    front = json.loads((tmp_path / "pareto.json").read_text())["front"]
    assert front, "a finished search has a non-empty front"
    for record in front:
        assert Path(record["paths"]["architecture"]).is_file()
        assert 0 < record["values"]["val_acc"] <= 1 and record["values"]["params"] <= 30000
        assert isinstance(record["hparams"]["G1_nodes"], int)
    assert "Pareto front of study 'e2e'" in out


@pytest.mark.slow
def test_resume_after_kill_9_in_the_middle_of_a_trial(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    # 20 epochs: trial 1 reports for ~5 s before it ends (6 epochs left ~1 s to a 0.5 s poll)
    args = ("search.trials=3", "study_name=resume", "trainer.max_epochs=20", "search=random",
            "search.pruning.enabled=false")
    proc = run_search_cli(tmp_path, *args, start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # wait for trial 1 to report an epoch, then kill -9
        time.sleep(0.2)
        assert proc.poll() is None, "the search ended before it could be killed"
        if db.is_file() and rows(db, "SELECT 1 FROM reports r JOIN trials t ON t.id = r.trial_id "
                                     "WHERE t.number = 1 AND t.status = 'running'"):
            break
    else:
        proc.kill()
        pytest.fail("trial 1 never reported an epoch")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = rows(db, "SELECT number, status, params, seed, finished FROM trials ORDER BY number")
    assert before[0][1] in ("complete", "pruned") and before[1][1] == "running"

    proc = run_search_cli(tmp_path, *args)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert "resuming: 1 interrupted trial(s)" in out
    after = rows(db, "SELECT number, status, params, seed, finished FROM trials ORDER BY number")
    assert [r[0] for r in after] == [0, 1, 2]  # nothing duplicated
    assert after[0] == before[0]  # the finished trial is kept as it was
    assert after[1][2:4] == before[1][2:4]  # the interrupted one re-ran with its params and seed
    assert all(r[1] in ("complete", "pruned") for r in after)


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real = run_module.train_architecture

    def flaky(cfg, run_dir, callbacks=()):  # the second trial runs out of memory
        if cfg.tracking.trial == 1:
            raise MemoryError("out of memory in trial 1")
        return real(cfg, run_dir, callbacks=callbacks)

    monkeypatch.setattr(run_module, "train_architecture", flaky)
    cfg = compose("search", [*FAST, "search=random", "search.trials=3"])
    study = run_search(cfg, tmp_path, Console(quiet=True))
    assert [t.status for t in study.trials()][1] == "failed"
    assert "out of memory in trial 1" in study.trials()[1].error
    assert len(study.trials(("complete", "pruned"))) == 2
    write_outputs(study, tmp_path, Console(quiet=True))
    assert (tmp_path / "pareto.json").is_file() and (tmp_path / "pareto.png").is_file()


def test_the_same_error_in_the_first_trials_stops_the_search_unspent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(cfg, run_dir, callbacks=()):
        raise OSError("disk full")

    monkeypatch.setattr(run_module, "train_architecture", broken)
    cfg = compose("search", [*FAST, "search=random", "search.trials=5"])
    with pytest.raises(NagoError, match="first 3 trials all failed with the same error.*disk full"):
        run_search(cfg, tmp_path, Console(quiet=True))
    assert rows(tmp_path / "study.db", "SELECT COUNT(*) FROM trials") == [(0,)]


@pytest.mark.parametrize(("override", "message"), [
    ("search.space.param_limit.high=20", "no network of the search space is feasible"),
    ("search.min_width=64", "no network of the search space is feasible"),
    ("search.pruning.eta=1", r"search.pruning.eta=1.0: must be a number in \(1"),
    ("search.pruning.min_epochs=0", "search.pruning.min_epochs=0: must be an integer >= 1"),
    ("search.min_width=0", "search.min_width=0: must be an integer >= 1"),
])
def test_configuration_errors_stop_before_the_first_trial(tmp_path: Path, override: str,
                                                          message: str) -> None:
    cfg = compose("search", [*FAST, "search.space.param_limit.low=10", override]
                  if "param_limit" in override else [*FAST, override])
    with pytest.raises(NagoError, match=message):
        run_search(cfg, tmp_path, Console(quiet=True))
    assert not (tmp_path / "study.db").exists()


def test_a_missing_dataset_is_one_line_error_before_any_trial(tmp_path: Path) -> None:
    proc = run_search_cli(tmp_path, "dataset=fashion_mnist", f"dataset.root={tmp_path}/absent")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")], err
    assert not (tmp_path / "study.db").exists()


def test_wall_clock_budget_and_stop_end_the_search_between_trials(tmp_path: Path) -> None:
    cfg = compose("search", [*FAST, "search=random", "search.trials=5", "search.max_minutes=1e-6"])
    assert run_search(cfg, tmp_path / "clock", Console(quiet=True)).n_trials() == 0
    cfg = compose("search", [*FAST, "search=random", "search.trials=5"])
    study = run_search(cfg, tmp_path / "stop", Console(quiet=True),
                       stop=lambda: study_dir_trials(tmp_path / "stop") >= 1)
    assert study.n_trials() == 1 and study.trials()[0].status in ("complete", "pruned")


def study_dir_trials(run_dir: Path) -> int:
    return rows(run_dir / "study.db", "SELECT COUNT(*) FROM trials WHERE status != 'running'")[0][0]


def test_trial_0_is_the_default_architecture(tmp_path: Path) -> None:
    overrides = ["logger=none", "trainer.max_epochs=2", "search.pruning.min_epochs=1",
                 "search.trials=1", "network.param_limit=30000", "network.head_channels=64",
                 "search.min_width=1", "seed=5"]
    study = run_search(compose("search", overrides), tmp_path, Console(quiet=True))
    (trial,) = study.trials()
    cfg = compose("search", overrides)
    assert trial.info["source"] == "baseline" and trial.seed == 5
    assert trial.params == {**{k: cfg.generator[k] for k in study.space.names if k in
                               cfg.generator}, "param_limit": 30000}
    assert trial.status == "complete" and trial.epochs_reached == 2
    # a generator value outside the box: no baseline (FAST's G1_nodes stops at 4, hnag has 8)
    console = Console(record=True, width=200)
    narrow = run_search(compose("search", [*FAST, "search.trials=1"]), tmp_path / "narrow",
                        console)
    assert narrow.trials()[0].info["source"] == "sobol"
    assert "baseline skipped" in console.export_text()


def test_trial_config_maps_search_names_into_the_training_config() -> None:
    base = compose("search")
    cfg = trial_config(base, {"G1_nodes": 5, "param_limit": 12345, "stage_ratio_2": 2.0}, 7, 4)
    assert cfg.generator.G1_nodes == 5 and cfg.network.param_limit == 12345
    assert list(cfg.generator.stage_ratios) == [1.0, 1.0, 2.0]
    assert cfg.seed == 7 and cfg.trainer.max_epochs == 4
    assert base.generator.G1_nodes == 8  # the base config is untouched
    with pytest.raises(NagoError, match="G9_nodes: not a searchable name"):
        trial_config(base, {"G9_nodes": 1}, 0)


def test_unknown_space_name_is_rejected_before_any_trial(tmp_path: Path) -> None:
    cfg = compose("search", ["+search.space.G9_nodes={type:int,low:1,high:3}"])
    with pytest.raises(NagoError, match="search.space.G9_nodes"):
        open_study(cfg, tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [("search.strategy=hyperband",
      "unknown search strategy 'hyperband'; allowed: bohb, evolution, graphpnas, mobo"),
     ("trainer=ddp", "trainer.devices=-1: a DDP trial in a search needs a device count"),
     ("trainer.strategy=ddp_spawn", "trainer.strategy=ddp_spawn: a search starts each trial's"),
     ("search.objectives=[{name:test_acc,direction:max}]", "'test_acc' is not a trial metric"),
     ("search.space.G1_nodes.low=20", "G1_nodes")],
)
def test_bad_search_settings_are_one_line_errors(tmp_path: Path, override: str,
                                                 message: str) -> None:
    proc = run_search_cli(tmp_path, override)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err


def test_default_space_is_the_reference_box_plus_the_budget() -> None:
    from omegaconf import OmegaConf

    from nago_pl.search import NAGO_SPACE

    space = OmegaConf.to_container(compose("search").search.space, resolve=True)
    assert {k: v for k, v in space.items() if k != "param_limit"} == NAGO_SPACE
    assert space["param_limit"] == {"type": "int", "low": 20000, "high": 100000, "log": True}


def test_failing_final_retrains_are_recorded_not_raised(tmp_path: Path) -> None:
    from nago_pl.search.runner import final_evaluation

    cfg = compose("search", [*FAST, "search.final.top=1", "search.final.samples=2",
                             "search.final.max_epochs=1", "model.optimizer.lr=-1"])
    record = {"trial": 0, "seed": 0, "hparams": {"G1_nodes": 3, "G2_nodes": 1, "G3_nodes": 3}}
    results = final_evaluation(cfg, [record], tmp_path, Console(quiet=True))
    assert len(results["failed"]) == 2 and all("learning rate" in f for f in results["failed"])
    assert json.loads((tmp_path / "final.json").read_text()) == results


def test_resuming_with_other_training_settings_is_refused(tmp_path: Path) -> None:
    # a named study: a derived default name would give other settings a study of their own
    named = [*FAST, "study_name=named"]
    open_study(compose("search", named), tmp_path).close()
    for override, change in [("trainer.max_epochs=5", "trainer.max_epochs=3 before, 5 now"),
                             ("seed=4", "seed=0 before, 4 now"),
                             ("dataset.val_fraction=0.3", "dataset.val_fraction=0.2 before, 0.3 now"),
                             ("network.head_channels=32", "network.head_channels=64 before, 32 now")]:
        with pytest.raises(NagoError) as info:
            open_study(compose("search", [*named, override]), tmp_path)
        message = str(info.value)
        assert change in message and "search.allow_changed_settings=true" in message, message
        assert "\n" not in message
    # what does not change a trial's result may change; searched values come from the space
    for harmless in ("search.trials=50", "logger=csv", "dataset.num_workers=1",
                     "generator.G1_nodes=5"):
        open_study(compose("search", [*named, harmless]), tmp_path).close()
    allowed = open_study(compose("search", [*named, "trainer.max_epochs=5",
                                            "search.allow_changed_settings=true"]), tmp_path)
    allowed.close()  # and the new settings are now the study's
    open_study(compose("search", [*named, "trainer.max_epochs=5"]), tmp_path).close()


TABLE = ROOT / "../shared/data/nas-bench-201/nats_tss_test_acc_200ep.csv"
needs_table = needs_shared(TABLE)
SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def scored_study(path: Path | str, objectives: list[Objective], values: list[dict]) -> Study:
    study = Study.open(path, "outputs", SPACE, objectives)
    for i, value in enumerate(values):
        study.tell(study.add_trial({"x": i / len(values)}, seed=i).id, value)
    return study


def test_a_single_objective_search_plots_its_best_so_far_and_prints_its_front(
        tmp_path: Path) -> None:
    study = scored_study(":memory:", [Objective("val_acc", "max")],
                         [{"val_acc": v, "params": 1000.0 + v} for v in (0.5, 0.8, 0.7, 0.9)])
    console = Console(record=True, width=200)
    records = write_outputs(study, tmp_path, console)
    assert [r["trial"] for r in records] == [3]
    assert (tmp_path / "pareto.png").stat().st_size > 0
    assert (tmp_path / "hypervolume.png").stat().st_size > 0
    assert "Pareto front of study 'outputs'" in console.export_text()


def test_pareto_json_keeps_hyper_parameters_apart_from_the_parameter_count(
        tmp_path: Path) -> None:
    study = scored_study(":memory:", [Objective("val_acc", "max"), Objective("params", "min")],
                         [{"val_acc": 0.9, "params": 1234.0}])
    write_outputs(study, tmp_path, Console(quiet=True))
    [record] = json.loads((tmp_path / "pareto.json").read_text())["front"]
    assert record["hparams"] == {"x": 0.0} and record["values"]["params"] == 1234.0
    assert "params" not in record


def test_the_hypervolume_plot_counts_trials_in_whole_numbers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nago_pl.search import report

    figures = []
    monkeypatch.setattr(report.plt, "close", figures.append)
    study = scored_study(":memory:", [Objective("val_acc", "max"), Objective("params", "min")],
                         [{"val_acc": v, "params": p} for v, p in ((0.5, 10.0), (0.8, 20.0),
                                                                    (0.9, 5.0))])
    report.plot_hypervolume(study, tmp_path / "hypervolume.png")
    [figure] = figures
    ticks = figure.axes[0].get_xticks()
    assert len(ticks) > 1 and all(float(t).is_integer() for t in ticks), ticks


@needs_table
def test_after_a_search_study_db_alone_holds_every_trial(tmp_path: Path) -> None:
    cfg = compose("search", ["space=nb201", "evaluator=nb201_table", "dataset=cifar10",
                             f"evaluator.path={TABLE}", "search=random", "search.trials=3",
                             "logger=none"])
    study = run_search(cfg, tmp_path / "search", Console(quiet=True))
    write_outputs(study, tmp_path / "search", Console(quiet=True))
    (tmp_path / "copy").mkdir()
    shutil.copy(tmp_path / "search" / "study.db", tmp_path / "copy" / "study.db")
    assert rows(tmp_path / "copy" / "study.db",
                "SELECT status, COUNT(*) FROM trials GROUP BY status") == [("complete", 3)]


def test_closing_a_study_checkpoints_its_log_while_another_has_it_open(tmp_path: Path) -> None:
    objectives = [Objective("val_acc", "max")]
    other = Study.open(tmp_path / "study.db", "outputs", SPACE, objectives)
    study = scored_study(tmp_path / "study.db", objectives, [{"val_acc": 0.5}, {"val_acc": 0.7}])
    study.close()
    (tmp_path / "copy").mkdir()
    shutil.copy(tmp_path / "study.db", tmp_path / "copy" / "study.db")
    other.close()
    assert rows(tmp_path / "copy" / "study.db", "SELECT COUNT(*) FROM trials") == [(2,)]
