"""The search's live display: finished trials, best hypervolume, and one line per running trial
(its epoch and where it runs); above it, one plain line per finished trial."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from nago_pl.search.study import Objective, Trial


class SearchProgress:
    """A rich progress display: ``search n/total · best HV`` and, per running trial,
    ``trial k epoch e/E · where``."""

    def __init__(self, console: Console, total: int, finished: int) -> None:
        self._progress = Progress(TextColumn("[bold]{task.fields[name]}"), BarColumn(),
                                  MofNCompleteColumn(), TextColumn("{task.description}"),
                                  TimeElapsedColumn(), console=console, transient=False)
        self._search = self._progress.add_task("", total=total, completed=finished,
                                               name="search")
        self._trials: dict[int, tuple[TaskID, str]] = {}

    def __enter__(self) -> SearchProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def search(self, finished: int, best_hv: str, running: int) -> None:
        """Update the search line."""
        self._progress.update(self._search, completed=finished,
                              description=f"best HV {best_hv} · {running} running")

    def trial(self, trial_id: int, number: int, epochs: int, epoch: int = 0,
              where: str | None = None) -> None:
        """Show (or update) a running trial's line."""
        if trial_id not in self._trials:
            task = self._progress.add_task("", total=epochs, name=f"trial {number}")
            self._trials[trial_id] = (task, "queued")
        task, old_where = self._trials[trial_id]
        where = old_where if where is None else where
        self._trials[trial_id] = (task, where)
        self._progress.update(task, completed=epoch, description=where)

    def done(self, trial_id: int) -> None:
        """Remove a trial's line."""
        if trial_id in self._trials:
            self._progress.remove_task(self._trials.pop(trial_id)[0])


def finished_line(trial: Trial, objectives: Sequence[Objective]) -> str:
    """One plain line for a finished trial (its status, objective values, epochs and seconds),
    e.g. ``trial 3 complete: val_acc 0.9512 · params 9.012e+04 · 12 epochs · 14.2 s``; a
    trial that reused an earlier one's result names it. In a terminal it prints above the
    live display; it is all a piped output shows while the search runs."""
    values = trial.values or {}
    parts = [f"{o.name} {values[o.name]:.4g}" for o in objectives
             if isinstance(values.get(o.name), int | float)]
    if trial.epochs_reached is not None:
        parts.append(f"{trial.epochs_reached} epochs")
    if trial.duration is not None:
        parts.append(f"{trial.duration:.1f} s")
    twin = trial.info.get("duplicate_of")
    note = "" if twin is None else f" (the network of trial {twin}: its result, not trained)"
    return f"trial {trial.number} {trial.status}{note}: " + " · ".join(parts)
