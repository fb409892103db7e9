"""Log a generated network's size and cost once, when fitting starts."""

from __future__ import annotations

import lightning as L

from nago_pl.network import Network, count_flops


class ModelStats(L.Callback):
    """Logs ``model/params`` and ``model/flops`` (one image, 2 FLOPs per multiply-add) to every
    logger at the start of fitting, and keeps them in :attr:`stats` for the caller."""

    def __init__(self) -> None:
        self.stats: dict[str, int] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net = pl_module.net
        if not isinstance(net, Network):
            raise TypeError("ModelStats needs a module whose .net is a nago_pl Network")
        self.stats = {
            "params": sum(p.numel() for p in net.parameters()),
            "flops": count_flops(net),
        }
        for logger in trainer.loggers:
            logger.log_metrics({f"model/{k}": float(v) for k, v in self.stats.items()}, step=0)
