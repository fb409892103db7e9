"""Multi-objective Bayesian optimisation: GP per objective + BoTorch's qLogNEHVI.

A Sobol design of ``n_init`` feasible configurations comes first. Then every objective
(maximisation orientation, log where the objective asks) not known exactly before training
(``known``: :mod:`nago_pl.search.known_costs`) gets a GP on the unit cube plus a
fidelity input (:mod:`nago_pl.search.fidelity`: learned objectives see where on its learning
curve each value was measured) with a ``Standardize`` outcome transform.
``qLogNoisyExpectedHypervolumeImprovement`` (``qLogNEI`` for a single objective) at full
fidelity, against the study's reference point and with the running/queued trials as pending
points, is optimised one candidate at a time (sequential greedy; categorical parameters get a
Hamming kernel and are optimised as categories, :func:`optimize_restarts`): each candidate is
snapped to the integer bins it decodes to, the best restart that is feasible and not the configuration of
an existing trial (evaluated, pending or failed) wins, and it joins the pending points before the
next one.

Proposals run with one torch thread by default (``num_threads``; restored afterwards): the GP
matrices are small, and on a loaded 2-core machine intra-op threads made a proposal ~6x slower.
A search whose trials train nothing (a table) hands MOBO every core (``search.runner``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from botorch.acquisition import AcquisitionFunction, qLogNoisyExpectedImprovement
from botorch.acquisition.fixed_feature import FixedFeatureAcquisitionFunction
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.objective import MCMultiOutputObjective
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP, SingleTaskMultiFidelityGP
from botorch.models.kernels.categorical import CategoricalKernel
from botorch.models.model import Model
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf
from botorch.sampling.normal import SobolQMCNormalSampler
from botorch.utils.multi_objective.pareto import is_non_dominated
from botorch.utils.sampling import manual_seed
from gpytorch.kernels import Kernel, MaternKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood, SumMarginalLogLikelihood
from torch import Tensor

from nago_pl.errors import NagoError
from nago_pl.search.fidelity import CurveData, curve_data
from nago_pl.search.known_costs import KnownObjective, known_subset
from nago_pl.search.pareto import to_maximization
from nago_pl.search.space import SearchSpace
from nago_pl.search.study import Objective, Study, Trial, check_seed, trial_seed

#: The ``info`` entry of the trial whose proposal fitted the GPs: what they saw and learned.
GP_FIT = "gp_fit"
#: Largest default Sobol design: 2·(d+1) points left 9-D NAGO searches of 20 trials all Sobol
#: (BENCHMARKS.md, mixed-integer benchmark: 10 points won on 4 of 5 seeds).
MAX_DEFAULT_INIT = 10
#: Default cap on the early learning-curve points (bounds the GP's size as trials grow).
MAX_EARLY_POINTS = 24
#: A baseline point at least this likely to be Pareto-optimal is always kept by qLogNEHVI: it
#: is part of the front the acquisition measures improvement against (BENCHMARKS.md, ZDT1).
CERTAIN_PARETO = 0.5
#: Most of the less certain baseline points (e.g. trials seen only early, whose full-fidelity
#: value is a guess) qLogNEHVI keeps, the likeliest to be Pareto-optimal first.
MAX_UNCERTAIN_BASELINE = 12
#: Posterior samples that estimate which baseline points may be Pareto-optimal (BoTorch's
#: default, 2048, made this pruning half of a 200-trial proposal; see BENCHMARKS.md).
PRUNE_SAMPLES = 256
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


def check_number(owner: str, name: str, value: Any, low: float, high: float, *,
                 low_open: bool = True) -> None:
    """Raise NagoError unless option ``value`` is a number in ``(low, high]`` (``[low, high]``
    when not ``low_open``)."""
    above = value > low if low_open else value >= low
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            above and value <= high):
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise NagoError(f"{owner}: {name} must be a number in {interval}, got {value!r}")


def fit_surrogate(X: Tensor, Y: Tensor, cat_dims: Sequence[int] = ()) -> Model:
    """Independent GPs (one per column of ``Y``) on unit-cube inputs ``X``, fitted by ML-II."""
    return fit_curve_models([CurveData(X, Y[:, j:j + 1], learned=False)
                             for j in range(Y.shape[-1])], "product", cat_dims)


def theta_kernel(d: int, cat_dims: Sequence[int] = ()) -> Kernel:
    """Over the first ``d`` inputs: a Matern-5/2 (ARD) over the ordered ones times a
    categorical (Hamming) kernel (ARD) over ``cat_dims``."""
    ordered = [j for j in range(d) if j not in cat_dims]
    parts: list[Kernel] = []
    if ordered:
        parts.append(MaternKernel(nu=2.5, ard_num_dims=len(ordered), active_dims=ordered))
    if cat_dims:
        parts.append(CategoricalKernel(ard_num_dims=len(cat_dims), active_dims=list(cat_dims)))
    return parts[0] if len(parts) == 1 else parts[0] * parts[1]


def product_kernel(d: int, cat_dims: Sequence[int] = ()) -> Kernel:
    """:func:`theta_kernel` over θ (the first ``d`` inputs) times a Matern-5/2 over the
    fidelity (input ``d``), scaled: values at every fidelity share the θ structure."""
    return ScaleKernel(theta_kernel(d, cat_dims) * MaternKernel(nu=2.5, active_dims=[d]))


def fit_curve_models(datasets: Sequence[CurveData], fidelity_kernel: str,
                     cat_dims: Sequence[int] = (),
                     hyperparameters: Sequence[dict[str, Tensor]] | None = None,
                     fit_ftol: float | None = None) -> Model:
    """One GP per objective on ``(θ, fidelity)`` inputs: static objectives (all at fidelity 1)
    get a ``SingleTaskGP`` with its default kernel; learned ones the ``fidelity_kernel``:
    "product" (:func:`product_kernel`) or "linear_truncated" (BoTorch's
    ``SingleTaskMultiFidelityGP``; see BENCHMARKS.md for how the two compare). With categorical
    inputs (``cat_dims``) every GP uses :func:`theta_kernel` over θ. With ``hyperparameters``
    (:func:`gp_hyperparameters` of an earlier model of the same objectives) the GPs take them
    as they are and only condition on the data (no fit). ``fit_ftol``: the relative tolerance
    of the L-BFGS fit (scipy's ``ftol``; None: scipy's default)."""
    gps = []
    for data in datasets:
        d = data.X.shape[-1] - 1
        if not data.learned:
            covar = ScaleKernel(theta_kernel(d, cat_dims)) if cat_dims else None
            gps.append(SingleTaskGP(data.X, data.Y, covar_module=covar,
                                    outcome_transform=Standardize(m=1)))
        elif fidelity_kernel == "linear_truncated":
            gps.append(SingleTaskMultiFidelityGP(data.X, data.Y, data_fidelities=[d],
                                                 outcome_transform=Standardize(m=1)))
        else:
            gps.append(SingleTaskGP(data.X, data.Y, covar_module=product_kernel(d, cat_dims),
                                    outcome_transform=Standardize(m=1)))
    model: Model = gps[0] if len(gps) == 1 else ModelListGP(*gps)
    if hyperparameters is not None:
        for gp, values in zip(gps, hyperparameters, strict=True):
            gp.load_state_dict(values, strict=False)
        return model.eval()
    mll = (ExactMarginalLogLikelihood(model.likelihood, model) if len(gps) == 1
           else SumMarginalLogLikelihood(model.likelihood, model))
    fit_gpytorch_mll(mll, optimizer_kwargs=None if fit_ftol is None
                     else {"options": {"ftol": fit_ftol}})
    return model


def gp_hyperparameters(model: Model) -> list[dict[str, Tensor]]:
    """The (raw) hyperparameters of each GP of ``model``, detached: for
    :func:`fit_curve_models`."""
    gps = model.models if isinstance(model, ModelListGP) else [model]
    return [{name: value.detach().clone() for name, value in gp.named_parameters()}
            for gp in gps]


class WithKnownObjectives(MCMultiOutputObjective):
    """Every objective in maximisation form: the model's samples of the modelled ones (in
    order) and the exact values of the ``known`` ones at the inputs' first ``d`` columns."""

    def __init__(self, objectives: Sequence[Objective], known: Mapping[str, KnownObjective],
                 d: int) -> None:
        super().__init__()
        self.objectives = list(objectives)
        self.known = dict(known)
        self.d = d

    def forward(self, samples: Tensor, X: Tensor | None = None) -> Tensor:
        if X is None:
            raise ValueError("known objectives are computed from X; none was given")
        columns, modelled = [], 0
        for objective in self.objectives:
            if objective.name in self.known:
                natural = self.known[objective.name](X[..., :self.d])
                value = to_maximization(natural.unsqueeze(-1), [objective])[..., 0]
                columns.append(value.expand(samples.shape[:-1]))
            else:
                columns.append(samples[..., modelled])
                modelled += 1
        return torch.stack(columns, dim=-1)


