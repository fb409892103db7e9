"""Random search: configurations drawn uniformly from the space (its unit cube, or a shrunk
space's pockets)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from nago_pl.errors import NagoError
from nago_pl.search.space import SearchSpace
from nago_pl.search.study import Objective, Study, Trial, check_seed, trial_seed

#: Draws per trial before random search gives up on finding a feasible configuration.
MAX_DRAWS = 1000


class RandomSearch:
    """Uniform random configurations; trial ``i`` always gets the same config and seed.

    With ``feasible(seed, config)`` the draws are repeated (from the trial's own random stream)
    until one is feasible: uniform over the feasible part of the space.
    """

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, *,
                 feasible: Callable[[int, dict[str, Any]], bool] | None = None) -> None:
        self.space = space
        self.objectives = list(objectives)
        self.seed = check_seed(seed)
        self.feasible = feasible

    def ask(self, study: Study, n: int = 1) -> list[Trial]:
        """Hand out re-queued trials first, then start new random ones (``n`` in all)."""
        trials = study.take_queued(n)
        while len(trials) < n:
            index = study.n_trials()
            seed = trial_seed(self.seed, index)
            trials.append(study.add_trial(self._draw(index, seed), seed,
                                          info={"source": "random"}))
        return trials

    def _draw(self, index: int, seed: int) -> dict[str, Any]:
        gen = torch.Generator().manual_seed(trial_seed(self.seed, index, stream=1))
        return draw_feasible(self.space, gen, lambda config: self.feasible is None
                             or self.feasible(seed, config))


def draw_feasible(space: SearchSpace, gen: torch.Generator,
                  accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first uniform draw from ``gen`` (over what ``space`` searches) that ``accept``
    takes (NagoError after MAX_DRAWS)."""
    for _ in range(MAX_DRAWS):
        config = space.from_unit(space.random_unit(1, gen))[0]
        if accept(config):
            return config
    raise NagoError(f"no feasible configuration in {MAX_DRAWS} random draws; relax "
                    "search.min_width or search.constraints, or widen the search space")
