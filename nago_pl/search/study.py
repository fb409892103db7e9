"""The Study: every trial of a search and its per-epoch reports, in one SQLite file.

One file may hold several studies (by name). Every write is one committed ``BEGIN IMMEDIATE``
transaction, the journal is in WAL mode, so a process killed at any point leaves a consistent
database, and several processes may share it.

Leases: a running trial has an ``owner`` (the Study object that started it: host, process id and
a random token) and a ``heartbeat`` the owner refreshes (:meth:`Study.start_heartbeat`). Opening
a study re-queues only the running trials whose lease is gone (their reports dropped,
params/seed/budget kept): no owner (released by :meth:`Study.close`), a heartbeat older than
``LEASE_SECONDS``, or an owner process on this host that no longer exists. Writing to a trial
whose lease another owner took raises :class:`LeaseLost`.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from nago_pl.errors import NagoError
from nago_pl.search.pareto import (
    above_reference,
    is_non_dominated,
    reference_point,
    to_maximization,
)
from nago_pl.search.space import SearchSpace

STATUSES = ("queued", "running", "complete", "pruned", "failed")
FINISHED = ("complete", "pruned", "failed")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    space TEXT NOT NULL,
    objectives TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    number INTEGER NOT NULL,
    params TEXT NOT NULL,
    seed INTEGER NOT NULL,
    budget INTEGER,
    status TEXT NOT NULL CHECK (status IN {STATUSES}),
    epochs_reached INTEGER,
    objective_values TEXT,
    error TEXT,
    started TEXT,
    finished TEXT,
    duration REAL,
    paths TEXT NOT NULL DEFAULT '{{}}',
    info TEXT NOT NULL DEFAULT '{{}}',
    owner TEXT,
    heartbeat REAL,
    UNIQUE (study_id, number)
);
CREATE INDEX IF NOT EXISTS trials_by_status ON trials (study_id, status);
CREATE TABLE IF NOT EXISTS study_settings (
    study_id INTEGER PRIMARY KEY REFERENCES studies(id),
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    time TEXT NOT NULL,
    PRIMARY KEY (trial_id, epoch)
);
"""

_TRIAL_COLUMNS = ("id, number, params, seed, budget, status, epochs_reached, objective_values, "
                  "error, started, finished, duration, paths, info, owner")
#: Columns added after the first release: added to older study files when they are opened.
_LEASE_COLUMNS = {"owner": "TEXT", "heartbeat": "REAL"}
#: A running trial whose owner has not refreshed its heartbeat for this long is re-queued.
LEASE_SECONDS = 60.0
#: How often an owner refreshes the heartbeat of its running trials.
HEARTBEAT_SECONDS = 5.0


class LeaseLost(NagoError):
    """A write to a trial this Study no longer owns (its lease expired and was taken over)."""


def _owner_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _owner_alive(owner: str) -> bool:
    """False when ``owner`` names a process of this host that is gone (or a zombie)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine: only its heartbeat can tell
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _seconds_between(start: str | None, end: str) -> float | None:
    if start is None:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def check_seed(seed: int) -> int:
    """Validate a strategy seed (a non-negative integer) and return it."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise NagoError(f"search seed must be a non-negative integer, got {seed!r}")
    return seed


def trial_seed(seed: int, index: int, stream: int = 0) -> int:
    """Deterministic, decorrelated seed for the ``index``-th trial of a strategy seeded ``seed``:
    stream 0 is the trial's own (training) seed, other streams are a strategy's proposal RNGs."""
    return int(np.random.SeedSequence([seed, index, stream]).generate_state(1)[0] >> 1)


