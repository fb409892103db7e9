"""Tabular NAS-Bench-201: a trial's accuracy read from the NATS-Bench table instead of trained.

The table (``nats_tss_test_acc_200ep.csv``) holds the 200-epoch test accuracy of all 15,625
cells on CIFAR-10, CIFAR-100 and ImageNet16-120; a trial's ``val_acc`` is its cell's value (as
a fraction), ``params`` and ``flops`` come from the network the cell builds (:class:`Nb201Costs`).
Strategies, Study and outputs are the same as for trained trials.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from nago_pl.errors import NagoError
from nago_pl.jsonfile import write_json
from nago_pl.network.nb201 import Nb201Costs, Nb201Spec
from nago_pl.search.constraints import DataShape
from nago_pl.search.executors.base import OnReport
from nago_pl.search.executors.local import InProcessExecutor
from nago_pl.search.trial import TrialJob, TrialOutcome
from nago_pl.space.nb201 import Nb201Cell

#: The table's accuracy column and the data shape of each of its datasets.
DATASETS = {
    "cifar10": ("CIFAR10TestAccuracy200Epochs", DataShape(3, 10, 32)),
    "cifar100": ("CIFAR100TestAccuracy200Epochs", DataShape(3, 100, 32)),
    "ImageNet16-120": ("ImageNetTestAccuracy200Epochs", DataShape(3, 120, 16)),
}
#: Epochs every table entry was trained for.
TABLE_EPOCHS = 200


@dataclass(frozen=True)
class Nb201Table:
    """Accuracy (fraction) of every cell string on one dataset of the table."""

    accuracy: dict[str, float]
    shape: DataShape

    @classmethod
    def load(cls, path: str | Path, dataset: str) -> Nb201Table:
        """Read ``path`` (a missing file or unknown dataset is a one-line NagoError)."""
        if dataset not in DATASETS:
            raise NagoError(f"evaluator.dataset={dataset!r}: the NAS-Bench-201 table has "
                            f"{', '.join(DATASETS)}")
        column, shape = DATASETS[dataset]
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            accuracy = {r["ArchitectureString"]: float(r[column]) / 100 for r in rows}
        except (OSError, KeyError, ValueError) as err:
            raise NagoError(f"evaluator.path={path}: cannot read the NAS-Bench-201 table: "
                            f"{err}") from None
        return cls(accuracy, shape)


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
            return TrialOutcome("failed", error=f"cell {key} is not in the NAS-Bench-201 table")
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
