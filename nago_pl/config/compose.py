"""Compose the project's Hydra configs from Python (tests, the search's trials, notebooks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import DictConfig

from nago_pl.config.schema import register_configs

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose(config_name: str = "train", overrides: Sequence[str] = ()) -> DictConfig:
    """The config ``conf/<config_name>.yaml`` with Hydra ``overrides``, checked against its schema."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))
