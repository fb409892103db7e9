"""Fine-tuning: train only the head for the first epochs, then everything."""

from __future__ import annotations

import lightning as L


class FreezeBody(L.Callback):
    """For the first ``epochs`` epochs only ``pl_module.net.head`` learns: the body's weights get
    no gradient (optimizers skip them) and its batch-norm statistics stay as loaded."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        frozen = trainer.current_epoch < self.epochs
        head = {id(p) for p in pl_module.net.head.parameters()}
        for parameter in pl_module.net.parameters():
            if id(parameter) not in head:
                parameter.requires_grad_(not frozen)
        if frozen:
            for name, module in pl_module.net.named_children():
                if name != "head":
                    module.eval()
