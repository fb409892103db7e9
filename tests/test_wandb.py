"""Weights & Biases: offline runs read back from their files, mode decisions, sweep files and the
adapter between W&B sweep runs and the Study. No network: W&B runs offline under tmp_path."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import yaml
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf
from rich.console import Console

from nago_pl.config import compose, instantiate_checked
from nago_pl.errors import NagoError
from nago_pl.search import NAGO_SPACE, Objective, RandomSearch, Study
from nago_pl.tracking import mode
from nago_pl.tracking.loggers import AutoLoggers
from nago_pl.tracking.sweep_adapter import (
    proposal_to_sweep_params,
    sweep_run_to_result,
    sync,
)
from nago_pl.tracking.sweep_config import check_overrides, validate_sweep
from nago_pl.tracking.sweep_driver import (
    NagoSearch,
    NothingToSchedule,
    build_sweep,
    drive_sweep,
    fixed_params,
    forwarded_overrides,
)
from nago_pl.training.run import train_architecture

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = sorted((ROOT / "conf" / "sweep").glob("*.yaml"))
SMALL = ["network.param_limit=30000", "network.head_channels=64",
         "trainer.enable_progress_bar=false"]
OBJECTIVES = [Objective("val_acc", "max"), Objective("params", "min", log=True)]


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """W&B offline, every W&B file under tmp_path, no credentials anywhere."""
    wandb_dir = tmp_path / "wandb-dir"
    for name, value in {"WANDB_MODE": "offline", "WANDB_DIR": wandb_dir,
                        "WANDB_CACHE_DIR": tmp_path / "wandb-cache",
                        "WANDB_CONFIG_DIR": tmp_path / "wandb-config",
                        "WANDB_DATA_DIR": tmp_path / "wandb-data",
                        "NETRC": tmp_path / "no-netrc", "WANDB_SILENT": "true"}.items():
        monkeypatch.setenv(name, str(value))
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL",
                 "WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(name, raising=False)
    mode._NOTICED.clear()  # every test sees its notices
    return wandb_dir


# --------------------------------------------------------------------------- reading run files
def wandb_records(path: Path) -> list[Any]:
    """The records of a ``.wandb`` transaction log: a 7-byte header, then LevelDB-log blocks of
    32 KiB holding chunks (checksum, length, type: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, chunk, records = 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the block's tail is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


@dataclass
class OfflineRun:
    """What an offline run stored: run settings, config, history rows, summary, artifacts."""

    group: str = ""
    job_type: str = ""
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[str]] = field(default_factory=dict)
    exit_code: int | None = None


