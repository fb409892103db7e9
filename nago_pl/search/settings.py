"""The settings that define a trial's result, stored with a study to keep its trials comparable."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from nago_pl.search.trial import config_path

#: Config sections whose every value shapes a trial's result.
RESULT_SECTIONS = ("dataset", "space", "generator", "network", "model", "finetune")
#: Single settings that shape it; what is left out (loggers, devices, progress bars, data
#: loading workers, evaluation batch size) changes how a trial runs, not what it measures.
RESULT_KEYS = ("seed", "arch", "init_from", "pick", "weights", "trainer.max_epochs",
               "trainer.min_epochs", "trainer.precision", "trainer.gradient_clip_val",
               "trainer.accumulate_grad_batches", "trainer.check_val_every_n_epoch",
               "trainer.limit_train_batches", "trainer.limit_val_batches",
               "trainer.limit_test_batches", "trainer.val_check_interval",
               "trainer.deterministic")
IGNORED = ("dataset.num_workers", "dataset.eval_batch_size")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _flatten(child, f"{prefix}.{key}", out)
    else:
        out[prefix] = value


def result_settings(cfg: DictConfig) -> dict[str, Any]:
    """``{dotted setting: value}`` of what defines a trial's result, except the values the
    search space sets per trial (the space itself is stored and compared separately)."""
    out: dict[str, Any] = {}
    for section in RESULT_SECTIONS:
        _flatten(OmegaConf.to_container(cfg[section], resolve=True), section, out)
    for key in RESULT_KEYS:
        out[key] = OmegaConf.select(cfg, key, default=None)
    searched = {config_path(name)[0] for name in cfg.search.space}
    # one space's settings do not shape the other's networks (hnag: as stored before nb201)
    unused = "space." if cfg.space.name == "hnag" else ("generator.", "network.")
    return {k: v for k, v in out.items() if k not in searched and k not in IGNORED
            and not k.startswith(unused)}
