"""Objectives known before training, as exact functions of a point of the unit cube.

When a network's cost follows from the searched values alone, the surrogate need not learn it:
MOBO models only the other objectives and computes these exactly (``MOBO(known=...)``). That
holds for NAS-Bench-201 with only its edges searched: ``params`` and ``flops`` are the
all-``none`` network's plus one share per edge of its operation's (:class:`Nb201Costs`).
HNAG networks are sampled from random graphs and sized to a budget, so their cost is not known
in closed form and stays modelled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig
from torch import Tensor

from nago_pl.network.nb201 import Nb201Costs, Nb201Spec
from nago_pl.search.space import SearchSpace
from nago_pl.space.nb201 import EDGES, OPS

if TYPE_CHECKING:  # constraints builds networks (imports Lightning); strategies import this module
    from nago_pl.search.constraints import DataShape

#: Unit points ``... x d`` -> the objective's natural values ``...`` (float64).
KnownObjective = Callable[[Tensor], Tensor]

_EDGE = re.compile(r"^edge_(\d+)$")


def known_objectives(cfg: DictConfig, space: SearchSpace,
                     shape: DataShape) -> dict[str, KnownObjective]:
    """The objectives of the search ``cfg`` known from a unit point alone (empty when none)."""
    if cfg.space.name != "nb201":
        return {}
    spec = Nb201Spec.of(cfg.space, shape.in_channels, shape.num_classes, shape.image_size)
    return nb201_costs(space, Nb201Costs.measure(spec), list(cfg.space.ops))


def nb201_costs(space: SearchSpace, costs: Nb201Costs,
                default_ops: Sequence[str]) -> dict[str, KnownObjective]:
    """``params`` and ``flops`` of the NB201 networks of unit points of ``space``, whose
    parameters must all be edges (``edge_<i>``, ops of :data:`OPS`; an edge not searched has its
    fixed value or ``default_ops[i]``); empty when the space searches anything else."""
    edges = [_EDGE.match(name) for name in space.names]
    if not all(edges) or any(v not in OPS for p in space.params for v in p.values):
        return {}
    per_choice = [torch.tensor([costs.per_edge[op] for op in p.values], dtype=torch.float64)
                  for p in space.params]
    searched = {int(m.group(1)) for m in edges if m}
    fixed = [str(space.fixed.get(f"edge_{i}", default_ops[i]))
             for i in range(len(EDGES)) if i not in searched]
    if any(op not in OPS for op in fixed):
        return {}
    constant = torch.tensor(costs.base, dtype=torch.float64) + sum(
        (torch.tensor(costs.per_edge[op], dtype=torch.float64) for op in fixed),
        torch.zeros(2, dtype=torch.float64))
    return {name: partial(_additive_cost, space, per_choice, constant, column)
            for column, name in enumerate(("params", "flops"))}


def _additive_cost(space: SearchSpace, per_choice: list[Tensor], constant: Tensor, column: int,
                   X: Tensor) -> Tensor:
    """``constant[column]`` plus each searched edge's cost of the choice ``X`` decodes to."""
    index = space.bin_indices(X)
    total = constant[column].expand(X.shape[:-1]).clone()
    for j, table in enumerate(per_choice):
        total += table[index[..., j], column]
    return total


def known_subset(known: Mapping[str, KnownObjective],
                 names: Sequence[str]) -> dict[str, KnownObjective]:
    """The entries of ``known`` among the objective ``names``; empty when every objective is
    known (a surrogate needs something to learn)."""
    subset = {n: known[n] for n in names if n in known}
    return {} if len(subset) == len(names) else subset
