"""NAGO's BOHB: a GP with log-EI inside successive-halving brackets (single objective).

Budgets (epochs) are ``max_budget / eta**i`` for ``i = s_max..0`` with
``s_max = floor(log_eta(max_budget / min_budget))``; e.g. 30/120, eta 2 -> 30, 60, 120. Bracket
``b`` has ``s = s_max - b mod (s_max + 1)`` and starts ``eta**s`` configurations at the budget of
index ``s_max - s``; each rung's top ``1/eta`` (first objective) is re-trained at the next budget
as a new trial with the same params and seed, ``info = {bracket, rung, parent}``. With 30/120 and
eta 2 the brackets cycle 4@30 -> 2@60 -> 1@120, 2@60 -> 1@120, 1@120.

``ask`` is stateless (everything is read back from the Study). It hands out, in order:
re-queued trials; every promotion that is ready (a rung is ready when all its trials finished;
failed ones are not promoted); new configurations for the newest bracket; and, when that bracket
has all its starting configurations, the next bracket's. So parallel workers never wait for a rung
to finish: they start the next bracket instead, and promotions jump the queue when a rung is done.
A sequential caller (ask one, tell it, ask again) gets exact successive halving.

New configurations come from a GP (unit-cube inputs, ``Standardize``) with
``qLogExpectedImprovement`` fitted on the highest budget that has at least ``d + 2`` complete
trials, else uniformly at random.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from botorch.acquisition import qLogExpectedImprovement
from botorch.sampling.normal import SobolQMCNormalSampler
from botorch.utils.sampling import manual_seed

from nago_pl.errors import NagoError
from nago_pl.search.pareto import to_maximization
from nago_pl.search.space import SearchSpace
from nago_pl.search.strategies.mobo import check_options, fit_surrogate, propose, torch_threads
from nago_pl.search.strategies.random_search import draw_feasible
from nago_pl.search.study import Objective, Study, Trial, check_seed, trial_seed

Rungs = dict[int, list[Trial]]


class BOHB:
    """Multi-fidelity BO over epoch budgets (optimises the first objective only)."""

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, *,
                 min_budget: int = 30, max_budget: int = 120, eta: int = 2,
                 num_restarts: int = 8, raw_samples: int = 256, mc_samples: int = 128,
                 maxiter: int = 100, num_threads: int | None = 1,
                 feasible: Callable[[int, dict[str, Any]], bool] | None = None) -> None:
        self.space = space
        self.feasible = feasible
        self.objectives = list(objectives)[:1]
        self.seed = check_seed(seed)
        check_options("bohb", min_budget=min_budget, max_budget=max_budget, eta=eta,
                      num_restarts=num_restarts, raw_samples=raw_samples, mc_samples=mc_samples,
                      maxiter=maxiter, num_threads=num_threads)
        if eta < 2 or min_budget > max_budget:
            raise NagoError(f"bohb: needs eta >= 2 and min_budget <= max_budget, got eta={eta}, "
                            f"min_budget={min_budget}, max_budget={max_budget}")
        self.eta = eta
        self.s_max = int(math.floor(math.log(max_budget / min_budget, eta) + 1e-9))
        self.budgets = [round(max_budget / eta ** (self.s_max - i)) for i in range(self.s_max + 1)]
        self.opt = {"num_restarts": num_restarts, "raw_samples": raw_samples, "maxiter": maxiter}
        self.mc_samples = mc_samples
        self.num_threads = num_threads

    # ------------------------------------------------------------ bracket arithmetic
    def bracket_size(self, bracket: int) -> int:
        """``s`` of a bracket: it has ``s + 1`` rungs and starts ``eta**s`` configurations."""
        return self.s_max - bracket % (self.s_max + 1)

    def budget(self, bracket: int, rung: int) -> int:
        """Epoch budget of ``rung`` in ``bracket``."""
        return self.budgets[self.s_max - self.bracket_size(bracket) + rung]

    def _brackets(self, study: Study) -> dict[int, Rungs]:
        out: dict[int, Rungs] = {}
        for t in study.trials():
            if "bracket" in t.info:
                out.setdefault(t.info["bracket"], {}).setdefault(t.info["rung"], []).append(t)
        return out

    def _score(self, trial: Trial) -> float:
        """The trial's first-objective value, maximisation orientation (-inf when missing)."""
        raw = (trial.values or {}).get(self.objectives[0].name, math.nan)
        value = float(to_maximization(torch.tensor([[raw]]), self.objectives))
        return value if math.isfinite(value) else -math.inf

    def _next_promotion(self, brackets: dict[int, Rungs],
                        ref: float) -> tuple[Trial, int, int] | None:
        """(parent, bracket, new rung) of the first ready promotion, oldest bracket first; a
        trial no better than the reference ``ref`` (maximisation form) is never promoted."""
        for b in sorted(brackets):
            s, rungs = self.bracket_size(b), brackets[b]
            expected = self.eta**s
            for r in range(s):
                members = rungs.get(r, [])
                if len(members) < expected or any(t.status in ("queued", "running")
                                                  for t in members):
                    break  # this rung is not closed: nothing above it can be promoted
                done = sorted((t for t in members
                               if t.status == "complete" and self._score(t) > ref),
                              key=lambda t: (-self._score(t), t.number))
                expected = min(self.eta ** (s - r - 1), len(done))
                promoted = {t.info.get("parent") for t in rungs.get(r + 1, [])}
                for parent in done[:expected]:
                    if parent.id not in promoted:
                        return parent, b, r + 1
        return None

    # ------------------------------------------------------------ asking
    def ask(self, study: Study, n: int = 1) -> list[Trial]:
        """Re-queued trials, then ready promotions, then new configurations (``n`` in all)."""
        trials = study.take_queued(n)
        ref = float(study.reference_point()[0])
        ref = ref if math.isfinite(ref) else -math.inf
        while len(trials) < n and (promo := self._next_promotion(self._brackets(study), ref)):
            parent, b, r = promo
            trials.append(study.add_trial(parent.params, parent.seed, self.budget(b, r),
                                          info={"bracket": b, "rung": r, "parent": parent.id}))
        slots = self._new_slots(self._brackets(study), n - len(trials))
        if not slots:
            return trials
        start = study.n_trials()
        for i, (config, source) in enumerate(self._sample(study, len(slots), start)):
            b = slots[i]
            trials.append(study.add_trial(config, trial_seed(self.seed, start + i),
                                          self.budget(b, 0),
                                          info={"bracket": b, "rung": 0, "parent": None,
                                                "source": source}))
        return trials

    def _new_slots(self, brackets: dict[int, Rungs], k: int) -> list[int]:
        """Bracket of each of ``k`` new configurations: fill the newest bracket, then open more."""
        latest = max(brackets, default=-1)
        used = len(brackets.get(latest, {}).get(0, [])) if latest >= 0 else 0
        slots: list[int] = []
        for _ in range(k):
            if latest < 0 or used >= self.eta ** self.bracket_size(latest):
                latest, used = latest + 1, 0
            slots.append(latest)
            used += 1
        return slots

    def _sample(self, study: Study, k: int, start: int) -> list[tuple[dict, str]]:
        """``k`` new configs: GP + log-EI on the highest budget with enough data, or random."""
        by_budget: dict[int, list[Trial]] = {}
        for t in study.trials(("complete",)):
            if t.budget is not None and self._score(t) > -math.inf:
                by_budget.setdefault(t.budget, []).append(t)
        fit_on = [b for b in sorted(by_budget, reverse=True)
                  if len(by_budget[b]) >= self.space.dim + 2]
        rng_seed = trial_seed(self.seed, start, stream=1)

        def feasible(i: int, config: dict[str, Any]) -> bool:
            return self.feasible is None or self.feasible(trial_seed(self.seed, start + i), config)

        if not fit_on:
            gen = torch.Generator().manual_seed(rng_seed)
            return [(draw_feasible(self.space, gen, lambda c, i=i: feasible(i, c)), "random")
                    for i in range(k)]
        data = by_budget[fit_on[0]]
        X = self.space.to_unit([t.params for t in data])
        Y = torch.tensor([[self._score(t)] for t in data], dtype=torch.float64)
        pending = study.pending()
        X_pending = self.space.to_unit(pending) if pending else None
        taken = self.space.to_unit([t.params for t in study.trials()])
        with manual_seed(rng_seed), torch_threads(self.num_threads):
            model = fit_surrogate(X, Y, self.space.choice_dims)
            acqf = qLogExpectedImprovement(
                model, best_f=Y.max(), X_pending=X_pending,
                sampler=SobolQMCNormalSampler(sample_shape=torch.Size([self.mc_samples])))
            points = propose(acqf, self.space, k, taken, X_pending, seed=rng_seed,
                             feasible=feasible, **self.opt)
        return [(c, "bo") for c in self.space.from_unit(points)]