def pareto_probabilities(model: Model, X: Tensor, ref_point: Tensor,
                         objective: MCMultiOutputObjective | None = None,
                         num_samples: int = PRUNE_SAMPLES) -> Tensor:
    """For each row of ``X``, the share of ``num_samples`` joint posterior samples (through
    ``objective``) in which it is Pareto-optimal and better than ``ref_point`` everywhere."""
    with torch.no_grad():
        posterior = model.posterior(X)
        samples = SobolQMCNormalSampler(sample_shape=torch.Size([num_samples]))(posterior)
        values = samples if objective is None else objective(samples, X=X)
        optimal = is_non_dominated(values, deduplicate=False) & (values > ref_point).all(dim=-1)
    return optimal.to(X.dtype).mean(dim=0)


def pareto_baseline(model: Model, X: Tensor, ref_point: Tensor,
                    objective: MCMultiOutputObjective | None = None) -> Tensor:
    """The rows of ``X`` qLogNEHVI measures improvement against: every point at least
    CERTAIN_PARETO likely to be Pareto-optimal (the front, however many points it has), plus the
    MAX_UNCERTAIN_BASELINE likeliest of the points with a smaller, non-zero chance (trials seen
    only early are uncertain at full fidelity, and each kept point costs every acquisition
    call)."""
    probability = pareto_probabilities(model, X, ref_point, objective)
    certain = (probability >= CERTAIN_PARETO).nonzero().view(-1)
    uncertain = ((probability > 0) & (probability < CERTAIN_PARETO)).nonzero().view(-1)
    likeliest = uncertain[probability[uncertain].argsort(descending=True, stable=True)]
    return X[torch.cat([certain, likeliest[:MAX_UNCERTAIN_BASELINE]]).sort().values]


