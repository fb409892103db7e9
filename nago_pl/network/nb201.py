"""The NAS-Bench-201 network of a cell: stem, 3 stages of cells joined by residual reduction
blocks, BN-ReLU, global pooling, linear classifier (the benchmark's ``TinyNetwork``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nago_pl.network.cost import count_flops
from nago_pl.space.nb201 import EDGES, OPS, Nb201Cell


@dataclass(frozen=True)
class Nb201Spec:
    """What besides the cell fixes the network: data shape, first-stage width, cells per stage."""

    in_channels: int
    num_classes: int
    image_size: int
    channels: int = 16
    cells_per_stage: int = 5

    @classmethod
    def of(cls, space: Mapping[str, Any], in_channels: int, num_classes: int,
           image_size: int) -> Nb201Spec:
        """The spec of the ``space`` config (its ``channels`` and ``cells_per_stage``) for data
        of this shape."""
        return cls(in_channels, num_classes, image_size, int(space["channels"]),
                   int(space["cells_per_stage"]))


class ReLUConvBN(nn.Sequential):
    """ReLU → k×k conv (no bias) → BN: the benchmark's ``nor_conv_kxk``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out))


class Zero(nn.Module):
    """The ``none`` operation: a zero tensor of the input's shape (keeps the graph connected)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: str, channels: int) -> nn.Module:
    """The module of one edge operation at ``channels`` width, stride 1."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    return ReLUConvBN(channels, channels, 3 if op == "nor_conv_3x3" else 1)


class CellBlock(nn.Module):
    """Node i is the sum of op(j→i)(node j) over j < i; node 3 is the output."""

    def __init__(self, cell: Nb201Cell, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels) for op in cell.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x, None, None, None]
        for target in (1, 2, 3):
            nodes[target] = sum(self.edges[k](nodes[source])
                                for k, (source, t) in enumerate(EDGES) if t == target)
        return nodes[3]


class ResidualReduction(nn.Module):
    """The benchmark's ResNet basic block between stages: stride 2, width doubled."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2),
                                        nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Nb201Network(nn.Module):
    """Stem (3×3 conv, BN) → N cells at C → reduction → N at 2C → reduction → N at 4C → head."""

    def __init__(self, arch: Nb201Cell, spec: Nb201Spec) -> None:
        super().__init__()
        self.arch = arch
        self.spec = spec
        c = spec.channels
        self.stem = nn.Sequential(nn.Conv2d(spec.in_channels, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage:
                layers.append(ResidualReduction(width // 2, width))
            layers += [CellBlock(arch, width) for _ in range(spec.cells_per_stage)]
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(4 * c, spec.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(self.stem(x)))


@dataclass(frozen=True)
class Nb201Costs:
    """Parameters and FLOPs (one image) of the network of any cell at one :class:`Nb201Spec`.

    Every edge runs at its cell's width and resolution wherever it sits in the cell, so a
    network's cost is the all-``none`` network's plus one share per edge of its op's: the op's
    cost summed over the network's cells."""

    base: tuple[int, int]
    per_edge: dict[str, tuple[int, int]]

    @classmethod
    @functools.cache
    def measure(cls, spec: Nb201Spec) -> Nb201Costs:
        """Count the all-``none`` network on the meta device, noting each cell's input shape,
        then each op alone at those shapes (once per spec in a process)."""
        with torch.device("meta"):
            net = Nb201Network(Nb201Cell(("none",) * len(EDGES)), spec)
            image = torch.empty(1, spec.in_channels, spec.image_size, spec.image_size)
        shapes: list[torch.Size] = []
        for block in net.cells:
            if isinstance(block, CellBlock):
                block.register_forward_pre_hook(lambda _, args: shapes.append(args[0].shape))
        base = (sum(p.numel() for p in net.parameters()), _forward_flops(net, image))
        per_edge = {}
        for op in OPS:
            params = flops = 0
            for shape in shapes:
                with torch.device("meta"):
                    module, x = make_op(op, shape[1]), torch.empty(shape)
                params += sum(p.numel() for p in module.parameters())
                flops += _forward_flops(module, x)
            per_edge[op] = (params, flops)
        return cls(base, per_edge)

    def of(self, cell: Nb201Cell) -> tuple[int, int]:
        """Parameters and FLOPs of the network of ``cell``."""
        params, flops = self.base
        for op in cell.ops:
            params, flops = params + self.per_edge[op][0], flops + self.per_edge[op][1]
        return params, flops


def _forward_flops(module: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of ``module``'s forward pass (eval mode) on ``x``, counted as :func:`count_flops`
    does (2 per multiply-add)."""
    counter = FlopCounterMode(display=False)
    with counter:
        module.eval()(x)
    return int(counter.get_total_flops())


def measure_network(cell: Nb201Cell, spec: Nb201Spec) -> tuple[int, int]:
    """Parameters and FLOPs of the network of ``cell``, built on the meta device."""
    with torch.device("meta"):
        net = Nb201Network(cell, spec)
    return sum(p.numel() for p in net.parameters()), count_flops(net)
