"""Resume after ``kill -9`` of the driver, beyond the default strategy and executor: a Ray
driver, and end-to-end searches with ``search=mobo``, ``bohb`` and ``graphpnas`` (nothing lost, nothing
duplicated, every interrupted trial re-run with its own hyper-parameters and seed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from test_executors import FAST, KILL_WINDOW, ROOT, processes, rows, trial_rows, wait_for

# test_executors' FAST settings, with the strategy left to each test and epochs enough to be
# caught training
BASE = [o for o in FAST if not o.startswith("search=")] + [KILL_WINDOW]


def start(run_dir: Path, *overrides: str, base: Sequence[str] = BASE) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "search.py", f"hydra.run.dir={run_dir}", *base,
                             *overrides], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def running_with_a_report(db: Path) -> list[tuple]:
    """Numbers of the running trials past the first that have reported an epoch."""
    return rows(db, "SELECT DISTINCT t.number FROM reports r JOIN trials t ON t.id = r.trial_id "
                    "WHERE t.status = 'running' AND t.number >= 1")


def kill_9_then_resume(run_dir: Path, *overrides: str, whole_group: bool = True,
                       base: Sequence[str] = BASE) -> list[tuple]:
    """Start a search, kill -9 it (its process group, or the driver alone) while a trial past
    the first is training, re-run the command and check nothing was lost or duplicated."""
    db = run_dir / "study.db"
    proc = start(run_dir, *overrides, base=base)
    wait_for(lambda: running_with_a_report(db), proc, timeout=600)
    if whole_group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()
    proc.communicate()
    before = trial_rows(db)
    assert any(t[1] == "running" for t in before), before

    proc = start(run_dir, *overrides, base=base)
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
                               "search.options.min_budget=10", "search.options.max_budget=20")
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


@pytest.mark.slow
def test_graphpnas_learning_cell_graphs_resumes_after_kill_9(tmp_path: Path) -> None:
    """A digits search whose GraphPNAS learns the bottom cells' graphs (generator=learned_cells)
    survives kill -9: the resumed search goes on sampling the generator, and the generator's
    last state is kept beside the study."""
    base = [o for o in BASE if not o.startswith("search.space.G3_nodes")]  # not searched here
    after = kill_9_then_resume(tmp_path, "generator=learned_cells", "search_space=hnag_learned",
                               "search=graphpnas", "search.trials=5", "search.options.warmup=2",
                               "search.options.steps=20", base=base)
    assert len(after) == 5
    infos = [json.loads(i) for (i,) in rows(tmp_path / "study.db",
                                            "SELECT info FROM trials ORDER BY number")]
    learned = [i for i in infos if i.get("source") == "graphpnas"]
    assert learned and all(i["trained_on"] for i in learned)
    params = [json.loads(p) for (p,) in rows(tmp_path / "study.db", "SELECT params FROM trials")]
    assert all(p[f"G3_edge_{k}"] in (0, 1) for p in params for k in range(10))
    state = torch.load(next(tmp_path.glob("graphpnas-*.pt")), weights_only=False)
    assert state["trained_on"] == learned[-1]["trained_on"]