def make_acquisition(model: Model, X: Tensor, ref_point: Tensor,
                     X_pending: Tensor | None, mc_samples: int,
                     objective: MCMultiOutputObjective | None = None) -> AcquisitionFunction:
    """qLogNEHVI (two or more objectives) or qLogNEI (one) over the observed ``X``
    (maximisation) with the reference point ``ref_point``; ``objective`` maps the model's
    samples to all objectives (e.g. :class:`WithKnownObjectives`). Baselines are pruned to the
    points that may be Pareto-optimal (for qLogNEHVI :func:`pareto_baseline`: the whole likely
    front, and a few uncertain points), which bounds the cost as observations grow."""
    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]))
    if ref_point.numel() == 1:
        return qLogNoisyExpectedImprovement(model, X_baseline=X, sampler=sampler,
                                            X_pending=X_pending, prune_baseline=True)
    baseline = pareto_baseline(model, X, ref_point, objective)
    return qLogNoisyExpectedHypervolumeImprovement(model, ref_point=ref_point,
                                                   X_baseline=baseline, sampler=sampler,
                                                   objective=objective, X_pending=X_pending,
                                                   prune_baseline=False)


def _is_taken(x: Tensor, taken: Tensor) -> bool:
    return bool(taken.shape[0]) and bool(((taken - x).abs().max(dim=-1).values < 1e-9).any())


