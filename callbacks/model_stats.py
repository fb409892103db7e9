"""Measure a generated network's size and cost once, when fitting starts."""

from __future__ import annotations

import lightning as L
import torch

from nago_pl.network import Network, count_flops, measure_latency_ms, training_memory_mb
from nago_pl.network.nb201 import Nb201Network


def optimizer_states(optimizer: torch.optim.Optimizer) -> int:
    """Buffers the optimizer keeps per weight: 2 for Adam-style, 1 with momentum, else 0."""
    defaults = optimizer.defaults
    if "betas" in defaults:
        return 2
    return 1 if defaults.get("momentum", 0) else 0


class ModelStats(L.Callback):
    """At the start of fitting, measures ``params``, ``flops`` (one image, 2 per multiply-add),
    ``latency_ms`` (median eval forward on one image, on the training device) and ``memory_mb``
    (one training step's weights, gradients, optimizer buffers and saved activations), logs them
    as ``model/<name>`` to every logger and keeps them in :attr:`stats`."""

    def __init__(self) -> None:
        self.stats: dict[str, float] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net = pl_module.net
        if not isinstance(net, Network | Nb201Network):
            raise TypeError("ModelStats needs a module whose .net is a nago_pl Network")
        batch_size = getattr(trainer.datamodule, "batch_size", 1)
        states = optimizer_states(trainer.optimizers[0]) if trainer.optimizers else 1
        self.stats = {
            "params": sum(p.numel() for p in net.parameters()),
            "flops": count_flops(net),
            "latency_ms": round(measure_latency_ms(net), 4),
            "memory_mb": round(training_memory_mb(net, batch_size, states), 3),
        }
        for logger in trainer.loggers:
            logger.log_metrics({f"model/{k}": float(v) for k, v in self.stats.items()}, step=0)
