"""The search driver: one process that asks the strategy (running trials as pending points),
hands trials to an executor, answers their per-epoch reports (store, then prune or not) and
records their outcomes as they arrive. Several drivers may share one study: each only works on
the trials it leases, and together they stop at ``trials``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape

from nago_pl.errors import NagoError
from nago_pl.search.duplicates import DUPLICATE_OF, NETWORK, trained_twin
from nago_pl.search.executors import Done, Executor, Lost, Started
from nago_pl.search.progress import SearchProgress, finished_line
from nago_pl.search.pruning import LEARNED_METRICS, PruningRule, should_continue
from nago_pl.search.report import current_hypervolume
from nago_pl.search.strategies import Strategy
from nago_pl.search.study import FINISHED, LeaseLost, Study, Trial
from nago_pl.search.trial import TrialJob, record_outcome, trial_job

#: How long the driver waits for events before it looks again at the study and the clock.
POLL_SECONDS = 1.0
#: What names one trial's case in an error: NAS-Bench-201 cell strings, quoted names, paths,
#: numbers (:func:`error_kind` replaces each with a placeholder).
_CASE = re.compile(r"(?P<cell>\|\S*\|)|(?P<name>'[^']*'|\"[^\"]*\")|(?P<path>\S*/\S*)"
                   r"|(?P<number>(?<![A-Za-z_])[-+]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?"
                   r"(?:[eE][-+]?\d+)?))")


def error_kind(error: str) -> str:
    """The kind of a failed trial's ``error`` (``Type: message``): its text with the cells,
    quoted names, paths and numbers that name the trial's own case replaced by placeholders,
    so one cause failing several trials is one kind."""
    return " ".join(_CASE.sub(lambda m: f"<{m.lastgroup}>", error).split())


@dataclass
class Budget:
    """When to stop: ``total`` finished trials, a wall-clock ``deadline`` (monotonic seconds;
    stop starting trials after it), or ``stop()`` (asked before starting trials)."""

    total: int
    deadline: float | None = None
    stop: Callable[[], bool] | None = None


class SearchDriver:
    """Runs the trials of ``study`` proposed by ``strategy`` on ``executor`` (each first
    through ``prescreen``, which may swap it for a better candidate). With ``network_key``
    (a trial's network fingerprint, :func:`~nago_pl.search.duplicates.network_key`), a trial
    whose network a complete trial already trained is recorded with that trial's result,
    untrained."""

    def __init__(self, study: Study, strategy: Strategy, executor: Executor, base: DictConfig,
                 trials_dir: Path, pruning: PruningRule | None, max_retries: int,
                 batch_size: int, console: Console, threads: int | None = None,
                 memory_mb: Callable[[Trial], float] | None = None,
                 on_failure: Callable[[Study], None] | None = None,
                 prescreen: Callable[[Study, Trial], Trial] | None = None,
                 network_key: Callable[[Trial], str] | None = None) -> None:
        self.study = study
        self.strategy = strategy
        self.executor = executor
        self.base = base
        self.trials_dir = trials_dir
        self.pruning = pruning
        self.max_retries = max_retries
        self.batch_size = batch_size
        self.console = console
        self.threads = threads
        self.memory_mb = memory_mb
        self.on_failure = on_failure
        self.prescreen = prescreen
        self.network_key = network_key
        self.running: dict[int, TrialJob] = {}  # trial id -> job, of this driver
        self.retries: dict[int, int] = {}
        self.progress: SearchProgress | None = None

    # ---------------------------------------------------------------- the loop
    def run(self, budget: Budget) -> None:
        """Start, answer and record trials until the budget is spent (the running ones finish)."""
        stopping = False
        with SearchProgress(self.console, budget.total, self._count(FINISHED)) as progress:
            self.progress = progress
            while True:
                self.study.requeue_expired()  # trials of a driver that died meanwhile
                if not stopping:
                    stopping = self._should_stop(budget)
                reused = 0
                if not stopping:
                    reused = self._start_trials(budget.total)
                finished = self._count(FINISHED)
                if not self.running and (stopping or finished >= budget.total):
                    break
                progress.search(finished, self._best_hv(), len(self.running))
                if not self.running:  # other drivers' trials: wait for them (or their leases)
                    if not reused:
                        time.sleep(POLL_SECONDS)
                    continue
                for event in self.executor.wait(self._on_report, POLL_SECONDS):
                    self._handle(event)
            progress.search(self._count(FINISHED), self._best_hv(), 0)

    def _should_stop(self, budget: Budget) -> bool:
        if budget.deadline is not None and time.monotonic() >= budget.deadline:
            self.console.print(f"wall-clock budget reached after {self._count(FINISHED)} trials")
            return True
        return budget.stop is not None and budget.stop()

    def _start_trials(self, total: int) -> int:
        """Ask for trials while a worker is free and the study is short of ``total``; how
        many of them reused an earlier trial's result instead of starting."""
        free = self.executor.slots - len(self.running)
        if free <= 0:
            return 0
        open_slots = total - self._count((*FINISHED, "running"))
        n = min(max(free, self.batch_size), open_slots)
        if n <= 0:
            return 0
        batch = self.strategy.ask(self.study, n)
        # another driver may have asked at the same time: give back what exceeds the budget
        excess = self._count((*FINISHED, "running", "queued")) - total
        for trial in sorted(batch, key=lambda t: -t.number)[:max(excess, 0)]:
            self.study.withdraw(trial.id)
            batch.remove(trial)
        reused = 0
        pending = sorted(batch, key=lambda t: t.number)
        try:
            while pending:
                trial = pending[0]
                trial = trial if self.prescreen is None else self.prescreen(self.study, trial)
                if self._reuse(trial):
                    reused += 1
                else:
                    self._submit(trial)
                pending.pop(0)
        except BaseException:  # the trials not handed over never trained: back to the queue
            for trial in pending:
                if trial.id not in self.running and \
                        self.study.trial(trial.id).status == "running":
                    self.study.requeue(trial.id)
            raise
        return reused

    def _reuse(self, trial: Trial) -> bool:
        """Record ``trial`` complete with the result of the complete trial that trained its
        network (``info.duplicate_of``), without training it; else note its network in its
        info for later twins. Whether it was reused."""
        if self.network_key is None:
            return False
        try:
            key = self.network_key(trial)
        except NagoError:
            return False  # a network that cannot be built: its training says why
        twin = trained_twin(self.study, key)
        info = {**trial.info, NETWORK: key}
        if twin is not None:
            info[DUPLICATE_OF] = twin.number
        try:
            self.study.revise(trial.id, trial.params, trial.seed, info)
            if twin is None:
                return False
            values = {k: v for k, v in (twin.values or {}).items() if v is not None}
            done = self.study.tell(trial.id, values, epochs=twin.epochs_reached,
                                   paths=twin.paths)
        except LeaseLost as err:
            self.console.print(f"[yellow]trial {trial.number} dropped:[/] {escape(str(err))}",
                               highlight=False)
            return True
        self._say(finished_line(done, self.study.objectives))
        return True

    def _submit(self, trial: Trial) -> None:
        memory = self.memory_mb(trial) if self.memory_mb is not None else None
        job = trial_job(trial, self.base, self.trials_dir, self.threads, memory)
        self.study.set_paths(trial.id, {"run_dir": job.run_dir})
        self.running[trial.id] = job
        self.executor.submit(job)
        if self.progress is not None:
            self.progress.trial(trial.id, trial.number, job.epochs, where="queued")

    # ---------------------------------------------------------------- events
    def _on_report(self, trial_id: int, epoch: int, metrics: dict[str, float]) -> bool:
        """Store a running trial's report; whether it goes on (the pruning rule)."""
        job = self.running.get(trial_id)
        if job is None:
            return False
        try:
            self.study.report(trial_id, epoch, metrics)
        except LeaseLost as err:
            self._drop(trial_id, str(err))
            return False
        if self.progress is not None:
            self.progress.trial(trial_id, job.number, job.epochs, epoch)
        baseline = self.study.trial(trial_id).info.get("source") == "baseline"
        if self.pruning is None or baseline or epoch >= job.epochs:
            return True  # the status-quo arm trains to the full budget: the front never loses
        return should_continue(self.study, trial_id, epoch, self.study.objectives,
                               min_epochs=self.pruning.min_epochs, eta=self.pruning.eta,
                               learned=LEARNED_METRICS)

    def _handle(self, event: Started | Done | Lost) -> None:
        job = self.running.get(event.trial_id)
        if job is None:
            return  # a trial this driver already dropped
        if isinstance(event, Started):
            if self.progress is not None:
                self.progress.trial(event.trial_id, job.number, job.epochs, where=event.where)
            return
        if isinstance(event, Lost):
            self._retry_or_fail(job, event.reason)
            return
        self._finish(job)
        try:
            trial = record_outcome(self.study, job.trial_id, event.outcome)
        except LeaseLost as err:
            self.console.print(f"[yellow]trial {job.number}: result dropped:[/] "
                               f"{escape(str(err))}", highlight=False)
            return
        if trial.status == "failed":
            self.console.print(f"[yellow]trial {trial.number} failed:[/] "
                               f"{escape(trial.error or '')}", highlight=False)
            if self.on_failure is not None:
                self.on_failure(self.study)
        else:
            self._say(finished_line(trial, self.study.objectives))

    def _retry_or_fail(self, job: TrialJob, reason: str) -> None:
        """A lost worker: re-run the trial (up to ``max_retries`` times), then fail it."""
        tries = self.retries.get(job.trial_id, 0) + 1
        self.retries[job.trial_id] = tries
        try:
            if tries <= self.max_retries:
                self.console.print(f"[yellow]trial {job.number}: {escape(reason)}; retry "
                                   f"{tries}/{self.max_retries}[/]", highlight=False)
                self.study.restart(job.trial_id)
                self.executor.submit(job)
                if self.progress is not None:
                    self.progress.trial(job.trial_id, job.number, job.epochs, 0, "queued")
                return
            self._finish(job)
            self.study.fail(job.trial_id, f"worker lost {tries} time(s) (search.max_retries="
                                          f"{self.max_retries}); last: {reason}")
        except LeaseLost as err:
            self._drop(job.trial_id, str(err))
            return
        self.console.print(f"[yellow]trial {job.number} failed:[/] {escape(reason)}, "
                           f"{tries} time(s)", highlight=False)

    def _finish(self, job: TrialJob) -> None:
        self.running.pop(job.trial_id, None)
        if self.progress is not None:
            self.progress.done(job.trial_id)

    def _drop(self, trial_id: int, reason: str) -> None:
        job = self.running.get(trial_id)
        if job is not None:
            self._finish(job)
            self.console.print(f"[yellow]trial {job.number} dropped:[/] {escape(reason)}",
                               highlight=False)

    def _say(self, line: str) -> None:
        """One plain line above the live display (unwrapped: a piped output greps it)."""
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    # ---------------------------------------------------------------- reading
    def _count(self, statuses: tuple[str, ...]) -> int:
        return len(self.study.trials(statuses))

    def _best_hv(self) -> str:
        value = current_hypervolume(self.study)
        return "-" if value is None else f"{value:.4g}"
