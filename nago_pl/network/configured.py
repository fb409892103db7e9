"""The network a training config describes: its architecture (loaded, the NB201 cell, or
sampled from the generator) and that architecture built for a data shape. Plain torch, no
Lightning: the search plans and checks networks with these before anything trains."""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from nago_pl.network.budget import build_network
from nago_pl.network.nb201 import Nb201Network, Nb201Spec
from nago_pl.space import Architecture, GeneratorConfig, sample
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
