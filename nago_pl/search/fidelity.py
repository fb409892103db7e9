"""Learning curves as surrogate data: each value carries the fidelity (share of the full epoch
budget) it was measured at, so an early value is never mistaken for a final one.

An objective is *learned* when some trial reported it at two or more epochs (``val_acc``,
``val_loss``); its training points are ``(θ, s, value)`` with ``s = epoch / full``. Every finished
trial gives its last value (``s = 1`` for a complete trial, its stopping epoch for a pruned one);
complete trials also give their values at the epochs where pruned trials stopped, which teaches
the model how a value at such an epoch relates to the final one. Other (*static*) objectives,
fixed by the architecture (``params``, ``flops``...), get one point per trial at ``s = 1``.
The surrogate is then queried at ``s = 1``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import torch
from torch import Tensor

from nago_pl.search.pareto import to_maximization
from nago_pl.search.study import Objective, Study, Trial


@dataclass(frozen=True)
class CurveData:
    """Training data of one objective: unit-cube inputs with the fidelity appended as the last
    column (``n x (d + 1)``) and values in maximisation form (``n x 1``)."""

    X: Tensor
    Y: Tensor
    learned: bool


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def full_epochs(study: Study, trials: list[Trial]) -> int | None:
    """The full budget in epochs: the most epochs a complete trial reached (else the most any
    trial reached); None when no trial reached an epoch."""
    complete = [t.epochs_reached for t in trials if t.status == "complete" and t.epochs_reached]
    reached = complete or [t.epochs_reached for t in trials if t.epochs_reached]
    return max(reached) if reached else None


def learned_objectives(objectives: list[Objective],
                       reports: dict[int, dict[int, dict[str, float]]]) -> list[bool]:
    """Which objectives some trial reported at two or more epochs."""
    return [any(sum(o.name in m for m in curve.values()) >= 2 for curve in reports.values())
            for o in objectives]


def curve_data(study: Study, objectives: list[Objective], max_early_epochs: int = 2,
               max_early_points: int | None = None) -> list[CurveData]:
    """Training data for each objective from the complete and pruned trials of ``study``.

    Early points of complete trials are taken at the ``max_early_epochs`` epochs where most
    pruned trials stopped; ``max_early_points`` caps their number (newest trials kept).
    """
    trials = [t for t in study.trials(("complete", "pruned")) if t.values]
    reports = {t.id: study.reports(t.id) for t in trials}
    full = full_epochs(study, trials)
    learned = learned_objectives(objectives, reports)
    stops = Counter(t.epochs_reached for t in trials if t.status == "pruned" and t.epochs_reached)
    early_epochs = sorted(e for e, _ in stops.most_common(max_early_epochs) if full and e < full)
    space = study.space
    data = []
    for j, objective in enumerate(objectives):
        rows: list[tuple[dict, float, float]] = []  # (params, fidelity, natural value)
        early: list[tuple[dict, float, float]] = []
        for trial in trials:
            value = trial.values.get(objective.name)
            if not _finite(value):
                continue
            if not learned[j] or full is None or trial.status == "complete":
                rows.append((trial.params, 1.0, value))
            else:
                epoch = trial.epochs_reached or full
                rows.append((trial.params, min(epoch / full, 1.0), value))
            if learned[j] and trial.status == "complete" and full:
                curve = reports[trial.id]
                early += [(trial.params, e / full, curve[e][objective.name]) for e in early_epochs
                          if _finite(curve.get(e, {}).get(objective.name))]
        if max_early_points is not None:
            early = early[max(0, len(early) - max_early_points):] if max_early_points else []
        rows += early
        X = space.to_unit([p for p, _, _ in rows])
        s = torch.tensor([f for _, f, _ in rows], dtype=torch.float64).reshape(-1, 1)
        Y = to_maximization(torch.tensor([[v] for _, _, v in rows], dtype=torch.float64)
                            .reshape(-1, 1), [objective])
        keep = Y.isfinite().all(dim=-1)
        data.append(CurveData(torch.cat([X, s], dim=-1)[keep], Y[keep], learned[j]))
    return data
