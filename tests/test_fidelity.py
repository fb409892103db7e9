"""The fidelity-aware surrogate: early values are modelled as early, not as final."""

import math

import torch
from botorch.utils.sampling import manual_seed

from nago_pl.search import MOBO, Objective, Study
from nago_pl.search.fidelity import curve_data
from nago_pl.search.strategies.mobo import fit_curve_models, fit_surrogate

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0},
         "z": {"type": "float", "low": 0.0, "high": 1.0}}
OBJS = [Objective("val_acc", "max", ref=0.2), Objective("params", "min", log=True)]
FULL = 20


def accuracy(x: float, epoch: int) -> float:
    """Good networks (x > 0.5) learn slowly to 0.95; bad ones plateau fast at 0.7."""
    final, tau = (0.95, 8.0) if x > 0.5 else (0.7, 1.0)
    return 0.1 + (final - 0.1) * (1 - math.exp(-epoch / tau))


def train(study: Study, params: dict, epochs: int, status: str) -> int:
    trial = study.add_trial(params, 0)
    for epoch in range(1, epochs + 1):
        metrics = {"val_acc": accuracy(params["x"], epoch)}
        if epoch == 1:  # a static objective, sent once like the StudyReporter does
            metrics["params"] = 1e4 * (1 + params["z"])
        study.report(trial.id, epoch, metrics)
    study.tell(trial.id, None, status=status, epochs=epochs)
    return trial.id


def learning_curve_study() -> Study:
    """6 complete trials, 10 pruned at epoch 3, then the two trials to rank (both pruned)."""
    study = Study.open(":memory:", "curves", SPACE, OBJS)
    gen = torch.Generator().manual_seed(0)
    for status, epochs, n in (("complete", FULL, 6), ("pruned", 3, 10)):
        for _ in range(n):
            x, z = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
            train(study, {"x": x, "z": z}, epochs, status)
    train(study, {"x": 0.8, "z": 0.5}, 3, "pruned")  # slow-starting, good
    train(study, {"x": 0.2, "z": 0.5}, 3, "pruned")  # fast-plateauing, bad
    return study


QUERY = torch.tensor([[0.8, 0.5], [0.2, 0.5]], dtype=torch.float64)


def test_curve_data_marks_fidelity_and_static_objectives() -> None:
    study = learning_curve_study()
    acc, params = curve_data(study, OBJS)
    assert acc.learned and not params.learned
    # every finished trial once at its stopping fidelity, plus complete trials at epoch 3
    assert sorted(set(acc.X[:, -1].tolist())) == [3 / FULL, 1.0]
    assert acc.X.shape[0] == 18 + 6
    assert params.X.shape[0] == 18 and bool((params.X[:, -1] == 1.0).all())


def test_fidelity_model_ranks_a_slow_good_network_above_a_fast_bad_one() -> None:
    study = learning_curve_study()
    assert accuracy(0.8, 3) < accuracy(0.2, 3) - 0.2  # the early values say the opposite
    with manual_seed(0):
        model = fit_curve_models(curve_data(study, OBJS)[:1], MOBO(study.space, OBJS)
                                 .fidelity_kernel)
        slow, fast = model.posterior(torch.cat([QUERY, torch.ones(2, 1)], -1)).mean.squeeze()
    assert slow > fast + 0.1
    assert slow > 0.75  # far above its early value (0.37), towards its true final one (0.95)
    # the old surrogate, which took the last values as final, ranked them the other way
    params, values = study.observations(OBJS[:1])
    with manual_seed(0):
        naive = fit_surrogate(study.space.to_unit(params), values)
        slow_naive, fast_naive = naive.posterior(QUERY).mean.squeeze()
    assert slow_naive < fast_naive


def test_mobo_proposes_from_curves_at_full_fidelity() -> None:
    study = learning_curve_study()
    mobo = MOBO(study.space, OBJS, seed=0, n_init=0, num_restarts=4, raw_samples=64)
    (trial,) = mobo.ask(study, 1)
    assert trial.info["source"] == "bo"
    assert trial.params["x"] > 0.5  # where the networks end up good
