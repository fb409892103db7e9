"""Trials as Ray tasks: on a local Ray started by the search, or on a cluster (``address``).

Each trial is one task with ``num_cpus`` / ``num_gpus`` resources (a fraction of a GPU to pack
several per device; a DDP trial of g ranks asks for g times the CPUs and g whole GPUs on one
node and starts its other ranks there, :mod:`.ranks`). A task reports each epoch to a mailbox
actor owned by the driver and waits for the driver's answer (continue or prune); only the
driver writes the Study. When the driver dies its mailbox and tasks die with it, so orphaned
tasks stop at their next report; a mailbox killed while its driver lives (Ray's memory
monitor) is restarted and its calls are retried.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from nago_pl.errors import NagoError
from nago_pl.search.executors.base import Event, Executor, Lost, OnReport, Started, ended
from nago_pl.search.executors.ranks import execute_ranked_trial
from nago_pl.search.trial import TrialJob, TrialOutcome, quiet_lightning

#: The folder holding ``nago_pl`` and ``callbacks``: on the workers' path of a local Ray.
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def import_ray() -> ModuleType:
    """The ``ray`` module, or a one-line error naming the extra to install."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise NagoError("executor=ray needs Ray, an optional extra: pip install -e .[ray] "
                        "(or pip install 'ray[default]')") from None


class Mailbox:
    """Ray actor between the driver and its tasks: a task's report waits here until the driver
    answers it."""

    def __init__(self) -> None:
        self.inbox: list[tuple[Any, ...]] = []
        self.answers: dict[tuple[int, int], asyncio.Future[bool]] = {}

    async def started(self, trial_id: int, where: str) -> None:
        self.inbox.append(("started", trial_id, where))

    async def report(self, trial_id: int, epoch: int, metrics: dict[str, float]) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.answers[(trial_id, epoch)] = future
        self.inbox.append(("report", trial_id, epoch, metrics))
        return await future

    async def take(self) -> list[tuple[Any, ...]]:
        messages, self.inbox = self.inbox, []
        return messages

    async def answer(self, trial_id: int, epoch: int, keep: bool) -> None:
        future = self.answers.pop((trial_id, epoch), None)
        if future is not None and not future.done():
            future.set_result(keep)


def run_ray_trial(job: TrialJob, mailbox: Any) -> TrialOutcome:
    """The body of a trial's Ray task."""
    import ray

    quiet_lightning()
    gpus = ray.get_gpu_ids()
    where = f"{ray.util.get_node_ip_address()} · " + (f"gpu {gpus}" if gpus else "cpu")
    mailbox.started.remote(job.trial_id, where)

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        return bool(ray.get(mailbox.report.remote(job.trial_id, epoch, metrics)))

    return execute_ranked_trial(job, report)


class RayExecutor(Executor):
    """Up to ``workers`` trials at once as Ray tasks of ``num_cpus`` CPUs and ``num_gpus`` GPUs
    each (``gpu_fraction(job)`` when given: a per-trial fraction from its memory estimate)."""

    def __init__(self, workers: int, address: str | None = None, num_cpus: float = 1,
                 num_gpus: float = 0, gpu_fraction: Any = None) -> None:
        self._ray = ray = import_ray()
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:  # a local Ray whose workers import this checkout
                    ray.init(include_dashboard=False, log_to_driver=False,
                             runtime_env={"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}})
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise NagoError(f"executor.address={address}: cannot connect to Ray: "
                                f"{' '.join(str(err).split())}") from None
        self.slots = workers
        self._num_cpus = num_cpus
        self._num_gpus = num_gpus
        self._gpu_fraction = gpu_fraction
        # restarted if killed (e.g. by Ray's memory monitor): calls to it are retried, a
        # report lost with it is sent again; it still dies with the driver that owns it
        self._mailbox = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(
            Mailbox).remote()
        self._task = ray.remote(max_retries=0)(run_ray_trial)
        self._refs: dict[Any, int] = {}

    def submit(self, job: TrialJob) -> None:
        gpus = self._gpu_fraction(job) if self._gpu_fraction is not None else self._num_gpus
        if job.ranks > 1:
            gpus = job.ranks if gpus else 0
        ref = self._task.options(num_cpus=self._num_cpus * job.ranks, num_gpus=gpus,
                                 name=f"trial-{job.number}").remote(job, self._mailbox)
        self._refs[ref] = job.trial_id

    def wait(self, on_report: OnReport, timeout: float) -> list[Event]:
        ray = self._ray
        events: list[Event] = []
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=min(timeout, 0.5)) \
            if self._refs else ([], [])
        for message in ray.get(self._mailbox.take.remote()):
            if message[0] == "started":
                events.append(Started(message[1], message[2]))
            else:
                _, trial_id, epoch, metrics = message
                self._mailbox.answer.remote(trial_id, epoch, on_report(trial_id, epoch, metrics))
        for ref in ready:
            trial_id = self._refs.pop(ref)
            try:
                events.append(ended(trial_id, ray.get(ref)))
            except ray.exceptions.RayError as err:
                reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                events.append(Lost(trial_id, f"its Ray task was lost ({type(err).__name__}: "
                                             f"{reason})"))
        return events

    def shutdown(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()
