"""Pockets shaped by a surrogate of the stage's observations (spaces of choices only).

A ball treats every edit alike; architectures do not. On NAS-Bench-201's CIFAR-10 column, 140 of
the 156 best cells hold ``skip_connect`` on one edge and most hold convolutions on two others,
while the other three edges matter little: the best cells form a box, not a ball. A random
forest over the choices (one-hot), fitted to the stage's observations, learns which edits cost
accuracy (its trees split on single choices: a learnt, per-parameter locality). The shrunk space
is then the ``target`` architectures it predicts best among those within ``radius`` edits of the
kept pockets' centres, split into pockets: the parts connected by one-edit steps.

Measured on the table (BENCHMARKS.md, LISSNAS section): at the same size, these pockets hold
more of the top 1 % of cells than the balls they replace and than the one region around the
best centre, and hold the optimum more often.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import RandomForestRegressor
from torch import Tensor

from nago_pl.errors import NagoError
from nago_pl.search.shrink.distance import EditDistance
from nago_pl.search.shrink.pockets import Pocket, ShrunkSpace
from nago_pl.search.space import SearchSpace

#: The forest's trees (otherwise scikit-learn's defaults: leaves of single observations held
#: more of the NB201 table's top 1 % than leaves of two, on tuning seeds 0-19 of CIFAR-10 and
#: again on seeds 20-39 and the other two datasets; BENCHMARKS.md).
TREES = 200


def one_hot(space: SearchSpace, bins: np.ndarray) -> np.ndarray:
    """``n x sum(values)`` indicators of every parameter's choice (``bins``: ``n x d``)."""
    sizes = [p.n_values for p in space.params]
    offsets = np.cumsum([0, *sizes[:-1]])
    features = np.zeros((len(bins), sum(sizes)))
    rows = np.arange(len(bins))[:, None]
    features[rows, offsets[None, :] + bins] = 1.0
    return features


def connected_parts(space: SearchSpace, bins: np.ndarray) -> list[list[int]]:
    """The rows of ``bins`` grouped into the parts connected by one-edit steps (each part's
    rows in their order, parts in the order of their first row)."""
    index = {tuple(row): i for i, row in enumerate(bins.tolist())}
    parent = list(range(len(bins)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, row in enumerate(bins.tolist()):
        for j, param in enumerate(space.params):
            for value in range(param.n_values):
                k = index.get((*row[:j], value, *row[j + 1:]))
                if k is not None and value != row[j]:
                    parent[max(root(i), root(k))] = min(root(i), root(k))
    parts: dict[int, list[int]] = {}
    for i in range(len(bins)):
        parts.setdefault(root(i), []).append(i)
    return list(parts.values())


def candidates(space: SearchSpace, metric: EditDistance, centres: list[dict[str, Any]],
               radius: int) -> Tensor:
    """The unit points within ``radius`` edits of any of ``centres`` (fewer edits when a ball
    that wide holds too many combinations to enumerate), each once."""
    for r in range(radius, 0, -1):
        try:
            balls = [ShrunkSpace(space, [Pocket(c, float(r), 0.0)], metric).choice_ball(0)[0]
                     for c in centres]
        except NagoError:
            continue
        X = torch.cat(balls)
        _, first = np.unique(space.bin_indices(X).numpy(), axis=0, return_index=True)
        return X[np.sort(first)]
    raise NagoError("shrunk space: even one-edit balls are too large to enumerate")


def fill_pockets(space: SearchSpace, metric: EditDistance, centres: list[dict[str, Any]],
                 radius: int, configs: list[dict[str, Any]], y: Tensor, target: int, seed: int,
                 natural: Callable[[float], float]) -> list[Pocket]:
    """The pockets of the ``target`` architectures a forest fitted to ``configs`` (values
    ``y``, to maximise) predicts best within ``radius`` edits of ``centres``, best pocket
    first (``natural`` turns a value to maximise back into the objective's own)."""
    X = candidates(space, metric, centres, radius)
    bins = space.bin_indices(X).numpy()
    observed_bins = space.bin_indices(metric.unit(configs)).numpy()
    model = RandomForestRegressor(TREES, random_state=seed)
    model.fit(one_hot(space, observed_bins), y.numpy())
    predicted = model.predict(one_hot(space, bins))
    chosen = np.argsort(-predicted, kind="stable")[:target]
    seen: dict[tuple[int, ...], float] = {}
    for row, value in zip(observed_bins.tolist(), y.tolist(), strict=True):
        seen[tuple(row)] = max(value, seen.get(tuple(row), -math.inf))
    pockets: list[tuple[bool, float, Pocket]] = []  # (observed centre, its value, pocket)
    for part in connected_parts(space, bins[chosen]):
        rows = chosen[part]
        values = [seen.get(tuple(bins[i].tolist())) for i in rows]
        observed = [v for v in values if v is not None]
        best = max(range(len(rows)), key=lambda i: (values[i] is not None,
                                                    values[i] if values[i] is not None
                                                    else predicted[rows[i]]))
        members = space.from_unit(X[rows])
        centre = members[best]
        value = values[best] if values[best] is not None else float(predicted[rows[best]])
        distances = metric.pairwise(X[rows], X[rows[best]][None])[:, 0]
        pockets.append((values[best] is not None, value, Pocket(
            centre, float(distances.max()), natural(value),
            sorted((natural(v) for v in observed), reverse=True), members=members)))
    pockets.sort(key=lambda p: (not p[0], -p[1]))  # observed centres first, best first
    return [p for _, _, p in pockets]
