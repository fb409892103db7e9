"""Pareto utilities on hand-made fronts."""

import math

import pytest
import torch

from nago_pl.search.pareto import (
    crowding_distance,
    hypervolume,
    hypervolume_curve,
    infer_reference_point,
    is_non_dominated,
    non_dominated_rank,
    to_maximization,
)
from nago_pl.search.study import Objective


def t(rows: list) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def test_non_dominated_and_ranks() -> None:
    Y = t([[1, 3], [2, 2], [3, 1], [1, 1], [0.5, 0.5], [2, 2], [1.5, 0.5], [0, 4]])
    assert is_non_dominated(Y).tolist() == [True, True, True, False, False, True, False, True]
    assert non_dominated_rank(Y).tolist() == [0, 0, 0, 1, 2, 0, 1, 0]
    assert non_dominated_rank(t([[1, 1], [math.nan, math.nan]])).tolist() == [0, 1]


def test_crowding_distance() -> None:
    front = t([[0, 10], [1, 8], [4, 4], [10, 0]])
    d = crowding_distance(front)
    assert math.isinf(d[0]) and math.isinf(d[3])
    # point 1: (4 - 0)/10 + (10 - 4)/10 ; point 2: (10 - 1)/10 + (8 - 0)/10
    assert d[1:3].tolist() == pytest.approx([1.0, 1.7])
    assert crowding_distance(t([[1, 2], [2, 1]])).isinf().all()
    same = crowding_distance(t([[1, 1], [1, 1], [1, 1]]))
    assert math.isinf(same[0]) and math.isinf(same[2]) and same[1] == 0


def test_hypervolume_hand_computed() -> None:
    front = t([[1, 3], [2, 2], [3, 1]])
    assert hypervolume(front, [0, 0]) == pytest.approx(6.0)
    assert hypervolume(torch.cat([front, t([[1, 1], [-1, 5]])]), [0, 0]) == pytest.approx(6.0)
    assert hypervolume(front, [1, 1]) == pytest.approx(1.0)
    assert hypervolume(t([[2, 1, 1], [1, 2, 1]]), [0, 0, 0]) == pytest.approx(3.0)
    assert hypervolume(t([[5.0]]), [2.0]) == pytest.approx(3.0)
    assert hypervolume(t([[-1, 5]]), [0, 0]) == 0.0


def test_hypervolume_curve() -> None:
    Y = t([[1, 3], [0.5, 0.5], [2, 2], [3, 1], [2.5, 0.5]])
    assert hypervolume_curve(Y, [0, 0]) == pytest.approx([3, 3, 5, 6, 6])


def test_to_maximization() -> None:
    objs = [Objective("acc", "max"), Objective("params", "min", log=True),
            Objective("latency", "min")]
    Y = to_maximization(t([[0.9, 1000.0, 3.0]]), objs)
    assert Y.tolist()[0] == pytest.approx([0.9, -math.log(1000.0), -3.0])
    assert to_maximization(t([0.5, 10.0, 1.0]), objs).shape == (3,)
    # orientation matters: (0.9, 1e3) dominates (0.8, 1e4) only once params is minimised
    pts = t([[0.9, 1e3], [0.8, 1e4]])
    assert is_non_dominated(to_maximization(pts, objs[:2])).tolist() == [True, False]
    assert is_non_dominated(pts).tolist() == [True, True]


def test_infer_reference_point() -> None:
    Y = t([[1, 3], [2, 2], [3, 1], [0, 0]])
    # nadir of the front (1, 1), range (2, 2) -> nadir - 0.1 * range
    assert infer_reference_point(Y).tolist() == pytest.approx([0.8, 0.8])
