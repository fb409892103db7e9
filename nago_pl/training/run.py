"""Train one architecture from a composed config: the body of ``train.py`` and of every trial."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from callbacks.divergence import DivergenceCheck
from callbacks.freeze_body import FreezeBody
from callbacks.model_stats import ModelStats
from nago_pl.config.instantiate import instantiate_checked
from nago_pl.config.validate import validate_train
from nago_pl.errors import NagoError
from nago_pl.jsonfile import write_json
from nago_pl.network.configured import build_model, load_architecture, resolve_architecture
from nago_pl.space import Architecture
from nago_pl.space.nb201 import Nb201Cell
from nago_pl.tracking.run_info import finish_runs, log_run_config, log_run_result
from nago_pl.training.module import ClassificationModule
from nago_pl.transfer import export_model, load_adapted, load_trained, network_for_data

log = logging.getLogger(__name__)

# Data lives in memory as tensors; worker processes would only add start-up cost.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# Emitted by Lightning 2.6's own pytree helper on every fit; nothing for users to act on.
warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced; ``metrics`` is also written to ``metrics.json``."""

    metrics: dict[str, Any]
    architecture: Architecture | Nb201Cell
    run_dir: Path
    checkpoint: Path | None


def trainer_arguments(cfg: DictConfig) -> dict[str, Any]:
    """The configured ``lightning.Trainer`` arguments, unset (null) ones left to Lightning."""
    values = OmegaConf.to_container(cfg.trainer, resolve=True)
    return {k: v for k, v in values.items() if v is not None}


def make_trainer(cfg: DictConfig, logger: Any, callbacks: list[L.Callback],
                 run_dir: Path) -> L.Trainer:
    """The ``lightning.Trainer`` of ``cfg.trainer``; settings Lightning refuses (an unknown
    accelerator or precision, no GPU, ...) are one-line errors."""
    try:
        return L.Trainer(**trainer_arguments(cfg), logger=logger or False, callbacks=callbacks,
                         default_root_dir=str(run_dir))
    except (MisconfigurationException, ValueError, TypeError, RuntimeError, ImportError) as err:
        reason = " ".join(str(err).split())
        raise NagoError(f"trainer: Lightning refuses these settings: {reason}") from None


def clear_outputs(run_dir: Path) -> None:
    """Delete what an earlier (killed, crashed or finished) run left in ``run_dir``: its
    checkpoints and ``metrics.json``, so this run's files are the only ones a reader can find."""
    for stale in [*run_dir.glob("checkpoints/*.ckpt"), run_dir / "metrics.json"]:
        stale.unlink(missing_ok=True)


def train_architecture(cfg: DictConfig, run_dir: str | Path,
                       callbacks: Sequence[L.Callback] = ()) -> TrainResult:
    """Sample (or load) the architecture, build it to the parameter budget, fit, test.

    With ``cfg.init_from`` the architecture (and, unless ``cfg.weights`` is false, the weights,
    adapted to the new classes / channels) come from a trained model; ``cfg.export`` writes a
    self-contained model folder to ``run_dir/export``.

    Writes ``architecture.json``, ``checkpoints/best.ckpt`` (lowest ``val/loss``) and
    ``metrics.json`` (val_acc, test_acc, params, flops, epochs, train_seconds, ...) into
    ``run_dir``; val_acc and test_acc are both measured on the best checkpoint's weights.
    """
    validate_train(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # DDP: the other processes start later, with a nonzero rank
        clear_outputs(run_dir)
    # Built first, so a bad logger setting (W&B mode, credentials) fails before any data loads.
    logger = instantiate_checked(cfg.logger, "logger", save_dir=str(run_dir))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    trained = load_trained(cfg.init_from, cfg.pick) if cfg.get("init_from") else None
    if trained is not None and rank_zero_only.rank == 0:
        log.info("init_from: loaded %s", trained.origin)
    fine_tune = trained is not None and bool(cfg.weights)
    if fine_tune and cfg.finetune.freeze_epochs > 0:
        callbacks = [FreezeBody(int(cfg.finetune.freeze_epochs)), *callbacks]
    # Selected on val/loss: on small validation splits accuracy ties and picks early epochs.
    # Always checkpoints/best.ckpt (overwritten, never versioned): what the records name.
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best",
                                 monitor="val/loss", mode="min", save_top_k=1,
                                 enable_version_counter=False)
    stats = ModelStats()
    trainer = make_trainer(cfg, logger, [DivergenceCheck(), checkpoint, stats, *callbacks],
                           run_dir)
    datamodule = instantiate_checked(cfg.dataset, "dataset")
    datamodule.setup("fit")
    arch = trained.architecture if trained else resolve_architecture(cfg)
    if trained and cfg.get("arch") and load_architecture(cfg.arch) != arch:
        raise NagoError(f"arch={cfg.arch} does not match the Architecture of {trained.source}")
    arch.save(run_dir / "architecture.json")
    shape = {"in_channels": datamodule.in_channels, "num_classes": datamodule.num_classes,
             "image_size": datamodule.image_size}
    if fine_tune:  # keep the trained widths and head so the weights fit
        net = network_for_data(trained, **shape, dropout=float(cfg.network.dropout))
        load_adapted(net, trained)
    else:
        net = build_model(arch, cfg, **shape)
    module = ClassificationModule(
        net,
        datamodule.num_classes,
        optimizer=instantiate_checked(cfg.model.optimizer, "model.optimizer"),
        scheduler=instantiate_checked(cfg.model.scheduler, "model.scheduler"),
        label_smoothing=float(cfg.model.label_smoothing),
        body_lr_scale=float(cfg.finetune.body_lr_scale) if fine_tune else 1.0,
    )
    with finish_runs(trainer.loggers):
        log_run_config(trainer.loggers, cfg, arch)
        started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        train_seconds = time.perf_counter() - started
        best = checkpoint.best_model_path or None
        validated = trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False)
        tested = trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)
        metrics = {
            "val_acc": float(validated[0]["val/acc"]),
            "val_loss": float(validated[0]["val/loss"]),
            "test_acc": float(tested[0]["test/acc"]),
            "test_loss": float(tested[0]["test/loss"]),
            **stats.stats,
            "multiplier": getattr(net.spec, "multiplier", None),  # HNAG width only
            "epochs": int(trainer.current_epoch),
            "train_seconds": round(train_seconds, 3),
        }
        log_run_result(trainer.loggers, metrics)
    if not trainer.is_global_zero:  # other DDP processes: rank zero writes the files
        return TrainResult(metrics, arch, run_dir, Path(best) if best else None)
    write_json(run_dir / "metrics.json", metrics)
    if cfg.get("export"):  # the module holds the best checkpoint's weights after test()
        export_model(net, run_dir / "export", mean=list(datamodule.mean),
                     std=list(datamodule.std), class_names=list(datamodule.class_names))
    return TrainResult(metrics, arch, run_dir, Path(best) if best else None)
