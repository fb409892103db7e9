"""Regularised evolution (Real et al., 2019): the baseline every sampler must beat.

The first ``population`` trials are uniform random draws. After that, each proposal takes the
``population`` youngest trials with a result (ageing: the oldest leave as new ones arrive), picks
the best of ``tournament`` of them drawn at random, and mutates one of its searched values: a
choice to a different value, an integer or float moved on the unit cube by a Gaussian step of
``mutation_scale`` (an integer always to a different one). With several objectives the tournament
compares non-dominated rank, then crowding distance within the population (NSGA-II's order), so
this is also an NSGA-II-like baseline.

Stateless like the other strategies: trial ``i``'s proposal depends only on the seed, ``i`` and
the study. A mutant that repeats a configuration already tried (evaluated, pending or failed)
or that ``feasible`` rejects is redrawn from the same parent (up to MAX_REDRAWS times), then a
uniform random draw is used instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from nago_pl.errors import NagoError
from nago_pl.search.space import SearchSpace
from nago_pl.search.strategies.mobo import check_number, check_options
from nago_pl.search.strategies.population import MAX_REDRAWS, best_first, config_key, observed, tried_keys
from nago_pl.search.strategies.random_search import draw_feasible
from nago_pl.search.study import Objective, Study, Trial, check_seed, trial_seed


class Evolution:
    """Regularised (ageing) evolution with tournament selection and one-value mutation."""

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, *,
                 population: int = 10, tournament: int = 3, mutation_scale: float = 0.2,
                 feasible: Callable[[int, dict[str, Any]], bool] | None = None) -> None:
        check_options("evolution", population=population, tournament=tournament)
        if tournament > population:
            raise NagoError(f"evolution: tournament ({tournament}) must be at most population "
                            f"({population})")
        check_number("evolution", "mutation_scale", mutation_scale, 0.0, 1.0)
        self.space = space
        self.objectives = list(objectives)
        self.seed = check_seed(seed)
        self.population = population
        self.tournament = tournament
        self.mutation_scale = float(mutation_scale)
        self.feasible = feasible

    def ask(self, study: Study, n: int = 1) -> list[Trial]:
        """Hand out re-queued trials first, then start ``n`` in all: random ones until the first
        population is drawn, mutants of tournament winners after."""
        trials = study.take_queued(n)
        while len(trials) < n:
            index = study.n_trials()
            seed = trial_seed(self.seed, index)
            gen = torch.Generator().manual_seed(trial_seed(self.seed, index, stream=1))
            params, info = self._propose(study, index, seed, gen)
            trials.append(study.add_trial(params, seed, info=info))
        return trials

    def _propose(self, study: Study, index: int, seed: int,
                 gen: torch.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
        def accept(config: dict[str, Any]) -> bool:
            return config_key(self.space, config) not in tried and (
                self.feasible is None or self.feasible(seed, config))

        def feasible_only(config: dict[str, Any]) -> bool:
            return self.feasible is None or self.feasible(seed, config)

        tried = tried_keys(study)
        trials, Y = observed(study, self.objectives)
        if index >= self.population and trials:
            young = list(range(max(0, len(trials) - self.population), len(trials)))
            order = best_first(Y[young])
            rank = {young[i]: r for r, i in enumerate(order)}
            picks = torch.randperm(len(young), generator=gen)[:self.tournament].tolist()
            parent = trials[min((young[i] for i in picks), key=rank.__getitem__)]
            for _ in range(MAX_REDRAWS):
                child, name = self.mutate(parent.params, gen)
                if accept(child):
                    return child, {"source": "evolution", "parent": parent.number,
                                   "mutated": name}
        try:  # an unseen configuration if the draws find one, else any feasible one
            return draw_feasible(self.space, gen, accept), {"source": "random"}
        except NagoError:
            return draw_feasible(self.space, gen, feasible_only), {"source": "random"}

    def mutate(self, config: dict[str, Any], gen: torch.Generator) -> tuple[dict[str, Any], str]:
        """``config`` with one active searched value changed (which one: uniform), and its name."""
        space = self.space
        movable = [j for j, p in enumerate(space.params)
                   if space.active(p.name, config) and (p.kind == "float" or p.n_values > 1)]
        if not movable:
            raise NagoError("evolution: the search space has no value that can change")
        j = movable[int(torch.randint(len(movable), (1,), generator=gen))]
        param = space.params[j]
        X = space.to_unit([config])
        if param.kind == "choice":
            current = X[0, j].item()
            others = [c for c in space.choice_centres(j) if c != current]
            X[0, j] = others[int(torch.randint(len(others), (1,), generator=gen))]
        else:
            before = space.from_unit(X)[0][param.name]
            for _ in range(MAX_REDRAWS):
                step = float(torch.randn(1, generator=gen, dtype=torch.float64)) * \
                    self.mutation_scale
                X[0, j] = reflect(X[0, j].item() + step)
                if space.from_unit(X)[0][param.name] != before:
                    break
        return space.from_unit(X)[0], param.name


def reflect(u: float) -> float:
    """``u`` folded back into [0, 1] at its ends (a step past an end bounces back)."""
    u = abs(u) % 2.0
    return 2.0 - u if u > 1.0 else u
