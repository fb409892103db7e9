"""LISSNAS-style shrinkage (Gopal et al., IJCAI 2023): a space shrunk to many pockets of good
architectures, found through locality (architectures a small edit apart perform alike).

The paper's code and exact steps are not public; this is our design from its principle, and
these are its own choices:

- **Initial sample**: the first ``initial`` queries are a scrambled Sobol sequence (or uniform
  draws) over the unit cube, skipping configurations already tried.
- **Locality curve**: over every pair of observations, the mean absolute difference of the
  objective by edit distance (:mod:`~nago_pl.search.shrink.distance`, rounded up to whole
  edits). The **radius** is the largest ``r <= max_radius`` such that at every distance up to
  ``r`` (with at least MIN_PAIRS pairs) neighbours differ by at most ``locality`` x the mean
  difference of all pairs (1 when too few pairs are near). On the NB201 table one edge moves
  CIFAR-10 accuracy by 4.0 points against 8.4 for two random cells (ratio 0.47) and two edges
  by 5.9 (0.71): the default 0.5 gives radius 1. The radius is also capped so that
  ``max_pockets`` pockets fit in ``max_share`` of the space: many small pockets (diversity,
  LISSNAS's point) rather than a few wide ones. (Pairs near good architectures differ less
  than random ones, so on the stage's own samples the curve alone often allows radius 2,
  265 cells per NB201 pocket: 8 of them would be 14 % of the space.)
- **Pockets**: observations best first, down to the keep threshold below (a worse centre
  would make a pocket whose median falls short; letting it in spent most of the stage proving
  and rejecting ever worse pockets instead of climbing the good ones: over 20 NB201 seeds the
  centres' median rank in the space went from about 440 to 110-190); each becomes a pocket
  centre unless its ball would
  overlap a pocket already made (it is then *merged* into that better pocket), until
  ``max_pockets`` pockets are not rejected. Recomputed from the study at every step, a centre
  thus *moves* to a better neighbour as soon as one is observed. A pocket with at least
  ``min_evidence`` observations besides its centre is **kept** when their median (centre
  included) reaches the ``keep_quantile`` quantile of the initial sample, else **rejected**:
  a typical member must be as good as the best tenth (default) of random architectures.
- **Neighbourhood sampling**: each later query is an untried uniform member of the kept or
  unproven pocket with the fewest observations (ties: the better centre); with every pocket
  exhausted, the next untried initial-sequence point.
- **Result**: the kept pockets best first (the best pocket alone if none is kept), as long
  as the union stays within ``max_share`` of the space. In a space of choices only
  (``fill="forest"``, the default) a random forest fitted to the stage's observations then
  shapes them (:mod:`~nago_pl.search.shrink.fill`): the shrunk space is the architectures it
  predicts best within ``max_radius`` edits of the kept centres, as many as the union or
  ``min_share`` of the space, whichever is more, and its pockets are the parts of that set
  connected by single edits (on the NB201 table: more of the top 1 % of cells than balls of
  the same size, and the optimum held more often; BENCHMARKS.md). Otherwise (``fill="widen"``,
  or a space with ints or floats) a union under ``min_share`` is rebuilt
  with its best pocket one edit wider (a quarter edit with ints or floats; up to ``max_radius``;
  it absorbs the pockets it reaches), and so on: ``min_share`` is the target size. (The
  strategies draw their random starts, designs and fallbacks from the union itself, see
  :class:`~nago_pl.search.shrink.pockets.PocketSpace`, so any size is searchable; but on the
  NB201 table the pockets alone, about 0.5 % of the space, held a cell within 0.1 point of the
  optimum in fewer seeds than the 1.5 % default: BENCHMARKS.md.)

Stateless like the strategies: query ``i`` depends only on the seed and the study's trials,
so a killed stage resumes where it stopped and a finished one is rebuilt from its trials.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from nago_pl.errors import NagoError
from nago_pl.search.shrink.distance import EPS, EditDistance
from nago_pl.search.shrink.fill import fill_pockets
from nago_pl.search.shrink.pockets import Pocket, ShrunkSpace
from nago_pl.search.space import SearchSpace
from nago_pl.search.strategies.population import config_key, tried_keys
from nago_pl.search.strategies.random_search import MAX_DRAWS
from nago_pl.search.study import Objective, Study, Trial, check_seed, trial_seed

#: The ``info["source"]`` of the stage's trials; the baseline trial counts as one of them.
SOURCE = "shrink"
STAGE_SOURCES = (SOURCE, "baseline")
#: Pairs a distance needs before the locality curve may widen the radius to it.
MIN_PAIRS = 10
#: Samplers of the initial set.
SAMPLERS = ("sobol", "random")
#: How the kept pockets become the shrunk space (see the module doc).
FILLS = ("forest", "widen")
#: The edits a pocket of a space with ints or floats widens by at a time (a space of choices
#: only: one edit, the next whole distance).
NUMERIC_STEP = 0.25
#: Where the options live in the config (for error messages).
WHERE = "search.shrink_options"


@dataclass(frozen=True)
class PocketState:
    """A pocket while growing: its centre and member observations (indices), its status."""

    centre: int
    members: list[int]
    status: str  # kept, rejected or unproven


def locality_curve(D: Tensor, y: Tensor, max_distance: int) -> dict[str, Any]:
    """Mean ``|y_i - y_j|`` of the pairs of observations by edit distance ``D`` (rounded up,
    1..``max_distance``) and over all distinct pairs (``all``)."""
    upper = torch.triu(torch.ones_like(D, dtype=torch.bool), diagonal=1) & (D > EPS)
    gaps = (y[:, None] - y[None, :]).abs()[upper]
    steps = torch.ceil(D[upper] - EPS)
    rows = []
    for d in range(1, max_distance + 1):
        at = steps == d
        rows.append({"distance": d, "pairs": int(at.sum()),
                     "mean_abs_diff": float(gaps[at].mean()) if at.any() else None})
    return {"curve": rows, "all": {"pairs": int(upper.sum()),
                                   "mean_abs_diff": float(gaps.mean()) if len(gaps) else None}}


def choose_radius(curve: dict[str, Any], locality: float,
                  fits: Callable[[int], bool] = lambda r: True) -> int:
    """The largest distance up to which neighbours stay similar and pockets of which still
    ``fits`` the target size (see the module doc); at least 1."""
    far = curve["all"]["mean_abs_diff"]
    radius = 1
    for row in curve["curve"]:
        if far is None or row["pairs"] < MIN_PAIRS or row["mean_abs_diff"] > locality * far \
                or not fits(row["distance"]):
            break
        radius = row["distance"]
    return radius


def grow_pockets(D: Tensor, y: Tensor, radius: float, threshold: float, max_pockets: int,
                 min_evidence: int) -> list[PocketState]:
    """Pockets of radius ``radius`` around the best observations far enough apart, merged and
    judged as the module doc says (``D``: distances between observations, ``y``: their values
    to maximise; only observations reaching ``threshold`` become centres)."""
    pockets: list[PocketState] = []
    for i in sorted(range(len(y)), key=lambda k: (-float(y[k]), k)):
        if float(y[i]) < threshold:
            break  # no worse observation may centre a pocket: its median would fall short
        if any(float(D[i, p.centre]) <= 2 * radius + EPS for p in pockets):
            continue  # its ball overlaps a better pocket: merged into it
        members = [int(k) for k in (D[i] <= radius + EPS).nonzero()[:, 0]]
        status = "unproven"
        if len(members) - 1 >= min_evidence:
            status = "kept" if float(y[members].median()) >= threshold else "rejected"
        pockets.append(PocketState(i, members, status))
        if sum(p.status != "rejected" for p in pockets) >= max_pockets:
            break
    return pockets


class Lissnas:
    """The shrinkage stage as an ask/tell proposer over the Study (options: module doc),
    ranking architectures by ``objective`` and querying only what ``feasible(seed, config)``
    accepts; :meth:`result` is the shrunk space."""

    def __init__(self, space: SearchSpace, objective: Objective, seed: int = 0, *,
                 queries: int = 80, initial: int = 30, sampler: str = "sobol",
                 max_pockets: int = 8, locality: float = 0.5, max_radius: int = 3,
                 keep_quantile: float = 0.9, min_evidence: int = 3, min_share: float = 0.015,
                 max_share: float = 0.05,
                 numeric_edit: float = 0.2, fill: str = "forest",
                 feasible: Callable[[int, dict[str, Any]], bool] | None = None) -> None:
        for name, value, low in (("queries", queries, 2), ("initial", initial, 2),
                                 ("max_pockets", max_pockets, 1), ("max_radius", max_radius, 1),
                                 ("min_evidence", min_evidence, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise NagoError(f"{WHERE}.{name}={value!r}: must be an integer >= {low}")
        if initial > queries:
            raise NagoError(f"{WHERE}.initial={initial}: must be at most queries ({queries})")
        for name, value in (("locality", locality), ("keep_quantile", keep_quantile),
                            ("min_share", min_share), ("max_share", max_share),
                            ("numeric_edit", numeric_edit)):
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0 < value <= 1:
                raise NagoError(f"{WHERE}.{name}={value!r}: must be a number in (0, 1]")
        if min_share > max_share:
            raise NagoError(f"{WHERE}.min_share={min_share}: must be at most max_share "
                            f"({max_share})")
        if sampler not in SAMPLERS:
            raise NagoError(f"{WHERE}.sampler={sampler!r}: allowed: {', '.join(SAMPLERS)}")
        if fill not in FILLS:
            raise NagoError(f"{WHERE}.fill={fill!r}: allowed: {', '.join(FILLS)}")
        self.space = space
        self.objective = objective
        self.seed = check_seed(seed)
        self.queries, self.initial, self.sampler = queries, initial, sampler
        self.max_pockets, self.max_radius, self.min_evidence = max_pockets, max_radius, \
            min_evidence
        self.locality, self.keep_quantile = float(locality), float(keep_quantile)
        self.min_share, self.max_share = float(min_share), float(max_share)
        self.metric = EditDistance(space, numeric_edit)
        self.fill = fill
        self.feasible = feasible

    # ------------------------------------------------------------------ the study
    def stage_trials(self, study: Study) -> list[Trial]:
        """The stage's trials (any status), in creation order."""
        return [t for t in study.trials() if t.info.get("source") in STAGE_SOURCES]

    def history(self, study: Study) -> tuple[list[dict[str, Any]], Tensor]:
        """The stage's observations: configs and values to maximise, in creation order."""
        configs, values = [], []
        for trial in self.stage_trials(study):
            value = (trial.values or {}).get(self.objective.name)
            if trial.status in ("complete", "pruned") and isinstance(value, int | float) \
                    and math.isfinite(value):
                configs.append(trial.params)
                values.append(value if self.objective.direction == "max" else -value)
        return configs, torch.tensor(values, dtype=torch.float64)

    def ask(self, study: Study, n: int = 1) -> list[Trial]:
        """Hand out re-queued trials first, then start the stage's next queries."""
        trials = study.take_queued(n)
        while len(trials) < n:
            index = study.n_trials()
            config, info = self.propose(study, index)
            trials.append(study.add_trial(config, trial_seed(self.seed, index),
                                          info={"source": SOURCE, **info}))
        return trials

    # ------------------------------------------------------------------ the steps
    def _usable(self, seed: int, config: dict[str, Any]) -> bool:
        return self.feasible is None or self.feasible(seed, config)

    def _initial_point(self, tried: set[tuple[float, ...]], start: int,
                       seed: int) -> dict[str, Any]:
        """The first untried feasible point of the initial sequence from position ``start``
        on (any feasible one when all were tried)."""
        count = start + len(tried) + 4 * self.initial
        draw = self.space.sobol if self.sampler == "sobol" else self.space.uniform
        points = draw(count, self.seed)[start:]
        for config in points:
            if config_key(self.space, config) not in tried and self._usable(seed, config):
                return config
        for config in draw(MAX_DRAWS, trial_seed(self.seed, count, stream=2)):
            if self._usable(seed, config):
                return config
        raise NagoError(f"search.shrink: no feasible configuration in {MAX_DRAWS} draws; relax "
                        "search.min_width or search.constraints, or widen the search space")

    def pockets(self, configs: list[dict[str, Any]], y: Tensor
                ) -> tuple[int, list[PocketState], Tensor, dict[str, Any]]:
        """The radius and the pockets the observations ``configs`` (values ``y``) give, the
        distances between those and the locality curve."""
        X = self.metric.unit(configs)
        D = self.metric.pairwise(X, X)
        curve = locality_curve(D, y, self.max_radius)
        radius = self.choose(configs, y, curve)
        threshold = float(torch.quantile(y[: self.initial], self.keep_quantile))
        return radius, grow_pockets(D, y, radius, threshold, self.max_pockets,
                                    self.min_evidence), D, curve

    def choose(self, configs: list[dict[str, Any]], y: Tensor, curve: dict[str, Any]) -> int:
        """The pocket radius: :func:`choose_radius` with ``max_pockets`` pockets (as large as
        one around the best observation) within ``max_share``."""
        best = configs[int(torch.argmax(y))]
        return choose_radius(curve, self.locality, lambda r: self.max_pockets * ShrunkSpace(
            self.space, [Pocket(best, r, 0.0)], self.metric).share <= self.max_share)

    def propose(self, study: Study, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Query ``index``'s configuration and its info (phase, pocket)."""
        tried = tried_keys(study)
        seed = trial_seed(self.seed, index)
        started = len(self.stage_trials(study))
        configs, y = self.history(study)
        if started < self.initial or len(y) < 2:
            return self._initial_point(tried, started, seed), {"phase": "initial"}
        radius, pockets, _, _ = self.pockets(configs, y)
        active = [p for p in pockets if p.status != "rejected"]
        if active:
            order = sorted(range(len(active)), key=lambda k: (len(active[k].members), k))
            space = ShrunkSpace(self.space, [Pocket(configs[p.centre], radius,
                                                    float(y[p.centre])) for p in active],
                                self.metric)
            gen = torch.Generator().manual_seed(trial_seed(self.seed, index, stream=1))
            for k in order:
                fresh = self._untried_member(space, k, tried, seed, gen)
                if fresh is not None:
                    return fresh, {"phase": "pocket", "centre": configs[active[k].centre]}
        return self._initial_point(tried, self.initial, seed), {"phase": "explore"}

    def _untried_member(self, space: ShrunkSpace, k: int, tried: set[tuple[float, ...]],
                        seed: int, gen: torch.Generator) -> dict[str, Any] | None:
        """An untried feasible uniform member of pocket ``k`` of ``space`` (None when none
        is left, or none turned up in MAX_DRAWS draws)."""
        if space.finite:
            combos = space.choice_ball(k)[0]
            fresh = [row for row in combos if tuple(row.tolist()) not in tried]
            order = torch.randperm(len(fresh), generator=gen).tolist()
            configs = (self.space.from_unit(fresh[i][None])[0] for i in order)
            return next((c for c in configs if self._usable(seed, c)), None)
        for _ in range(MAX_DRAWS):
            X = space.draw_in(k, 1, gen)
            if len(X) and tuple(X[0].tolist()) not in tried:
                config = self.space.from_unit(X)[0]
                if self._usable(seed, config):
                    return config
        return None

    def result(self, study: Study) -> ShrunkSpace:
        """The shrunk space the stage's observations in ``study`` give."""
        configs, y = self.history(study)
        if len(y) == 0:
            raise NagoError("search.shrink: the shrinking stage has no successful trial to "
                            "shrink the space from (all failed?); see the trials' errors")
        radius, pockets, _, curve = self.pockets(configs, y)
        chosen = self._union(configs, y, radius, pockets)
        curve["radius"] = radius
        if self.fill == "forest" and self.metric.choice.all():
            shaped = fill_pockets(self.space, self.metric, [p.centre for p in chosen],
                                  self.max_radius, configs, y, self._target(chosen), self.seed,
                                  self._natural)
            return ShrunkSpace(self.space, shaped, self.metric, self.objective.name, curve)
        return ShrunkSpace(self.space, self._widen(chosen, y, configs), self.metric,
                           self.objective.name, curve)

    def _target(self, pockets: list[Pocket]) -> int:
        """Architectures the forest's pockets hold: as many as ``pockets`` or ``min_share``
        of the space, whichever is more, within ``max_share``."""
        total = math.prod(p.n_values for p in self.space.params)
        size = ShrunkSpace(self.space, pockets, self.metric).size or 1
        return max(1, min(max(size, math.ceil(self.min_share * total)),
                          math.floor(self.max_share * total)))

    def _union(self, configs: list[dict[str, Any]], y: Tensor, radius: int,
               pockets: list[PocketState]) -> list[Pocket]:
        """The kept ``pockets`` (the best one if none is kept), best first, while the union
        stays within ``max_share``."""
        kept = [p for p in pockets if p.status == "kept"] or pockets[:1]
        chosen: list[Pocket] = []
        for state in kept:
            pocket = Pocket(configs[state.centre], radius, self._natural(y[state.centre]),
                            sorted((self._natural(y[m]) for m in state.members), reverse=True))
            if chosen and ShrunkSpace(self.space, [*chosen, pocket],
                                      self.metric).share > self.max_share + EPS:
                break
            chosen.append(pocket)
        return chosen

    def _widen(self, pockets: list[Pocket], y: Tensor,
               configs: list[dict[str, Any]]) -> list[Pocket]:
        """``pockets`` (best first) grown until their union reaches ``min_share``: the best
        pocket below ``max_radius`` gets one edit more (NUMERIC_STEP with ints or floats),
        absorbing the worse pockets it would overlap, while the union stays within
        ``max_share``."""
        X = self.metric.unit(configs)
        while ShrunkSpace(self.space, pockets, self.metric).share < self.min_share - EPS:
            k = next((i for i, p in enumerate(pockets) if p.radius < self.max_radius), None)
            if k is None:
                return pockets
            wider = min(pockets[k].radius + (1 if self.metric.choice.all() else NUMERIC_STEP),
                        self.max_radius)
            centre = self.metric.unit([pockets[k].centre])
            gaps = self.metric.pairwise(centre, self.metric.unit([p.centre for p in pockets]))[0]
            near = self.metric.pairwise(centre, X)[0] <= wider + EPS
            grown = Pocket(pockets[k].centre, wider, pockets[k].value,
                           sorted((self._natural(v) for v in y[near]), reverse=True))
            widened = [grown if i == k else p for i, p in enumerate(pockets)
                       if i == k or float(gaps[i]) > wider + p.radius + EPS]
            if ShrunkSpace(self.space, widened, self.metric).share > self.max_share + EPS:
                return pockets
            pockets = widened
        return pockets

    def _natural(self, value: Tensor | float) -> float:
        return float(value) if self.objective.direction == "max" else -float(value)


def stage_done(stage: Lissnas, study: Study) -> bool:
    """Whether the stage has started all of its queries in ``study``."""
    return len(stage.stage_trials(study)) >= stage.queries