@dataclass(frozen=True)
class Objective:
    """A quantity to optimise: a metric name, ``"max"`` or ``"min"``, whether the surrogate
    models ``log(value)`` (for positive, wide-ranging values such as parameter counts), and the
    reference point ``ref`` in natural units: a value no better than ``ref`` is worthless (it
    never reaches the front and adds no hypervolume). ``ref=None``: the worst value seen."""

    name: str
    direction: Literal["max", "min"]
    log: bool = False
    ref: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise NagoError(f"objective name must be a non-empty string, got {self.name!r}")
        if self.direction not in ("max", "min"):
            raise NagoError(f"objective '{self.name}': direction must be 'max' or 'min', "
                            f"got {self.direction!r}")
        if not isinstance(self.log, bool):
            raise NagoError(f"objective '{self.name}': log must be true or false, "
                            f"got {self.log!r}")
        if self.ref is not None:
            if (isinstance(self.ref, bool) or not isinstance(self.ref, int | float)
                    or not math.isfinite(self.ref)):
                raise NagoError(f"objective '{self.name}': ref must be a finite number or null, "
                                f"got {self.ref!r}")
            if self.log and self.ref <= 0:
                raise NagoError(f"objective '{self.name}': a log objective needs ref > 0, "
                                f"got {self.ref!r}")
            object.__setattr__(self, "ref", float(self.ref))

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any]) -> Objective:
        """Build from ``{name, direction[, log][, ref]}``."""
        unknown = set(mapping) - {"name", "direction", "log", "ref"}
        if unknown:
            raise NagoError(f"objective {dict(mapping)}: unknown key(s) {sorted(unknown)}; "
                            f"allowed: name, direction, log, ref")
        if "name" not in mapping or "direction" not in mapping:
            raise NagoError(f"objective {dict(mapping)}: needs 'name' and 'direction' "
                            f"('max' or 'min')")
        return cls(mapping["name"], mapping["direction"], mapping.get("log", False),
                   mapping.get("ref"))

    def describe(self) -> str:
        """Short form such as ``params:min(log)``."""
        return f"{self.name}:{self.direction}{'(log)' if self.log else ''}"

    def same_quantity(self, other: Objective) -> bool:
        """Whether ``other`` optimises the same thing (the reference point may differ)."""
        return (self.name, self.direction, self.log) == (other.name, other.direction, other.log)


@dataclass(frozen=True)
class Trial:
    """One row of the trials table (per-epoch reports: :meth:`Study.reports`)."""

    id: int
    number: int
    params: dict[str, Any]
    seed: int
    budget: int | None
    status: str
    epochs_reached: int | None
    values: dict[str, float] | None
    error: str | None
    started: str | None
    finished: str | None
    duration: float | None
    paths: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None


def _trial_from_row(row: tuple) -> Trial:
    (id_, number, params, seed, budget, status, epochs, values, error, started, finished,
     duration, paths, info, owner) = row
    return Trial(id_, number, json.loads(params), seed, budget, status, epochs,
                 None if values is None else json.loads(values), error, started, finished,
                 duration, json.loads(paths), json.loads(info), owner)


def _strict_json(values: Mapping[str, float]) -> str:
    """Strict JSON of a metrics mapping: NaN and infinities become null."""
    return json.dumps({k: v if math.isfinite(v) else None for k, v in values.items()},
                      allow_nan=False)


def _merge(reports: Sequence[str]) -> dict[str, float]:
    """Metrics of several reports (JSON, in epoch order), later ones overriding earlier ones."""
    merged: dict[str, float] = {}
    for text in reports:
        merged.update(json.loads(text))
    return merged


def _coerce_objectives(objectives: Sequence[Objective | Mapping[str, Any]]) -> list[Objective]:
    objs = [o if isinstance(o, Objective) else Objective.from_config(o) for o in objectives]
    if not objs:
        raise NagoError("a study needs at least one objective ({name, direction: max|min})")
    names = [o.name for o in objs]
    if len(set(names)) != len(names):
        raise NagoError(f"objective names must be unique, got {names}")
    return objs


