"""Report every validation epoch to the Study and stop trials the pruning rule rejects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import lightning as L

from callbacks.model_stats import ModelStats
from nago_pl.search.pruning import should_continue
from nago_pl.search.study import Objective, Study


@dataclass(frozen=True)
class PruningRule:
    """Rungs at ``min_epochs * eta**k``; a trial continues if in the top 1/eta of its rung."""

    min_epochs: int = 3
    eta: float = 2.0


#: The metrics reported after every epoch (the others are fixed by the architecture).
LEARNED_METRICS = ("val_acc", "val_loss")


class StudyReporter(L.Callback):
    """After each validation epoch, store ``val_acc``/``val_loss`` (and, in the first report, the
    network's ``params``/``flops`` from :class:`ModelStats`) as trial ``trial_id``'s report, then
    apply the multi-objective pruning rule; a rejected trial stops at the end of the epoch and
    :attr:`pruned` is set. A NaN/inf validation loss is stopped before this reporter sees it
    (:class:`~callbacks.divergence.DivergenceCheck`, which every training runs first)."""

    def __init__(self, study: Study, trial_id: int, objectives: Sequence[Objective],
                 pruning: PruningRule | None = None,
                 on_epoch: Callable[[int], None] | None = None) -> None:
        self.study = study
        self.trial_id = trial_id
        self.objectives = list(objectives)
        self.pruning = pruning
        self.on_epoch = on_epoch
        self.pruned = False

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        epoch = trainer.current_epoch + 1
        metrics = {"val_acc": float(trainer.callback_metrics["val/acc"]),
                   "val_loss": float(trainer.callback_metrics["val/loss"])}
        if epoch == 1:
            metrics.update(_model_stats(trainer))
        self.study.report(self.trial_id, epoch, metrics)
        if self.on_epoch is not None:
            self.on_epoch(epoch)
        if self.pruning is not None and epoch < (trainer.max_epochs or 0):
            keep = should_continue(self.study, self.trial_id, epoch, self.objectives,
                                   min_epochs=self.pruning.min_epochs, eta=self.pruning.eta,
                                   learned=LEARNED_METRICS)
            if not keep:
                self.pruned = True
                trainer.should_stop = True


def _model_stats(trainer: L.Trainer) -> dict[str, float]:
    for callback in trainer.callbacks:
        if isinstance(callback, ModelStats):
            return {k: float(v) for k, v in callback.stats.items()}
    return {}
