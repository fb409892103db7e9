"""The cells a one-shot search derives, proposed as trials of the Study (ask/tell)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from nago_pl.errors import NagoError
from nago_pl.search.space import SearchSpace
from nago_pl.search.strategies.population import config_key, tried_keys
from nago_pl.search.study import Objective, Study, Trial, check_seed, trial_seed
from nago_pl.space.nb201 import EDGES, OPS

#: Draws from the learned distribution per trial before giving up on a new, feasible cell.
MAX_DRAWS = 1000


class DerivedCells:
    """Trial 0 of the search is the argmax cell of ``probabilities`` (per edge, the most
    probable op; ``(6, 5)`` over EDGES × OPS); every later trial a cell sampled from them, the
    first new (not in the study) and ``feasible`` one of the trial's own random stream. Only
    the searched ``edge_<k>`` values are proposed; the others stay the space's fixed ops. Given
    ``members`` (a shrunk space's cells), both come from them: trial 0 is the likeliest member
    under the probabilities, later trials members drawn in proportion to their likelihood
    (the per-edge argmax of a supernet that mixes every op some member takes is seldom a
    member itself, and samples of a converged distribution may never land in a small union)."""

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int,
                 probabilities: Tensor, source: str, *,
                 feasible: Callable[[int, dict[str, Any]], bool] | None = None,
                 members: Sequence[dict[str, Any]] | None = None) -> None:
        self.space = space
        self.objectives = list(objectives)
        self.seed = check_seed(seed)
        self.probabilities = torch.as_tensor(probabilities, dtype=torch.float64)
        if self.probabilities.shape != (len(EDGES), len(OPS)):
            raise NagoError(f"derived cells: expected ({len(EDGES)}, {len(OPS)}) "
                            f"probabilities, got {tuple(self.probabilities.shape)}")
        self.source = source
        self.feasible = feasible
        self.edges = [k for k in range(len(EDGES)) if f"edge_{k}" in space.names]
        self.members = list(members) if members is not None else None
        if self.members is not None:
            if not self.members:
                raise NagoError("derived cells: the shrunk space has no member")
            ops = torch.tensor([[OPS.index(m[f"edge_{k}"]) for k in self.edges]
                                for m in self.members])
            logs = self.probabilities[self.edges].clamp_min(1e-300).log()
            self.member_log_likelihood = logs.gather(1, ops.T).sum(0)

    def argmax(self) -> dict[str, Any]:
        """The most probable cell's (member's, given members) searched values."""
        if self.members is not None:
            return dict(self.members[int(self.member_log_likelihood.argmax())])
        return {f"edge_{k}": OPS[int(self.probabilities[k].argmax())] for k in self.edges}

    def sample(self, gen: torch.Generator) -> dict[str, Any]:
        """One cell drawn from the per-edge distributions (given members: one member, by its
        likelihood under them)."""
        if self.members is not None:
            weights = (self.member_log_likelihood - self.member_log_likelihood.max()).exp()
            return dict(self.members[int(torch.multinomial(weights, 1, generator=gen))])
        return {f"edge_{k}": OPS[int(torch.multinomial(self.probabilities[k], 1,
                                                       generator=gen))] for k in self.edges}

    def ask(self, study: Study, n: int = 1) -> list[Trial]:
        """Hand out re-queued trials first, then new derived cells (``n`` in all)."""
        trials = study.take_queued(n)
        tried = tried_keys(study)
        while len(trials) < n:
            index = study.n_trials()
            seed = trial_seed(self.seed, index)
            config, how = self._propose(index, seed, tried)
            tried.add(config_key(self.space, config))
            trials.append(study.add_trial(config, seed, info={"source": self.source,
                                                              "derived": how}))
        return trials

    def _propose(self, index: int, seed: int, tried: set[tuple[float, ...]]
                 ) -> tuple[dict[str, Any], str]:
        def acceptable(config: dict[str, Any]) -> bool:
            return config_key(self.space, config) not in tried and (
                self.feasible is None or self.feasible(seed, config))

        best = self.argmax()
        if acceptable(best):
            return best, "argmax"
        gen = torch.Generator().manual_seed(trial_seed(self.seed, index, stream=1))
        for _ in range(MAX_DRAWS):
            config = self.sample(gen)
            if acceptable(config):
                return config, "sampled"
        raise NagoError(f"derived cells: no new feasible cell in {MAX_DRAWS} draws from the "
                        "learned distribution (it has converged); lower search.trials")