class Study:
    """Persistent record of one search. Use :meth:`Study.open`, not the constructor."""

    def __init__(self, conn: sqlite3.Connection, study_id: int, name: str, path: str,
                 space: SearchSpace, objectives: list[Objective]) -> None:
        self._conn = conn
        self._id = study_id
        self.name = name
        self.path = path
        self.space = space
        self.objectives = objectives
        self.requeued: list[Trial] = []
        self.owner = _owner_token()
        self.leasing = True  # False: a reader/reporter that neither requeues nor releases
        self._heartbeat: tuple[threading.Thread, threading.Event] | None = None

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: str | Path, name: str,
             space_config: Mapping[str, Any] | SearchSpace,
             objectives: Sequence[Objective | Mapping[str, Any]], *,
             requeue: bool = True, settings: Mapping[str, Any] | None = None,
             allow_changed_settings: bool = False) -> Study:
        """Create the study ``name`` in the SQLite file ``path`` (or ``":memory:"``), or reopen it.

        Reopening with another space or other objectives raises :class:`NagoError`. With
        ``requeue`` (the default; a process that only reports, or whose trials run elsewhere,
        passes False and then neither re-queues, nor releases on close, nor checks leases) the
        running trials whose lease is gone are re-queued; they are listed in ``study.requeued``.
        ``settings`` (what defines a trial's result besides its parameters, e.g. the epoch budget
        and the dataset) are stored with a new study; reopening with other ones raises
        :class:`NagoError` naming them, unless ``allow_changed_settings`` (then they replace the
        stored ones).
        """
        space = (space_config if isinstance(space_config, SearchSpace)
                 else SearchSpace.from_config(space_config))
        objs = _coerce_objectives(objectives)
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
        except sqlite3.Error as err:
            raise NagoError(f"cannot open study database {path}: {err}") from err
        try:
            if path != ":memory:":
                _check_intact(conn)
            study = cls._attach(conn, path, name, space, objs)
            if settings is not None:
                study._check_settings(dict(settings), allow_changed_settings)
            study.leasing = requeue
            if requeue:
                study.requeued = study.requeue_expired()
        except sqlite3.OperationalError as err:  # locked, unreadable, no such folder...
            conn.close()
            raise NagoError(f"cannot open study database {path}: {err}") from err
        except sqlite3.DatabaseError as err:  # damaged, or not SQLite at all
            conn.close()
            raise NagoError(f"cannot open study database {path}: not a valid study file "
                            f"({err}); restore it from a copy, or move it away to start a new "
                            "study there") from err
        except BaseException:
            conn.close()
            raise
        return study

    @classmethod
    def _attach(cls, conn: sqlite3.Connection, path: str, name: str, space: SearchSpace,
                objs: list[Objective]) -> Study:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
        have = {row[1] for row in conn.execute("PRAGMA table_info(trials)")}
        missing = [f"ALTER TABLE trials ADD COLUMN {name} {kind};"
                   for name, kind in _LEASE_COLUMNS.items() if name not in have]
        if missing:  # a study file written before leases existed
            conn.executescript(f"BEGIN IMMEDIATE;{''.join(missing)}COMMIT;")
        space_json = json.dumps(space.to_config(), sort_keys=True)
        objs_json = json.dumps([asdict(o) for o in objs])
        study = cls(conn, -1, name, path, space, objs)
        with study._tx():
            row = conn.execute("SELECT id, space, objectives FROM studies WHERE name = ?",
                               (name,)).fetchone()
            if row is None:
                cur = conn.execute("INSERT INTO studies (name, space, objectives, created) "
                                   "VALUES (?, ?, ?, ?)", (name, space_json, objs_json, _now()))
                study._id = cur.lastrowid
            else:
                study._id = row[0]
                _check_same(name, path, json.loads(row[1]), json.loads(space_json),
                            [Objective(**o) for o in json.loads(row[2])], objs)
                conn.execute("UPDATE studies SET objectives = ? WHERE id = ?",
                             (objs_json, study._id))
        return study

    def _check_settings(self, settings: dict[str, Any], allow_changed: bool) -> None:
        text = json.dumps(settings, sort_keys=True, allow_nan=False)
        with self._tx() as conn:
            row = conn.execute("SELECT settings FROM study_settings WHERE study_id = ?",
                               (self._id,)).fetchone()
            stored = None if row is None else json.loads(row[0])
            # a setting absent from what an older version stored counts as unset (null)
            changes = [] if stored is None else [
                f"{k}={stored.get(k)!r} before, {settings.get(k)!r} now"
                for k in sorted(stored.keys() | settings.keys())
                if stored.get(k) != settings.get(k)]
            if changes and not allow_changed:
                raise NagoError(f"study '{self.name}' in {self.path} was run with other "
                                f"settings: {'; '.join(changes)} (its trials would not be "
                                "comparable: use a new study_name, or "
                                "search.allow_changed_settings=true to mix them)")
            conn.execute("INSERT OR REPLACE INTO study_settings (study_id, settings) "
                         "VALUES (?, ?)", (self._id, text))

    def requeue_expired(self) -> list[Trial]:
        """Re-queue the running trials whose lease is gone (see the module docstring), other
        than this Study's own; returns them."""
        now = time.time()
        with self._tx() as conn:
            rows = conn.execute("SELECT id, owner, heartbeat FROM trials WHERE study_id = ? AND "
                                "status = 'running' ORDER BY number", (self._id,)).fetchall()
            ids = [i for i, owner, beat in rows if owner != self.owner and (
                owner is None or beat is None or now - beat > LEASE_SECONDS
                or not _owner_alive(owner))]
            for trial_id in ids:
                self._reset(conn, trial_id)
        return [self.trial(i) for i in ids]

    @staticmethod
    def _reset(conn: sqlite3.Connection, trial_id: int) -> None:
        conn.execute("DELETE FROM reports WHERE trial_id = ?", (trial_id,))
        conn.execute("UPDATE trials SET status = 'queued', epochs_reached = NULL, "
                     "objective_values = NULL, started = NULL, finished = NULL, "
                     "duration = NULL, owner = NULL, heartbeat = NULL WHERE id = ?", (trial_id,))

    def release(self) -> None:
        """Give up the lease of this Study's running trials (a driver that stops without
        finishing them): the next :meth:`requeue_expired` re-queues them at once."""
        with self._tx() as conn:
            conn.execute("UPDATE trials SET owner = NULL, heartbeat = NULL WHERE study_id = ? "
                         "AND status = 'running' AND owner = ?", (self._id, self.owner))

    def restart(self, trial_id: int) -> Trial:
        """Drop the reports of this Study's running trial ``trial_id`` and start it afresh (same
        params, seed and budget; a retry after its worker was lost)."""
        with self._tx() as conn:
            self._require(conn, trial_id, ("running",))
            conn.execute("DELETE FROM reports WHERE trial_id = ?", (trial_id,))
            conn.execute("UPDATE trials SET epochs_reached = NULL, started = ?, heartbeat = ? "
                         "WHERE id = ?", (_now(), time.time(), trial_id))
        return self.trial(trial_id)

    def withdraw(self, trial_id: int) -> None:
        """Delete this Study's running trial ``trial_id`` before it trained (a proposal over the
        budget, made while another driver proposed too)."""
        with self._tx() as conn:
            self._require(conn, trial_id, ("running",))
            conn.execute("DELETE FROM reports WHERE trial_id = ?", (trial_id,))
            conn.execute("DELETE FROM trials WHERE id = ?", (trial_id,))

    def requeue(self, trial_id: int) -> None:
        """Give this Study's running trial ``trial_id`` back to the queue (same params, seed
        and budget) before it trained: its driver stopped while preparing it."""
        with self._tx() as conn:
            self._require(conn, trial_id, ("running",))
            self._reset(conn, trial_id)

    def start_heartbeat(self, interval: float = HEARTBEAT_SECONDS) -> None:
        """Refresh the heartbeat of this Study's running trials every ``interval`` seconds from a
        background thread (its own connection), until :meth:`close`."""
        if self._heartbeat is not None or self.path == ":memory:":
            return
        stop = threading.Event()

        def beat() -> None:
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            try:
                while not stop.wait(interval):
                    conn.execute("UPDATE trials SET heartbeat = ? WHERE study_id = ? AND "
                                 "status = 'running' AND owner = ?",
                                 (time.time(), self._id, self.owner))
            finally:
                conn.close()

        thread = threading.Thread(target=beat, name="study-heartbeat", daemon=True)
        thread.start()
        self._heartbeat = (thread, stop)

    def checkpoint(self) -> None:
        """Move everything the write-ahead log holds into the database file and empty the log,
        so that ``study.db`` alone is the whole study (a file a user copies)."""
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Stop the heartbeat, release this Study's running trials (unless opened with
        ``requeue=False``), checkpoint the write-ahead log and close the database connection."""
        if self._heartbeat is not None:
            thread, stop = self._heartbeat
            stop.set()
            thread.join()
            self._heartbeat = None
        try:
            if self.leasing:
                self.release()
            self.checkpoint()
        except sqlite3.Error:
            pass  # closing after the file went away: nothing left to release or checkpoint
        self._conn.close()

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # ---------------------------------------------------------------- writing
    def add_trial(self, params: Mapping[str, Any], seed: int, budget: int | None = None,
                  info: Mapping[str, Any] | None = None) -> Trial:
        """Record a new trial that starts now (status ``running``)."""
        return self._insert(params, seed, budget, info, "running")

    def enqueue(self, params: Mapping[str, Any], seed: int, budget: int | None = None,
                info: Mapping[str, Any] | None = None, if_empty: bool = False) -> Trial | None:
        """Record a trial to run later (status ``queued``; handed out by :meth:`next_queued`).
        ``if_empty``: only when the study has no trial yet (else None), decided atomically."""
        return self._insert(params, seed, budget, info, "queued", if_empty)

    def _insert(self, params: Mapping[str, Any], seed: int, budget: int | None,
                info: Mapping[str, Any] | None, status: str, if_empty: bool = False
                ) -> Trial | None:
        self.space.to_unit([params])  # validates: every searched name, in range
        params = {**self.space.fixed, **params}
        with self._tx() as conn:
            number = conn.execute("SELECT COALESCE(MAX(number) + 1, 0) FROM trials "
                                  "WHERE study_id = ?", (self._id,)).fetchone()[0]
            if if_empty and number > 0:
                return None
            running = status == "running"
            cur = conn.execute(
                "INSERT INTO trials (study_id, number, params, seed, budget, status, started, "
                "info, owner, heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self._id, number, json.dumps(params), int(seed),
                 None if budget is None else int(budget), status,
                 _now() if running else None, json.dumps(dict(info or {})),
                 self.owner if running else None, time.time() if running else None))
        return self.trial(cur.lastrowid)

    def next_queued(self) -> Trial | None:
        """Mark the oldest queued trial running and return it (None when none is queued)."""
        with self._tx() as conn:
            row = conn.execute("SELECT id FROM trials WHERE study_id = ? AND status = 'queued' "
                               "ORDER BY number LIMIT 1", (self._id,)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE trials SET status = 'running', started = ?, owner = ?, "
                         "heartbeat = ? WHERE id = ?", (_now(), self.owner, time.time(), row[0]))
        return self.trial(row[0])

    def take_queued(self, n: int) -> list[Trial]:
        """Up to ``n`` queued trials, marked running (what every strategy's ``ask`` does first)."""
        out: list[Trial] = []
        while len(out) < n and (trial := self.next_queued()) is not None:
            out.append(trial)
        return out

    def report(self, trial_id: int, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Store the metrics of a running trial after ``epoch`` (completed epochs, 1-based)."""
        values = {k: float(v) for k, v in metrics.items()}
        with self._tx() as conn:
            self._require(conn, trial_id, ("running",))
            conn.execute("INSERT OR REPLACE INTO reports (trial_id, epoch, metrics, time) "
                         "VALUES (?, ?, ?, ?)", (trial_id, int(epoch), json.dumps(values), _now()))
            conn.execute("UPDATE trials SET epochs_reached = MAX(COALESCE(epochs_reached, 0), ?) "
                         "WHERE id = ?", (int(epoch), trial_id))

    def tell(self, trial_id: int, values: Mapping[str, Any] | None,
             status: Literal["complete", "pruned"] = "complete", epochs: int | None = None,
             paths: Mapping[str, str] | None = None) -> Trial:
        """Finish a running trial with its final values (merged over its reports: a value only
        reported per epoch, e.g. a parameter count sent with the first report, is kept).

        A NaN or infinite objective value makes the trial ``failed`` (its error names the values);
        non-finite values are stored as null."""
        if status not in ("complete", "pruned"):
            raise ValueError(f"tell() status must be 'complete' or 'pruned', got {status!r}")
        end = _now()
        with self._tx() as conn:
            started, old_paths = self._require(conn, trial_id, ("running",))
            reports = [r[0] for r in conn.execute(
                "SELECT metrics FROM reports WHERE trial_id = ? ORDER BY epoch", (trial_id,))]
            final = {**_merge(reports), **{k: float(v) for k, v in (values or {}).items()}}
            missing = [o.name for o in self.objectives if o.name not in final]
            if status == "complete" and missing:
                raise NagoError(f"trial {trial_id} has no value for objective(s) {missing}; "
                                f"it reported: {sorted(final) or 'nothing'}")
            non_finite = [f"{o.name}={final[o.name]}" for o in self.objectives
                          if o.name in final and not math.isfinite(final[o.name])]
            error = f"non-finite objective value(s): {', '.join(non_finite)}" if non_finite \
                else None
            conn.execute(
                "UPDATE trials SET status = ?, objective_values = ?, error = ?, finished = ?, "
                "duration = ?, epochs_reached = COALESCE(?, epochs_reached), paths = ? "
                "WHERE id = ?",
                ("failed" if non_finite else status, _strict_json(final), error, end,
                 _seconds_between(started, end), epochs,
                 json.dumps({**json.loads(old_paths), **(paths or {})}), trial_id))
        return self.trial(trial_id)

    def prune(self, trial_id: int, values: Mapping[str, Any] | None = None) -> Trial:
        """Stop a running trial early; its values default to its last reported ones."""
        return self.tell(trial_id, values, status="pruned")

    def fail(self, trial_id: int, error: str) -> Trial:
        """Mark a running or queued trial failed, keeping the error text."""
        end = _now()
        with self._tx() as conn:
            started, _ = self._require(conn, trial_id, ("running", "queued"))
            conn.execute("UPDATE trials SET status = 'failed', error = ?, finished = ?, "
                         "duration = ? WHERE id = ?",
                         (str(error), end, _seconds_between(started, end), trial_id))
        return self.trial(trial_id)

    def discard(self, trial_ids: Sequence[int]) -> None:
        """Delete finished trials and their reports (a search stopped by an error that was not
        theirs, so re-running the fixed command spends no budget on them)."""
        with self._tx() as conn:
            for trial_id in trial_ids:
                self._require(conn, trial_id, FINISHED)
                conn.execute("DELETE FROM reports WHERE trial_id = ?", (trial_id,))
                conn.execute("DELETE FROM trials WHERE id = ?", (trial_id,))

    def revise(self, trial_id: int, params: Mapping[str, Any], seed: int,
               info: Mapping[str, Any]) -> Trial:
        """Change what a running trial of this process will train (before it started
        training: e.g. prescreening swapped it for a better candidate)."""
        self.space.to_unit([params])  # validates: every searched name, in range
        with self._tx() as conn:
            self._require(conn, trial_id, ("running",))
            if conn.execute("SELECT 1 FROM reports WHERE trial_id = ?", (trial_id,)).fetchone():
                raise ValueError(f"trial {trial_id} has reports: it trains already")
            conn.execute("UPDATE trials SET params = ?, seed = ?, info = ? WHERE id = ?",
                         (json.dumps({**self.space.fixed, **params}), int(seed),
                          json.dumps(dict(info)), trial_id))
        return self.trial(trial_id)

    def set_paths(self, trial_id: int, paths: Mapping[str, str]) -> None:
        """Merge ``paths`` (arch JSON, checkpoint, run dir...) into the trial's paths."""
        with self._tx() as conn:
            _, old = self._require(conn, trial_id, STATUSES)
            conn.execute("UPDATE trials SET paths = ? WHERE id = ?",
                         (json.dumps({**json.loads(old), **paths}), trial_id))

    def _require(self, conn: sqlite3.Connection, trial_id: int,
                 statuses: Sequence[str]) -> tuple[str | None, str]:
        row = conn.execute("SELECT status, started, paths, owner, number FROM trials WHERE id = ? "
                           "AND study_id = ?", (trial_id, self._id)).fetchone()
        if row is None:
            raise ValueError(f"study '{self.name}' has no trial with id {trial_id}")
        queued_ok = row[0] == "queued" and "queued" in statuses
        if self.leasing and set(statuses) <= {"running", "queued"} and row[3] != self.owner \
                and not queued_ok:
            raise LeaseLost(f"trial {row[4]} is no longer this process's: its lease expired "
                            "and it was re-queued or taken over")
        if row[0] not in statuses:
            raise ValueError(f"trial {trial_id} is {row[0]}, expected {' or '.join(statuses)}")
        return row[1], row[2]

    # ---------------------------------------------------------------- reading
    def trial(self, trial_id: int) -> Trial:
        """The trial with database id ``trial_id``."""
        row = self._conn.execute(f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE id = ? AND "
                                 "study_id = ?", (trial_id, self._id)).fetchone()
        if row is None:
            raise ValueError(f"study '{self.name}' has no trial with id {trial_id}")
        return _trial_from_row(row)

    def trials(self, statuses: Sequence[str] | None = None) -> list[Trial]:
        """All trials (or those with one of ``statuses``), in creation order."""
        statuses = tuple(STATUSES if statuses is None else statuses)
        bad = set(statuses) - set(STATUSES)
        if bad:
            raise ValueError(f"unknown status(es) {sorted(bad)}; allowed: {', '.join(STATUSES)}")
        marks = ", ".join("?" * len(statuses))
        rows = self._conn.execute(f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE study_id = ? AND "
                                  f"status IN ({marks}) ORDER BY number", (self._id, *statuses))
        return [_trial_from_row(r) for r in rows]

    def n_trials(self) -> int:
        """Number of trials ever created in this study (any status)."""
        return self._conn.execute("SELECT COUNT(*) FROM trials WHERE study_id = ?",
                                  (self._id,)).fetchone()[0]

    def reports(self, trial_id: int) -> dict[int, dict[str, float]]:
        """Per-epoch metrics of one trial, ``{epoch: metrics}`` in epoch order."""
        rows = self._conn.execute("SELECT epoch, metrics FROM reports WHERE trial_id = ? "
                                  "ORDER BY epoch", (trial_id,))
        return {epoch: json.loads(metrics) for epoch, metrics in rows}

    def metrics_at_epoch(self, epoch: int) -> dict[int, dict[str, float]]:
        """``{trial id: metrics}`` for every trial with a report at ``epoch``; each trial's metrics
        merge its reports up to that epoch (so values sent once, in an early report, are kept)."""
        rows = self._conn.execute(
            "SELECT r.trial_id, r.metrics FROM reports r JOIN trials t ON t.id = r.trial_id "
            "WHERE t.study_id = ? AND r.epoch <= ? AND r.trial_id IN (SELECT trial_id FROM "
            "reports WHERE epoch = ?) ORDER BY r.trial_id, r.epoch", (self._id, epoch, epoch))
        grouped: dict[int, list[str]] = {}
        for trial_id, metrics in rows:
            grouped.setdefault(trial_id, []).append(metrics)
        return {trial_id: _merge(texts) for trial_id, texts in grouped.items()}

    def observations(self, objectives: Sequence[Objective] | None = None
                     ) -> tuple[list[dict[str, Any]], Tensor]:
        """Params and natural-unit objective values (``n x m`` float64) of the complete and the
        pruned trials (the latter with their last reported values); trials lacking a finite
        value for some objective are left out."""
        objectives = self.objectives if objectives is None else objectives
        params, rows = [], []
        for trial in self.trials(("complete", "pruned")):
            values = trial.values or {}
            row = [values.get(o.name, math.nan) for o in objectives]
            if all(isinstance(v, int | float) and math.isfinite(v) for v in row):
                params.append(trial.params)
                rows.append(row)
        return params, torch.tensor(rows, dtype=torch.float64).reshape(len(rows),
                                                                       len(objectives))

    def pending(self) -> list[dict[str, Any]]:
        """Params of the trials awaiting a result (running or queued)."""
        return [t.params for t in self.trials(("running", "queued"))]

    def reference_point(self) -> Tensor:
        """The objectives' reference point in maximisation form (see
        :func:`~nago_pl.search.pareto.reference_point`; unset ones from the observations)."""
        _, values = self.observations()
        return reference_point(self.objectives, to_maximization(values, self.objectives))

    def best_trials(self) -> list[Trial]:
        """The complete trials on the Pareto front of the study's objectives: finite values,
        strictly better than the reference point in every objective, and non-dominated."""
        done = [t for t in self.trials(("complete",))
                if all(isinstance((t.values or {}).get(o.name), int | float)
                       and math.isfinite(t.values[o.name]) for o in self.objectives)]
        if not done:
            return []
        Y = to_maximization(torch.tensor([[t.values[o.name] for o in self.objectives]
                                          for t in done], dtype=torch.float64), self.objectives)
        alive = above_reference(Y, self.reference_point())
        done = [t for t, ok in zip(done, alive.tolist(), strict=True) if ok]
        Y = Y[alive]
        return [t for t, keep in zip(done, is_non_dominated(Y).tolist(), strict=True) if keep]


def _check_intact(conn: sqlite3.Connection) -> None:
    """Raise sqlite3.DatabaseError when SQLite's quick check finds the file damaged (a
    damaged page would otherwise fail some later query)."""
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(1)")]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError(" ".join(" ".join(problems).split()))


def _check_same(name: str, path: str, stored_space: dict, space: dict,
                stored_objs: list[Objective], objs: list[Objective]) -> None:
    """Raise NagoError naming how a reopened study's space/objectives differ from the stored."""
    if stored_space != space:
        changes = [f"{k} changed ({stored_space[k]} -> {space[k]})"
                   for k in stored_space if k in space and stored_space[k] != space[k]]
        changes += [f"{k} added" for k in space if k not in stored_space]
        changes += [f"{k} removed" for k in stored_space if k not in space]
        raise NagoError(f"study '{name}' in {path} was created with a different search space: "
                        f"{'; '.join(changes)} (use a new study name or the original space)")
    if len(stored_objs) != len(objs) or not all(
            a.same_quantity(b) for a, b in zip(stored_objs, objs, strict=True)):
        raise NagoError(f"study '{name}' in {path} was created with objectives "
                        f"[{', '.join(o.describe() for o in stored_objs)}], given "
                        f"[{', '.join(o.describe() for o in objs)}] (use a new study name; "
                        f"only their reference points may change)")
