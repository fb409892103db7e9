"""What a training run records in W&B: its config, its result, and a clean finish."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from nago_pl.space import Architecture


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config keyed by Hydra override names (``generator.G1_nodes``, ``seed``...),
    the names W&B sweeps use for their parameters."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


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
