"""Random search: configurations drawn uniformly from the unit cube of the space."""

from __future__ import annotations

from collections.abc import Sequence

from nago_pl.search.space import SearchSpace
from nago_pl.search.study import Objective, Study, Trial, check_seed, trial_seed


class RandomSearch:
    """Uniform random configurations; trial ``i`` always gets the same config and seed."""

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0) -> None:
        self.space = space
        self.objectives = list(objectives)
        self.seed = check_seed(seed)

    def ask(self, study: Study, n: int = 1) -> list[Trial]:
        """Hand out re-queued trials first, then start new random ones (``n`` in all)."""
        trials = study.take_queued(n)
        while len(trials) < n:
            index = study.n_trials()
            config = self.space.uniform(1, trial_seed(self.seed, index, stream=1))[0]
            trials.append(study.add_trial(config, trial_seed(self.seed, index),
                                          info={"source": "random"}))
        return trials
