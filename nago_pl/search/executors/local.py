"""In-process executors: one trial at a time in the search's own process (the default)."""

from __future__ import annotations

from abc import abstractmethod
from collections import deque

from nago_pl.search.executors.base import Done, Event, Executor, OnReport, Started
from nago_pl.search.trial import TrialJob, TrialOutcome, execute_trial


class InProcessExecutor(Executor):
    """Runs each job in this process when :meth:`wait` is called, one after another."""

    slots = 1
    #: How a started job's place is shown.
    where = "in-process"

    def __init__(self) -> None:
        self._jobs: deque[TrialJob] = deque()
        self._started = False  # the first job's Started event was returned: run it next

    @abstractmethod
    def run(self, job: TrialJob, on_report: OnReport) -> TrialOutcome:
        """The outcome of ``job`` (its reports answered by ``on_report``)."""

    def submit(self, job: TrialJob) -> None:
        self._jobs.append(job)

    def wait(self, on_report: OnReport, timeout: float) -> list[Event]:
        """The next job's Started event, then (next call) it runs and its Done event: the
        driver shows the job as running while it trains."""
        if not self._jobs:
            return []
        if not self._started:
            self._started = True
            return [Started(self._jobs[0].trial_id, self.where)]
        job = self._jobs.popleft()
        self._started = False
        return [Done(job.trial_id, self.run(job, on_report))]

    def shutdown(self) -> None:
        self._jobs.clear()
        self._started = False


class LocalExecutor(InProcessExecutor):
    """Trains each job in this process."""

    def run(self, job: TrialJob, on_report: OnReport) -> TrialOutcome:
        return execute_trial(job, lambda epoch, metrics: on_report(job.trial_id, epoch, metrics))
