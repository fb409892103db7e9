"""What every executor provides: start trial jobs, relay their reports, say how they ended."""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from nago_pl.search.trial import TrialJob, TrialOutcome

#: The driver's answer to a report: ``(trial_id, epoch, metrics) -> keep training``.
OnReport = Callable[[int, int, dict[str, float]], bool]


@dataclass(frozen=True)
class Started:
    """A job began training ``where`` (a process, device or Ray node)."""

    trial_id: int
    where: str


@dataclass(frozen=True)
class Done:
    """A job ended with an outcome (which may be the trial's own failure)."""

    trial_id: int
    outcome: TrialOutcome


@dataclass(frozen=True)
class Lost:
    """A job's worker died (killed, OOM-killed, node lost): not the trial's fault; retry it."""

    trial_id: int
    reason: str


Event = Started | Done | Lost


def ended(trial_id: int, outcome: TrialOutcome) -> Done | Lost:
    """The event of a job that returned ``outcome``: Lost when one of its processes died
    (status ``lost``, a DDP rank), else Done."""
    if outcome.status == "lost":
        return Lost(trial_id, outcome.error or "one of its processes died")
    return Done(trial_id, outcome)


def exit_reason(code: int | None) -> str:
    """A process's exit code in words (``killed by SIGKILL``, ``exit code 1``)."""
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Executor(ABC):
    """Runs up to :attr:`slots` trial jobs at once. The driver submits jobs, then calls
    :meth:`wait`, which answers the jobs' reports through ``on_report`` and returns what
    happened; workers never write the Study themselves."""

    slots: int = 1

    @abstractmethod
    def submit(self, job: TrialJob) -> None:
        """Queue ``job``; it starts as soon as a worker (and a device) is free."""

    @abstractmethod
    def wait(self, on_report: OnReport, timeout: float) -> list[Event]:
        """Relay reports and return the events of the next ``timeout`` seconds (or fewer, as
        soon as one job started or ended)."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop every worker (their trials stay the driver's to release)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
