"""The network a training config describes: its architecture (loaded, the NB201 cell, or
sampled from the generator) and that architecture built for a data shape. Plain torch, no
Lightning: the search plans and checks networks with these before anything trains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from nago_pl.network.budget import build_network
from nago_pl.network.model import Network, NetworkSpec
from nago_pl.network.nb201 import Nb201Network, Nb201Spec
from nago_pl.space import Architecture, GeneratorConfig, sample
from nago_pl.space.nb201 import FORMAT as NB201_FORMAT
from nago_pl.space.nb201 import Nb201Cell


def resolve_architecture(cfg: DictConfig) -> Architecture | Nb201Cell:
    """The architecture to train: loaded from ``cfg.arch``, the ``nb201`` cell of
    ``cfg.space.ops``, or sampled from the generator."""
    nb201 = cfg.space.name == "nb201"
    if cfg.get("arch"):
        return Nb201Cell.load(cfg.arch) if nb201 else Architecture.load(cfg.arch)
    if nb201:
        return Nb201Cell(tuple(cfg.space.ops))
    generator = GeneratorConfig.from_mapping(OmegaConf.to_container(cfg.generator, resolve=True))
    return sample(generator, int(cfg.seed))


def build_model(arch: Architecture | Nb201Cell, cfg: DictConfig, in_channels: int,
                num_classes: int, image_size: int) -> torch.nn.Module:
    """The network of ``arch`` for this data shape: an nb201 cell at ``cfg.space``'s width,
    an HNAG Architecture sized by ``cfg.network``."""
    if isinstance(arch, Nb201Cell):
        return Nb201Network(arch, Nb201Spec.of(cfg.space, in_channels, num_classes, image_size))
    return build_network(arch, in_channels=in_channels, num_classes=num_classes,
                         image_size=image_size, **OmegaConf.to_container(cfg.network, resolve=True))


def architecture_from_dict(data: Any) -> Architecture | Nb201Cell:
    """An HNAG Architecture or an nb201 cell (``{format: nb201, ...}``) from its JSON data."""
    if isinstance(data, dict) and data.get("format") == NB201_FORMAT:
        return Nb201Cell.from_dict(data)
    return Architecture.from_dict(data)


def load_architecture(path: str | Path) -> Architecture | Nb201Cell:
    """The architecture.json at ``path``, whichever space it is of."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return Architecture.load(path)  # its one-line error says what is wrong with the file
    return Nb201Cell.load(path) if isinstance(data, dict) and \
        data.get("format") == NB201_FORMAT else Architecture.load(path)


def network_of(arch: Architecture | Nb201Cell, spec: dict[str, Any],
               initialize: bool = True) -> torch.nn.Module:
    """The network of ``arch`` at a recorded build ``spec`` (a checkpoint's or an export's)."""
    if isinstance(arch, Nb201Cell):
        return Nb201Network(arch, Nb201Spec(**spec))
    return Network(arch, NetworkSpec(**spec), initialize=initialize)
