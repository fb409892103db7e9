"""Multi-objective early stopping (asynchronous successive halving on Pareto ranks).

At each rung epoch ``min_epochs * eta**k`` a trial stops if a *learned* objective (one measured
every epoch, e.g. ``val_acc``) is no better than its reference point; otherwise it continues iff
it is non-dominated among the ``n`` trials that reached that epoch, or in their top
``ceil(n / eta)`` (those below the reference last), ranked by non-dominated rank and, within a
front, by crowding distance (larger first; remaining ties: older trial first). Epochs count
completed epochs (the first report is epoch 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from nago_pl.errors import NagoError
from nago_pl.search.pareto import (
    crowding_distance,
    is_non_dominated,
    non_dominated_rank,
    to_maximization,
)
from nago_pl.search.study import Objective, Study


@dataclass(frozen=True)
class PruningRule:
    """Rungs at ``min_epochs * eta**k``; a trial continues if in the top 1/eta of its rung."""

    min_epochs: int = 3
    eta: float = 2.0


#: The metrics reported after every epoch (the others are fixed by the architecture).
LEARNED_METRICS = ("val_acc", "val_loss")

#: ``report(epoch, metrics) -> keep``: stores a report and answers whether the trial continues.
ReportFn = Callable[[int, dict[str, float]], bool]


def _check(min_epochs: int, eta: float) -> None:
    if not (isinstance(min_epochs, int) and min_epochs >= 1):
        raise NagoError(f"pruning: min_epochs must be an integer >= 1, got {min_epochs!r}")
    if not eta > 1:
        raise NagoError(f"pruning: eta must be > 1, got {eta!r}")


def rungs(min_epochs: int, max_epochs: int, eta: float) -> list[int]:
    """Rung epochs ``min_epochs * eta**k`` below ``max_epochs``, e.g. (1, 27, 3) -> [1, 3, 9]."""
    _check(min_epochs, eta)
    out: list[int] = []
    k = 0
    while (epoch := round(min_epochs * eta**k)) < max_epochs:
        out.append(epoch)
        k += 1
    return out


def rank_order(Y: torch.Tensor) -> list[int]:
    """Indices of the rows of ``Y`` (maximisation) best first: by non-dominated rank, then by
    crowding distance within the front, then by index; rows with a non-finite value (a diverged
    run) come last."""
    finite = Y.isfinite().all(dim=-1).nonzero().squeeze(-1).tolist()
    Yf = Y[finite]
    ranks = non_dominated_rank(Yf)
    crowd = torch.zeros(len(finite), dtype=torch.float64)
    for r in ranks.unique():
        members = (ranks == r).nonzero().squeeze(-1)
        crowd[members] = crowding_distance(Yf[members])
    best = sorted(range(len(finite)), key=lambda i: (int(ranks[i]), -float(crowd[i]), i))
    return [finite[i] for i in best] + [i for i in range(Y.shape[0]) if i not in set(finite)]


def should_continue(study: Study, trial_id: int, epoch: int, objectives: Sequence[Objective], *,
                    min_epochs: int, eta: float, learned: Sequence[str] = (),
                    min_trials_at_rung: int | None = None) -> bool:
    """Whether trial ``trial_id``, which has just reported ``epoch``, should keep training.

    Off-rung epochs always continue. At a rung, a trial whose value of a ``learned`` objective
    is no better than that objective's ``ref`` stops. Compared trials: complete, pruned and
    running trials with a report at ``epoch`` (those below a reference rank last); their
    objective values are read from their reports up to ``epoch``. A rung reached by fewer than
    ``min_trials_at_rung`` (default ``ceil(eta)``) trials lets the trial continue.
    """
    if epoch not in rungs(min_epochs, epoch + 1, eta):
        return True
    statuses = {t.id: t.status for t in study.trials(("complete", "pruned", "running"))}
    metrics = {i: m for i, m in study.metrics_at_epoch(epoch).items() if i in statuses}
    if trial_id not in metrics:
        raise ValueError(f"trial {trial_id} has no report at epoch {epoch}")
    missing = [o.name for o in objectives if o.name not in metrics[trial_id]]
    if missing:
        raise NagoError(f"pruning needs objective(s) {missing} in the epoch reports of trial "
                        f"{trial_id}; it reported: {sorted(metrics[trial_id])}")
    dead = [o for o in objectives if o.name in learned and o.ref is not None]

    def alive(m: dict[str, float]) -> bool:
        return all(bool(to_maximization(torch.tensor([m[o.name]]), [o])
                        > to_maximization(torch.tensor([o.ref]), [o])) for o in dead)

    if not alive(metrics[trial_id]):
        return False
    ids = [i for i, m in metrics.items() if all(o.name in m for o in objectives)]
    needed = math.ceil(eta) if min_trials_at_rung is None else min_trials_at_rung
    if len(ids) < needed:
        return True
    values = torch.tensor([[metrics[i][o.name] for o in objectives] for i in ids],
                          dtype=torch.float64)
    Y = to_maximization(values, objectives)
    Y[[not alive(metrics[i]) for i in ids]] = -math.inf  # dead ones rank last
    me = ids.index(trial_id)
    if bool(Y[me].isfinite().all()) and bool(is_non_dominated(Y)[me]):
        return True  # Pareto-optimal at its rung: nothing it could be traded for is better
    return me in rank_order(Y)[:math.ceil(len(ids) / eta)]