#: Random points scored by the acquisition when no optimised restart is new and feasible.
FALLBACK_POINTS = 256
#: Most category combinations optimised one by one; above, a scored pool + local search.
MAX_ENUMERATED = 8
#: Most Hamming-1 moves of the categorical local search.
LOCAL_SEARCH_STEPS = 6


def optimize_restarts(acqf: AcquisitionFunction, space: SearchSpace, *, num_restarts: int,
                      raw_samples: int, maxiter: int, gen: torch.Generator
                      ) -> tuple[Tensor, Tensor]:
    """Optimised restarts (``r x d``) of ``acqf`` over the space and their values.

    Ordered parameters are optimised by L-BFGS from the best of ``raw_samples`` points.
    Categorical ones (:attr:`SearchSpace.choice_dims`) are never relaxed: up to MAX_ENUMERATED
    combinations are each held fixed in turn; more are searched from the best
    ``num_restarts`` of ``raw_samples`` random points by moving one category at a time to its
    best value (up to LOCAL_SEARCH_STEPS moves; ordered values stay as drawn).
    """
    cat_dims = space.choice_dims
    options = {"maxiter": maxiter}
    if not cat_dims:
        cands, values = optimize_acqf(acqf, bounds=space.bounds(), q=1, num_restarts=num_restarts,
                                      raw_samples=raw_samples, options=options,
                                      return_best_only=False)
        return cands[:, 0, :], values
    centres = {j: space.choice_centres(j) for j in cat_dims}
    if math.prod(len(c) for c in centres.values()) <= MAX_ENUMERATED \
            and len(cat_dims) < space.dim:  # counted first: a wide space has billions
        combos = list(itertools.product(*centres.values()))
        found = [optimize_acqf(acqf, bounds=space.bounds(), q=1, num_restarts=num_restarts,
                               raw_samples=raw_samples, options=options, return_best_only=False,
                               fixed_features=dict(zip(cat_dims, combo, strict=True)))
                 for combo in combos]
        return (torch.cat([c[:, 0, :] for c, _ in found]), torch.cat([v for _, v in found]))
    score = MemoisedScores(acqf)
    with torch.no_grad():
        pool = space.round_unit(space.random_unit(raw_samples, gen))
        scores = score(pool)
        top = scores.argsort(descending=True)[:num_restarts]
        points, values = pool[top], scores[top]
        moving = torch.ones(points.shape[0], dtype=torch.bool)
        for _ in range(LOCAL_SEARCH_STEPS):
            # only restarts that moved last step can improve; their Hamming-1 neighbours
            neighbours = hamming_neighbours(points[moving], centres)  # r' x moves x d
            scores = score(neighbours.reshape(-1, space.dim)).reshape(neighbours.shape[:2])
            best, index = scores.max(dim=1)
            better = best > values[moving]
            rows = moving.nonzero().squeeze(-1)[better]
            points[rows] = neighbours[better, index[better]]
            values[rows] = best[better]
            moving[:] = False
            moving[rows] = True
            if not moving.any():
                break
    return points, values


class MemoisedScores:
    """``acqf`` values of snapped points (``n x d`` -> ``n``), each distinct point evaluated once:
    a Hamming-1 search meets the same points again (the moved coordinate's other values, and
    restarts that reach the same basin). Exact because the MC acquisition's base samples are
    fixed, so a point's value does not depend on the batch it is scored in."""

    def __init__(self, acqf: AcquisitionFunction) -> None:
        self.acqf = acqf
        self.seen: dict[bytes, float] = {}

    def __call__(self, points: Tensor) -> Tensor:
        keys = [row.numpy().tobytes() for row in points]
        new = list({key: i for i, key in enumerate(keys) if key not in self.seen}.values())
        if new:
            values = self.acqf(points[new][:, None, :]).tolist()
            self.seen.update((keys[i], v) for i, v in zip(new, values, strict=True))
        return torch.tensor([self.seen[key] for key in keys], dtype=points.dtype)


