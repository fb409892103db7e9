"""Report every validation epoch to the search driver and stop trials it rejects."""

from __future__ import annotations

import lightning as L

from callbacks.model_stats import ModelStats
from nago_pl.search.pruning import ReportFn


class StudyReporter(L.Callback):
    """After each validation epoch, send ``val_acc``/``val_loss`` (and, in the first report, the
    network's ``params``/``flops`` from :class:`ModelStats`) through ``report``, which stores them
    in the Study (directly, or through the driver of a worker process) and applies the pruning
    rule; a rejected trial stops at the end of the epoch and :attr:`pruned` is set. Under DDP
    only rank zero reports, and every rank follows its answer. A NaN/inf
    validation loss is stopped before this reporter sees it
    (:class:`~callbacks.divergence.DivergenceCheck`, which every training runs first)."""

    def __init__(self, report: ReportFn) -> None:
        self.report = report
        self.pruned = False

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        epoch = trainer.current_epoch + 1
        metrics = {"val_acc": float(trainer.callback_metrics["val/acc"]),
                   "val_loss": float(trainer.callback_metrics["val/loss"])}
        if epoch == 1:
            metrics.update(_model_stats(trainer))
        # DDP: rank zero reports (every rank holds the same synced metrics) and its answer
        # reaches every rank, so a trial is pruned as a whole
        keep = self.report(epoch, metrics) if trainer.is_global_zero else True
        keep = bool(trainer.strategy.broadcast(keep, src=0))
        if not keep and epoch < (trainer.max_epochs or 0):
            self.pruned = True
            trainer.should_stop = True


def _model_stats(trainer: L.Trainer) -> dict[str, float]:
    for callback in trainer.callbacks:
        if isinstance(callback, ModelStats):
            return {k: float(v) for k, v in callback.stats.items()}
    return {}
