"""Parallel trials: executors (real subprocesses, a real local Ray), leases, faults, packing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from rich.console import Console

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.search import RandomSearch, SearchSpace
from nago_pl.search.executors.placement import GpuSlots, gpu_fraction
from nago_pl.search.executors.ranks import execute_ranked_trial
from nago_pl.search.runner import run_search, trial_base_config
from nago_pl.search.space import NAGO_SPACE
from nago_pl.search.study import LeaseLost, Objective, Study
from nago_pl.search.trial import trial_job

ROOT = Path(__file__).resolve().parents[1]
FAST = [
    "search.space.G1_nodes.high=4", "search.space.G2_nodes.high=2", "search.space.G3_nodes.high=4",
    "network.param_limit=30000", "network.head_channels=64", "logger=none", "search=random",
    "dataset.max_train_samples=400", "search.pruning.enabled=false", "trainer.max_epochs=4",
]
OBJS = [Objective("val_acc", "max")]
# Kill tests catch a trial between its first report and its end. FAST's epochs take ~0.08 s
# on 400 digits, so 4 epochs leave ~0.2 s, which a 0.2 s poll once missed in CI; 20 epochs
# leave ~1.5 s per trial.
KILL_WINDOW = "trainer.max_epochs=20"


def search_cli(run_dir: Path, *overrides: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "search.py", f"hydra.run.dir={run_dir}", *FAST,
                             *overrides], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def rows(db: Path, query: str, patience: float = 30) -> list[tuple]:
    """The query's rows ([] while the study file does not exist yet). A database that stays
    locked, or a schema still being created, for ``patience`` seconds raises: a check that
    follows must never pass on rows it could not read."""
    if not db.exists():
        return []
    deadline = time.monotonic() + patience
    while True:
        try:
            with closing(sqlite3.connect(db, timeout=patience)) as conn:
                return conn.execute(query).fetchall()
        except sqlite3.OperationalError as err:
            transient = "locked" in str(err) or "busy" in str(err) or "no such table" in str(err)
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_for(condition: Callable[[], object], proc: subprocess.Popen | None = None,
             timeout: float = 300) -> object:
    """Poll ``condition`` until it is truthy (fail when ``proc`` ends first or on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the search ended first: {proc.communicate()[1][-2000:]}")
        time.sleep(0.2)
    pytest.fail("timed out waiting")


def processes(match: Callable[[int, str], bool]) -> list[int]:
    """Pids of the processes whose (parent pid, command line) match."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if match(parent, cmdline):
            found.append(int(entry.name))
    return found


def workers_of(driver: int) -> list[int]:
    return processes(lambda parent, cmd: parent == driver and "spawn_main" in cmd)


def reported(db: Path, number: int) -> bool:
    return bool(rows(db, "SELECT 1 FROM reports r JOIN trials t ON t.id = r.trial_id WHERE "
                         f"t.number = {number} AND t.status = 'running'"))


def trial_rows(db: Path) -> list[tuple]:
    return rows(db, "SELECT number, status, params, seed, error FROM trials ORDER BY number")


# ----------------------------------------------------------------------------- leases
def test_only_expired_leases_are_requeued(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    first = Study.open(db, "s", NAGO_SPACE, OBJS)
    cfg = first.space.sobol(3, 0)
    alive = first.add_trial(cfg[0], seed=0)
    stale = first.add_trial(cfg[1], seed=1)
    dead = subprocess.run(  # a driver of this host killed before it finished its trial
        [sys.executable, "-c", "import os, sys; from nago_pl.search.space import NAGO_SPACE; "
         "from nago_pl.search.study import Objective, Study; "
         f"s = Study.open({str(db)!r}, 's', NAGO_SPACE, [Objective('val_acc', 'max')]); "
         "s.add_trial(s.space.sobol(3, 0)[2], seed=2); os._exit(0)"], cwd=ROOT, check=True)
    assert dead.returncode == 0
    with sqlite3.connect(db) as conn:  # a driver on another host that stopped beating
        conn.execute("UPDATE trials SET owner = 'elsewhere:1:x', heartbeat = 0 WHERE id = ?",
                     (stale.id,))
    second = Study.open(db, "s", NAGO_SPACE, OBJS)
    assert sorted(t.seed for t in second.requeued) == [1, 2]  # not the live owner's trial
    assert second.trial(alive.id).status == "running"
    taken = second.next_queued()
    assert taken.owner == second.owner
    with pytest.raises(LeaseLost, match="no longer this process's"):
        first.tell(taken.id, {"val_acc": 0.5})  # not first's (any more)
    first.tell(alive.id, {"val_acc": 0.7})
    assert second.trial(alive.id).status == "complete"


def test_a_study_file_from_before_leases_opens_and_requeues(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    Study.open(db, "s", NAGO_SPACE, OBJS).close()
    with sqlite3.connect(db) as conn:  # the columns an older release did not have
        conn.execute("ALTER TABLE trials DROP COLUMN owner")
        conn.execute("ALTER TABLE trials DROP COLUMN heartbeat")
        conn.execute("INSERT INTO trials (study_id, number, params, seed, status) VALUES "
                     "(1, 0, '{}', 3, 'running')")
    study = Study.open(db, "s", NAGO_SPACE, OBJS)
    assert [t.seed for t in study.requeued] == [3] and study.trials()[0].status == "queued"


# ----------------------------------------------------------------------------- packing
def test_gpu_slots_pack_within_count_and_memory() -> None:
    slots = GpuSlots([(0, 1000.0), (1, 1000.0)], trials_per_gpu=2)
    assert [slots.place(i, 300) for i in range(4)] == [[0], [1], [0], [1]]  # round robin
    assert slots.place(4, 10) is None  # every device holds trials_per_gpu trials
    slots.free(0)
    assert slots.place(5, 600) is None  # 300 + 600 > 80% of 1000 on device 0
    assert slots.place(6, 400) == [0]
    big = GpuSlots([(0, 1000.0), (1, 1000.0)], trials_per_gpu=3, order="free_memory")
    assert big.place(0, 2000) == [0]  # too large to share: alone on an empty device
    assert big.place(1, 100) == [1] and big.place(2, 100) == [1]
    assert big.place(3, 10) == [1]  # device 0 is full (its one trial needs all of it)
    with pytest.raises(NagoError, match="gpu_order='fastest'"):
        GpuSlots([(0, 1.0)], order="fastest")


def test_gpu_slots_give_a_ddp_trial_empty_devices_of_its_own() -> None:
    slots = GpuSlots([(0, 1000.0), (1, 1000.0), (2, 1000.0)], trials_per_gpu=4)
    assert slots.place(0, 10) == [0]
    assert slots.place(1, 10, count=2) == [1, 2]
    assert slots.place(2, 10, count=2) is None  # only device 0 has room, and it is shared
    assert slots.place(3, 10) == [0]  # single-device trials still share device 0
    slots.free(1)
    assert slots.place(2, 10, count=2) == [1, 2]
    with pytest.raises(NagoError, match="asks for 4 GPUs; the search has 3"):
        slots.place(4, 10, count=4)


def test_ray_gpu_fraction_follows_the_memory_estimate() -> None:
    assert gpu_fraction(None, None, 4) == 0.25
    assert gpu_fraction(1000, 80_000, 4) == 0.25
    assert gpu_fraction(30_000, 80_000, 4) == 0.5  # needs 47% of a device: two quarters
    assert gpu_fraction(90_000, 80_000, 2) == 1.0


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize(("overrides", "message"), [
    (["search.workers=2"], "search.workers=2: executor=local runs one trial at a time"),
    (["executor=process", "search.workers=0"], "search.workers=0: must be an integer >= 1"),
    (["executor=process", "executor.kind=threads"], "executor.kind='threads': allowed: local"),
    (["executor=process", "executor.trials_per_gpu=0"], "executor.trials_per_gpu=0"),
    (["trainer.strategy=ddp", "trainer.devices=2"],
     "need a worker of their own; use executor=process or executor=ray"),
])
def test_bad_executor_settings_stop_before_any_trial(tmp_path: Path, overrides: list[str],
                                                     message: str) -> None:
    with pytest.raises(NagoError, match=message):
        run_search(compose("search", [*FAST, *overrides]), tmp_path, Console(quiet=True))
    assert not (tmp_path / "study.db").exists()


def test_executor_ray_without_ray_names_the_extra(tmp_path: Path) -> None:
    hide_ray = ("import runpy, sys; sys.modules['ray'] = None; sys.argv = sys.argv[1:]; "
                "runpy.run_path('search.py', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", hide_ray, "search.py", f"hydra.run.dir={tmp_path}",
                           *FAST, "executor=ray"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "pip install -e .[ray]" in line


# ----------------------------------------------------------------------------- faults
@pytest.mark.slow
def test_a_killed_worker_is_retried_then_failed_and_the_search_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    proc = search_cli(tmp_path, "executor=process", "search.trials=3", "search.max_retries=1",
                      KILL_WINDOW)
    killed = []
    for _ in range(2):  # trial 1's worker, then its retry's worker
        pid = wait_for(lambda: reported(db, 1) and [p for p in workers_of(proc.pid)
                                                    if p not in killed], proc)[0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    trials = trial_rows(db)
    assert [t[0] for t in trials] == [0, 1, 2]
    assert trials[1][1] == "failed" and "worker lost 2 time(s)" in trials[1][4]
    assert "killed by SIGKILL" in trials[1][4]
    assert trials[0][1] == trials[2][1] == "complete"
    assert "retry 1/1" in out


@pytest.mark.slow
def test_driver_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    args = ("executor=process", "search.workers=2", "search.trials=4", KILL_WINDOW)
    proc = search_cli(tmp_path, *args)
    wait_for(lambda: reported(db, 1) or reported(db, 0), proc)
    orphans = workers_of(proc.pid)
    proc.kill()  # kill -9 of the driver alone: its workers become orphans
    proc.communicate()
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() and
                             "Z" not in (Path(f"/proc/{p}/stat").read_text().split()[2:3] or ["Z"])
                             for p in orphans), timeout=60)
    before = trial_rows(db)
    reports = rows(db, "SELECT * FROM reports")
    assert any(t[1] == "running" for t in before)
    time.sleep(2)  # orphans are gone: nothing more is written
    assert rows(db, "SELECT * FROM reports") == reports

    proc = search_cli(tmp_path, *args)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "interrupted trial(s) will be re-run" in out
    after = trial_rows(db)
    assert [t[0] for t in after] == [0, 1, 2, 3]  # nothing lost, nothing duplicated
    assert all(t[1] == "complete" for t in after)
    for old, new in zip(before, after, strict=False):
        assert old[2:4] == new[2:4]  # every trial (re-)ran with its params and seed
        if old[1] == "complete":
            assert old == new


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_workers_of_a_driver_killed_while_they_start_exit_without_writing(
        tmp_path: Path) -> None:
    """Killed while its workers still import their libraries (seconds; longer on a busy
    machine), the driver's workers exit as soon as they have started: no trial trains or
    writes a file."""
    proc = search_cli(tmp_path, "executor=process", "search.workers=2", "search.trials=4")
    orphans = wait_for(lambda: workers_of(proc.pid), proc)
    proc.kill()
    proc.communicate()
    wait_for(lambda: not any(alive(p) for p in orphans), timeout=120)
    assert rows(tmp_path / "study.db", "SELECT * FROM reports") == []
    trials = tmp_path / "trials"
    assert not trials.exists() or [p for p in trials.rglob("*") if p.is_file()] == []


def test_a_worker_whose_driver_is_gone_when_it_finishes_exits_quietly(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The trial ended after its driver died: nobody to tell, so no BrokenPipeError traceback,
    just the orphan's exit status."""
    import multiprocessing

    from nago_pl.search.executors.process import EXIT_ORPHANED, _worker

    cfg = compose("search", [*FAST, f"arch={tmp_path / 'absent.json'}"])  # fails at once
    study = Study.open(":memory:", "w", OmegaConf.to_container(cfg.search.space, resolve=True),
                       OBJS)
    trial = RandomSearch(study.space, OBJS, seed=0).ask(study)[0]
    job = trial_job(trial, trial_base_config(cfg, "trial"), tmp_path / "trials")
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    worker = context.Process(target=_worker, args=(theirs, job, None, os.getpid()))
    worker.start()
    theirs.close()
    ours.close()  # the driver is gone: the worker's pipe to it is broken
    worker.join(timeout=300)
    assert worker.exitcode == EXIT_ORPHANED
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.slow
def test_two_drivers_on_one_study_share_the_trials(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    args = ("executor=process", "search.trials=5", KILL_WINDOW)  # the first is still busy
    first = search_cli(tmp_path, *args)
    wait_for(lambda: reported(db, 0), first)
    second = search_cli(tmp_path, *args)
    outs = [p.communicate(timeout=600) for p in (first, second)]
    for proc, (_, err) in zip((first, second), outs, strict=True):
        assert proc.returncode == 0 and "Traceback" not in err, err
    trials = trial_rows(db)
    assert [t[0] for t in trials] == [0, 1, 2, 3, 4]
    assert all(t[1] == "complete" for t in trials)
    assert len({(t[2], t[3]) for t in trials}) == 5  # no trial trained twice
    owners = {o.split(":")[1] for (o,) in rows(db, "SELECT owner FROM trials")}
    # both drivers trained trials: one driver doing all the work is no cooperation
    assert owners == {str(first.pid), str(second.pid)}


@pytest.mark.slow
def test_ray_search_retries_a_killed_task_and_finishes(tmp_path: Path) -> None:
    """A killed task is retried; a killed mailbox actor (what Ray's memory monitor does under
    memory pressure) is restarted and the search finishes."""
    db = tmp_path / "study.db"
    proc = search_cli(tmp_path, "executor=ray", "search.workers=2", "search.trials=3",
                      KILL_WINDOW)
    tasks = wait_for(lambda: (reported(db, 0) or reported(db, 1)) and processes(
        lambda parent, cmd: cmd.startswith("ray::trial-")), proc)
    (mailbox,) = processes(lambda parent, cmd: cmd.startswith("ray::Mailbox"))
    os.kill(tasks[0], signal.SIGKILL)
    os.kill(mailbox, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "its Ray task was lost" in out and "retry 1/1" in out
    trials = trial_rows(db)
    assert [t[0] for t in trials] == [0, 1, 2] and all(t[1] == "complete" for t in trials)


# ----------------------------------------------------------------------------- DDP trials
DDP = ("trainer.strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu")


def rank_processes() -> list[int]:
    return processes(lambda parent, cmd: "nago_pl.search.executors.ranks" in cmd)


def test_a_ddp_trial_reports_from_rank_zero_and_is_pruned_as_a_whole(tmp_path: Path) -> None:
    """Two gloo processes train one trial; rank 0 alone reports, and its "stop" ends both."""
    cfg = compose("search", [*FAST, *DDP])
    space = OmegaConf.to_container(cfg.search.space, resolve=True)
    study = Study.open(":memory:", "s", space, OBJS)
    trial = RandomSearch(SearchSpace.from_config(space), OBJS, seed=1).ask(study)[0]
    job = trial_job(trial, trial_base_config(cfg, "trial"), tmp_path, threads=1)
    assert job.ranks == 2
    reports: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        reports.append(epoch)
        return epoch < 2

    outcome = execute_ranked_trial(job, report)
    assert outcome.status == "pruned", outcome.error
    assert outcome.epochs == 2 and reports == [1, 2]
    assert 0 < outcome.values["val_acc"] <= 1 and outcome.values["params"] > 0
    assert not rank_processes()  # rank 1 ended with it


@pytest.mark.slow
def test_a_search_of_ddp_trials_retries_one_whose_rank_was_killed(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    proc = search_cli(tmp_path, "executor=process", "search.trials=2", "search.max_retries=1",
                      *DDP)
    rank = wait_for(rank_processes, proc)[0]  # trial 0's second rank, from start to end
    os.kill(rank, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "retry 1/1" in out
    trials = trial_rows(db)
    assert [t[:2] for t in trials] == [(0, "complete"), (1, "complete")]
    for number in (0, 1):  # one report per epoch: rank 1 never reports
        epochs = rows(db, "SELECT r.epoch FROM reports r JOIN trials t ON t.id = r.trial_id "
                          f"WHERE t.number = {number} ORDER BY r.epoch")
        assert [e for (e,) in epochs] == [1, 2, 3, 4]


@pytest.mark.slow
def test_ray_runs_ddp_trials_one_after_another(tmp_path: Path) -> None:
    """Ray reuses its worker processes: a second DDP trial must not inherit the first one's
    process group (whose other rank is gone)."""
    db = tmp_path / "study.db"
    proc = search_cli(tmp_path, "executor=ray", "search.trials=2", "trainer.max_epochs=2", *DDP)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    trials = trial_rows(db)
    assert [t[:2] for t in trials] == [(0, "complete"), (1, "complete")], trials
    assert len(rows(db, "SELECT * FROM reports")) == 4
