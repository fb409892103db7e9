"""The network an Architecture describes: cells (top DAG) of mid DAGs of op DAGs."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nago_pl.network.layers import Merge, OpNode, make_head, make_stem, stage_resolution
from nago_pl.space.architecture import Architecture, BottomGraph, Cell
from nago_pl.space.graphs import DAG


@dataclass(frozen=True)
class NetworkSpec:
    """Everything besides the Architecture that fixes a network's shape."""

    in_channels: int
    num_classes: int
    image_size: int
    multiplier: float
    head_channels: int = 1280
    dropout: float = 0.2

    def channels(self, ratio: float) -> int:
        """Channels of a node whose width is ``ratio`` in ratio units."""
        return max(1, math.floor(ratio * self.multiplier + 0.5))


def run_dag(dag: DAG, node_inputs: Callable[[int, dict[int, torch.Tensor]], list[torch.Tensor]],
            nodes: nn.ModuleList) -> dict[int, torch.Tensor]:
    """Evaluate ``nodes`` in label (topological) order; returns every node's output."""
    outputs: dict[int, torch.Tensor] = {}
    for n in range(dag.num_nodes):
        outputs[n] = nodes[n](node_inputs(n, outputs))
    return outputs


def mean_of(tensors: list[torch.Tensor]) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.stack(tensors).mean(0)


class DagBlock(nn.Module):
    """A DAG of node modules: input nodes get the block's input, the result is the outputs' mean."""

    def __init__(self, dag: DAG, nodes: list[nn.Module]) -> None:
        super().__init__()
        self.nodes = nn.ModuleList(nodes)
        self.predecessors = [dag.predecessors(n) for n in range(dag.num_nodes)]
        self.output_ids = dag.outputs
        self.dag = dag

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = run_dag(
            self.dag, lambda n, out: [out[p] for p in self.predecessors[n]] or [x], self.nodes
        )
        return mean_of([outputs[o] for o in self.output_ids])


def bottom_block(bottom: BottomGraph, in_channels: int, channels: int) -> DagBlock:
    """A mid node: its op graph, input ops reading ``in_channels``, all ops writing ``channels``."""
    dag = bottom.dag
    nodes = [
        OpNode(op, [channels] * len(dag.predecessors(n)) or [in_channels], channels)
        for n, op in enumerate(bottom.ops)
    ]
    return DagBlock(dag, nodes)


class MidNode(nn.Module):
    """Merge the mid-level predecessors, then run this node's bottom op graph."""

    def __init__(self, bottom: BottomGraph, in_channels: list[int], channels: int) -> None:
        super().__init__()
        self.merge = Merge(in_channels, in_channels[-1])
        self.block = bottom_block(bottom, in_channels[-1], channels)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.block(self.merge(inputs))


class CellModule(nn.Module):
    """A top-level node: pool inputs to the stage resolution, merge, run the mid graph."""

    def __init__(self, cell: Cell, in_channels: list[int], channels: int, resolution: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.merge = Merge(in_channels, in_channels[-1])
        mid_nodes = [
            MidNode(bottom, [channels] * len(cell.mid.predecessors(j)) or [in_channels[-1]],
                    channels)
            for j, bottom in enumerate(cell.bottoms)
        ]
        self.mid = DagBlock(cell.mid, mid_nodes)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        pooled = [
            x if x.shape[-1] == self.resolution else F.adaptive_avg_pool2d(x, self.resolution)
            for x in inputs
        ]
        return self.mid(self.merge(pooled))


class Network(nn.Module):
    """Stem -> cells wired by the top DAG -> outputs averaged at the smallest size -> head."""

    def __init__(self, arch: Architecture, spec: NetworkSpec, initialize: bool = True) -> None:
        super().__init__()
        self.arch = arch
        self.spec = spec
        top = arch.top
        widths = [spec.channels(cell.width) for cell in arch.cells]
        stem_width = widths[0]
        self.stem = make_stem(spec.in_channels, stem_width, spec.image_size)
        self.cells = nn.ModuleList(
            CellModule(
                cell,
                [widths[p] for p in top.predecessors(i)] or [stem_width],
                widths[i],
                stage_resolution(spec.image_size, cell.stage),
            )
            for i, cell in enumerate(arch.cells)
        )
        self.top = top
        self.predecessors = [top.predecessors(i) for i in range(top.num_nodes)]
        self.output_ids = top.outputs
        out_widths = [widths[o] for o in self.output_ids]
        self.out_width = max(out_widths)
        self.out_resolution = min(stage_resolution(spec.image_size, arch.cells[o].stage)
                                  for o in self.output_ids)
        self.out_projections = nn.ModuleList(
            nn.Identity() if w == self.out_width else nn.Conv2d(w, self.out_width, 1, bias=False)
            for w in out_widths
        )
        self.head = make_head(self.out_width, spec.head_channels, spec.num_classes, spec.dropout)
        if initialize:  # skipped for shape-only (meta-device) builds
            self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        outputs = run_dag(
            self.top, lambda n, out: [out[p] for p in self.predecessors[n]] or [stem], self.cells
        )
        features = []
        for o, project in zip(self.output_ids, self.out_projections, strict=True):
            y = outputs[o]
            if y.shape[-1] != self.out_resolution:
                y = F.adaptive_avg_pool2d(y, self.out_resolution)
            features.append(project(y))
        return self.head(mean_of(features))


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
