"""Per-epoch record of the architecture distribution: ``alpha.csv`` and the loggers."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from nago_pl.oneshot.module import OneShotSearch
from nago_pl.space.nb201 import EDGES, OPS


def alpha_columns() -> list[str]:
    """``p_e<k>_<op>``: the probability of each op on each edge."""
    return [f"p_e{k}_{op}" for k in range(len(EDGES)) for op in OPS]


class AlphaLog(L.Callback):
    """After every training epoch: α's per-edge probabilities, their mean entropy, τ and the
    derived cell, appended to ``path`` (CSV, one row per epoch; a resumed search goes on) and
    logged (``alpha/entropy``, ``alpha/tau``, ``alpha/p_e<k>_<op>``; W&B also gets the cell in
    its summary); entropy and τ also show in the progress bar."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_start(self, trainer: L.Trainer, pl_module: OneShotSearch) -> None:
        """A resumed search: drop the rows of epochs its checkpoint does not hold (killed
        between a row and the checkpoint of its epoch), so each epoch has one row."""
        if not (trainer.is_global_zero and self.path.is_file()):
            return
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))
        kept = rows[:1] + [r for r in rows[1:] if int(r[0]) <= trainer.current_epoch]
        if len(kept) < len(rows):
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerows(kept)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: OneShotSearch) -> None:
        probabilities = pl_module.probabilities().detach().cpu().flatten().tolist()
        entropy, cell = pl_module.entropy(), pl_module.cell().to_string()
        values = dict(zip(alpha_columns(), probabilities, strict=True))
        pl_module.log_dict({"alpha/entropy": entropy, "alpha/tau": pl_module.tau},
                           prog_bar=True)
        pl_module.log_dict({f"alpha/{k}": v for k, v in values.items()})
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.summary["oneshot/cell"] = cell
        if not trainer.is_global_zero:
            return
        new = not self.path.is_file()
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["epoch", "tau", "entropy", "cell", *alpha_columns()])
            writer.writerow([trainer.current_epoch + 1, f"{pl_module.tau:.6g}",
                             f"{entropy:.6g}", cell, *(f"{p:.6g}" for p in probabilities)])
