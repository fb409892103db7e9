"""Constraints known before training: a candidate's network, computed from (θ, seed) alone.

The architecture is sampled and sized exactly as its trial would be (no data, no training), so
a candidate whose network is too thin to learn (``search.min_width``) or breaks a cost limit
(``search.constraints``, e.g. ``"params <= 5e6"``, ``"latency_ms <= 10"``) is never proposed.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from omegaconf import DictConfig, OmegaConf

from nago_pl.errors import NagoError
from nago_pl.network import count_flops, measure_latency_ms, training_memory_mb
from nago_pl.network.budget import MULTIPLIER_STEPS, count_parameters
from nago_pl.network.configured import build_model, resolve_architecture
from nago_pl.network.model import NetworkSpec
from nago_pl.search.trial import trial_config
from nago_pl.space import Architecture
from nago_pl.space.nb201 import Nb201Cell

#: Properties a constraint may bound (all known before training).
CONSTRAINT_NAMES = ("params", "flops", "latency_ms", "memory_mb")
_PATTERN = re.compile(r"^\s*([a-z_]+)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``name op bound`` over a network property, e.g. ``params <= 5e6``."""

    name: str
    op: Literal["<=", ">="]
    bound: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse ``"<name> <= <number>"`` or ``">="``; NagoError naming what is allowed."""
        match = _PATTERN.match(str(text))
        if match is None:
            raise NagoError(f"search.constraints: cannot read {text!r}; write '<name> <= <number>' "
                            f"or '>=', with name one of {', '.join(CONSTRAINT_NAMES)}")
        name, op, number = match.groups()
        if name not in CONSTRAINT_NAMES:
            raise NagoError(f"search.constraints: {name!r} is not a property known before "
                            f"training; allowed: {', '.join(CONSTRAINT_NAMES)}")
        try:
            bound = float(number)
        except ValueError:
            raise NagoError(f"search.constraints: {number!r} in {text!r} is not a number") from None
        if not math.isfinite(bound):
            raise NagoError(f"search.constraints: the bound in {text!r} must be finite")
        return cls(name, op, bound)  # type: ignore[arg-type]

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the constraint."""
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.bound:g}"


@dataclass(frozen=True)
class DataShape:
    """What a network needs to know of the data: input channels, classes, image size."""

    in_channels: int
    num_classes: int
    image_size: int


def smallest_width_units(arch: Architecture, min_width: int) -> int:
    """The smallest multiplier (in 1/MULTIPLIER_STEPS units) at which every cell of ``arch`` has
    at least ``min_width`` channels."""
    ratio = min(cell.width for cell in arch.cells)
    units = max(1, math.ceil((min_width - 0.5) / ratio * MULTIPLIER_STEPS))
    spec = NetworkSpec(1, 2, 8, units / MULTIPLIER_STEPS)
    while spec.channels(ratio) < min_width:  # guard against rounding at the boundary
        units += 1
        spec = replace(spec, multiplier=units / MULTIPLIER_STEPS)
    return units


def conv_parameters_lower_bound(arch: Architecture, spec: NetworkSpec) -> int:
    """A lower bound of the parameter count: the kernels of the convolutions whose input and
    output both have their cell's width (op nodes with a predecessor in their op graph)."""
    total = 0
    for cell in arch.cells:
        width = spec.channels(cell.width)
        for bottom in cell.bottoms:
            for node, op in enumerate(bottom.ops):
                if op.startswith("conv") and bottom.dag.predecessors(node):
                    total += int(op[-3]) * int(op[-1]) * width * width
    return total


#: Architectures a FeasibilityCheck keeps (the most recently used).
ARCHITECTURES_KEPT = 64


