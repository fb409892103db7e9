"""Pareto utilities over ``n x m`` objective tensors, all in *maximisation* orientation.

Use :func:`to_maximization` first to turn natural values (``min`` objectives, log-modelled
objectives) into that orientation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from botorch.utils.multi_objective.box_decompositions.dominated import DominatedPartitioning
from botorch.utils.multi_objective.hypervolume import infer_reference_point as _botorch_ref
from botorch.utils.multi_objective.pareto import is_non_dominated as _botorch_nd
from torch import Tensor

if TYPE_CHECKING:
    from nago_pl.search.study import Objective


def to_maximization(values: Tensor, objectives: Sequence[Objective]) -> Tensor:
    """Map natural values ``[..., m]`` to maximisation orientation: log where asked, then negate
    ``min`` objectives. Log-modelled objectives need positive values."""
    values = torch.as_tensor(values, dtype=torch.float64)
    if values.shape[-1] != len(objectives):
        raise ValueError(f"values have {values.shape[-1]} columns for {len(objectives)} objectives")
    cols = []
    for j, obj in enumerate(objectives):
        col = values[..., j].log() if obj.log else values[..., j]
        cols.append(-col if obj.direction == "min" else col)
    return torch.stack(cols, dim=-1)


def from_maximization(Y: Tensor, objectives: Sequence[Objective]) -> Tensor:
    """Inverse of :func:`to_maximization`: natural units again."""
    Y = torch.as_tensor(Y, dtype=torch.float64)
    cols = []
    for j, obj in enumerate(objectives):
        col = -Y[..., j] if obj.direction == "min" else Y[..., j]
        cols.append(col.exp() if obj.log else col)
    return torch.stack(cols, dim=-1)


def is_non_dominated(Y: Tensor) -> Tensor:
    """Boolean mask of the points no other point dominates (duplicates all kept)."""
    return _botorch_nd(Y, maximize=True, deduplicate=False)


def non_dominated_rank(Y: Tensor) -> Tensor:
    """Front index of every point: 0 for the Pareto front, 1 for the front once it is removed...
    (all-NaN rows, which BoTorch never counts as non-dominated, share the last rank)."""
    ranks = torch.full((Y.shape[0],), -1, dtype=torch.long)
    rank = 0
    while (remaining := (ranks < 0).nonzero().squeeze(-1)).numel():
        front = remaining[is_non_dominated(Y[remaining])]
        ranks[front if front.numel() else remaining] = rank
        rank += 1
    return ranks


def crowding_distance(Y: Tensor) -> Tensor:
    """NSGA-II crowding distance of each point within the set ``Y`` (inf at the extremes)."""
    n, m = Y.shape
    dist = torch.zeros(n, dtype=torch.float64)
    if n <= 2:
        return torch.full((n,), float("inf"), dtype=torch.float64)
    for j in range(m):
        order = torch.argsort(Y[:, j], stable=True)
        col = Y[order, j].to(torch.float64)
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = float("inf")
        if span > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def hypervolume(Y: Tensor, ref_point: Tensor | Sequence[float]) -> float:
    """Volume dominated by ``Y`` and dominating ``ref_point`` (points not better than the
    reference in every objective contribute nothing)."""
    Y = torch.as_tensor(Y, dtype=torch.float64)
    ref = torch.as_tensor(ref_point, dtype=torch.float64)
    Y = Y[above_reference(Y, ref)]
    if Y.shape[0] == 0:
        return 0.0
    if Y.shape[-1] == 1:
        return float(Y.max() - ref[0])
    return float(DominatedPartitioning(ref_point=ref, Y=Y).compute_hypervolume())


def hypervolume_curve(Y: Tensor, ref_point: Tensor | Sequence[float]) -> list[float]:
    """Hypervolume of the first ``i + 1`` points, for every ``i`` (``Y`` in evaluation order)."""
    Y = torch.as_tensor(Y, dtype=torch.float64)
    ref = torch.as_tensor(ref_point, dtype=torch.float64)
    curve: list[float] = []
    front = Y[:0]
    hv = 0.0
    for y in Y:
        dominated = bool(((front >= y).all(dim=-1)).any()) if front.shape[0] else False
        if (y > ref).all() and not dominated:
            front = torch.cat([front, y[None]])
            front = front[is_non_dominated(front)]
            hv = hypervolume(front, ref)
        curve.append(hv)
    return curve


def reference_point(objectives: Sequence[Objective], Y: Tensor) -> Tensor:
    """The reference point in maximisation form: each objective's ``ref`` where it has one, else
    a little worse than the worst value in ``Y`` (maximisation form; 10 % of its range, NaN when
    ``Y`` is empty). Points not strictly better in every objective are worthless."""
    Y = torch.as_tensor(Y, dtype=torch.float64).reshape(-1, len(objectives))
    given = torch.tensor([math.nan if o.ref is None else o.ref for o in objectives],
                         dtype=torch.float64)
    ref = to_maximization(given, objectives)
    for j, objective in enumerate(objectives):
        if objective.ref is None:
            col = Y[:, j][Y[:, j].isfinite()]
            if col.numel():
                span = float(col.max() - col.min())
                ref[j] = col.min() - (0.1 * span if span > 0 else 1e-6 * max(1.0, abs(float(col.min()))))
    return ref


def above_reference(Y: Tensor, ref_point: Tensor) -> Tensor:
    """Boolean mask of the rows of ``Y`` strictly better than ``ref_point`` in every objective."""
    return (torch.as_tensor(Y, dtype=torch.float64) > ref_point).all(dim=-1)


def infer_reference_point(Y: Tensor) -> Tensor:
    """A reference point slightly worse than the nadir of ``Y``'s Pareto front (BoTorch's rule:
    nadir - 0.1 * range)."""
    Y = torch.as_tensor(Y, dtype=torch.float64)
    return _botorch_ref(Y[is_non_dominated(Y)])
