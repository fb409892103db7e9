"""Multi-objective Bayesian optimisation: GP per objective + BoTorch's qLogNEHVI.

A Sobol design of ``n_init`` configurations comes first. Then every objective (maximisation
orientation, log where the objective asks) gets a ``SingleTaskGP`` on the unit cube with a
``Standardize`` outcome transform; ``qLogNoisyExpectedHypervolumeImprovement`` (``qLogNEI`` for a
single objective), with the running/queued trials as pending points, is optimised one candidate
at a time (sequential greedy): each candidate is snapped to the integer bins it decodes to, the
best restart that is not the configuration of an existing trial (evaluated, pending or failed)
wins, and it joins the pending points before the next one.

Proposals run with one torch thread by default (``num_threads``; restored afterwards): the GP
matrices are small, and on a loaded 2-core machine intra-op threads made a proposal ~6x slower.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from botorch.acquisition import AcquisitionFunction, qLogNoisyExpectedImprovement
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf
from botorch.sampling.normal import SobolQMCNormalSampler
from botorch.utils.sampling import manual_seed
from gpytorch.mlls import ExactMarginalLogLikelihood, SumMarginalLogLikelihood
from torch import Tensor

from nago_pl.errors import NagoError
from nago_pl.search.pareto import infer_reference_point, to_maximization
from nago_pl.search.space import SearchSpace
from nago_pl.search.study import Objective, Study, Trial, check_seed, trial_seed

#: Fewest observations before the GP replaces the Sobol sequence.
MIN_OBSERVATIONS = 2


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: unchanged), then restore."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_options(owner: str, **options: int | None) -> None:
    """Raise NagoError unless every option is a positive integer (``num_threads`` may be None)."""
    for name, value in options.items():
        if name == "num_threads" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise NagoError(f"{owner}: {name} must be a positive integer, got {value!r}")


def fit_surrogate(X: Tensor, Y: Tensor) -> Model:
    """Independent GPs (one per column of ``Y``) on unit-cube inputs ``X``, fitted by ML-II."""
    gps = [SingleTaskGP(X, Y[:, j:j + 1], outcome_transform=Standardize(m=1))
           for j in range(Y.shape[-1])]
    if len(gps) == 1:
        model: Model = gps[0]
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
    else:
        model = ModelListGP(*gps)
        mll = SumMarginalLogLikelihood(model.likelihood, model)
    fit_gpytorch_mll(mll)
    return model


def make_acquisition(model: Model, X: Tensor, Y: Tensor, ref_point: Tensor | None,
                     X_pending: Tensor | None, mc_samples: int) -> AcquisitionFunction:
    """qLogNEHVI (``m >= 2``) or qLogNEI (``m = 1``) over the observed ``X`` (maximisation);
    ``ref_point`` defaults to BoTorch's inferred one. Baselines are pruned to the points that
    may be Pareto-optimal, which bounds the cost as observations grow."""
    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]))
    if Y.shape[-1] == 1:
        return qLogNoisyExpectedImprovement(model, X_baseline=X, sampler=sampler,
                                            X_pending=X_pending, prune_baseline=True)
    ref = infer_reference_point(Y) if ref_point is None else ref_point
    return qLogNoisyExpectedHypervolumeImprovement(model, ref_point=ref, X_baseline=X,
                                                   sampler=sampler, X_pending=X_pending,
                                                   prune_baseline=True)


def _is_taken(x: Tensor, taken: Tensor) -> bool:
    return bool(taken.shape[0]) and bool(((taken - x).abs().max(dim=-1).values < 1e-9).any())


def propose(acqf: AcquisitionFunction, space: SearchSpace, k: int, taken: Tensor,
            X_pending: Tensor | None, *, num_restarts: int, raw_samples: int, maxiter: int,
            seed: int) -> Tensor:
    """``k`` snapped unit points by sequential greedy optimisation of ``acqf``, avoiding the
    rows of ``taken`` (falls back to a random new point when every restart is taken)."""
    gen = torch.Generator().manual_seed(seed)
    chosen: list[Tensor] = []
    for _ in range(k):
        if chosen:
            new = torch.stack(chosen)
            acqf.set_X_pending(new if X_pending is None else torch.cat([X_pending, new]))
        cands, values = optimize_acqf(acqf, bounds=space.bounds(), q=1,
                                      num_restarts=num_restarts, raw_samples=raw_samples,
                                      options={"maxiter": maxiter}, return_best_only=False)
        snapped = space.round_unit(cands[:, 0, :].detach())
        order = values.argsort(descending=True).tolist()
        fallback = space.round_unit(torch.rand(100, space.dim, generator=gen, dtype=torch.float64))
        # the best restart that is new, else a random new point, else (exhausted space) the best
        pick = next((x for x in [*snapped[order], *fallback] if not _is_taken(x, taken)),
                    snapped[order[0]])
        chosen.append(pick)
        taken = torch.cat([taken, pick[None]])
    return torch.stack(chosen)


class MOBO:
    """Multi-objective BO (the default strategy); also handles a single objective (qLogNEI).

    ``ref_point`` is given in the objectives' natural units (e.g. ``[0.5, 5e6]`` for accuracy
    at least 0.5 and at most 5M parameters); by default it is inferred from the observations.
    ``num_restarts``/``raw_samples``/``mc_samples``/``maxiter`` trade proposal quality for time;
    ``num_threads`` is the torch thread count while proposing (None: leave it alone).
    """

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, *,
                 n_init: int | None = None, ref_point: Sequence[float] | None = None,
                 num_restarts: int = 8, raw_samples: int = 256, mc_samples: int = 128,
                 maxiter: int = 100, num_threads: int | None = 1) -> None:
        self.space = space
        self.objectives = list(objectives)
        self.seed = check_seed(seed)
        self.n_init = 2 * (space.dim + 1) if n_init is None else n_init
        if isinstance(self.n_init, bool) or not isinstance(self.n_init, int) or self.n_init < 0:
            raise NagoError(f"mobo: n_init must be a non-negative integer, got {n_init!r}")
        self.ref_point = None
        if ref_point is not None:
            ref = list(ref_point)
            if len(ref) != len(self.objectives) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in ref):
                raise NagoError(f"mobo: ref_point needs one number per objective "
                                f"({', '.join(o.name for o in self.objectives)}), got {ref!r}")
            self.ref_point = to_maximization(torch.tensor(ref, dtype=torch.float64),
                                             self.objectives)
        check_options("mobo", num_restarts=num_restarts, raw_samples=raw_samples,
                      mc_samples=mc_samples, maxiter=maxiter, num_threads=num_threads)
        self.num_restarts, self.raw_samples = num_restarts, raw_samples
        self.mc_samples, self.maxiter = mc_samples, maxiter
        self.num_threads = num_threads

    def ask(self, study: Study, n: int = 1) -> list[Trial]:
        """Hand out re-queued trials first, then Sobol points (initial design, or while fewer than
        two observations exist), then BO proposals (``n`` in all)."""
        trials = study.take_queued(n)
        start = study.n_trials()
        params, values = study.observations(self.objectives)
        Y = to_maximization(values, self.objectives)
        finite = Y.isfinite().all(dim=-1)
        n_left = n - len(trials)
        n_sobol = max(0, min(n_left, self.n_init - start))
        if int(finite.sum()) < MIN_OBSERVATIONS:
            n_sobol = n_left
        design = self.space.sobol(start + n_sobol, trial_seed(self.seed, 0, stream=1))[start:]
        for i, config in enumerate(design):
            trials.append(study.add_trial(config, trial_seed(self.seed, start + i),
                                          info={"source": "sobol"}))
        n_bo = n_left - n_sobol
        if n_bo == 0:
            return trials
        X = self.space.to_unit([p for p, ok in zip(params, finite.tolist(), strict=True) if ok])
        pending = study.pending()
        X_pending = self.space.to_unit(pending) if pending else None
        taken = self.space.to_unit([t.params for t in study.trials()])  # failed ones too
        rng_seed = trial_seed(self.seed, start + n_sobol, stream=1)
        with manual_seed(rng_seed), torch_threads(self.num_threads):
            model = fit_surrogate(X, Y[finite])
            acqf = make_acquisition(model, X, Y[finite], self.ref_point, X_pending,
                                    self.mc_samples)
            points = propose(acqf, self.space, n_bo, taken, X_pending,
                             num_restarts=self.num_restarts, raw_samples=self.raw_samples,
                             maxiter=self.maxiter, seed=rng_seed)
        for i, config in enumerate(self.space.from_unit(points)):
            trials.append(study.add_trial(config, trial_seed(self.seed, start + n_sobol + i),
                                          info={"source": "bo"}))
        return trials
