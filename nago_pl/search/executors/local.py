"""The in-process executor: one trial at a time in the search's own process (the default)."""

from __future__ import annotations

from collections import deque

from nago_pl.search.executors.base import Done, Event, Executor, OnReport, Started
from nago_pl.search.trial import TrialJob, execute_trial


class LocalExecutor(Executor):
    """Trains each job in this process when :meth:`wait` is called, one after another."""

    slots = 1

    def __init__(self) -> None:
        self._jobs: deque[TrialJob] = deque()

    def submit(self, job: TrialJob) -> None:
        self._jobs.append(job)

    def wait(self, on_report: OnReport, timeout: float) -> list[Event]:
        if not self._jobs:
            return []
        job = self._jobs.popleft()
        outcome = execute_trial(job, lambda epoch, metrics: on_report(job.trial_id, epoch,
                                                                      metrics))
        return [Started(job.trial_id, "in-process"), Done(job.trial_id, outcome)]

    def shutdown(self) -> None:
        self._jobs.clear()
