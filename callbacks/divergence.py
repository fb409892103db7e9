"""Stop a training whose validation loss is no longer finite."""

from __future__ import annotations

import math

import lightning as L

from nago_pl.errors import NagoError


class Diverged(NagoError):
    """The validation loss became NaN or infinite: the run has no usable result."""


class DivergenceCheck(L.Callback):
    """After each validation epoch of ``fit``, raise :class:`Diverged` if ``val/loss`` is NaN or
    infinite (before any checkpoint of that epoch is written)."""

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        loss = float(trainer.callback_metrics["val/loss"])
        if not math.isfinite(loss):
            raise Diverged(f"training diverged: val/loss is {loss} after epoch "
                           f"{trainer.current_epoch + 1} (a lower model.optimizer.lr or "
                           "trainer.gradient_clip_val may help)")