def hamming_neighbours(points: Tensor, centres: dict[int, list[float]]) -> Tensor:
    """``r x moves x d``: each of the ``r`` points with one categorical dimension ``j`` (a key
    of ``centres``, whose values are ``centres[j]``) moved to each of its other values."""
    moves = []
    for j, values in centres.items():
        column = torch.tensor(values, dtype=points.dtype).expand(points.shape[0], -1)
        other = ~torch.isclose(column, points[:, j:j + 1])
        others = column[other].reshape(points.shape[0], -1)  # r x (k - 1)
        moved = points[:, None, :].repeat(1, others.shape[1], 1)
        moved[:, :, j] = others
        moves.append(moved)
    return torch.cat(moves, dim=1)


def propose(acqf: AcquisitionFunction, space: SearchSpace, k: int, taken: Tensor,
            X_pending: Tensor | None, *, num_restarts: int, raw_samples: int, maxiter: int,
            seed: int, feasible: Callable[[int, dict[str, Any]], bool] | None = None) -> Tensor:
    """``k`` snapped unit points by sequential greedy optimisation of ``acqf``.

    Candidate ``i`` is the best optimised restart that is new (not a row of ``taken``) and
    ``feasible(i, config)``; failing that, the best by acquisition value of random new feasible
    points; failing that (an exhausted space), the best feasible restart even if taken.
    """
    gen = torch.Generator().manual_seed(seed)
    chosen: list[Tensor] = []
    for i in range(k):
        if chosen:
            new = torch.stack(chosen)
            acqf.set_X_pending(new if X_pending is None else torch.cat([X_pending, new]))
        cands, values = optimize_restarts(acqf, space, num_restarts=num_restarts,
                                          raw_samples=raw_samples, maxiter=maxiter, gen=gen)
        snapped = space.round_unit(cands.detach())[values.argsort(descending=True)]

        def ok(x: Tensor, i: int = i) -> bool:
            return feasible is None or feasible(i, space.from_unit(x[None])[0])

        pick = next((x for x in snapped if not _is_taken(x, taken) and ok(x)), None)
        if pick is None:
            fallback = space.round_unit(space.random_unit(FALLBACK_POINTS, gen))
            with torch.no_grad():
                scores = acqf(fallback[:, None, :])
            fallback = fallback[scores.argsort(descending=True)]
            pick = next((x for x in fallback if not _is_taken(x, taken) and ok(x)), None)
        if pick is None:
            pick = next((x for x in snapped if ok(x)), None)
        if pick is None:
            raise NagoError(f"no feasible configuration found among {FALLBACK_POINTS} random "
                            "points and the optimised candidates; relax search.min_width or "
                            "search.constraints, or widen the search space")
        chosen.append(pick)
        taken = torch.cat([taken, pick[None]])
    return torch.stack(chosen)


def feasible_sobol(space: SearchSpace, n: int, first_index: int, seed: int,
                   feasible: Callable[[int, dict[str, Any]], bool] | None,
                   max_draws: int = 1000) -> list[tuple[int, dict[str, Any]]]:
    """``n`` feasible configs of the space's initial design ``seed`` (the scrambled Sobol
    sequence; a shrunk space's draws), from element ``first_index`` on, with their sequence
    indices (infeasible elements are skipped)."""
    out: list[tuple[int, dict[str, Any]]] = []
    for index in range(first_index, first_index + max_draws):
        config = space.from_unit(space.design_point(index, seed)[None])[0]
        if feasible is None or feasible(len(out), config):
            out.append((index, config))
            if len(out) == n:
                return out
    raise NagoError(f"no feasible configuration among {max_draws} Sobol points; relax "
                    "search.min_width or search.constraints, or widen the search space")