class FeasibilityCheck:
    """Callable ``(seed, config) -> bool``: whether the trial of ``config`` with sample seed
    ``seed`` builds a network at least ``min_width`` channels wide everywhere that meets every
    constraint. :meth:`reason` says why not. Results are cached per (seed, config)."""

    def __init__(self, base: DictConfig, shape: DataShape, min_width: int = 1,
                 constraints: Sequence[Constraint] = ()) -> None:
        if isinstance(min_width, bool) or not isinstance(min_width, int) or min_width < 1:
            raise NagoError(f"search.min_width must be a positive integer, got {min_width!r}")
        self.base = base
        self.shape = shape
        self.min_width = min_width
        self.constraints = list(constraints)
        self._cache: dict[str, str | None] = {}
        self._architectures: OrderedDict[str, Architecture | Nb201Cell] = OrderedDict()

    def __call__(self, seed: int, config: Mapping[str, Any]) -> bool:
        return self.reason(seed, config) is None

    def reason(self, seed: int, config: Mapping[str, Any]) -> str | None:
        """None when feasible, else what is violated."""
        key = json.dumps([seed, dict(config)], sort_keys=True)
        if key not in self._cache:
            self._cache[key] = self._check(seed, config)
        return self._cache[key]

    def architecture(self, seed: int, config: Mapping[str, Any]) -> Architecture | Nb201Cell:
        """The architecture the trial of ``config`` with sample seed ``seed`` trains (the last
        ARCHITECTURES_KEPT are kept: the search asks again for the proposals it checked)."""
        key = json.dumps([seed, dict(config)], sort_keys=True)
        arch = self._architectures.pop(key, None)
        if arch is None:
            arch = resolve_architecture(trial_config(self.base, config, seed))
        self._architectures[key] = arch
        while len(self._architectures) > ARCHITECTURES_KEPT:
            self._architectures.popitem(last=False)
        return arch

    def _check(self, seed: int, config: Mapping[str, Any]) -> str | None:
        if self.base.space.name == "nb201" and not self.constraints:
            return None  # fixed widths, nothing to bound: no need to build the config
        cfg = trial_config(self.base, config, seed)
        arch = self.architecture(seed, config)
        if isinstance(arch, Nb201Cell):  # fixed widths: only the constraints apply
            return self._broken(arch, cfg)
        spec = self.network_spec(cfg)
        limit = cfg.network.get("param_limit")
        if limit is not None:
            narrowest = replace(spec, multiplier=smallest_width_units(arch, self.min_width)
                                / MULTIPLIER_STEPS)
            needed = conv_parameters_lower_bound(arch, narrowest)
            if needed <= limit:  # the bound is cheap; the exact count builds on the meta device
                needed = count_parameters(arch, narrowest)
            if needed > limit:
                return (f"{self.min_width} channels in every cell need {needed:,} parameters, "
                        f"more than param_limit {limit:,}")
        elif min(spec.channels(c.width) for c in arch.cells) < self.min_width:
            return f"network.multiplier {spec.multiplier} gives cells under {self.min_width} channels"
        return self._broken(arch, cfg)

    def network_spec(self, cfg: DictConfig) -> NetworkSpec:
        """The network settings of a trial's config ``cfg`` for this data shape (at
        ``network.multiplier``, or 1 when the width comes from ``network.param_limit``)."""
        network = OmegaConf.to_container(cfg.network, resolve=True)
        return NetworkSpec(self.shape.in_channels, self.shape.num_classes, self.shape.image_size,
                           network.get("multiplier") or 1.0, network["head_channels"],
                           network["dropout"])

    def _broken(self, arch: Architecture | Nb201Cell, cfg: DictConfig) -> str | None:
        """The constraints the network of ``arch`` breaks, or None."""
        if not self.constraints:
            return None
        values = self._properties(arch, cfg)
        broken = [f"{c} ({c.name} = {values[c.name]:.4g})" for c in self.constraints
                  if not c.holds(values[c.name])]
        return "; ".join(broken) or None

    def memory_mb(self, seed: int, config: Mapping[str, Any]) -> float:
        """The training-memory estimate (MiB) of the trial's network (to pack GPUs)."""
        cfg = trial_config(self.base, config, seed)
        net = build_model(self.architecture(seed, config), cfg, self.shape.in_channels,
                          self.shape.num_classes, self.shape.image_size)
        return training_memory_mb(net, int(OmegaConf.select(self.base, "dataset.batch_size",
                                                            default=1)))

    def _properties(self, arch: Architecture | Nb201Cell, cfg: DictConfig) -> dict[str, float]:
        """The constrained properties of the network as its trial would build it."""
        names = {c.name for c in self.constraints}
        with torch.device("meta" if names <= {"params", "flops"} else "cpu"):
            net = build_model(arch, cfg, self.shape.in_channels, self.shape.num_classes,
                              self.shape.image_size)
        values: dict[str, float] = {"params": float(sum(p.numel() for p in net.parameters()))}
        if "flops" in names:
            values["flops"] = float(count_flops(net))
        if "latency_ms" in names:
            values["latency_ms"] = measure_latency_ms(net)
        if "memory_mb" in names:
            batch = int(OmegaConf.select(self.base, "dataset.batch_size", default=1))
            values["memory_mb"] = training_memory_mb(net, batch)
        return values
