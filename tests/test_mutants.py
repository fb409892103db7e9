"""Tests that kill the mutants of issue 20: small deliberate breakages of core behaviours the
rest of the suite did not notice. Each test names the mutant it kills."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from rich.console import Console

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.search import MOBO, Objective, SearchSpace, Study
from nago_pl.search.constraints import DataShape
from nago_pl.search.pareto import (
    above_reference,
    crowding_distance,
    from_maximization,
    hypervolume,
    hypervolume_curve,
    infer_reference_point,
    reference_point,
    to_maximization,
)
from nago_pl.search.preflight import (
    ACCURACY_MARGIN,
    BUDGET_MARGIN,
    default_reference,
    objectives_with_references,
)
from nago_pl.search.pruning import rank_order, rungs, should_continue
from nago_pl.search.runner import run_search
from nago_pl.search.space import NAGO_SPACE
from nago_pl.search.strategies import mobo as mobo_module

NAGO = SearchSpace.from_config(NAGO_SPACE)
DIGITS = DataShape(in_channels=1, num_classes=10, image_size=8)
# the default search's objectives, with the references the preflight gives them on digits
OBJS = [Objective("val_acc", "max", ref=0.2), Objective("params", "min", log=True, ref=1.1e5)]


# ----------------------------------------------------------------------------- reference points
def test_a_log_objectives_reference_is_log_scaled() -> None:
    """Mutant killed: ``reference_point`` ignoring an objective's ``log`` flag (pareto.py), e.g.
    ``to_maximization(given, [replace(o, log=False) for o in objectives])``."""
    Y = to_maximization(torch.tensor([[0.9, 5e4], [0.5, 2e4]]), OBJS)
    ref = reference_point(OBJS, Y)
    assert ref.tolist() == pytest.approx([0.2, -math.log(1.1e5)])
    # a network at the budget (1e5 params, better than the 1.1e5 reference) beats it in log space
    assert bool((to_maximization(torch.tensor([0.9, 1e5]), OBJS) > ref).all())
    # the study hands the same point to everything that scores a front
    study = Study.open(":memory:", "ref", NAGO_SPACE, OBJS)
    assert study.reference_point().tolist() == pytest.approx([0.2, -math.log(1.1e5)])


def test_default_references_per_objective() -> None:
    """Mutants killed: any change of the defaults in ``default_reference`` (preflight.py)."""
    cfg = compose("search", ["network.param_limit=30000"])
    assert default_reference("val_acc", "max", DIGITS, cfg) == pytest.approx(0.1 + ACCURACY_MARGIN)
    assert default_reference("val_loss", "min", DIGITS, cfg) == pytest.approx(math.log(10))
    # params: BUDGET_MARGIN x the space's largest budget (param_limit's high end)
    assert default_reference("params", "min", DIGITS, cfg) == pytest.approx(30000 * BUDGET_MARGIN)
    wider = compose("search", ["network.param_limit=30000", "search.space.param_limit.high=50000"])
    assert default_reference("params", "min", DIGITS, wider) == pytest.approx(50000 * BUDGET_MARGIN)
    fixed = compose("search", ["network.param_limit=30000", "~search.space.param_limit"])
    assert default_reference("params", "min", DIGITS, fixed) == pytest.approx(30000 * BUDGET_MARGIN)
    # cost objectives, a maximised loss or a minimised accuracy: the worst value seen (None)
    for name, direction in [("flops", "min"), ("latency_ms", "min"), ("val_acc", "min"),
                            ("val_loss", "max"), ("params", "max")]:
        assert default_reference(name, direction, DIGITS, cfg) is None, (name, direction)
    nb201 = compose("search", ["space=nb201"])
    assert default_reference("params", "min", DIGITS, nb201) is None  # no budget: fixed widths


def test_objectives_with_references_fill_only_the_missing_refs() -> None:
    """Mutants killed: ``objectives_with_references`` overwriting a user's ``ref``, dropping
    ``log``, or leaving a missing one unset (preflight.py)."""
    cfg = compose("search", ["network.param_limit=30000"])
    assert [(o.name, o.direction, o.log, o.ref) for o in objectives_with_references(cfg, DIGITS)] \
        == [("val_acc", "max", False, pytest.approx(0.2)),
            ("params", "min", True, pytest.approx(33000.0))]
    given = compose("search", [
        "network.param_limit=30000",
        "search.objectives=[{name:val_acc,direction:max,ref:0.5},"
        "{name:params,direction:min,log:true},{name:flops,direction:min}]"])
    assert [(o.name, o.direction, o.log, o.ref) for o in objectives_with_references(given, DIGITS)] \
        == [("val_acc", "max", False, 0.5), ("params", "min", True, pytest.approx(33000.0)),
            ("flops", "min", False, None)]


def test_mobo_hands_the_studys_reference_point_to_its_acquisition(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutant killed: MOBO building its acquisition with another reference point than
    ``study.reference_point()`` (e.g. BoTorch's inferred one, or the natural-unit refs)."""
    seen = []
    real = mobo_module.make_acquisition

    def spy(model, X, ref_point, *args, **kwargs):
        acqf = real(model, X, ref_point, *args, **kwargs)
        seen.append(acqf)
        return acqf

    monkeypatch.setattr(mobo_module, "make_acquisition", spy)
    study = Study.open(":memory:", "mobo", NAGO_SPACE, OBJS)
    for i, params in enumerate(NAGO.sobol(4, 0)):
        trial = study.add_trial(params, seed=i)
        study.tell(trial.id, {"val_acc": 0.5 + 0.1 * i, "params": 2e4 * (i + 1)})
    strategy = MOBO(NAGO, OBJS, seed=0, n_init=4, num_restarts=2, raw_samples=16,
                    mc_samples=16, maxiter=5)
    (trial,) = strategy.ask(study, 1)
    assert trial.info["source"] == "bo"
    (acqf,) = seen
    assert acqf.ref_point.tolist() == pytest.approx(study.reference_point().tolist())
    assert acqf.ref_point.tolist() == pytest.approx([0.2, -math.log(1.1e5)])


