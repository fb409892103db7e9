"""Study: persistence, WAL, resume, statuses, observations."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import torch

from nago_pl.errors import NagoError
from nago_pl.search.space import NAGO_SPACE, SearchSpace
from nago_pl.search.study import Objective, Study, trial_seed

OBJS = [Objective("val_acc", "max"), Objective("params", "min", log=True)]
SPACE = SearchSpace.from_config(NAGO_SPACE)


def configs(n: int, seed: int = 0) -> list[dict]:
    return SPACE.sobol(n, seed)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "study.db"


def test_create_reopen_and_wal(db: Path) -> None:
    with Study.open(db, "s", NAGO_SPACE, OBJS) as study:
        t = study.add_trial(configs(1)[0], seed=7, budget=30, info={"k": [1, 2]})
        study.tell(t.id, {"val_acc": 0.9, "params": 1e6}, paths={"arch": "a.json"})
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Study.open(db, "s", dict(NAGO_SPACE), [o.__dict__ for o in OBJS]) as again:
        (trial,) = again.trials()
        assert again.requeued == []
    assert (trial.params, trial.seed, trial.budget, trial.info) == (configs(1)[0], 7, 30,
                                                                    {"k": [1, 2]})
    assert (trial.status, trial.values, trial.paths) == ("complete",
                                                          {"val_acc": 0.9, "params": 1e6},
                                                          {"arch": "a.json"})
    assert trial.duration is not None and trial.duration >= 0
    started = datetime.fromisoformat(trial.started)
    assert started.utcoffset() == timedelta(0)


def test_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello, this is not SQLite" * 100)
    with pytest.raises(NagoError, match="cannot open study database .*notes.txt"):
        Study.open(bogus, "s", NAGO_SPACE, OBJS)


def test_several_studies_in_one_file(db: Path) -> None:
    a = Study.open(db, "a", NAGO_SPACE, OBJS)
    b = Study.open(db, "b", {"x": {"type": "float", "low": 0, "high": 1}}, OBJS[:1])
    a.add_trial(configs(1)[0], seed=1)
    assert b.trials() == [] and len(a.trials()) == 1
    assert b.add_trial({"x": 0.5}, seed=0).number == 0


def test_reopen_with_other_space_or_objectives_fails(db: Path) -> None:
    Study.open(db, "s", NAGO_SPACE, OBJS).close()
    other = {**NAGO_SPACE, "G1_nodes": {"type": "int", "low": 3, "high": 12}}
    with pytest.raises(NagoError, match=r"different search space: G1_nodes changed"):
        Study.open(db, "s", other, OBJS)
    with pytest.raises(NagoError, match=r"G3_P removed"):
        Study.open(db, "s", {k: v for k, v in NAGO_SPACE.items() if k != "G3_P"}, OBJS)
    with pytest.raises(NagoError, match=r"objectives \[val_acc:max, params:min\(log\)\], given "
                                        r"\[val_acc:max\]"):
        Study.open(db, "s", NAGO_SPACE, OBJS[:1])


def test_resume_requeues_running_trials(db: Path) -> None:
    c = configs(4)
    study = Study.open(db, "s", NAGO_SPACE, OBJS)
    done = study.add_trial(c[0], seed=10)
    study.report(done.id, 1, {"val_acc": 0.5, "params": 1e6})
    study.tell(done.id, {"val_acc": 0.6})
    running = study.add_trial(c[1], seed=11, budget=60, info={"bracket": 0})
    study.report(running.id, 1, {"val_acc": 0.4, "params": 2e6})
    study.report(running.id, 2, {"val_acc": 0.45})
    queued = study.enqueue(c[2], seed=12)
    failed = study.add_trial(c[3], seed=13)
    study.fail(failed.id, "CUDA out of memory\nTraceback ...")
    study.close()  # the driver stops without telling `running`: close() releases its lease
    reopened = Study.open(db, "s", NAGO_SPACE, OBJS)
    (requeued,) = reopened.requeued
    assert requeued.id == running.id and requeued.status == "queued"
    assert (requeued.params, requeued.seed, requeued.budget, requeued.info) == \
        (c[1], 11, 60, {"bracket": 0})
    assert requeued.epochs_reached is None and reopened.reports(running.id) == {}
    assert reopened.reports(done.id) == {1: {"val_acc": 0.5, "params": 1e6}}
    assert reopened.n_trials() == 4
    assert reopened.next_queued().id == running.id
    assert reopened.next_queued().id == queued.id
    assert reopened.next_queued() is None
    assert {t.id: t.status for t in reopened.trials()} == {
        done.id: "complete", running.id: "running", queued.id: "running", failed.id: "failed"}
    assert reopened.trial(failed.id).error == "CUDA out of memory\nTraceback ..."
    # a reporting worker process opens without requeueing
    assert Study.open(db, "s", NAGO_SPACE, OBJS, requeue=False).requeued == []
    assert reopened.trial(running.id).status == "running"


def test_kill_9_leaves_consistent_db(db: Path) -> None:
    child = textwrap.dedent(f"""
        from nago_pl.search.space import NAGO_SPACE
        from nago_pl.search.study import Objective, Study
        s = Study.open({str(db)!r}, "s", NAGO_SPACE, [Objective("val_acc", "max")])
        cfg = s.space.sobol(1, 0)[0]
        i = 0
        while True:
            t = s.add_trial(cfg, seed=i)
            for epoch in range(1, 4):
                s.report(t.id, epoch, {{"val_acc": epoch / 10}})
            s.tell(t.id, {{"val_acc": 0.5}})
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=Path(__file__).parents[1])
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    n = conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
            except sqlite3.OperationalError:  # not created yet, or briefly locked
                n = 0
            if n >= 20:
                break
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    study = Study.open(db, "s", NAGO_SPACE, [Objective("val_acc", "max")])
    trials = study.trials()
    assert len(trials) >= 20 and [t.number for t in trials] == list(range(len(trials)))
    assert len(study.requeued) <= 1
    for t in trials:
        assert t.status in ("complete", "queued")
        reports = study.reports(t.id)
        if t.status == "complete":
            assert t.values == {"val_acc": 0.5} and list(reports) == [1, 2, 3]
        else:
            assert reports == {} and t.epochs_reached is None


