"""Resume after ``kill -9`` of the driver, beyond the default strategy and executor: a Ray
driver, and end-to-end searches with ``search=mobo`` and ``search=bohb`` (nothing lost, nothing
duplicated, every interrupted trial re-run with its own hyper-parameters and seed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_executors import FAST, ROOT, processes, rows, trial_rows, wait_for

# test_executors' FAST settings, with the strategy left to each test
BASE = [o for o in FAST if not o.startswith("search=")] + ["trainer.max_epochs=3"]


def start(run_dir: Path, *overrides: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "search.py", f"hydra.run.dir={run_dir}", *BASE,
                             *overrides], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def running_with_a_report(db: Path) -> list[tuple]:
    """Numbers of the running trials past the first that have reported an epoch."""
    return rows(db, "SELECT DISTINCT t.number FROM reports r JOIN trials t ON t.id = r.trial_id "
                    "WHERE t.status = 'running' AND t.number >= 1")


def kill_9_then_resume(run_dir: Path, *overrides: str, whole_group: bool = True) -> list[tuple]:
    """Start a search, kill -9 it (its process group, or the driver alone) while a trial past
    the first is training, re-run the command and check nothing was lost or duplicated."""
    db = run_dir / "study.db"
    proc = start(run_dir, *overrides)
    wait_for(lambda: running_with_a_report(db), proc, timeout=600)
    if whole_group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()
    proc.communicate()
    before = trial_rows(db)
    assert any(t[1] == "running" for t in before), before

    proc = start(run_dir, *overrides)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert "interrupted trial(s) will be re-run" in out
    after = trial_rows(db)
    assert [t[0] for t in after] == list(range(len(after)))  # nothing duplicated
    assert len(after) >= len(before)  # nothing lost
    assert all(t[1] in ("complete", "pruned") for t in after), after
    for old, new in zip(before, after, strict=False):
        assert old[2:4] == new[2:4]  # every trial (re-)ran with its params and seed
        if old[1] != "running":
            assert old == new  # a finished trial is kept as it was
    return after


@pytest.mark.slow
def test_mobo_search_resumes_after_kill_9(tmp_path: Path) -> None:
    after = kill_9_then_resume(tmp_path, "search=mobo", "search.trials=4",
                               "search.options.n_init=2")
    assert len(after) == 4
    sources = [s for (s,) in rows(tmp_path / "study.db",
                                  "SELECT json_extract(info, '$.source') FROM trials "
                                  "ORDER BY number")]
    assert "bo" in sources  # the resumed search went on proposing with the GP


@pytest.mark.slow
def test_bohb_search_resumes_after_kill_9(tmp_path: Path) -> None:
    after = kill_9_then_resume(tmp_path, "search=bohb", "search.trials=4",
                               "search.options.min_budget=1", "search.options.max_budget=2")
    assert len(after) == 4
    places = rows(tmp_path / "study.db", "SELECT json_extract(info, '$.bracket'), "
                                         "json_extract(info, '$.rung') FROM trials")
    assert all(b is not None and r is not None for b, r in places)  # BOHB's own trials


@pytest.mark.slow
def test_ray_driver_kill_9_then_resume(tmp_path: Path) -> None:
    """kill -9 of the Ray driver alone: Ray ends the dead driver's tasks, and the re-run
    resumes the study."""
    after = kill_9_then_resume(tmp_path, "search=random", "executor=ray", "search.workers=2",
                               "search.trials=4", whole_group=False)
    assert len(after) == 4
    assert not processes(lambda parent, cmd: cmd.startswith("ray::trial-"))
