"""Search core: search space, persistent Study, Pareto utilities, pruning, ask/tell strategies.

Ask/tell on an analytic two-objective problem (both objectives minimised)::

    import torch
    from botorch.test_functions.multi_objective import BraninCurrin

    from nago_pl.search import MOBO, Objective, Study, hypervolume, to_maximization

    problem = BraninCurrin()
    space = {"x0": {"type": "float", "low": 0.0, "high": 1.0},
             "x1": {"type": "float", "low": 0.0, "high": 1.0}}
    objectives = [Objective("branin", "min", ref=18.0), Objective("currin", "min", ref=6.0)]
    study = Study.open(":memory:", "demo", space, objectives)  # or a file path: resumable
    strategy = MOBO(study.space, objectives, seed=0)  # the objectives' refs: its reference point
    for _ in range(6):
        for trial in strategy.ask(study, 2):  # a batch of 2 (pending points kept apart)
            x = torch.tensor([[trial.params["x0"], trial.params["x1"]]])
            branin, currin = problem(x)[0].tolist()
            study.tell(trial.id, {"branin": branin, "currin": currin})
    _, values = study.observations()
    print(len(study.best_trials()), "Pareto-optimal trials, hypervolume",
          round(hypervolume(to_maximization(values, objectives), study.reference_point()), 2))
"""

from nago_pl.search.pareto import (
    crowding_distance,
    hypervolume,
    hypervolume_curve,
    infer_reference_point,
    is_non_dominated,
    non_dominated_rank,
    to_maximization,
)
from nago_pl.search.pruning import rank_order, rungs, should_continue
from nago_pl.search.space import NAGO_SPACE, Param, SearchSpace
from nago_pl.search.strategies import (
    BOHB,
    MOBO,
    STRATEGIES,
    Evolution,
    GraphPNAS,
    RandomSearch,
    Strategy,
    make_strategy,
)
from nago_pl.search.study import STATUSES, Objective, Study, Trial, trial_seed

__all__ = [
    "BOHB",
    "MOBO",
    "NAGO_SPACE",
    "STATUSES",
    "STRATEGIES",
    "Evolution",
    "GraphPNAS",
    "Objective",
    "Param",
    "RandomSearch",
    "SearchSpace",
    "Strategy",
    "Study",
    "Trial",
    "crowding_distance",
    "hypervolume",
    "hypervolume_curve",
    "infer_reference_point",
    "is_non_dominated",
    "make_strategy",
    "non_dominated_rank",
    "rank_order",
    "rungs",
    "should_continue",
    "to_maximization",
    "trial_seed",
]