def test_statuses_values_and_errors() -> None:
    study = Study.open(":memory:", "s", NAGO_SPACE, OBJS)
    c = configs(5)
    pruned = study.add_trial(c[0], seed=0)
    study.report(pruned.id, 1, {"val_acc": 0.3, "params": 4e6, "flops": 9.0})
    study.report(pruned.id, 2, {"val_acc": torch.tensor(0.35)})
    assert study.trial(pruned.id).epochs_reached == 2
    assert study.prune(pruned.id).values == pytest.approx({"val_acc": 0.35, "params": 4e6,
                                                           "flops": 9.0})
    complete = study.add_trial(c[1], seed=1)
    study.tell(complete.id, {"val_acc": 0.9, "params": 2e6}, epochs=60)
    assert study.trial(complete.id).epochs_reached == 60
    failed = study.add_trial(c[2], seed=2)
    study.report(failed.id, 1, {"val_acc": 0.99, "params": 1.0})
    study.fail(failed.id, "diverged")
    running = study.add_trial(c[3], seed=3)
    queued = study.enqueue(c[4], seed=4)
    params, values = study.observations()
    assert params == [c[0], c[1]]
    assert torch.allclose(values, torch.tensor([[0.35, 4e6], [0.9, 2e6]], dtype=torch.float64))
    assert values.dtype == torch.float64
    assert study.pending() == [c[3], c[4]]
    assert [t.id for t in study.best_trials()] == [complete.id]
    assert [t.id for t in study.trials(["running", "queued"])] == [running.id, queued.id]
    with pytest.raises(NagoError, match=r"no value for objective\(s\) \['params'\]"):
        study.tell(running.id, {"val_acc": 0.5})
    with pytest.raises(ValueError, match="is complete, expected running"):
        study.report(complete.id, 3, {"val_acc": 1.0})
    with pytest.raises(ValueError, match="no trial with id 999"):
        study.fail(999, "x")
    with pytest.raises(NagoError, match="outside"):
        study.add_trial({**c[0], "G1_K": 9}, seed=0)
    study.set_paths(running.id, {"run_dir": "runs/3"})
    study.tell(running.id, {"val_acc": 0.5, "params": 3e6}, paths={"ckpt": "last.ckpt"})
    assert study.trial(running.id).paths == {"run_dir": "runs/3", "ckpt": "last.ckpt"}


def test_objective_validation() -> None:
    with pytest.raises(NagoError, match="direction must be 'max' or 'min', got 'maximize'"):
        Objective("val_acc", "maximize")  # type: ignore[arg-type]
    with pytest.raises(NagoError, match="non-empty string"):
        Objective("", "max")
    with pytest.raises(NagoError, match=r"unknown key\(s\) \['goal'\]"):
        Objective.from_config({"name": "acc", "goal": "max"})
    with pytest.raises(NagoError, match="must be unique"):
        Study.open(":memory:", "s", NAGO_SPACE, [OBJS[0], OBJS[0]])
    assert Objective.from_config({"name": "p", "direction": "min", "log": True}) == \
        Objective("p", "min", True)


def test_trial_seed_is_deterministic() -> None:
    seeds = [trial_seed(0, i) for i in range(100)]
    assert seeds == [trial_seed(0, i) for i in range(100)] and len(set(seeds)) == 100
    assert trial_seed(0, 5) != trial_seed(1, 5) != trial_seed(0, 5, stream=1)
    assert all(0 <= s < 2**31 for s in seeds)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("status", ["complete", "pruned"])
def test_non_finite_objective_values_fail_the_trial(bad: float, status: str) -> None:
    study = Study.open(":memory:", "s", NAGO_SPACE, OBJS)
    good = study.add_trial(configs(1)[0], seed=0)
    study.tell(good.id, {"val_acc": 0.5, "params": 1e5})
    trial = study.add_trial(configs(2)[1], seed=1)
    told = study.tell(trial.id, {"val_acc": bad, "params": 1e3, "test_loss": bad}, status=status)
    assert told.status == "failed"
    assert told.error == f"non-finite objective value(s): val_acc={bad}"
    assert told.values == {"val_acc": None, "params": 1e3, "test_loss": None}  # stored as null
    (text,) = study._conn.execute("SELECT objective_values FROM trials WHERE id = ?",
                                  (trial.id,)).fetchone()
    assert "NaN" not in text and "Infinity" not in text
    assert [t.id for t in study.best_trials()] == [good.id]
    assert study.observations()[1].tolist() == [[0.5, 1e5]]


def test_non_finite_non_objective_values_are_stored_as_null() -> None:
    study = Study.open(":memory:", "s", NAGO_SPACE, OBJS)
    trial = study.add_trial(configs(1)[0], seed=0)
    told = study.tell(trial.id, {"val_acc": 0.5, "params": 1e5, "test_loss": float("nan")})
    assert told.status == "complete" and told.values["test_loss"] is None
