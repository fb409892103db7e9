"""One W&B run's ``wandb.init`` arguments and config, without Lightning: shared by a training
run's logger (:class:`~nago_pl.tracking.loggers.WandbRunLogger`) and a search's own run
(:mod:`nago_pl.tracking.search_run`), which needs no Lightning import."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nago_pl.errors import NagoError
from nago_pl.tracking.mode import DEFAULT_PROJECT, import_wandb, notice, resolve_mode, wandb_installed

#: The logger configs that log to W&B (``logger=auto`` only when wandb is installed).
WANDB_TARGETS = ("nago_pl.tracking.loggers.WandbRunLogger", "nago_pl.tracking.loggers.AutoLoggers")


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


def wandb_init_arguments(save_dir: str, project: str | None = None, entity: str | None = None,
                         mode: str | None = None, group: str | None = None,
                         job_type: str = "train", name: str | None = None,
                         tags: list[str] | None = None, log_model: bool = False) -> dict[str, Any]:
    """``wandb.init`` arguments of one run in the mode :func:`resolve_mode` decides (a one-line
    notice with the ``wandb sync`` command when it falls back to offline). Run files go to
    ``$WANDB_DIR`` or ``save_dir``; ``log_model`` needs W&B online (else :class:`NagoError`)."""
    wandb = import_wandb()
    resolved = resolve_mode(mode)
    directory = Path(os.environ.get("WANDB_DIR") or save_dir)
    directory.mkdir(parents=True, exist_ok=True)
    if log_model and resolved != "online":
        raise NagoError(f"logger.log_model=true uploads checkpoints: it needs W&B online, "
                        f"but the mode is {resolved}")
    if resolved == "offline" and not mode and not os.environ.get("WANDB_MODE"):
        notice(f"W&B: no credentials (`wandb login` or WANDB_API_KEY), logging offline; "
               f"upload later with `wandb sync {directory}/wandb/offline-run-*` (and the "
               "same for the other run directories)", topic="offline")
    return {"dir": str(directory),
            "project": project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
            "entity": entity, "mode": resolved, "group": group, "job_type": job_type,
            "name": name, "tags": list(tags) if tags else None,
            "settings": wandb.Settings(silent=resolved != "online")}


def configured_wandb_run(logger: DictConfig | None, save_dir: str) -> dict[str, Any] | None:
    """The ``wandb.init`` arguments of a run logged as the ``logger`` config asks, or None when
    it does not log to W&B (``logger=auto`` without wandb, or W&B unable to run as asked:
    then with a notice, as :class:`~nago_pl.tracking.loggers.AutoLoggers` falls back to CSV)."""
    if logger is None or logger.get("_target_") not in WANDB_TARGETS:
        return None
    auto = logger["_target_"].endswith("AutoLoggers")
    if auto and not wandb_installed():
        return None
    values: Mapping[str, Any] = {k: v for k, v in OmegaConf.to_container(logger, resolve=True)
                                 .items() if not str(k).startswith("_")}
    allowed = list(inspect.signature(wandb_init_arguments).parameters)[1:]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise NagoError(f"logger.{unknown[0]}: not a W&B logger setting; allowed: "
                        f"{', '.join(allowed)}")
    try:
        return wandb_init_arguments(save_dir, **values)
    except NagoError as err:
        if not auto:
            raise
        notice(f"{err}; logging to CSV only")
        return None
