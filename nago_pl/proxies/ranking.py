"""Ranking by proxy scores, with NaN (an unscorable network) always last."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata


def nan_last(scores: Sequence[float]) -> np.ndarray:
    """Scores with NaN replaced by -inf, so a higher-is-better ranking puts them last."""
    values = np.asarray(scores, dtype=float)
    return np.where(np.isnan(values), -math.inf, values)


def best_first(scores: Sequence[float]) -> list[int]:
    """Indices of ``scores`` from best (highest) to worst; NaN last, ties in index order."""
    return [int(i) for i in np.argsort(-nan_last(scores), kind="stable")]


def spearman(scores: Sequence[float], targets: Sequence[float]) -> float:
    """Spearman rank correlation of ``scores`` (NaN ranked last) with ``targets``."""
    a = rankdata(nan_last(scores))
    b = rankdata(np.asarray(targets, dtype=float))
    return float(np.corrcoef(a, b)[0, 1])