class MOBO:
    """Multi-objective BO (the default strategy); also handles a single objective (qLogNEI).

    The reference point is the study's (each objective's ``ref``, else the worst value seen).
    Learned objectives are modelled over (θ, fidelity) and the acquisition asks for their value
    at full fidelity (:mod:`nago_pl.search.fidelity`); ``max_early_points`` caps the early
    learning-curve points (default: half the number of trials, at most MAX_EARLY_POINTS), which
    bounds the GP's size.
    ``feasible(seed, config)`` (optional) says whether a config, sampled with the trial seed
    ``seed``, may be trained; infeasible ones are never proposed.
    ``num_restarts``/``raw_samples``/``mc_samples``/``maxiter`` trade proposal quality for time;
    ``num_threads`` is the torch thread count while proposing (None: leave it alone).
    The GPs' hyperparameters are fitted (ML-II) when the observations have grown by the factor
    ``refit_growth`` since the last fit (1.0: every proposal); in between the GPs keep them and
    condition on the new data (BENCHMARKS.md: "Refitting the GPs"). A fit is recorded in the
    ``info`` of the first trial it proposed (``gp_fit``), so a resumed search, or another
    driver, keeps the same hyperparameters as an uninterrupted one.
    ``known`` maps objective names to exact functions of the unit point
    (:mod:`nago_pl.search.known_costs`, e.g. NB201's ``params``): those objectives get no GP,
    the acquisition computes them (unless every objective is known). ``fit_ftol`` is the GP
    fits' L-BFGS tolerance (None: scipy's default; a search whose trials train nothing sets
    1e-6, BENCHMARKS.md).
    """

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, *,
                 n_init: int | None = None, fidelity_kernel: str = "product",
                 max_early_points: int | None = None,
                 num_restarts: int = 8, raw_samples: int = 256, mc_samples: int = 128,
                 maxiter: int = 100, num_threads: int | None = 1, refit_growth: float = 1.2,
                 feasible: Callable[[int, dict[str, Any]], bool] | None = None,
                 known: Mapping[str, KnownObjective] | None = None,
                 fit_ftol: float | None = None) -> None:
        self.space = space
        self.objectives = list(objectives)
        self.seed = check_seed(seed)
        self.n_init = min(MAX_DEFAULT_INIT, 2 * (space.dim + 1)) if n_init is None else n_init
        if isinstance(self.n_init, bool) or not isinstance(self.n_init, int) or self.n_init < 0:
            raise NagoError(f"mobo: n_init must be a non-negative integer, got {n_init!r}")
        if fidelity_kernel not in FIDELITY_KERNELS:
            raise NagoError(f"mobo: fidelity_kernel must be one of {', '.join(FIDELITY_KERNELS)}, "
                            f"got {fidelity_kernel!r}")
        if fidelity_kernel == "linear_truncated" and space.choice_dims:
            raise NagoError("mobo: fidelity_kernel=linear_truncated has no categorical kernel; "
                            "use product with choice parameters")
        self.fidelity_kernel = fidelity_kernel
        if max_early_points is not None:
            check_options("mobo", max_early_points=max_early_points + 1)
        self.max_early_points = max_early_points
        check_options("mobo", num_restarts=num_restarts, raw_samples=raw_samples,
                      mc_samples=mc_samples, maxiter=maxiter, num_threads=num_threads)
        self.num_restarts, self.raw_samples = num_restarts, raw_samples
        self.mc_samples, self.maxiter = mc_samples, maxiter
        self.num_threads = num_threads
        if isinstance(refit_growth, bool) or not isinstance(refit_growth, int | float) \
                or not refit_growth >= 1:
            raise NagoError(f"mobo: refit_growth must be a number >= 1, got {refit_growth!r}")
        self.refit_growth = float(refit_growth)
        self.feasible = feasible
        self.known = known_subset(known or {}, [o.name for o in self.objectives])
        self.modelled = [o for o in self.objectives if o.name not in self.known]
        if fit_ftol is not None and (isinstance(fit_ftol, bool) or not isinstance(
                fit_ftol, int | float) or not 0 < fit_ftol < 1):
            raise NagoError(f"mobo: fit_ftol must be a number in (0, 1) or null, got {fit_ftol!r}")
        self.fit_ftol = fit_ftol

    def early_point_cap(self, n_trials: int) -> int:
        """How many early learning-curve points the GPs get with ``n_trials`` trials."""
        if self.max_early_points is not None:
            return self.max_early_points
        return min(n_trials // 2, MAX_EARLY_POINTS)

    def _kept_hyperparameters(self, trials: Sequence[Trial],
                              n_observed: int) -> list[dict[str, Tensor]] | None:
        """The study's last GP fit (the newest ``gp_fit`` among ``trials``) while
        ``n_observed`` is below ``refit_growth`` times what that fit saw; None when it is time
        to fit."""
        record = next((t.info[GP_FIT] for t in reversed(trials) if GP_FIT in t.info), None)
        if record is None or not record["observations"] <= n_observed \
                < self.refit_growth * record["observations"]:
            return None
        return [{name: torch.tensor(value, dtype=torch.float64) for name, value in gp.items()}
                for gp in record["hyperparameters"]]

    def _feasible_at(self, first_trial: int) -> Callable[[int, dict[str, Any]], bool] | None:
        """``feasible`` for the ``i``-th config of an ask whose first new trial is
        ``first_trial`` (a config is checked with the sample seed its trial will get)."""
        if self.feasible is None:
            return None
        check = self.feasible
        return lambda i, config: check(trial_seed(self.seed, first_trial + i), config)

    def ask(self, study: Study, n: int = 1) -> list[Trial]:
        """Hand out re-queued trials first, then Sobol points (initial design, or while fewer than
        two observations exist), then BO proposals (``n`` in all)."""
        trials = study.take_queued(n)
        start = study.n_trials()
        params, values = study.observations(self.objectives)
        n_left = n - len(trials)
        n_sobol = max(0, min(n_left, self.n_init - start))
        if len(params) < MIN_OBSERVATIONS:
            n_sobol = n_left
        used = [t.info.get("sobol_index", t.number) for t in study.trials()
                if t.info.get("source") == "sobol"]
        design = feasible_sobol(self.space, n_sobol, max(used, default=-1) + 1,
                                trial_seed(self.seed, 0, stream=1), self._feasible_at(start)) \
            if n_sobol else []
        for i, (index, config) in enumerate(design):
            trials.append(study.add_trial(config, trial_seed(self.seed, start + i),
                                          info={"source": "sobol", "sobol_index": index}))
        n_bo = n_left - n_sobol
        if n_bo == 0:
            return trials
        datasets = curve_data(study, self.modelled, max_early_points=self.early_point_cap(start))
        X = _at_full_fidelity(self.space.to_unit(params))
        pending = study.pending()
        X_pending = self.space.to_unit(pending) if pending else None
        everything = study.trials()
        taken = self.space.to_unit([t.params for t in everything])  # failed ones too
        rng_seed = trial_seed(self.seed, start + n_sobol, stream=1)
        fit_record: dict[str, Any] = {}
        with manual_seed(rng_seed), torch_threads(self.num_threads):
            kept = self._kept_hyperparameters(everything, len(params))
            model = fit_curve_models(datasets, self.fidelity_kernel, self.space.choice_dims,
                                     kept, self.fit_ftol)
            if kept is None:
                fit_record = {GP_FIT: {"observations": len(params), "hyperparameters": [
                    {name: value.tolist() for name, value in gp.items()}
                    for gp in gp_hyperparameters(model)]}}
            objective = WithKnownObjectives(self.objectives, self.known, self.space.dim) \
                if self.known else None
            acqf = make_acquisition(model, X, study.reference_point(),
                                    None if X_pending is None else _at_full_fidelity(X_pending),
                                    self.mc_samples, objective)
            at_full = FixedFeatureAcquisitionFunction(acqf, d=self.space.dim + 1,
                                                      columns=[self.space.dim], values=[1.0])
            points = propose(at_full, self.space, n_bo, taken, X_pending,
                             num_restarts=self.num_restarts, raw_samples=self.raw_samples,
                             maxiter=self.maxiter, seed=rng_seed,
                             feasible=self._feasible_at(start + n_sobol))
        for i, config in enumerate(self.space.from_unit(points)):
            trials.append(study.add_trial(config, trial_seed(self.seed, start + n_sobol + i),
                                          info={"source": "bo", **(fit_record if i == 0 else {})}))
        return trials


#: How learned objectives model the fidelity (see :func:`fit_curve_models`).
FIDELITY_KERNELS = ("product", "linear_truncated")


def _at_full_fidelity(X: Tensor) -> Tensor:
    """``X`` with a fidelity column of ones appended."""
    return torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], dim=-1)