def read_run(run_dir: Path) -> OfflineRun:
    run = OfflineRun()

    def items(updates: Any) -> dict[str, Any]:
        return {u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in updates}

    for record in wandb_records(next(run_dir.glob("run-*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.group, run.job_type = record.run.run_group, record.run.job_type
            run.name = record.run.display_name
            run.config.update(items(record.run.config.update))
        elif kind == "config":
            run.config.update(items(record.config.update))
        elif kind == "history":
            run.history.append(items(record.history.item))
        elif kind == "summary":
            run.summary.update(items(record.summary.update))
        elif kind == "artifact":
            run.artifacts[record.artifact.name] = [e.path for e in record.artifact.manifest.contents]
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def offline_runs(wandb_dir: Path) -> list[OfflineRun]:
    return [read_run(d) for d in sorted((wandb_dir / "wandb").glob("offline-run-*"))]


def ended_offline_runs(wandb_dir: Path, count: int, seconds: float = 60) -> list[OfflineRun]:
    """The ``count`` offline runs once each file holds its exit record: W&B's writer process
    may still be flushing a run's file when ``finish()`` returns on a loaded machine."""
    deadline = time.monotonic() + seconds
    while True:
        runs = offline_runs(wandb_dir)
        if len(runs) == count and all(r.exit_code is not None for r in runs):
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} ended W&B runs expected, found exit codes "
                                 f"{[r.exit_code for r in runs]}")
        time.sleep(0.5)


# --------------------------------------------------------------------------- end to end, offline
@pytest.mark.slow
def test_train_called_as_a_sweep_agent_stores_its_config_and_val_acc_history(
        tmp_path: Path, offline_wandb: Path) -> None:
    overrides = {"generator.G1_nodes": 4, "generator.G1_K": 3, "generator.G1_P": 0.5,
                 "generator.G2_nodes": 2, "generator.G2_P": 0.6, "generator.G3_nodes": 4,
                 "generator.G3_K": 2, "generator.G3_P": 0.3}
    args = [f"{k}={v}" for k, v in overrides.items()]  # ${args_no_hyphens}
    done = subprocess.run([sys.executable, "train.py", *args, "logger=wandb", "trainer.max_epochs=2",
                           *SMALL, f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    [run] = offline_runs(offline_wandb)
    assert run.job_type == "train" and run.exit_code == 0
    assert {k: run.config[k] for k in overrides} == overrides
    assert run.config["seed"] == 0 and run.config["trainer.max_epochs"] == 2
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert run.config["params"] == metrics["params"] and run.config["flops"] == metrics["flops"]
    assert run.config["architecture"] == (tmp_path / "run" / "architecture.json").read_text()
    val_acc = [row["val/acc"] for row in run.history if "val/acc" in row]
    assert len(val_acc) >= 2 and all(0 <= v <= 1 for v in val_acc)  # one per epoch (+ the best)
    assert run.summary["val_acc"] == pytest.approx(metrics["val_acc"])
    assert not (tmp_path / "run" / "csv").exists()  # logger=wandb only


@pytest.mark.slow
def test_search_logs_a_run_per_trial_and_final_sample_and_a_search_run_in_one_group(
        tmp_path: Path, offline_wandb: Path) -> None:
    done = subprocess.run(
        [sys.executable, "search.py", f"hydra.run.dir={tmp_path / 'search'}", "study_name=wbtest",
         "search=random", "search.trials=2", "trainer.max_epochs=2", "logger=wandb",
         "search.space.G1_nodes.high=4", "search.space.G2_nodes.high=2",
         "search.space.G3_nodes.high=4", "search.final.top=1", "search.final.samples=1",
         "search.final.max_epochs=1", *SMALL],
        cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    runs = offline_runs(offline_wandb)
    assert {r.group for r in runs} == {"wbtest"} and all(r.exit_code == 0 for r in runs)
    assert sorted(r.job_type for r in runs) == ["final", "search", "trial", "trial"]
    trials = [r for r in runs if r.job_type == "trial"]
    assert sorted(r.config["tracking.trial"] for r in trials) == [0, 1]
    assert sorted(r.name for r in trials) == ["trial-0000", "trial-0001"]
    [search] = [r for r in runs if r.job_type == "search"]
    logged = {k: v for row in search.history for k, v in row.items()}
    assert logged["pareto/_type"] == logged["hypervolume/_type"] == "image-file"
    assert logged["pareto_front/_type"] == "table-file"
    [search_dir] = [d for d in (offline_wandb / "wandb").glob("offline-run-*")
                    if read_run(d).job_type == "search"]
    table = json.loads((search_dir / "files" / logged["pareto_front/path"]).read_text())
    front = json.loads((tmp_path / "search" / "pareto.json").read_text())["front"]
    assert [row[0] for row in table["data"]] == [record["trial"] for record in front]
    assert sorted(search.artifacts["wbtest-study"]) == ["final.json", "study.db"]
    assert sorted(search.artifacts["wbtest-best-model"]) == ["architecture.json", "best.ckpt"]
    assert search.summary["trials/complete"] + search.summary["trials/pruned"] == 2


class Boom(L.Callback):
    """Fails the first training epoch."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        raise FloatingPointError("boom")


@pytest.mark.slow
def test_runs_in_one_process_are_separate_and_a_crashed_one_is_finished_as_failed(
        tmp_path: Path, offline_wandb: Path) -> None:
    cfg = compose("train", [*SMALL, "logger=wandb", "trainer.max_epochs=1", "tracking.group=g",
                            "tracking.job_type=trial"])
    with pytest.raises(FloatingPointError):
        train_architecture(cfg, tmp_path / "crashed", callbacks=[Boom()])
    train_architecture(cfg, tmp_path / "ok")
    runs = sorted(ended_offline_runs(offline_wandb, 2), key=lambda r: r.exit_code)
    assert [r.exit_code for r in runs] == [0, 1]
    assert [(r.group, r.job_type) for r in runs] == [("g", "trial")] * 2
    assert "val_acc" in runs[0].summary and "val_acc" not in runs[1].summary


# --------------------------------------------------------------------------- mode and fallbacks
def test_mode_is_online_with_credentials_and_offline_without(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE")
    assert mode.resolve_mode(None) == "offline"
    netrc = tmp_path / "netrc"
    netrc.write_text("machine localhost:8080 login user password local-key\n")
    monkeypatch.setenv("NETRC", str(netrc))
    assert mode.resolve_mode(None) == "offline"  # an entry for another server does not count
    monkeypatch.setenv("WANDB_BASE_URL", "http://localhost:8080")
    assert mode.resolve_mode(None) == "online"
    monkeypatch.delenv("WANDB_BASE_URL")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert mode.resolve_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert mode.resolve_mode(None) == "disabled"
    assert mode.resolve_mode("dryrun") == "offline"
    with pytest.raises(NagoError, match="logger.mode=cloudy: not a W&B mode"):
        mode.resolve_mode("cloudy")


def test_offline_fallback_prints_one_notice_with_the_sync_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("WANDB_MODE")
    loggers = [instantiate_checked(compose("train", ["logger=wandb"]).logger, "logger",
                                   save_dir=str(tmp_path)) for _ in range(2)]
    assert all(lg._wandb_init["mode"] == "offline" for lg in loggers)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "logging offline" in lines[0] and "wandb sync" in lines[0]


def test_missing_wandb_package_is_a_one_line_error_and_the_default_falls_back_to_csv(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(NagoError) as err:
        instantiate_checked(compose("train", ["logger=wandb"]).logger, "logger",
                            save_dir=str(tmp_path))
    assert str(err.value) == "logger=wandb needs the wandb package: pip install wandb"
    loggers = instantiate_checked(compose("train").logger, "logger", save_dir=str(tmp_path))
    assert [type(lg) for lg in loggers] == [CSVLogger]


def test_online_without_credentials_fails_in_seconds_and_never_prompts(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "online"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "train.py", "logger=wandb", *SMALL,
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "WANDB_MODE=online but no W&B credentials" in lines[0], done.stderr
    assert "wandb login" in lines[0] and time.monotonic() - started < 60


def test_default_logger_falls_back_to_csv_when_online_is_impossible(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WANDB_MODE", "online")
    loggers = AutoLoggers(str(tmp_path))
    assert [type(lg) for lg in loggers] == [CSVLogger]
    [line] = capsys.readouterr().err.splitlines()
    assert "no W&B credentials" in line and line.endswith("logging to CSV only")


def test_nago_sweep_needs_a_server_and_says_so_in_one_line(tmp_path: Path) -> None:
    cfg = compose("search", ["search.wandb_sweep=true"])
    with pytest.raises(NagoError, match=r"needs a W&B server .* W&B is offline here"):
        drive_sweep(cfg, tmp_path, Console(quiet=True))
    assert not (tmp_path / "study.db").exists()


# --------------------------------------------------------------------------- sweep files
@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_sweep_files_search_the_hnag_box_with_train_py_overrides(path: Path) -> None:
    sweep = validate_sweep(path)
    assert sweep["program"] == "train.py" and sweep["method"] in ("random", "bayes")
    assert sweep["command"] == ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"]
    assert sweep["metric"] == {"name": "val/acc", "goal": "maximize"}
    assert sweep["early_terminate"] == {"type": "hyperband", "min_iter": 3}
    box = {k.removeprefix("generator."): {"low": v["min"], "high": v["max"]}
           for k, v in sweep["parameters"].items() if "min" in v}
    assert box == {k: {"low": v["low"], "high": v["high"]} for k, v in NAGO_SPACE.items()}
    for end in ("min", "max"):  # each parameter's low and high are train.py overrides
        params = {k: v.get(end, v.get("value")) for k, v in sweep["parameters"].items()}
        cfg = compose("train", [f"{k}={v}" for k, v in params.items()])
        for name, value in params.items():
            if name != "logger":
                assert OmegaConf.select(cfg, name) == value, name
        assert cfg.logger._target_.endswith("WandbRunLogger")


@pytest.mark.parametrize(
    ("change", "message"),
    [({"parameters": {"generator.G9_nodes": {"min": 3, "max": 10}}},
      "sweep parameter generator.G9_nodes=3: not a valid train.py override (Key 'G9_nodes'"),
     ({"parameters": {"generator.G1_nodes": {"min": 0.5, "max": 10}}},
      "generator.G1_nodes=0.5: not a valid train.py override"),
     ({"command": ["${env}", "${interpreter}", "${program}", "${args}"]},
      "command must pass ${args_no_hyphens}"),
     ({"method": "hyperopt"}, "method must be one of random, bayes, grid"),
     ({"early_stop": {}}, "unknown key(s) ['early_stop']")],
)
def test_a_bad_sweep_file_is_a_one_line_error(tmp_path: Path, change: dict[str, Any],
                                               message: str) -> None:
    sweep = {**yaml.safe_load(SWEEPS[0].read_text()), **change}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    with pytest.raises(NagoError) as err:
        validate_sweep(path)
    assert message in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- the sweep adapter
@dataclass
class FakeRun:
    """A sweep run as W&B's local controller hands it to the custom search."""

    name: str
    state: str
    config: dict[str, Any]
    summary_metrics: dict[str, Any] | None = None
    stopped: bool = False


def agent_run(name: str, trial: int, state: str, summary: dict[str, Any] | None = None,
              stopped: bool = False) -> FakeRun:
    config = {"tracking.trial": {"value": trial, "desc": None}, "_wandb": {"value": {}}}
    return FakeRun(name, state, config, summary, stopped)


def new_study(space: dict[str, Any] | None = None) -> Study:
    return Study.open(":memory:", "sweepy", space or dict(NAGO_SPACE), OBJECTIVES)


def test_a_proposal_is_the_train_py_overrides_of_its_trial() -> None:
    study = new_study({**NAGO_SPACE, "stage_ratio_1": {"type": "float", "low": 0.5, "high": 2.0},
                       "param_limit": {"value": 40000}})
    trial = study.add_trial({**{k: v["low"] for k, v in NAGO_SPACE.items()}, "stage_ratio_1": 1.5},
                            seed=1234, budget=3)
    params = proposal_to_sweep_params(trial, "sweepy")
    cfg = compose("train", [f"{k}={v}" for k, v in params.items()])
    assert cfg.generator.G1_nodes == 3 and cfg.generator.G3_P == 0.1
    assert list(cfg.generator.stage_ratios) == [1.0, 1.5, 1.0]
    assert cfg.network.param_limit == 40000 and cfg.seed == 1234 and cfg.trainer.max_epochs == 3
    assert (cfg.tracking.trial, cfg.tracking.group, cfg.tracking.job_type) == (0, "sweepy", "trial")


@pytest.mark.parametrize(
    ("state", "stopped", "summary", "expected"),
    [("finished", False, {"val_acc": 0.9, "params": 1000, "val/acc": 0.8, "epoch": 4,
                          "_runtime": 3, "train/loss_step": 0.1},
      ("complete", {"val_acc": 0.9, "params": 1000.0})),
     ("killed", False, {"val/acc": 0.5, "model/params": 2000, "epoch": 1},
      ("pruned", {"val_acc": 0.5, "params": 2000.0})),
     ("finished", True, {"val/acc": 0.6, "model/params": 10}, ("pruned", {"val_acc": 0.6, "params": 10.0})),
     ("killed", False, {}, ("failed", {})),
     ("crashed", False, {"val/acc": 0.5}, ("failed", {"val_acc": 0.5})),
     ("failed", False, None, ("failed", {}))],
)
def test_an_ended_sweep_run_maps_to_its_trial_outcome(state: str, stopped: bool, summary: Any,
                                                      expected: tuple[str, dict]) -> None:
    result = sweep_run_to_result(summary, {"tracking.trial": {"value": 7}}, state, stopped)
    assert (result.trial, result.status, result.values) == (7, *expected)


def test_runs_in_flight_or_not_from_a_trial_map_to_nothing() -> None:
    assert sweep_run_to_result({}, {"tracking.trial": 1}, "running") is None
    assert sweep_run_to_result({}, {"tracking.trial": 1}, "pending") is None
    assert sweep_run_to_result({"val_acc": 1.0}, {"generator.G1_nodes": {"value": 3}}) is None


def test_sync_applies_each_result_once() -> None:
    study = new_study()
    strategy = RandomSearch(study.space, OBJECTIVES, seed=0)
    trials = strategy.ask(study, 5)
    runs = [agent_run("a", 0, "finished", {"val_acc": 0.9, "params": 5000, "epochs": 4}),
            agent_run("b", 1, "killed", {"val/acc": 0.4, "model/params": 7000}),
            agent_run("c", 2, "crashed"),
            agent_run("d", 3, "finished", {"val_acc": 0.7}),  # no params: cannot be complete
            agent_run("e", 4, "running", {"val/acc": 0.2}),
            agent_run("a2", 0, "crashed")]  # a second run of trial 0 changes nothing
    changed = sync(study, runs)
    assert [(t.number, t.status) for t in changed] == [(0, "complete"), (1, "pruned"),
                                                       (2, "failed"), (3, "failed")]
    assert study.trial(trials[0].id).values["val_acc"] == 0.9
    assert study.trial(trials[0].id).epochs_reached == 4
    assert study.trial(trials[0].id).paths["wandb_run"] == "a"
    assert study.trial(trials[1].id).values == {"val_acc": 0.4, "params": 7000.0}
    assert "W&B run c crashed" in study.trial(trials[2].id).error
    assert "without ['params']" in study.trial(trials[3].id).error
    assert study.trial(trials[4].id).status == "running"
    assert sync(study, runs) == []  # idempotent


def test_the_custom_search_proposes_syncs_and_stops_at_the_budget() -> None:
    study = new_study()
    fixed = {"dataset": "digits", "logger": "wandb"}
    search = NagoSearch(study, RandomSearch(study.space, OBJECTIVES, seed=0), total=2,
                        group="sweepy", fixed=fixed)
    first = search({}, [])
    assert first.config["tracking.trial"] == {"value": 0}
    assert first.config["dataset"] == {"value": "digits"}
    assert first.config["generator.G1_nodes"]["value"] == study.trials()[0].params["G1_nodes"]
    assert search({}, []).config == first.config  # not picked up by an agent yet: offered again
    assert study.n_trials() == 1
    second = search({}, [agent_run("a", 0, "running")])
    assert second.config["tracking.trial"] == {"value": 1}
    with pytest.raises(NothingToSchedule):  # budget handed out, both still training
        search({}, [agent_run("a", 0, "running"), agent_run("b", 1, "running")])
    done = [agent_run("a", 0, "finished", {"val_acc": 0.9, "params": 10}),
            agent_run("b", 1, "finished", {"val_acc": 0.8, "params": 5})]
    assert search({}, done) is None
    assert [t.status for t in study.trials()] == ["complete", "complete"]


class FakeController:
    """W&B's local controller, with agents that finish a scheduled trial by the next step."""

    def __init__(self) -> None:
        self.runs: list[FakeRun] = []
        self.search: Any = None
        self.ended = False

    def configure_search(self, search: Any) -> None:
        self.search = search

    def step(self) -> None:
        proposal = self.search({}, list(self.runs))
        if proposal is None:
            self.ended = True
            return
        args = {k: v["value"] for k, v in proposal.config.items()}
        n = args["tracking.trial"]
        self.runs.append(FakeRun(f"run{n}", "finished", proposal.config,
                                 {"val_acc": 0.5 + n / 100, "params": 1000 + n, "epochs": 2}))


def test_drive_sweep_runs_the_study_through_the_controller_and_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    import wandb

    from nago_pl.tracking import sweep_driver

    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "sweeps" else find_spec(name, *a))
    monkeypatch.setattr(sweep_driver, "POLL_SECONDS", 0.0)
    created, controller = [], FakeController()
    monkeypatch.setattr(wandb, "sweep", lambda sweep, entity, project: created.append(sweep) or "sw1")
    monkeypatch.setattr(wandb, "controller", lambda sweep_id, entity, project: controller)
    cfg = compose("search", ["search=random", "search.trials=3", "study_name=driven"])
    study = drive_sweep(cfg, tmp_path, Console(quiet=True), ["dataset=digits", "search.trials=3"])
    assert [(t.number, t.status) for t in study.trials()] == [(0, "complete"), (1, "complete"),
                                                               (2, "complete")]
    assert controller.ended and (tmp_path / "wandb_sweep.txt").read_text() == "sw1\n"
    assert created[0]["parameters"]["dataset"] == {"value": "digits"}
    assert controller.runs[2].config["tracking.group"] == {"value": "driven"}
    study.close()
    controller.__init__()
    again = drive_sweep(cfg, tmp_path, Console(quiet=True), ["dataset=digits"])
    assert len(created) == 1 and again.n_trials() == 3 and controller.runs == []


class FakeWandbServer:
    """W&B's server for one sweep, in memory: it answers the two GraphQL calls that
    ``wandb.sweep`` and the real local controller make (``UpsertSweep``, ``SweepWithRuns``) the
    way the W&B server does. Its agents move one step per read of the sweep: a run the controller
    scheduled is created ``pending`` (the controller schedules nothing else meanwhile, so the next
    proposal must be offered again), then ``running``, then ends as ``outcomes[trial]`` says
    (state, summary, stopped). More than ``max_reads`` reads fail the test instead of hanging."""

    def __init__(self, outcomes: dict[int, tuple[str, dict[str, Any], bool]], max_reads: int = 40):
        self.outcomes = outcomes
        self.max_reads = max_reads
        self.reads = 0
        self.sweep: dict[str, Any] = {}
        self.runs: list[dict[str, Any]] = []
        self.ended = False  # the controller scheduled "no more runs"
        self.warnings: list[str] = []  # what the server says is wrong with the sweep config

    def execute_graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The W&B public API's entry point for every GraphQL request."""
        if "mutation UpsertSweep(" in query:
            return self.upsert(variables)
        if "query SweepWithRuns(" in query:
            return self.read(variables)
        raise AssertionError(f"unexpected W&B request: {query.split('{')[0].strip()}")

    def upsert(self, variables: dict[str, Any]) -> dict[str, Any]:
        from sweeps import schema_violations_from_proposed_config

        if variables["id"] is None:  # wandb.sweep: create it
            assert not self.sweep, "the sweep is created once"
            self.sweep = {"id": "U3dlZXA6MQ==", "name": "sw1", "state": "RUNNING",
                          "config": variables["config"], "controller": None, "scheduler": "{}"}
        else:  # the controller writes its schedule
            assert variables["id"] == self.sweep["id"]
            if variables["controller"] is not None:
                self.sweep["controller"] = variables["controller"]
        warnings = [str(v) for v in schema_violations_from_proposed_config(
            yaml.safe_load(variables["config"]))]
        self.warnings += warnings
        return {"upsertSweep": {"sweep": {"name": self.sweep["name"]},
                                "configValidationWarnings": warnings}}

    def read(self, variables: dict[str, Any]) -> dict[str, Any]:
        assert variables["sweep"] == self.sweep["name"]
        self.reads += 1
        assert self.reads <= self.max_reads, "the sweep did not end"
        self.agents_step()
        nodes = [{**run, "config": json.dumps(run["config"]),
                  "summaryMetrics": json.dumps(run["summaryMetrics"]), "sampledHistory": [[]]}
                 for run in self.runs]
        return {"project": {"sweep": {**self.sweep, "runs": {"edges": [{"node": n} for n in nodes]}}}}

    def agents_step(self) -> None:
        scheduler = json.loads(self.sweep["scheduler"])
        for run in self.runs:
            if run["state"] == "running":
                trial = run["config"]["tracking.trial"]["value"]
                run["state"], run["summaryMetrics"], run["stopped"] = self.outcomes[trial]
            elif run["state"] == "pending":
                run["state"] = "running"
        taken = {s["id"] for s in scheduler.get("scheduled", [])}
        for entry in json.loads(self.sweep["controller"] or "{}").get("schedule", []):
            args = entry["data"]["args"]
            if args is None:
                self.ended = True
            elif entry["id"] not in taken:  # an agent takes it: a run with its config
                name = f"run-{len(self.runs)}"
                config = {k: {"value": v["value"], "desc": None} for k, v in args.items()}
                self.runs.append({"name": name, "state": "pending", "stopped": False,
                                  "config": {**config, "_wandb": {"value": {"cli_version": "x"}}},
                                  "summaryMetrics": {}})
                scheduler.setdefault("scheduled", []).append({"id": entry["id"], "runid": name})
        self.sweep["scheduler"] = json.dumps(scheduler)


class FakeApi:
    """``wandb.Api()`` with ``server`` as its backend."""

    def __init__(self, server: FakeWandbServer) -> None:
        self.settings = {"entity": "me", "project": "nago-pl", "base_url": "https://api.wandb.ai"}
        self.default_entity = "me"
        self._service_api = server


def test_drive_sweep_runs_the_real_local_controller_with_only_the_server_faked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``wandb.sweep`` and ``wandb.controller`` are W&B's own (``sweeps`` installed): proposals
    must reach the server as the controller's schedule, and the runs the server reports end
    their trials complete, pruned or failed."""
    import wandb

    from nago_pl.tracking import sweep_driver

    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    for name in ("WANDB_PROJECT", "WANDB_ENTITY"):  # wandb.sweep and the controller set them:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)  # set then deleted, monkeypatch removes them afterwards
    monkeypatch.setattr(sweep_driver, "POLL_SECONDS", 0.0)
    server = FakeWandbServer({
        0: ("finished", {"val_acc": 0.9, "params": 5000, "epochs": 2, "_runtime": 3}, False),
        1: ("killed", {"val/acc": 0.4, "model/params": 7000, "epoch": 0}, True),
        2: ("crashed", {}, False)})
    monkeypatch.setattr(wandb, "Api", lambda *args, **kwargs: FakeApi(server))
    cfg = compose("search", ["search=random", "search.trials=3", "study_name=driven"])
    study = drive_sweep(cfg, tmp_path, Console(quiet=True), ["dataset=digits"])

    assert server.warnings == []  # W&B's sweep schema accepts the sweep build_sweep made
    assert (tmp_path / "wandb_sweep.txt").read_text() == "sw1\n"
    trials = study.trials()
    assert [(t.number, t.status) for t in trials] == [(0, "complete"), (1, "pruned"), (2, "failed")]
    assert trials[0].values == {"val_acc": 0.9, "params": 5000.0, "epochs": 2.0}
    assert trials[0].epochs_reached == 2
    assert trials[1].values == {"val_acc": 0.4, "params": 7000.0}
    assert trials[2].error == "W&B run run-2 crashed"
    assert [t.paths["wandb_run"] for t in trials] == ["run-0", "run-1", "run-2"]
    fixed = fixed_params(study, {"dataset": "digits"})
    for trial, run in zip(trials, server.runs, strict=True):  # each run trains its trial's proposal
        args = {k: v["value"] for k, v in run["config"].items() if k != "_wandb"}
        assert args == {**fixed, **proposal_to_sweep_params(trial, "driven")}
    assert server.ended  # told to schedule no more runs


def test_the_nago_sweep_names_only_train_py_overrides() -> None:
    cfg = compose("search", ["dataset=digits"])
    study = Study.open(":memory:", "default", OmegaConf.to_container(cfg.search.space, resolve=True),
                       OBJECTIVES)
    fixed = fixed_params(study, forwarded_overrides(["dataset=digits", "search.trials=3", "seed=2",
                                                     "study_name=x"]))
    assert fixed == {"dataset": "digits", "logger": "wandb", "trainer.enable_progress_bar": False}
    sweep = build_sweep(cfg, study, "default", fixed)
    assert sweep["method"] == "custom" and sweep["controller"] == {"type": "local"}
    assert sweep["metric"] == {"name": "val_acc", "goal": "maximize"}
    assert sweep["parameters"]["network.param_limit"]["min"] == 20000
    check_overrides({name: [spec.get("value", spec.get("min")), spec.get("value", spec.get("max"))]
                     for name, spec in sweep["parameters"].items()})
    with pytest.raises(NagoError, match="cannot be passed to sweep agents"):
        forwarded_overrides(["+trainer.profiler=simple"])
