"""Multi-device trials (``trainer.strategy=ddp``, ``trainer.devices=g``): the worker that got the
trial is rank 0 and starts ranks 1..g-1 as subprocesses of this module, each running the same
job under Lightning's DDP with the launch variables set (Lightning then launches nothing
itself). Only rank 0 reports to the driver; its decision reaches the other ranks through a
DDP broadcast (:class:`~callbacks.study_reporter.StudyReporter`), so a trial is pruned as a
whole. A rank killed by a signal makes the trial ``lost`` (the executor retries it, as for a
dead worker); a rank 0 blocked on a dead peer exits after GRACE_SECONDS, to the same end."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from nago_pl.search.executors.base import exit_reason
from nago_pl.search.pruning import ReportFn
from nago_pl.search.trial import TrialJob, TrialOutcome, execute_trial, quiet_lightning

#: The folder holding ``nago_pl`` and ``callbacks``, put on the ranks' import path.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
#: How long a trial's other ranks may take to end after one of them died or rank 0 finished.
GRACE_SECONDS = 30.0
#: Rank 0's exit code when another rank died (its executor then sees a lost worker).
EXIT_RANK_LOST = 75
#: How often ranks check on each other.
POLL_SECONDS = 0.5


def execute_ranked_trial(job: TrialJob, report: ReportFn) -> TrialOutcome:
    """Train ``job`` on its ``job.ranks`` processes (this one is rank 0) and return rank 0's
    outcome; a single-rank job trains in this process."""
    if job.ranks == 1:
        return execute_trial(job, report)
    launch = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
              "WORLD_SIZE": str(job.ranks), "NODE_RANK": "0"}
    children = [_start_rank(job, rank, launch) for rank in range(1, job.ranks)]
    finished = threading.Event()
    threading.Thread(target=_exit_if_a_rank_dies, args=(children, finished), daemon=True).start()
    try:
        with _environment({**launch, "LOCAL_RANK": "0"}):
            outcome = execute_trial(job, report)
    finally:
        finished.set()
        stuck = _end(children)
        _leave_process_group()
    died = [(rank, child.returncode) for rank, child in enumerate(children, start=1)
            if child.returncode < 0 and rank not in stuck]
    if died and outcome.status == "failed":  # rank 0 failed because a peer was killed
        rank, code = died[0]
        return TrialOutcome("lost", error=f"its rank {rank} process died ({exit_reason(code)})")
    return outcome


def _leave_process_group() -> None:
    """Destroy this trial's process group: Lightning keeps it, and a Ray worker that runs
    another DDP trial later would otherwise reuse it with ranks that are gone."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_rank(job: TrialJob, rank: int, launch: Mapping[str, str]) -> subprocess.Popen[bytes]:
    path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, **launch, "LOCAL_RANK": str(rank), "PYTHONPATH": path}
    child = subprocess.Popen([sys.executable, "-m", __name__, str(os.getpid())],
                             stdin=subprocess.PIPE, env=env)
    assert child.stdin is not None
    child.stdin.write(pickle.dumps(job))
    child.stdin.close()
    return child


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block, the earlier environment restored after (a
    Ray worker process runs other tasks later)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _exit_if_a_rank_dies(children: list[subprocess.Popen[bytes]],
                         finished: threading.Event) -> None:
    """Rank 0's watch: when another rank exits with an error while rank 0 still trains, rank 0
    would wait on it in the next collective; give it GRACE_SECONDS to fail on its own (the
    same error on every rank), then exit so the executor sees the worker lost."""
    while not finished.wait(POLL_SECONDS):
        if any(child.poll() not in (None, 0) for child in children):
            if not finished.wait(GRACE_SECONDS):
                os._exit(EXIT_RANK_LOST)
            return


def _end(children: list[subprocess.Popen[bytes]]) -> set[int]:
    """Wait for the other ranks to finish, kill any left after GRACE_SECONDS; the ranks
    killed here."""
    deadline = time.monotonic() + GRACE_SECONDS
    stuck = set()
    for rank, child in enumerate(children, start=1):
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            stuck.add(rank)
    return stuck


def _never_called(epoch: int, metrics: dict[str, float]) -> bool:
    raise RuntimeError("only rank 0 reports to the search driver")


def _rank_main(parent: int) -> None:
    """A rank > 0: read the job from stdin and train it; exit when rank 0's process is gone."""
    job: TrialJob = pickle.loads(sys.stdin.buffer.read())
    quiet_lightning()

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        os._exit(3)

    threading.Thread(target=watch_parent, daemon=True).start()
    outcome = execute_trial(job, _never_called)
    sys.exit(1 if outcome.status == "failed" else 0)


if __name__ == "__main__":
    _rank_main(int(sys.argv[1]))
