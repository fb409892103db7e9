"""The classification LightningModule that trains any generated network."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from nago_pl.network.model import Network
from nago_pl.network.nb201 import Nb201Network

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


class ClassificationModule(L.LightningModule):
    """Cross-entropy training of ``net`` with torchmetrics accuracy.

    ``optimizer`` and ``scheduler`` are factories (e.g. Hydra ``_partial_`` configs) called with
    the parameters and the optimizer; the scheduler steps once per epoch. With
    ``body_lr_scale`` != 1 the network's body learns at that fraction of the head's rate
    (fine-tuning). Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``test/loss``
    and ``test/acc``. Checkpoints of a :class:`Network` (or an nb201 network) also hold its
    Architecture (cell) and build spec as plain data (key ``nago``), so they rebuild without
    unpickling code.
    """

    def __init__(self, net: nn.Module, num_classes: int, optimizer: OptimizerFactory,
                 scheduler: SchedulerFactory | None = None, label_smoothing: float = 0.0,
                 body_lr_scale: float = 1.0) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.label_smoothing = label_smoothing
        self.body_lr_scale = body_lr_scale
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str,
              accuracy: MulticlassAccuracy) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        smoothing = self.label_smoothing if split == "train" else 0.0
        loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
        accuracy(logits, y)
        on_step = split == "train"
        # Epoch-level val/test losses are averaged over DDP processes (metrics sync themselves).
        self.log(f"{split}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=split != "test",
                 batch_size=y.shape[0], sync_dist=not on_step)
        self.log(f"{split}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=split == "val")
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train", self.train_acc)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val", self.val_acc)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test", self.test_acc)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if isinstance(self.net, Network | Nb201Network):
            checkpoint["nago"] = {"architecture": self.net.arch.to_dict(),
                                  "spec": asdict(self.net.spec)}

    def configure_optimizers(self):  # noqa: ANN201 (Lightning accepts several return shapes)
        if self.body_lr_scale == 1.0:
            optimizer = self.optimizer_factory(self.parameters())
        else:
            head = list(self.net.head.parameters())
            head_ids = {id(p) for p in head}
            body = [p for p in self.net.parameters() if id(p) not in head_ids]
            optimizer = self.optimizer_factory([{"params": body}, {"params": head}])
            optimizer.param_groups[0]["lr"] *= self.body_lr_scale
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "epoch"}}
