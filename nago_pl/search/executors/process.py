"""One subprocess per trial on this machine: a crashed, leaking or killed trial cannot take the
search down. GPUs (if any) are shared out by :class:`~.placement.GpuSlots`."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from nago_pl.search.executors.base import Event, Executor, Lost, OnReport, Started, ended, exit_reason
from nago_pl.search.executors.placement import GpuSlots
from nago_pl.search.executors.ranks import execute_ranked_trial
from nago_pl.search.trial import TrialJob, TrialOutcome, quiet_lightning

#: How often a worker checks that the driver that started it is still alive.
ORPHAN_CHECK_SECONDS = 0.5
#: A worker's exit status when its driver is gone (it exits at once, writing nothing more).
EXIT_ORPHANED = 3


def _worker(conn: Connection, job: TrialJob, devices: list[int] | None, parent: int) -> None:
    """A worker process: train ``job`` on ``devices`` (one per DDP rank), report through
    ``conn``; exit at once, quietly, when the driver is gone (its pid no longer the parent,
    or the pipe to it broken): an orphan must not keep training or writing. A worker whose
    driver died while it started (imports take seconds) exits before it begins."""
    if os.getppid() != parent:
        os._exit(EXIT_ORPHANED)
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, devices))
    quiet_lightning()

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_SECONDS)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch_parent, daemon=True).start()

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        try:
            conn.send(("report", epoch, metrics))
            return bool(conn.recv())
        except (OSError, EOFError):
            os._exit(EXIT_ORPHANED)

    outcome = execute_ranked_trial(job, report)
    try:
        conn.send(("done", outcome))
    except OSError:  # the driver died while the trial finished: nobody to tell
        os._exit(EXIT_ORPHANED)
    conn.close()


@dataclass
class _Running:
    job: TrialJob
    process: BaseProcess
    conn: Connection


class ProcessExecutor(Executor):
    """Up to ``workers`` trials at once, each in a fresh (spawned) process; with ``gpus``, each
    trial gets one device from ``gpus`` (one process sees only that device), or one per DDP
    rank (:mod:`.ranks`)."""

    def __init__(self, workers: int, gpus: GpuSlots | None = None) -> None:
        self.slots = workers if gpus is None else min(workers, gpus.slots)
        self._gpus = gpus
        self._context = multiprocessing.get_context("spawn")
        self._queue: deque[TrialJob] = deque()
        self._running: dict[int, _Running] = {}

    def submit(self, job: TrialJob) -> None:
        self._queue.append(job)

    def _start_queued(self) -> list[Event]:
        events: list[Event] = []
        while self._queue and len(self._running) < self.slots:
            job = self._queue[0]
            devices = None
            if self._gpus is not None:
                devices = self._gpus.place(job.trial_id, job.memory_mb or 0.0, job.ranks)
                if devices is None:
                    break  # waits for a trial to end and free memory or devices
            self._queue.popleft()
            ours, theirs = self._context.Pipe()
            process = self._context.Process(target=_worker, name=f"trial-{job.number}",
                                            args=(theirs, job, devices, os.getpid()))
            process.start()
            theirs.close()
            self._running[job.trial_id] = _Running(job, process, ours)
            where = f"pid {process.pid}" + ("" if devices is None else
                                            f" · cuda:{','.join(map(str, devices))}")
            events.append(Started(job.trial_id, where))
        return events

    def wait(self, on_report: OnReport, timeout: float) -> list[Event]:
        events = self._start_queued()
        if events or not self._running:
            return events
        by_handle: dict[object, _Running] = {}
        for run in self._running.values():
            by_handle[run.conn] = run
            by_handle[run.process.sentinel] = run
        for handle in wait(list(by_handle), timeout):
            run = by_handle[handle]
            if run.job.trial_id in self._running:
                event = self._serve(run, on_report)
                if event is not None:
                    events.append(event)
        return events

    def _serve(self, run: _Running, on_report: OnReport) -> Event | None:
        """Answer ``run``'s pending messages; an event when it ended."""
        trial_id = run.job.trial_id
        try:
            while run.conn.poll():
                message = run.conn.recv()
                if message[0] == "report":
                    run.conn.send(on_report(trial_id, message[1], message[2]))
                else:
                    self._end(run)
                    outcome: TrialOutcome = message[1]
                    return ended(trial_id, outcome)
        except (EOFError, OSError):
            pass  # the pipe broke: the process died
        if run.process.is_alive():
            return None
        self._end(run)
        return Lost(trial_id, f"its worker process died ({exit_reason(run.process.exitcode)})")

    def _end(self, run: _Running) -> None:
        run.process.join(timeout=30)
        run.conn.close()
        del self._running[run.job.trial_id]
        if self._gpus is not None:
            self._gpus.free(run.job.trial_id)

    def shutdown(self) -> None:
        self._queue.clear()
        for run in list(self._running.values()):
            run.process.kill()
            self._end(run)

