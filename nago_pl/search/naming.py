"""A study's default name, derived from what defines the study: the same command resumes its
study, a different one starts its own (``study_name=...`` given explicitly always wins)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nago_pl.errors import NagoError
from nago_pl.oneshot import METHODS as ONESHOT_METHODS
from nago_pl.search.settings import result_settings

#: Hex digits of the settings' hash in a derived name.
HASH_DIGITS = 6


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def study_identity(cfg: DictConfig) -> dict[str, Any]:
    """What defines a study and so its default name: its search space, the quantities it
    optimises (not their reference points, which a resumed study may change), the settings
    that define a trial's result (:func:`result_settings`), the evaluator and the strategy,
    and the shrinkage (when set).
    Left out, so that changing them resumes the study: the trial count, time budget,
    executor and workers, the strategy's tuning options (but a one-shot method's, which
    define the cells it derives), loggers."""
    objectives = [
        {"name": o.get("name"), "direction": o.get("direction"), "log": o.get("log", False)}
        if isinstance(o, dict) else o
        for o in _plain(cfg.search.objectives)
    ]
    try:
        settings: dict[str, Any] | None = result_settings(cfg)
    except NagoError:  # a name outside the training config: refused when the study opens
        settings = None
    identity = {"space": _plain(cfg.search.space), "objectives": objectives,
                "settings": settings, "evaluator": _plain(cfg.evaluator),
                "strategy": cfg.search.strategy}
    shrink = OmegaConf.select(cfg, "search.shrink", default=None)
    if shrink is not None:  # a shrunk search is another study (unshrunk names unchanged)
        identity["shrink"] = {"method": shrink,
                              "options": _plain(cfg.search.shrink_options)}
    if cfg.search.strategy in ONESHOT_METHODS:  # its options define the cells it derives
        identity["oneshot"] = _plain(cfg.search.options)
    space_from = OmegaConf.select(cfg, "search.space_from", default=None)
    if space_from is not None:
        identity["space_from"] = str(space_from)
    return identity


def _dataset_label(cfg: DictConfig) -> str:
    """The ``dataset=`` choice of the command line, else the data module's class name."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("dataset")
        if choice:
            return str(choice)
    target = str(OmegaConf.select(cfg, "dataset._target_", default="") or "data")
    return target.rsplit(".", 1)[-1].removesuffix("DataModule").lower() or "data"


def default_study_name(cfg: DictConfig) -> str:
    """``<space>[-<evaluator>]-<dataset>-<strategy>-<hash of study_identity>``, e.g.
    ``hnag-digits-mobo-3f9a1c`` or ``nb201-table-cifar10-random-0be41d``."""
    text = json.dumps(study_identity(cfg), sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:HASH_DIGITS]
    space = str(cfg.space.name)
    parts = [space]
    evaluator = str(cfg.evaluator.name)
    if evaluator != "train":
        parts.append(evaluator.removeprefix(f"{space}_"))
        parts.append(str(cfg.evaluator.get("dataset") or _dataset_label(cfg)))
    else:
        parts.append(_dataset_label(cfg))
    parts += [str(cfg.search.strategy), digest]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))