# ----------------------------------------------------------------------------- pareto.py survivors
def test_from_maximization_inverts_to_maximization() -> None:
    """Mutants killed (``make mutate``): from_maximization's sign or exp dropped, always or
    never applied (pareto.x_from_maximization__mutmut_9..17)."""
    objs = [Objective("acc", "max"), Objective("params", "min", log=True),
            Objective("latency", "min"), Objective("gain", "max", log=True)]
    natural = torch.tensor([[0.9, 1000.0, 3.0, 2.0], [0.5, 10.0, 7.0, 0.5]], dtype=torch.float64)
    Y = to_maximization(natural, objs)
    assert Y[0].tolist() == pytest.approx([0.9, -math.log(1000.0), -3.0, math.log(2.0)])
    assert torch.allclose(from_maximization(Y, objs), natural)


def test_pareto_functions_take_plain_integer_lists() -> None:
    """Mutants killed: ``dtype=torch.float64`` dropped from the ``as_tensor`` calls of
    hypervolume, hypervolume_curve, from_maximization and infer_reference_point."""
    objs = [Objective("a", "max", log=True), Objective("b", "min")]
    assert from_maximization([[0, -3]], objs).tolist() == [[1.0, 3.0]]
    assert hypervolume([[1, 3], [2, 2]], [0, 0]) == pytest.approx(5.0)
    assert hypervolume_curve([[1, 3], [2, 2]], [0, 0]) == pytest.approx([3.0, 5.0])
    assert infer_reference_point([[1, 3], [3, 1]]).tolist() == pytest.approx([0.8, 0.8])


def test_hypervolume_of_one_point_and_a_curve_that_starts_below_the_reference() -> None:
    """Mutants killed: the one-objective shortcut taken for one point of two objectives
    (``Y.shape[-2] == 1``), and the curve's starting value (``hv = None`` / ``1.0``)."""
    assert hypervolume(torch.tensor([[2.0, 3.0]]), [0.0, 0.0]) == pytest.approx(6.0)
    assert hypervolume_curve(torch.tensor([[-1.0, 5.0], [1.0, 1.0]]), [0.0, 0.0]) == [0.0, 1.0]


def test_reference_point_margins_and_strictness() -> None:
    """Mutants killed: the unset reference's margin rules (10 % of a span below 1; 1e-6 of
    max(1, |worst|) for a single value), float32 references, ``>=`` in above_reference, and
    to_maximization's shape error naming the wrong dimension."""
    objs = [Objective("a", "max"), Objective("b", "max"), Objective("c", "max")]
    Y = torch.tensor([[0.5, 5.0, 0.25], [1.0, 5.0, 0.25]], dtype=torch.float64)
    ref = reference_point(objs, Y)
    assert ref.dtype == torch.float64
    assert ref.tolist() == pytest.approx([0.45, 5.0 - 5e-6, 0.25 - 1e-6], rel=1e-12, abs=1e-12)
    assert reference_point(OBJS, Y[:, :2]).dtype == torch.float64
    assert above_reference(torch.tensor([[1.0, 0.0], [1.0, 0.5]]),
                           torch.tensor([0.0, 0.0])).tolist() == [False, True]
    with pytest.raises(ValueError, match="values have 3 columns for 2 objectives"):
        to_maximization(torch.ones(2, 3), OBJS)
    with pytest.raises(ValueError, match="values have 3 columns for 2 objectives"):
        to_maximization(torch.ones(3), OBJS)


