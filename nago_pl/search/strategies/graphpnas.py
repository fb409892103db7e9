"""GraphPNAS (Li et al., arXiv 2211.15155): learn a distribution of good architectures.

The searched values are read as a graph (:func:`graph_layout`): on ``space=nb201`` the six
``edge_<i>`` operations are the labelled edges of the 4-node cell DAG (``none`` = no edge); a
learned cell family's ``G3_edge_<i>`` values (0/1) are the edges of its DAG; every
other searched value is a *tail* value generated after the graph (its choices, its integers, or
TAIL_BINS equal bins of its unit interval, a value uniform within its bin). The generator is
:class:`~nago_pl.search.strategies.graph_model.GraphModel`.

After the warm-up, the generator is re-initialised and trained from scratch (as published) on
the study's ``top_k`` best results (at most the better half). Rewards are ranks: the i-th best
of n results gets ``1 - i/n`` (scale-free, so accuracy, a loss or several objectives need no
tuning; several objectives are ordered by non-dominated rank, then crowding distance, like the
evolution baseline's tournament). Each training graph is weighted by its advantage, its reward
minus a baseline, the reward of the best result left out: ``k - i`` for the i-th of k, so every
training graph has a positive advantage and the published loss's unlikelihood branch (for
negative ones) never applies. The initialisation is seeded by the training set, so the same
training set gives the same generator: it is retrained only when the best results change. Then
the generator samples SAMPLES graphs at ``temperature``, each edge's label drawn uniformly with
probability ``smoothing`` (so a graph one operation away from the generator's favourites stays
within reach where all the best trials agree on an edge). With probability ``greedy`` the
proposal is the likeliest of them under the generator that is new (not evaluated, pending or
failed) and feasible (exploitation), else the first new, feasible one (a wide sample); if none
is new, a random configuration.

Exploration: the first ``warmup`` trials are uniform random over the whole space (``none``
included, unlike the published NB201 warm-up, which never drew it and so saw 4,096 of the
15,625 cells); later, each proposal is random with probability
``explore * explore_decay**(trial - warmup)``.

Everything is a function of the seed, the trial index and the study, so a resumed search makes
the proposal an uninterrupted one would (the study is the generator's state); each trial records
the trials its generator was trained on (``info.trained_on``), and a study on disk keeps the last
generator's weights beside its database (``graphpnas-<study>.pt``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nago_pl.errors import NagoError
from nago_pl.search.space import SearchSpace
from nago_pl.search.strategies.graph_model import GraphModel, Layout, fit
from nago_pl.search.strategies.mobo import check_number, check_options, torch_threads
from nago_pl.search.strategies.population import best_first, config_key, observed, tried_keys
from nago_pl.search.strategies.random_search import draw_feasible
from nago_pl.search.study import Objective, Study, Trial, check_seed, trial_seed
from nago_pl.space.graphs import pair_order

#: Bins of a float, or of an integer with more values, as a tail token.
TAIL_BINS = 16
#: An edge's name: NB201's ``edge_<k>`` or a learned cell's ``<level>_edge_<k>``.
EDGE_NAME = re.compile(r"(?:(\w+)_)?edge_(\d+)")
#: Values that mean "no edge" on an edge parameter.
NO_EDGE_VALUES = ("none", 0)
#: Graphs the trained generator samples per proposal; the first new, feasible one is taken.
SAMPLES = 64


def graph_layout(space: SearchSpace) -> tuple[Layout, list[int], list[int]]:
    """The model layout of ``space``, the coordinates of its edges (in layout order) and of its
    tail values. Edges: the choices named ``edge_<k>`` (NB201's cell) or ``<level>_edge_<k>``
    (a learned cell), ``k = 0, 1, ...`` the :func:`pair_order` of their nodes. The largest such
    group that numbers its edges from 0 without a gap and shares one list of values is the graph;
    every other value is a tail value."""
    groups: dict[str, dict[int, int]] = {}
    for j, name in enumerate(space.names):
        match = EDGE_NAME.fullmatch(name)
        if match and space.params[j].kind == "choice":
            groups.setdefault(match[1] or "", {})[int(match[2])] = j
    usable = [g for g in groups.values() if sorted(g) == list(range(len(g)))
              and len({space.params[j].values for j in g.values()}) == 1]
    edge_by_k = max(usable, key=len, default={})
    edge_cols = [edge_by_k[k] for k in range(len(edge_by_k))]
    pairs = pair_order(next(n for n in range(1, len(edge_cols) + 2)
                            if n * (n - 1) // 2 >= len(edge_cols)))[:len(edge_cols)]
    tail_cols = [j for j in range(space.dim) if j not in edge_cols]
    labels = space.params[edge_cols[0]].values if edge_cols else ()
    none = next((i for i, v in enumerate(labels)
                 if any(type(v) is type(x) and v == x for x in NO_EDGE_VALUES)), None)
    layout = Layout(num_nodes=1 + max((v for _, v in pairs), default=-1), edges=tuple(pairs),
                    edge_labels=len(labels), none_label=none,
                    tail_sizes=tuple(_tail_size(space, j) for j in tail_cols))
    return layout, edge_cols, tail_cols


def _exact(space: SearchSpace, j: int) -> bool:
    """Whether tail coordinate ``j`` has one token per value (else: TAIL_BINS bins)."""
    param = space.params[j]
    return param.binned and param.n_values <= TAIL_BINS


def _tail_size(space: SearchSpace, j: int) -> int:
    return space.params[j].n_values if _exact(space, j) else TAIL_BINS


def encode(space: SearchSpace, configs: list[dict[str, Any]], edge_cols: Sequence[int],
           tail_cols: Sequence[int]) -> Tensor:
    """Configurations as token rows (edge labels, then tail tokens), int64."""
    X = space.to_unit(configs)
    columns = [space.params[j].bin_index(X[:, j]) for j in edge_cols]
    for j in tail_cols:
        columns.append(space.params[j].bin_index(X[:, j]) if _exact(space, j)
                       else (X[:, j] * TAIL_BINS).long().clamp(0, TAIL_BINS - 1))
    return torch.stack(columns, dim=-1).reshape(len(configs), len(columns))


def decode(space: SearchSpace, tokens: Tensor, edge_cols: Sequence[int],
           tail_cols: Sequence[int], gen: torch.Generator) -> list[dict[str, Any]]:
    """Token rows as configurations (a binned float/int uniform within its bin, from ``gen``)."""
    X = torch.zeros(tokens.shape[0], space.dim, dtype=torch.float64)
    jitter = torch.rand(tokens.shape, generator=gen, dtype=torch.float64)
    for col, j in enumerate([*edge_cols, *tail_cols]):
        param = space.params[j]
        if param.binned and (j in edge_cols or _exact(space, j)):
            values = param.values if param.kind == "choice" else \
                [int(param.low) + i for i in range(param.n_values)]
            centres = torch.tensor([param.encode(v) for v in values], dtype=torch.float64)
            X[:, j] = centres[tokens[:, col]]
        else:
            X[:, j] = (tokens[:, col] + jitter[:, col]) / TAIL_BINS
    return space.from_unit(X.clamp(0.0, 1.0))


def rank_weights(k: int) -> Tensor:
    """Weights of the ``k`` best results, best first: the rank reward ``1 - i/n`` of the
    ``i``-th best of ``n`` minus that of the best result left out (the ``k``-th), normalised:
    ``k - i`` over their sum, whatever ``n`` is."""
    weights = torch.arange(k, 0, -1, dtype=torch.float64)
    return weights / weights.sum()


class GraphPNAS:
    """A learned autoregressive graph generator, retrained on the best trials whenever they
    change."""

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, *,
                 warmup: int = 20, top_k: int = 15, steps: int = 30, lr: float = 0.01,
                 hidden: int = 24, layers: int = 3, mixtures: int = 5,
                 temperature: float = 1.5, explore: float = 0.1, explore_decay: float = 0.95,
                 greedy: float = 0.5, smoothing: float = 0.1,
                 num_threads: int | None = 1,
                 feasible: Callable[[int, dict[str, Any]], bool] | None = None) -> None:
        check_options("graphpnas", top_k=top_k, steps=steps, hidden=hidden, layers=layers,
                      mixtures=mixtures, num_threads=num_threads)
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise NagoError(f"graphpnas: warmup must be a non-negative integer, got {warmup!r}")
        check_number("graphpnas", "lr", lr, 0.0, 1.0)
        check_number("graphpnas", "temperature", temperature, 0.0, 100.0)
        check_number("graphpnas", "explore", explore, 0.0, 1.0, low_open=False)
        check_number("graphpnas", "explore_decay", explore_decay, 0.0, 1.0, low_open=False)
        check_number("graphpnas", "greedy", greedy, 0.0, 1.0, low_open=False)
        check_number("graphpnas", "smoothing", smoothing, 0.0, 1.0, low_open=False)
        self.space = space
        self.objectives = list(objectives)
        self.seed = check_seed(seed)
        self.feasible = feasible
        self.warmup, self.top_k, self.steps, self.lr = warmup, top_k, steps, float(lr)
        self.model_options = {"hidden": hidden, "layers": layers, "mixtures": mixtures}
        self.temperature = float(temperature)
        self.explore, self.explore_decay = float(explore), float(explore_decay)
        self.greedy, self.smoothing = float(greedy), float(smoothing)
        self.num_threads = num_threads
        self.layout, self.edge_cols, self.tail_cols = graph_layout(space)
        self._models: dict[tuple[int, ...], GraphModel] = {}  # the last generator, by key

    def ask(self, study: Study, n: int = 1) -> list[Trial]:
        """Hand out re-queued trials first, then start ``n`` in all: random during the warm-up
        and when exploring, else samples of the generator trained on the study."""
        trials = study.take_queued(n)
        model: tuple[GraphModel, list[int]] | None = None
        with torch_threads(self.num_threads):
            while len(trials) < n:
                index = study.n_trials()
                seed = trial_seed(self.seed, index)
                gen = torch.Generator().manual_seed(trial_seed(self.seed, index, stream=1))
                tried = tried_keys(study)

                def accept(config: dict[str, Any], seed: int = seed,
                           tried: set = tried) -> bool:
                    return config_key(self.space, config) not in tried and (
                        self.feasible is None or self.feasible(seed, config))

                params = None
                if not self._explores(index, gen):
                    model = model or self._train(study)
                    if model is not None:
                        params = self._sample(model[0], gen, accept)
                if params is None:
                    params, info = self._random(gen, seed, accept), {"source": "random"}
                else:
                    info = {"source": "graphpnas", "trained_on": model[1]}
                trials.append(study.add_trial(params, seed, info=info))
        return trials

    def _explores(self, index: int, gen: torch.Generator) -> bool:
        if index < self.warmup:
            return True
        chance = self.explore * self.explore_decay ** (index - self.warmup)
        return float(torch.rand(1, generator=gen, dtype=torch.float64)) < chance

    def _random(self, gen: torch.Generator, seed: int,
                accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        try:  # a new configuration if the draws find one, else any feasible one
            return draw_feasible(self.space, gen, accept)
        except NagoError:
            return draw_feasible(self.space, gen, lambda c: self.feasible is None
                                 or self.feasible(seed, c))

    def training_set(self, study: Study) -> tuple[list[Trial], Tensor]:
        """The trials the generator learns from, best first, and their weights (sum 1): the
        best ``top_k`` results (at most the better half), weighted by their rank reward minus
        that of the best result left out (:func:`rank_weights`)."""
        trials, Y = observed(study, self.objectives)
        chosen = best_first(Y)[:min(self.top_k, math.ceil(len(trials) / 2))]
        return [trials[i] for i in chosen], rank_weights(len(chosen))

    def _train(self, study: Study) -> tuple[GraphModel, list[int]] | None:
        """The generator trained on the study's training set (None before any result)."""
        chosen, weights = self.training_set(study)
        if not chosen:
            return None
        trained_on = [t.number for t in chosen]
        key = tuple(trained_on)
        if key not in self._models:  # the same training set gives the same generator
            tokens = encode(self.space, [t.params for t in chosen], self.edge_cols,
                            self.tail_cols)
            with torch.random.fork_rng():
                torch.manual_seed(int(np.random.SeedSequence([self.seed, *key])
                                      .generate_state(1)[0]))
                model = GraphModel(self.layout, **self.model_options)
            fit(model, tokens, weights.to(torch.float32), self.steps, self.lr)
            self._models = {key: model}
            if study.path != ":memory:":
                torch.save({"model": model.state_dict(), "layout": self.layout,
                            "trained_on": trained_on},
                           Path(study.path).parent / f"graphpnas-{study.name}.pt")
        return self._models[key], trained_on

    def _sample(self, model: GraphModel, gen: torch.Generator,
                accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        """The first new, feasible one of SAMPLES graphs drawn at ``temperature`` or, with
        probability ``greedy``, the likeliest of them under the generator (None if none is)."""
        likeliest = float(torch.rand(1, generator=gen, dtype=torch.float64)) < self.greedy
        tokens = model.sample(SAMPLES, gen, self.temperature, self.smoothing)
        configs = decode(self.space, tokens, self.edge_cols, self.tail_cols, gen)
        order = range(len(configs))
        if likeliest:
            with torch.no_grad():
                logp = model.log_prob(model.teacher_inputs(tokens))
            order = sorted(order, key=lambda i: (-float(logp[i]), i))
        return next((configs[i] for i in order if accept(configs[i])), None)
