"""The edit distance shrinkage measures locality and pockets with.

Our choice (LISSNAS does not publish its metric): on the unit cube of a
:class:`~nago_pl.search.space.SearchSpace`, two configurations are as many *edits* apart as
they have different choice values (Hamming), plus their largest difference over the int and
float coordinates (L-infinity) divided by ``numeric_edit`` (moving numbers by ``numeric_edit``
of their range is one edit). A NAS-Bench-201 cell is then its number of changed edges away; on
HNAG a pocket is a box in the unit cube of the numbers (L-infinity rather than L1: an L1 ball
of 9 dimensions fills a vanishing part of its box, so it could be neither measured nor sampled
by rejection; a box is measured exactly and sampled directly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from nago_pl.search.space import SearchSpace

#: Slack of a ball's boundary test (float round-off of unit coordinates).
EPS = 1e-9


class EditDistance:
    """Edit distances between configurations of ``space`` (see the module doc)."""

    def __init__(self, space: SearchSpace, numeric_edit: float = 0.2) -> None:
        self.space = space
        self.numeric_edit = float(numeric_edit)
        choice = torch.tensor([p.kind == "choice" for p in space.params])
        self.choice = choice
        self.numeric = ~choice

    def unit(self, configs: list[Mapping[str, Any]]) -> Tensor:
        """``n x d`` unit coordinates of ``configs`` (inactive parameters at rest)."""
        return self.space.to_unit(list(configs))

    def pairwise(self, A: Tensor, B: Tensor) -> Tensor:
        """``n x m`` edit distances between unit points ``A`` (``n x d``) and ``B`` (``m x d``)."""
        diff = (A[:, None, :] - B[None, :, :]).abs()
        hamming = (diff[..., self.choice] > EPS).sum(-1).to(torch.float64)
        numbers = diff[..., self.numeric]
        if numbers.shape[-1] == 0:
            return hamming
        return hamming + numbers.amax(-1) / self.numeric_edit

    def between(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
        """The edit distance between two configurations."""
        X = self.unit([a, b])
        return float(self.pairwise(X[:1], X[1:])[0, 0])
