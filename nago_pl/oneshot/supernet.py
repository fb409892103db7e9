"""The NAS-Bench-201 supernet: every edge of the cell mixes its allowed operations.

One set of per-edge weights (a ``(6, 5)`` tensor over :data:`EDGES` × :data:`OPS`) is shared by
every cell of the network, as in NAS-Bench-201's own one-shot runs; the rest (stem, residual
reductions, head) is the trained benchmark network's (:mod:`nago_pl.network.nb201`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from nago_pl.errors import NagoError
from nago_pl.network.nb201 import Nb201Costs, Nb201Spec, ResidualReduction, make_op
from nago_pl.space.nb201 import EDGES, OPS, Nb201Cell

#: Per edge, the operations it may take.
EdgeOps = Sequence[Sequence[str]]


def allowed_mask(edge_ops: EdgeOps) -> Tensor:
    """The ``(edges, ops)`` boolean mask of ``edge_ops``; an unknown op or an edge left with
    none raises :class:`NagoError`."""
    if len(edge_ops) != len(EDGES):
        raise NagoError(f"one-shot search: needs the ops of {len(EDGES)} edges, "
                        f"got {len(edge_ops)}")
    mask = torch.zeros(len(EDGES), len(OPS), dtype=torch.bool)
    for k, ops in enumerate(edge_ops):
        unknown = sorted(set(ops) - set(OPS))
        if unknown:
            raise NagoError(f"one-shot search: edge_{k} op(s) {unknown} are not in the nb201 "
                            f"space; allowed: {', '.join(OPS)}")
        if not ops:
            raise NagoError(f"one-shot search: edge_{k} has no operation left")
        for op in ops:
            mask[k, OPS.index(op)] = True
    return mask


class MixedEdge(nn.Module):
    """Σ_k w_k · op_k(x) over the edge's allowed ops (``w`` is the edge's row over all OPS;
    ops with weight exactly zero are skipped, so a one-hot row runs one op)."""

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.indices = [OPS.index(op) for op in ops]
        self.ops = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        terms = [weights[i] * op(x) for i, op in zip(self.indices, self.ops, strict=True)
                 if not (weights.requires_grad is False and float(weights[i]) == 0.0)]
        return sum(terms) if terms else x.mul(0.0)


class SuperCell(nn.Module):
    """The NB201 cell with a :class:`MixedEdge` on every edge."""

    def __init__(self, mask: Tensor, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            MixedEdge([op for j, op in enumerate(OPS) if mask[k, j]], channels)
            for k in range(len(EDGES)))

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        nodes: list[Tensor] = [x]
        for target in (1, 2, 3):
            nodes.append(sum(self.edges[k](nodes[source], weights[k])
                             for k, (source, t) in enumerate(EDGES) if t == target))
        return nodes[3]


class Supernet(nn.Module):
    """Stem → ``cells_per_stage`` super-cells at C, 2C, 4C joined by residual reductions → head;
    ``forward(x, weights)`` runs every cell with the same ``(6, 5)`` edge weights."""

    def __init__(self, spec: Nb201Spec, mask: Tensor) -> None:
        super().__init__()
        self.spec = spec
        c = spec.channels
        self.stem = nn.Sequential(nn.Conv2d(spec.in_channels, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c))
        self.blocks = nn.ModuleList()
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage:
                self.blocks.append(ResidualReduction(width // 2, width))
            self.blocks.extend(SuperCell(mask, width) for _ in range(spec.cells_per_stage))
        self.head = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(4 * c, spec.num_classes))

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x, weights) if isinstance(block, SuperCell) else block(x)
        return self.head(x)


class CellCost:
    """The params or FLOPs of the network a cell builds (``spec``: the evaluated network), as a
    differentiable function of per-edge op weights: the base network's plus, per edge,
    Σ_k w_k · cost(op_k). For a one-hot ``weights`` it is the cost of that cell exactly."""

    METRICS = ("params", "flops")

    def __init__(self, spec: Nb201Spec, metric: str) -> None:
        if metric not in self.METRICS:
            raise NagoError(f"one-shot cost {metric!r}: allowed: {', '.join(self.METRICS)}")
        costs = Nb201Costs.measure(spec)
        column = self.METRICS.index(metric)
        self.base = float(costs.base[column])
        self.per_op = torch.tensor([float(costs.per_edge[op][column]) for op in OPS])

    def __call__(self, weights: Tensor) -> Tensor:
        return self.base + (weights * self.per_op.to(weights)).sum()


def derived_cell(probabilities: Tensor) -> Nb201Cell:
    """The argmax cell: per edge, its most probable op."""
    return Nb201Cell(tuple(OPS[int(i)] for i in probabilities.argmax(dim=1)))


def one_hot(cell: Nb201Cell) -> Tensor:
    """The ``(6, 5)`` one-hot weights of ``cell``."""
    weights = torch.zeros(len(EDGES), len(OPS))
    for k, op in enumerate(cell.ops):
        weights[k, OPS.index(op)] = 1.0
    return weights
