"""Tabular NAS-Bench-201: a trial's accuracy read from the NATS-Bench table instead of trained.

The table (``nats_tss_test_acc_200ep.csv``) holds the 200-epoch test accuracy of all 15,625
cells on CIFAR-10, CIFAR-100 and ImageNet16-120; a trial's ``val_acc`` is its cell's value (as
a fraction), ``params`` and ``flops`` come from the network the cell builds (:class:`Nb201Costs`).
Strategies, Study and outputs are the same as for trained trials. The table is checked when it
is loaded (every cell the search can propose present, percentages, no cell twice with two
values): a damaged file stops the search before its first trial, never fails trials one by one.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TextIO

from omegaconf import DictConfig, OmegaConf

from nago_pl.errors import NagoError
from nago_pl.jsonfile import write_json
from nago_pl.network.nb201 import Nb201Costs, Nb201Spec
from nago_pl.search.constraints import DataShape
from nago_pl.search.executors.base import OnReport
from nago_pl.search.executors.local import InProcessExecutor
from nago_pl.search.space import SearchSpace
from nago_pl.search.study import Study
from nago_pl.search.trial import TrialJob, TrialOutcome
from nago_pl.space.nb201 import EDGES, OPS, Nb201Cell

#: The table's accuracy column and the data shape of each of its datasets.
DATASETS = {
    "cifar10": ("CIFAR10TestAccuracy200Epochs", DataShape(3, 10, 32)),
    "cifar100": ("CIFAR100TestAccuracy200Epochs", DataShape(3, 100, 32)),
    "ImageNet16-120": ("ImageNetTestAccuracy200Epochs", DataShape(3, 120, 16)),
}
#: Epochs every table entry was trained for.
TABLE_EPOCHS = 200
#: The lowest accuracy a table may hold, as a share of chance (100 / classes %): no network is
#: much worse than guessing on a balanced test set, so a value below it is a fraction (0-1)
#: written where the table has percentages (0-100).
CHANCE_SHARE = 0.75
#: A trial's error when the table lacks its cell (the table's fault, not the architecture's).
MISSING_CELL = "is not in the NAS-Bench-201 table"


def cell_string(ops: Sequence[str]) -> str:
    """:meth:`Nb201Cell.to_string` of ``ops`` without building the cell (the table's key)."""
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


@cache
def all_cells() -> frozenset[str]:
    """The string of every cell of the benchmark's space (5^6 = 15,625)."""
    return frozenset(cell_string(ops) for ops in itertools.product(OPS, repeat=len(EDGES)))


def space_cells(space: SearchSpace, default_ops: Sequence[str]) -> frozenset[str]:
    """The cells a search over ``space`` can propose: each searched ``edge_<i>`` takes its
    choices, any other edge its fixed value or ``default_ops[i]``."""
    searched = {p.name: p.values for p in space.params}
    per_edge = [searched.get(f"edge_{i}", (space.fixed.get(f"edge_{i}", default_ops[i]),))
                for i in range(len(EDGES))]
    unknown = sorted({str(op) for ops in per_edge for op in ops} - set(OPS))
    if unknown:
        raise NagoError(f"search.space: nb201 edges take {', '.join(OPS)}; got {unknown}")
    return frozenset(cell_string(ops) for ops in itertools.product(*per_edge))


@dataclass(frozen=True)
class Nb201Table:
    """Accuracy (fraction) of every cell string on one dataset of the table."""

    accuracy: dict[str, float]
    shape: DataShape

    @classmethod
    def load(cls, path: str | Path, dataset: str,
             cells: Collection[str] | None = None) -> Nb201Table:
        """Read ``path`` and check it: ``cells`` (default: all 15,625) all present, every
        accuracy a percentage (at least CHANCE_SHARE of chance, at most 100), no cell twice
        with two values. A missing, damaged or incomplete table, or an unknown dataset, is a
        one-line NagoError naming the file and the problem."""
        if dataset not in DATASETS:
            raise NagoError(f"evaluator.dataset={dataset!r}: the NAS-Bench-201 table has "
                            f"{', '.join(DATASETS)}")
        column, shape = DATASETS[dataset]
        where = f"evaluator.path={path}"
        try:
            with open(path, newline="") as f:
                accuracy = _read_column(f, column, shape.num_classes, where)
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise NagoError(f"{where}: cannot read the NAS-Bench-201 table: {err}") from None
        required = all_cells() if cells is None else cells
        missing = sorted(c for c in required if c not in accuracy)
        if missing:
            raise NagoError(f"{where}: the NAS-Bench-201 table lacks {len(missing):,} of the "
                            f"{len(required):,} cells the search can propose (e.g. "
                            f"{missing[0]}): an incomplete file? (it has {len(accuracy):,} "
                            "cells; the full table has 15,625)")
        return cls({key: value / 100 for key, value in accuracy.items()}, shape)


def _read_column(f: TextIO, column: str, classes: int, where: str) -> dict[str, float]:
    """Cell string -> ``column``'s accuracy (percent) of every row of the CSV table ``f``."""
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None:
        raise NagoError(f"{where}: the NAS-Bench-201 table is empty")
    if "ArchitectureString" not in header or column not in header:
        raise NagoError(f"{where}: not a NAS-Bench-201 table: its header has no "
                        f"ArchitectureString and {column} columns (it has {header})")
    key_at, value_at = header.index("ArchitectureString"), header.index(column)
    floor = CHANCE_SHARE * 100 / classes
    accuracy: dict[str, float] = {}
    cells = all_cells()
    for row in reader:
        if not row:
            continue
        line = f"{where}: line {reader.line_num}"
        if len(row) != len(header):
            raise NagoError(f"{line} has {len(row)} of the header's {len(header)} fields: a "
                            "cut-off or damaged row")
        key = row[key_at]
        if key not in cells:
            raise NagoError(f"{line}: {key!r} is not a NAS-Bench-201 cell string")
        try:
            value = float(row[value_at])
        except ValueError:
            raise NagoError(f"{line}: {column} {row[value_at]!r} is not a number") from None
        if not floor <= value <= 100:
            raise NagoError(f"{line}: {column} {row[value_at]} is not an accuracy in percent "
                            f"(allowed: {floor:.3g}..100, from 3/4 of chance up): the table's "
                            "accuracies are percentages, all in that one unit")
        if accuracy.setdefault(key, value) != value:
            raise NagoError(f"{line}: cell {key} appears again with another {column} "
                            f"({accuracy[key]} before, {value} here)")
    return accuracy


def load_table(cfg: DictConfig) -> Nb201Table:
    """The table of the search ``cfg`` (``evaluator.path``, column ``evaluator.dataset``),
    checked to hold every cell its search space can propose."""
    space = SearchSpace.from_config(OmegaConf.to_container(cfg.search.space, resolve=True))
    return Nb201Table.load(cfg.evaluator.path, cfg.evaluator.dataset,
                           space_cells(space, list(cfg.space.ops)))


def forget_missing_cells(study: Study) -> int:
    """Delete the trials that failed because the table lacked their cell (a table's fault,
    not the architecture's; recorded before tables were checked on loading), so a search
    resumed with the complete table asks again; how many."""
    failed = [t.id for t in study.trials(("failed",)) if MISSING_CELL in (t.error or "")]
    if failed:
        study.discard(failed)
    return len(failed)


class TableEvaluator:
    """Answers trials from an :class:`Nb201Table` (the search's ``evaluator=nb201_table``)."""

    def __init__(self, table: Nb201Table, base: DictConfig) -> None:
        self.table = table
        shape = table.shape
        self.costs = Nb201Costs.measure(Nb201Spec.of(base.space, shape.in_channels,
                                                     shape.num_classes, shape.image_size))

    def answer(self, job: TrialJob) -> TrialOutcome:
        """``job``'s table values (``architecture.json`` and ``metrics.json`` in its run
        directory, as a trained trial has)."""
        cell = Nb201Cell(tuple(job.config["space"]["ops"]))
        key = cell.to_string()
        if key not in self.table.accuracy:
            return TrialOutcome("failed", error=f"cell {key} {MISSING_CELL}")
        params, flops = self.costs.of(cell)
        accuracy = self.table.accuracy[key]
        metrics = {"val_acc": accuracy, "test_acc": accuracy, "params": params, "flops": flops,
                   "epochs": TABLE_EPOCHS}
        run_dir = Path(job.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        cell.save(run_dir / "architecture.json")
        write_json(run_dir / "metrics.json", metrics)
        return TrialOutcome("complete", metrics, TABLE_EPOCHS,
                            {"run_dir": str(run_dir),
                             "architecture": str(run_dir / "architecture.json")})


class TableExecutor(InProcessExecutor):
    """The executor of ``evaluator=nb201_table``: answers each job from the table, in process."""

    where = "table"

    def __init__(self, evaluator: TableEvaluator) -> None:
        super().__init__()
        self.evaluator = evaluator

    def run(self, job: TrialJob, on_report: OnReport) -> TrialOutcome:
        return self.evaluator.answer(job)
