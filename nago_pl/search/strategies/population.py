"""What the population-based strategies (evolution, GraphPNAS) read from a Study: the trials
with a usable result, their order from best to worst, and the configurations already tried."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from nago_pl.search.pareto import to_maximization
from nago_pl.search.pruning import rank_order
from nago_pl.search.space import SearchSpace
from nago_pl.search.study import Objective, Study, Trial

#: Redraws of a proposal that repeats a configuration already tried, before it is kept.
MAX_REDRAWS = 20


def observed(study: Study, objectives: Sequence[Objective]) -> tuple[list[Trial], Tensor]:
    """The complete and pruned trials with a finite value for every objective, in creation
    order, and their values in maximisation orientation (``n x m``)."""
    trials = [t for t in study.trials(("complete", "pruned"))
              if all(isinstance((t.values or {}).get(o.name), int | float)
                     and math.isfinite(t.values[o.name]) for o in objectives)]
    values = torch.tensor([[t.values[o.name] for o in objectives] for t in trials],
                          dtype=torch.float64).reshape(len(trials), len(objectives))
    return trials, to_maximization(values, objectives)


def best_first(Y: Tensor) -> list[int]:
    """Row indices of maximisation values ``Y`` from best to worst: the value for one objective;
    non-dominated rank, then crowding distance for several (NSGA-II's order)."""
    if Y.shape[-1] == 1:
        return sorted(range(Y.shape[0]), key=lambda i: (-float(Y[i, 0]), i))
    return rank_order(Y)


def config_key(space: SearchSpace, config: dict[str, Any]) -> tuple[float, ...]:
    """A hashable identity of a configuration's searched values (inactive ones at rest)."""
    return tuple(space.to_unit([config])[0].tolist())


def tried_keys(study: Study) -> set[tuple[float, ...]]:
    """Keys of every configuration of the study, whatever its status (pending and failed
    included): a strategy that proposes one again learns nothing new."""
    return {config_key(study.space, t.params) for t in study.trials()}