def test_crowding_distance_normalises_by_a_span_below_one() -> None:
    """Mutants killed: crowding_distance's span as ``max + min``, and only added above 1."""
    front = torch.tensor([[0.1, 0.9], [0.2, 0.7], [0.4, 0.4], [0.9, 0.1]], dtype=torch.float64)
    assert crowding_distance(front)[1:3].tolist() == pytest.approx([1.0, 1.625])


# ----------------------------------------------------------------------------- pruning.py survivors
def test_pruning_settings_are_checked_each() -> None:
    """Mutant killed: ``_check`` accepting a non-integer min_epochs >= 1 (``or``)."""
    with pytest.raises(NagoError, match="min_epochs must be an integer >= 1, got 1.5"):
        rungs(1.5, 10, 2)  # type: ignore[arg-type]


def test_rank_order_crowds_within_each_front_and_puts_non_finite_rows_last() -> None:
    """Mutants killed: crowding computed over the other fronts (``ranks != r``), and the
    non-finite rows appended from the wrong range or as the finite ones."""
    Y = torch.tensor([[0, 10], [1, 8], [4, 4], [10, 0],  # front 0 (crowding inf, 1.0, 1.7, inf)
                      [0, 5], [2, 3], [5, 0],  # front 1 (inf, 2.0, inf)
                      [0, 0], [math.nan, 1]], dtype=torch.float64)  # front 2, then a NaN row
    assert rank_order(Y) == [0, 3, 2, 1, 4, 6, 5, 7, 8]


def test_a_trial_exactly_at_the_reference_is_stopped_at_its_rung() -> None:
    """Mutant killed: should_continue's ``alive`` test with ``>=`` (at the reference is not
    better than it)."""
    study = Study.open(":memory:", "rung", NAGO_SPACE, OBJS)
    trial = study.add_trial(NAGO.sobol(1, 0)[0], seed=0)
    study.report(trial.id, 1, {"val_acc": 0.2, "params": 1e4})
    assert not should_continue(study, trial.id, 1, OBJS, min_epochs=1, eta=2, learned=("val_acc",))


# ----------------------------------------------------------------------------- non-finite values
def test_observations_leave_out_trials_without_a_finite_value() -> None:
    """Mutant killed: ``if True:`` replacing the finiteness filter in ``Study.observations``
    (a NaN ``tell`` already fails the trial, so only these paths reach the filter)."""
    study = Study.open(":memory:", "s", NAGO_SPACE, OBJS)
    sobol = NAGO.sobol(3, 0)
    good = study.add_trial(sobol[0], seed=0)
    study.tell(good.id, {"val_acc": 0.9, "params": 5e4, "test_loss": 0.3})
    # pruned after a report lacking an objective: its row has no params value (NaN)
    early = study.add_trial(sobol[1], seed=1)
    study.report(early.id, 1, {"val_acc": 0.4})
    assert study.prune(early.id).status == "pruned"
    # a non-objective value that was NaN is stored as null
    nulled = study.add_trial(sobol[2], seed=2)
    study.tell(nulled.id, {"val_acc": 0.8, "params": 3e4, "test_loss": math.nan})
    params, values = study.observations()
    assert params == [sobol[0], sobol[2]]
    assert values.tolist() == [[0.9, 5e4], [0.8, 3e4]]
    params, values = study.observations([Objective("test_loss", "min")])
    assert params == [sobol[0]] and values.tolist() == [[0.3]]


# ----------------------------------------------------------------------------- pruning in a search
def test_a_search_prunes_trials_at_their_rung_but_never_the_baseline(tmp_path: Path) -> None:
    """Mutants killed: the driver's report handler never pruning (``_on_report`` returning
    True), and the baseline trial being pruned like the others (driver.py).

    val_acc's reference 0.999 makes every trial "dead" at the first rung (epoch 1): each one
    must stop there, except the baseline, which trains to the full budget."""
    cfg = compose("search", [
        "logger=none", "search=random", "search.trials=3", "trainer.max_epochs=2",
        "search.pruning.enabled=true", "search.pruning.min_epochs=1", "search.pruning.eta=2",
        "network.param_limit=30000", "network.head_channels=64", "search.min_width=1",
        "dataset.max_train_samples=300",
        "search.objectives=[{name:val_acc,direction:max,ref:0.999},"
        "{name:params,direction:min,log:true}]"])
    study = run_search(cfg, tmp_path, Console(quiet=True))
    trials = study.trials()
    assert [t.info["source"] for t in trials][0] == "baseline"
    assert [(t.status, t.epochs_reached) for t in trials] == [
        ("complete", 2), ("pruned", 1), ("pruned", 1)]
    assert all(t.values["val_acc"] <= 0.999 for t in trials)
