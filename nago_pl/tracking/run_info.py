"""What a training run records in W&B: its config, its result, and a clean finish."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from nago_pl.space import Architecture
from nago_pl.tracking.wandb_run import flat_config


def _wandb_loggers(loggers: Sequence[Logger]) -> list[WandbLogger]:
    return [lg for lg in loggers if isinstance(lg, WandbLogger)]


@rank_zero_only
def log_run_config(loggers: Sequence[Logger], cfg: DictConfig, arch: Architecture) -> None:
    """Put the run's config (override names and values) and its Architecture JSON into every
    W&B run; this starts the run."""
    for logger in _wandb_loggers(loggers):
        logger.experiment.config.update({**flat_config(cfg), "architecture": arch.to_json()},
                                        allow_val_change=True)


@rank_zero_only
def log_run_result(loggers: Sequence[Logger], metrics: Mapping[str, Any]) -> None:
    """Parameter count and FLOPs into the run config, every final metric into the summary."""
    for logger in _wandb_loggers(loggers):
        run = logger.experiment
        run.config.update({k: metrics[k] for k in ("params", "flops") if k in metrics},
                          allow_val_change=True)
        run.summary.update(dict(metrics))


@contextmanager
def finish_runs(loggers: Sequence[Logger]) -> Iterator[None]:
    """Finish the W&B run on leaving (exit code 1 on an exception), so the next run in this
    process starts a new one instead of reusing it."""
    failed = True
    try:
        yield
        failed = False
    finally:
        if _wandb_loggers(loggers):
            import wandb

            wandb.finish(exit_code=1 if failed else 0)
