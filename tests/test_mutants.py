"""Tests that kill the mutants of issue 20: small deliberate breakages of core behaviours the
rest of the suite did not notice. Each test names the mutant it kills."""

from __future__ import annotations

import math
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict
from rich.console import Console

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.network import count_flops, training_memory_mb
from nago_pl.network.budget import MULTIPLIER_STEPS, count_parameters
from nago_pl.network.configured import build_model, resolve_architecture
from nago_pl.network.model import NetworkSpec
from nago_pl.search import MOBO, Objective, SearchSpace, Study
from nago_pl.search import constraints as constraints_module
from nago_pl.search.constraints import (
    ARCHITECTURES_KEPT,
    Constraint,
    DataShape,
    FeasibilityCheck,
    conv_parameters_lower_bound,
    smallest_width_units,
)
from nago_pl.search.fidelity import curve_data, full_epochs, learned_objectives
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
from nago_pl.search.study import LeaseLost, _owner_alive, check_seed, trial_seed
from nago_pl.search.trial import trial_config
from nago_pl.space import Architecture

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


# ------------------------------------------------------------------------- fidelity.py survivors
FIDELITY_SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0},
                  "z": {"type": "float", "low": 0.0, "high": 1.0}}


def acc_at(trial: int, epoch: int) -> float:
    """A distinct val_acc per (trial, epoch), not exact in float32."""
    return 0.3 + 0.05 * epoch + 0.001 * trial


def run_trial(study: Study, index: int, epochs: int, status: str,
              with_params: bool = True) -> None:
    """A trial reporting val_acc each epoch (params with the first report, unless not)."""
    trial = study.add_trial({"x": index / 20, "z": 0.5}, seed=index)
    for epoch in range(1, epochs + 1):
        metrics = {"val_acc": acc_at(index, epoch)}
        if epoch == 1 and with_params:
            metrics["params"] = 1e4 + index
        study.report(trial.id, epoch, metrics)
    study.tell(trial.id, None, status=status, epochs=epochs)


def test_full_epochs_and_learned_objectives() -> None:
    """Mutants killed (fidelity.py): full_epochs taking the most any trial reached although a
    complete trial reached fewer (``complete = None`` / a misspelt status), or None when only
    pruned trials reached an epoch (``complete and [...]``); learned_objectives asking for more
    than two reports (``> 2`` / ``>= 3``)."""
    study = Study.open(":memory:", "full", FIDELITY_SPACE, OBJS)
    run_trial(study, 0, 1, "pruned")
    assert full_epochs(study, study.trials()) == 1
    run_trial(study, 1, 2, "complete")
    run_trial(study, 2, 3, "pruned")
    assert full_epochs(study, study.trials()) == 2
    assert full_epochs(study, []) is None
    reports = {study.trials()[1].id: study.reports(study.trials()[1].id)}
    assert learned_objectives(OBJS, reports) == [True, False]


def test_curve_data_rows_fidelities_and_early_points() -> None:
    """Mutants killed (fidelity.py ``curve_data``): every mutant that changes which trials give
    rows, at which fidelity, and which early epochs are taken: the early epochs' default count
    (3 / all), complete trials counted as stops, the failed trials included, ``break`` for
    ``continue`` after a trial without a finite value, ``_finite`` with ``or`` (a missing value
    raises), a complete trial of a smaller budget not at fidelity 1, a fidelity above 1 allowed,
    ``curve.get(e, None)`` (a complete trial without reports raises), float32 values."""
    study = Study.open(":memory:", "rows", FIDELITY_SPACE, OBJS)
    run_trial(study, 0, 4, "complete")  # the full budget: 4 epochs
    run_trial(study, 1, 3, "complete")  # a smaller budget: still final values (fidelity 1)
    run_trial(study, 2, 3, "complete")
    run_trial(study, 3, 1, "pruned", with_params=False)  # no params value: no params row
    for index, epochs in ((4, 1), (5, 1), (6, 2), (7, 2), (8, 3)):
        run_trial(study, index, epochs, "pruned")
    run_trial(study, 9, 5, "pruned")  # beyond the full budget: fidelity 1, not 5/4
    told = study.add_trial({"x": 0.5, "z": 0.5}, seed=10)  # complete, without any report
    study.tell(told.id, {"val_acc": 0.77, "params": 2e4})
    failed = study.add_trial({"x": 0.55, "z": 0.5}, seed=11)
    study.report(failed.id, 1, {"val_acc": 0.5})
    assert study.tell(failed.id, {"params": math.nan}).status == "failed"

    acc, params = curve_data(study, OBJS)
    # pruned trials stopped most often at epochs 1 (3 times) and 2 (twice): the early epochs
    final = [(1.0, acc_at(0, 4)), (1.0, acc_at(1, 3)), (1.0, acc_at(2, 3)),
             (0.25, acc_at(3, 1)), (0.25, acc_at(4, 1)), (0.25, acc_at(5, 1)),
             (0.5, acc_at(6, 2)), (0.5, acc_at(7, 2)), (0.75, acc_at(8, 3)),
             (1.0, acc_at(9, 5)), (1.0, 0.77)]
    early = [(0.25, acc_at(0, 1)), (0.5, acc_at(0, 2)), (0.25, acc_at(1, 1)),
             (0.5, acc_at(1, 2)), (0.25, acc_at(2, 1)), (0.5, acc_at(2, 2))]
    assert acc.Y.dtype == torch.float64
    assert list(zip(acc.X[:, -1].tolist(), acc.Y[:, 0].tolist(), strict=True)) == final + early
    assert params.X[:, -1].tolist() == [1.0] * 10  # every finished trial but the one without
    assert params.Y[:, 0].tolist() == [-math.log(1e4 + i) for i in (0, 1, 2, 4, 5, 6, 7, 8, 9)] \
        + [-math.log(2e4)]

    def early_values(cap: int) -> list[float]:
        return curve_data(study, OBJS, max_early_points=cap)[0].Y[len(final):, 0].tolist()

    # max_early_points keeps the newest early points (mutants: ``max(1, ...)``, ``len + cap``,
    # ``and False``)
    assert early_values(100) == [v for _, v in early]
    assert early_values(2) == [v for _, v in early[-2:]]
    assert early_values(0) == []


def test_a_trial_pruned_at_the_full_budget_gives_no_early_epoch() -> None:
    """Mutant killed (fidelity.py): ``e <= full`` for the early epochs (a complete trial's last
    value again, as an early point at fidelity 1)."""
    study = Study.open(":memory:", "edge", FIDELITY_SPACE, OBJS)
    run_trial(study, 0, 2, "complete")
    run_trial(study, 1, 2, "pruned")
    run_trial(study, 2, 2, "pruned")
    run_trial(study, 3, 1, "pruned")
    acc, _ = curve_data(study, OBJS)
    assert acc.X[:, -1].tolist() == [1.0, 1.0, 1.0, 0.5, 0.5]


# ---------------------------------------------------------------------- constraints.py survivors
SMALL = {"G1_nodes": 3, "G2_nodes": 1, "G3_nodes": 3}  # cell widths 1, 2, 4 at seed 0


def test_constraint_bounds_are_inclusive_and_errors_name_what_is_allowed() -> None:
    """Mutants killed: ``holds`` strict (``<``, ``>``) or always ``<=``; the parse errors'
    lists of allowed names joined by ``XX, XX``, and the not-a-number error's text."""
    at_most, at_least = Constraint.parse("params <= 5"), Constraint.parse(" flops>=1e3 ")
    assert at_most.holds(5) and not at_most.holds(5.5)
    assert at_least.holds(1000) and at_least.holds(2000) and not at_least.holds(999)
    assert str(at_least) == "flops >= 1000"
    allowed = "params, flops, latency_ms, memory_mb"
    for text, message in [
        ("params < 5", f"search.constraints: cannot read 'params < 5'; write '<name> <= "
                       f"<number>' or '>=', with name one of {allowed}"),
        ("depth <= 3", f"search.constraints: 'depth' is not a property known before training; "
                       f"allowed: {allowed}"),
        ("params <= 1.2.3", "search.constraints: '1.2.3' in 'params <= 1.2.3' is not a number"),
    ]:
        with pytest.raises(NagoError) as err:
            Constraint.parse(text)
        assert str(err.value) == message


def test_min_width_must_be_a_positive_integer() -> None:
    """Mutants killed: the min_width check with ``and`` for ``or`` (0 or 1.5 accepted), its
    message, and a default other than 1."""
    cfg = compose("search", ["logger=none"])
    assert FeasibilityCheck(cfg, DIGITS).min_width == 1
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(NagoError) as err:
            FeasibilityCheck(cfg, DIGITS, min_width=bad)  # type: ignore[arg-type]
        assert str(err.value) == f"search.min_width must be a positive integer, got {bad!r}"


def arch_with_ratios(ratios: str) -> Architecture:
    cfg = compose("search", ["logger=none", f"generator.channel_ratios={ratios}"])
    return FeasibilityCheck(cfg, DIGITS).architecture(0, SMALL)


def test_smallest_width_units_is_the_smallest_multiplier_that_gives_min_width() -> None:
    """Mutants killed (``smallest_width_units``): ``max(2, ...)``, the first guess as
    ``(min_width - 0.5) * ratio``, and every change of the loop that corrects a first guess
    one unit too small after float rounding (ratio 0.7, min_width 32: 0.7 x 45 + 0.5 is
    31.999..., so 360 units give 31 channels)."""
    def narrowest(arch: Architecture, units: int) -> int:
        spec = NetworkSpec(1, 10, 8, units / MULTIPLIER_STEPS)
        return min(spec.channels(cell.width) for cell in arch.cells)

    for ratios in ("[1,2,4]", "[0.7,1.4,2.8]", "[4,8,16]"):
        arch = arch_with_ratios(ratios)
        for min_width in (2, 3, 4, 7, 32):
            units = smallest_width_units(arch, min_width)
            assert narrowest(arch, units) >= min_width > narrowest(arch, units - 1), \
                (ratios, min_width)
    assert smallest_width_units(arch_with_ratios("[0.7,1.4,2.8]"), 32) == 361
    assert smallest_width_units(arch_with_ratios("[4,8,16]"), 1) == 1


def test_feasibility_at_the_exact_parameter_limit_and_at_a_fixed_multiplier() -> None:
    """Mutants killed (``_check``): the cheap bound trusted when it equals the limit
    (``needed < limit``), a network exactly at its limit rejected (``needed >= limit``), and the
    fixed-multiplier branch (no param_limit) with ``<=`` or broken; ``network_spec`` building its
    NetworkSpec from the wrong fields or unresolved interpolations."""
    cfg = compose("search", ["logger=none", "network.head_channels=${dataset.batch_size}"])
    check = FeasibilityCheck(cfg, DIGITS, min_width=4)
    spec = check.network_spec(cfg)
    assert spec == NetworkSpec(1, 10, 8, 1.0, 64, 0.2)
    arch = check.architecture(0, SMALL)
    narrowest = replace(spec, multiplier=smallest_width_units(arch, 4) / MULTIPLIER_STEPS)
    bound, exact = conv_parameters_lower_bound(arch, narrowest), count_parameters(arch, narrowest)
    assert bound < exact
    assert check.reason(0, {**SMALL, "param_limit": exact}) is None
    assert check.reason(0, {**SMALL, "param_limit": exact - 1}) == (
        f"4 channels in every cell need {exact:,} parameters, more than param_limit {exact - 1:,}")
    assert check.reason(0, {**SMALL, "param_limit": bound}) == (
        f"4 channels in every cell need {exact:,} parameters, more than param_limit {bound:,}")
    # no param_limit: network.multiplier 2 gives the width-1 cell 2 channels
    fixed = compose("search", ["logger=none", "network.param_limit=null", "network.multiplier=2",
                               "network.dropout=0.3"])
    assert FeasibilityCheck(fixed, DIGITS).network_spec(fixed) == NetworkSpec(1, 10, 8, 2.0, 256,
                                                                              0.3)
    assert FeasibilityCheck(fixed, DIGITS, min_width=2).reason(0, SMALL) is None
    assert FeasibilityCheck(fixed, DIGITS, min_width=3).reason(0, SMALL) == \
        "network.multiplier 2.0 gives cells under 3 channels"


def test_feasibility_check_caches_per_seed_and_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutants killed (``reason``, ``architecture``): cache keys that depend on the order of
    the config's keys, an architecture cache that never hits, keeps 63, or evicts the newest;
    the nb201 shortcut (no constraints: nothing to build) skipped."""
    configs, resolved = [], []
    real_config = constraints_module.trial_config
    real_resolve = constraints_module.resolve_architecture
    monkeypatch.setattr(constraints_module, "trial_config",
                        lambda *a: configs.append(a[2]) or real_config(*a))
    monkeypatch.setattr(constraints_module, "resolve_architecture",
                        lambda cfg: resolved.append(cfg.seed) or real_resolve(cfg))
    check = FeasibilityCheck(compose("search", ["logger=none"]), DIGITS, min_width=4)
    reordered = dict(reversed(list(SMALL.items())))
    assert check.reason(0, SMALL) == check.reason(0, reordered)
    assert check.architecture(0, reordered) is check.architecture(0, SMALL)
    assert (len(configs), resolved) == (2, [0])  # one check, one architecture
    for seed in range(1, ARCHITECTURES_KEPT + 1):
        check.architecture(seed, SMALL)
    assert resolved == list(range(ARCHITECTURES_KEPT + 1))
    check.architecture(ARCHITECTURES_KEPT, SMALL)  # the newest and the oldest kept: no rebuild
    check.architecture(1, SMALL)
    assert len(resolved) == ARCHITECTURES_KEPT + 1
    check.architecture(0, SMALL)  # evicted
    assert resolved[-1] == 0 and len(resolved) == ARCHITECTURES_KEPT + 2
    configs.clear()
    nb201 = compose("search", ["logger=none", "space=nb201"])
    assert FeasibilityCheck(nb201, DIGITS).reason(0, {}) is None
    assert configs == []


def test_constraints_on_nb201_and_each_cost_property() -> None:
    """Mutants killed: nb201 with constraints skipped (``and self.constraints``) or checked on
    another architecture/config; ``_broken`` joining with ``XX; XX``; the latency and memory
    properties missing, misnamed or measured on the meta device; memory's batch size (its
    default 1 when the config has none); ``memory_mb`` (the GPU-packing estimate)."""
    nb201 = compose("search", ["logger=none", "space=nb201"])
    tight = FeasibilityCheck(nb201, DIGITS, constraints=[Constraint.parse("params <= 1000"),
                                                         Constraint.parse("flops <= 1e3")])
    trial_cfg = trial_config(nb201, {}, 0)
    net = build_model(resolve_architecture(trial_cfg), trial_cfg, 1, 10, 8)
    params, flops = sum(p.numel() for p in net.parameters()), count_flops(net)
    assert tight.reason(0, {}) == (f"params <= 1000 (params = {params:.4g}); "
                                   f"flops <= 1000 (flops = {flops:.4g})")
    assert FeasibilityCheck(nb201, DIGITS, constraints=[Constraint.parse(f"params <= {params}")]
                            ).reason(0, {}) is None

    cfg = compose("search", ["logger=none"])
    config = {**SMALL, "param_limit": 60000}
    trial_cfg = trial_config(cfg, config, 0)
    for batch in (64, None):  # digits' batch size, then a config without one
        if batch is None:
            cfg = cfg.copy()
            with open_dict(cfg):
                del cfg.dataset.batch_size
        check = FeasibilityCheck(cfg, DIGITS, constraints=[
            Constraint.parse("latency_ms <= 1e9"), Constraint.parse("memory_mb <= 1e-6")])
        net = build_model(check.architecture(0, config), trial_cfg, 1, 10, 8)
        memory = training_memory_mb(net, batch or 1)
        assert check.memory_mb(0, config) == pytest.approx(memory)
        assert check.reason(0, config) == f"memory_mb <= 1e-06 (memory_mb = {memory:.4g})"
    slow = FeasibilityCheck(cfg, DIGITS, constraints=[Constraint.parse("latency_ms <= 0")])
    assert (slow.reason(0, config) or "").startswith("latency_ms <= 0 (latency_ms = ")


# ---------------------------------------------------------------------------- study.py survivors
def test_study_writes_keep_what_they_are_given() -> None:
    """Mutants killed (study.py): ``enqueue`` dropping budget, info or ``if_empty``;
    ``prune`` dropping its values; ``fail`` refusing a queued trial or losing the duration;
    ``take_queued`` taking one more than asked (``<=``) or returning None for a trial."""
    study = Study.open(":memory:", "writes", NAGO_SPACE, OBJS)
    sobol = NAGO.sobol(4, 0)
    queued = study.enqueue(sobol[0], seed=3, budget=5, info={"source": "baseline"})
    assert (queued.status, queued.budget, queued.info) == ("queued", 5, {"source": "baseline"})
    assert study.enqueue(sobol[1], seed=4, if_empty=True) is None
    study.enqueue(sobol[1], seed=4)
    (taken,) = study.take_queued(1)
    assert (taken.id, taken.status) == (queued.id, "running")
    assert [t.status for t in study.trials()] == ["running", "queued"]
    failed = study.fail(study.trials(("queued",))[0].id, "no worker")
    assert (failed.status, failed.error) == ("failed", "no worker")
    study.report(taken.id, 1, {"val_acc": 0.4, "params": 2e4})
    pruned = study.prune(taken.id, {"val_acc": 0.45})
    assert (pruned.status, pruned.values) == ("pruned", {"val_acc": 0.45, "params": 2e4})
    running = study.add_trial(sobol[2], seed=5)
    assert study.fail(running.id, "boom").duration is not None


def test_best_trials_are_complete_and_compared_in_float64() -> None:
    """Mutants killed (``best_trials``): pruned trials on the front (``trials(None)``), and
    the values compared in float32 (two accuracies 1e-9 apart become one)."""
    study = Study.open(":memory:", "best", NAGO_SPACE, OBJS)
    sobol = NAGO.sobol(3, 0)
    values = [{"val_acc": 0.9, "params": 5e4}, {"val_acc": 0.9 + 1e-9, "params": 5e4},
              {"val_acc": 0.99, "params": 1e4}]
    ids = []
    for i, (params, value) in enumerate(zip(sobol, values, strict=True)):
        trial = study.add_trial(params, seed=i)
        ids.append(trial.id)
        study.tell(trial.id, value, status="pruned" if i == 2 else "complete")
    assert [t.id for t in study.best_trials()] == [ids[1]]


def test_objective_and_reopen_messages_name_what_is_wrong(tmp_path: Path) -> None:
    """Mutants killed: ``from_config`` accepting a mapping without direction (``and``), its
    message; ``_check_same`` listing added names wrongly, and its joins (``XX; XX``,
    ``XX, XX``)."""
    with pytest.raises(NagoError) as err:
        Objective.from_config({"name": "val_acc"})
    assert str(err.value) == ("objective {'name': 'val_acc'}: needs 'name' and 'direction' "
                              "('max' or 'min')")
    db = tmp_path / "study.db"
    Study.open(db, "s", NAGO_SPACE, OBJS).close()
    other = {**{k: v for k, v in NAGO_SPACE.items() if k != "G3_P"},
             "G1_nodes": {"type": "int", "low": 3, "high": 12},
             "extra": {"type": "float", "low": 0.0, "high": 1.0}}
    with pytest.raises(NagoError) as err:
        Study.open(db, "s", other, OBJS)
    assert str(err.value).startswith(f"study 's' in {db} was created with a different search "
                                     "space: G1_nodes changed (")
    assert "); extra added; G3_P removed (use a new study name" in str(err.value)
    with pytest.raises(NagoError, match=r"given \[val_acc:max, flops:min\] \(use a new"):
        Study.open(db, "s", NAGO_SPACE, [Objective("val_acc", "max"), Objective("flops", "min")])


def test_checkpoint_empties_the_log_and_close_stops_the_heartbeat(tmp_path: Path) -> None:
    """Mutants killed: ``checkpoint`` with a broken statement (``close`` hides its error), and
    ``close`` unpacking or resetting the heartbeat wrongly (a second close must be harmless)."""
    db = tmp_path / "study.db"
    study = Study.open(db, "s", NAGO_SPACE, OBJS)
    study.add_trial(NAGO.sobol(1, 0)[0], seed=0)
    assert Path(f"{db}-wal").stat().st_size > 0
    study.checkpoint()
    assert Path(f"{db}-wal").stat().st_size == 0
    study.start_heartbeat(interval=0.01)
    study.close()
    study.close()


def test_trial_seeds_are_pinned() -> None:
    """Mutants killed (``trial_seed``): stream 1 by default, and ``>> 2``. The seeds of a
    study never change between versions (a resumed or re-run search trains the same nets)."""
    assert [trial_seed(0, i) for i in range(3)] == [1484405855, 1982462498, 1570558271]
    assert trial_seed(7, 3, stream=2) == 1341321889


def test_owner_alive_tells_live_dead_and_zombie_processes_apart(tmp_path: Path) -> None:
    """Mutants killed (``_owner_alive``): another host's owner taken as gone, a pid that is not
    a number read as one (``and``), the ':' split, and every misreading of
    ``/proc/<pid>/stat``'s state field (a process named ``a) x`` shows a split at the wrong
    ')'); a zombie is gone."""
    host = socket.gethostname()
    assert _owner_alive(f"{host}:{os.getpid()}:ab12")
    assert _owner_alive(f"elsewhere:{os.getpid() + 10**6}:ab12")  # only its heartbeat can tell
    assert _owner_alive(f"{host}:notapid:ab12")
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert not _owner_alive(f"{host}:{dead.pid}:ab12")
    odd = tmp_path / "a) x"
    odd.symlink_to(shutil.which("true") or "/bin/true")
    zombie = subprocess.Popen([str(odd)])
    try:
        stat = Path(f"/proc/{zombie.pid}/stat")
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)  # until it has exited (not yet reaped)
        assert not _owner_alive(f"{host}:{zombie.pid}:ab12")
    finally:
        zombie.wait()


def test_study_validation_messages() -> None:
    """Mutants killed: ``check_seed`` with ``and`` (-1 or 1.5 accepted) and its message;
    Objective's log message, a log objective's ref required above 1 (``<= 1``), ``ref`` not
    stored as a float; ``tell``'s status and missing-objective messages, and an error written
    for finite values (``or True``) or joined with ``XX, XX``; ``trials`` accepting an unknown
    status (``bad = None``) and its message."""
    assert check_seed(0) == 0
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(NagoError) as err:
            check_seed(bad)  # type: ignore[arg-type]
        assert str(err.value) == f"search seed must be a non-negative integer, got {bad!r}"
    with pytest.raises(NagoError) as err:
        Objective("params", "min", log="yes")  # type: ignore[arg-type]
    assert str(err.value) == "objective 'params': log must be true or false, got 'yes'"
    assert Objective("params", "min", log=True, ref=0.5).ref == 0.5
    assert type(Objective("val_acc", "max", ref=1).ref) is float

    study = Study.open(":memory:", "messages", NAGO_SPACE, OBJS)
    sobol = NAGO.sobol(3, 0)
    trial = study.add_trial(sobol[0], seed=0)
    with pytest.raises(ValueError) as err:
        study.tell(trial.id, {}, status="failed")  # type: ignore[arg-type]
    assert str(err.value) == "tell() status must be 'complete' or 'pruned', got 'failed'"
    with pytest.raises(NagoError) as err:
        study.tell(trial.id, None)
    assert str(err.value) == (f"trial {trial.id} has no value for objective(s) "
                              "['val_acc', 'params']; it reported: nothing")
    assert study.tell(trial.id, {"val_acc": 0.5, "params": 1e4}).error is None
    bad = study.add_trial(sobol[1], seed=1)
    assert study.tell(bad.id, {"val_acc": math.nan, "params": math.inf}).error == \
        "non-finite objective value(s): val_acc=nan, params=inf"
    with pytest.raises(ValueError) as err:
        study.trials(("done", "complete"))
    assert str(err.value) == ("unknown status(es) ['done']; allowed: queued, running, complete, "
                              "pruned, failed")


def test_leases_between_two_studies_on_one_file(tmp_path: Path) -> None:
    """Mutants killed (``_require``, ``_insert``): the lease check skipped for running trials
    (``<``, misspelt statuses, ``and queued_ok``), a queued trial always or never free to
    fail (the ``queued_ok`` mutants), the LeaseLost and wrong-status messages; a running
    trial added without a heartbeat (another process opening the study re-queues it), a queued
    one with a start time or an owner; ``enqueue(if_empty=True)`` refused on an empty study."""
    db = tmp_path / "study.db"
    mine = Study.open(db, "s", NAGO_SPACE, OBJS)
    sobol = NAGO.sobol(3, 0)
    queued = mine.enqueue(sobol[0], seed=0, if_empty=True)
    assert queued is not None and (queued.started, queued.owner) == (None, None)
    running = mine.add_trial(sobol[1], seed=1)
    other = Study.open(db, "s", NAGO_SPACE, OBJS)  # re-queues only trials whose lease is gone
    assert other.requeued == [] and other.trial(running.id).status == "running"
    lost = (f"trial {running.number} is no longer this process's: its lease expired and it was "
            "re-queued or taken over")
    with pytest.raises(LeaseLost) as err:
        other.report(running.id, 1, {"val_acc": 0.5})
    assert str(err.value) == lost
    with pytest.raises(LeaseLost) as err:
        other.fail(running.id, "not mine")
    assert str(err.value) == lost
    assert other.fail(queued.id, "cancelled").status == "failed"  # a queued trial is no one's
    mine.tell(running.id, {"val_acc": 0.5, "params": 1e4})
    with pytest.raises(ValueError) as err:
        mine.report(running.id, 2, {"val_acc": 0.6})
    assert str(err.value) == f"trial {running.id} is complete, expected running"
    with pytest.raises(ValueError) as err:
        mine.fail(running.id, "late")
    assert str(err.value) == f"trial {running.id} is complete, expected running or queued"


def test_restart_requeue_withdraw_and_revise_a_running_trial() -> None:
    """Mutants killed (``restart``, ``requeue``, ``_reset``, ``withdraw``, ``revise``; the driver's
    writes, which no test of the mutation run's selection called): each keeps or drops exactly
    what its docstring says, and refuses a trial that is not running."""
    study = Study.open(":memory:", "driver", NAGO_SPACE, OBJS)
    sobol = NAGO.sobol(4, 0)
    trial = study.add_trial(sobol[0], seed=7, budget=3, info={"source": "bo"})
    study.report(trial.id, 1, {"val_acc": 0.3})
    study.report(trial.id, 2, {"val_acc": 0.4})
    restarted = study.restart(trial.id)
    assert (restarted.status, restarted.epochs_reached, restarted.owner) == \
        ("running", None, study.owner)
    assert restarted.started is not None and study.reports(trial.id) == {}
    study.report(trial.id, 1, {"val_acc": 0.35})
    study.requeue(trial.id)
    queued = study.trial(trial.id)
    assert (queued.status, queued.epochs_reached, queued.started, queued.owner, queued.values) \
        == ("queued", None, None, None, None)
    assert (queued.params, queued.seed, queued.budget, queued.info) == \
        (trial.params, 7, 3, {"source": "bo"})
    assert study.reports(trial.id) == {}
    assert study.next_queued().id == trial.id
    study.tell(trial.id, {"val_acc": 0.5, "params": 1e4})
    for write in (study.restart, study.requeue, study.withdraw):
        with pytest.raises(ValueError, match=f"trial {trial.id} is complete, expected running"):
            write(trial.id)
    other = study.add_trial(sobol[1], seed=1)
    study.report(other.id, 1, {"val_acc": 0.5})
    study.withdraw(other.id)
    assert [t.id for t in study.trials()] == [trial.id]
    assert study.metrics_at_epoch(1) == {}
    with pytest.raises(ValueError, match=f"study 'driver' has no trial with id {other.id}"):
        study.trial(other.id)
    revised_id = study.add_trial(sobol[2], seed=2, info={"source": "bo"}).id
    revised = study.revise(revised_id, sobol[3], 9, {"source": "prescreen"})
    assert (revised.params, revised.seed, revised.info) == \
        ({**NAGO.fixed, **sobol[3]}, 9, {"source": "prescreen"})
    study.report(revised_id, 1, {"val_acc": 0.5})
    with pytest.raises(ValueError) as err:
        study.revise(revised_id, sobol[2], 2, {})
    assert str(err.value) == f"trial {revised_id} has reports: it trains already"
    with pytest.raises(NagoError):
        study.revise(revised_id, {**sobol[2], "G1_nodes": 99}, 2, {})  # out of range


def test_settings_are_stored_and_a_change_is_named(tmp_path: Path) -> None:
    """Mutants killed (``_check_settings``, which no test of the mutation run's selection
    called): settings stored with a new study, a reopened one with others refused with a
    message naming each change (an unset one as None), or replaced when allowed."""
    db = tmp_path / "study.db"
    Study.open(db, "s", NAGO_SPACE, OBJS, settings={"epochs": 3, "data": "digits"}).close()
    Study.open(db, "s", NAGO_SPACE, OBJS, settings={"data": "digits", "epochs": 3}).close()
    with pytest.raises(NagoError) as err:
        Study.open(db, "s", NAGO_SPACE, OBJS, settings={"epochs": 4, "data": "digits", "aug": 1})
    assert str(err.value) == (
        f"study 's' in {db} was run with other settings: aug=None before, 1 now; epochs=3 "
        "before, 4 now (its trials would not be comparable: use a new study_name, or "
        "search.allow_changed_settings=true to mix them)")
    Study.open(db, "s", NAGO_SPACE, OBJS, settings={"epochs": 4},
               allow_changed_settings=True).close()
    Study.open(db, "s", NAGO_SPACE, OBJS, settings={"epochs": 4}).close()
    with pytest.raises(NagoError, match=r"other settings: epochs=4 before, 3 now \("):
        Study.open(db, "s", NAGO_SPACE, OBJS, settings={"epochs": 3})
    Study.open(db, "t", NAGO_SPACE, OBJS, settings={"epochs": 3}).close()  # per study


def test_the_heartbeat_refreshes_only_this_studys_running_trials(tmp_path: Path) -> None:
    """Mutants killed (``start_heartbeat``, which no test of the mutation run's selection
    called): the background thread's update (its values, its filter on status and owner)."""
    db = tmp_path / "study.db"
    study = Study.open(db, "s", NAGO_SPACE, OBJS)
    sobol = NAGO.sobol(3, 0)
    mine = study.add_trial(sobol[0], seed=0)
    done = study.add_trial(sobol[1], seed=1)
    study.tell(done.id, {"val_acc": 0.5, "params": 1e4})
    theirs = Study.open(db, "s", NAGO_SPACE, OBJS).add_trial(sobol[2], seed=2)
    reader = sqlite3.connect(db)

    def beats() -> list[float]:
        return [reader.execute("SELECT heartbeat FROM trials WHERE id = ?", (t.id,)).fetchone()[0]
                for t in (mine, done, theirs)]

    before = beats()
    study.start_heartbeat(interval=0.01)
    study.start_heartbeat(interval=0.01)  # a second call is harmless
    for _ in range(1000):
        if beats()[0] != before[0]:
            break
        time.sleep(0.01)
    after = beats()
    study.close()
    reader.close()
    assert after[0] > before[0] and after[1:] == before[1:]


def test_open_keeps_what_it_is_given_and_requeues_only_lost_leases(tmp_path: Path) -> None:
    """Mutants killed (``open``, ``_attach``, ``__init__``, ``_trial_from_row``,
    ``requeue_expired``, ``trial``, ``_coerce_objectives``): a SearchSpace re-parsed, parent
    folders not made, the name or path lost, a trial's finish time or owner dropped, this
    Study's own stale trial re-queued (``or``), another's stale one kept (``and``), and the
    messages of an empty objective list, an unknown trial id and an unopenable path."""
    db = tmp_path / "a" / "b" / "study.db"
    study = Study.open(db, "s", NAGO, OBJS)  # a SearchSpace, in folders that do not exist yet
    assert (study.name, study.path, study.space) == ("s", str(db), NAGO)
    sobol = NAGO.sobol(2, 0)
    done = study.tell(study.add_trial(sobol[0], seed=0).id, {"val_acc": 0.5, "params": 1e4})
    assert done.finished is not None and done.owner == study.owner
    stale = study.add_trial(sobol[1], seed=1)
    writer = sqlite3.connect(db)
    writer.execute("UPDATE trials SET heartbeat = ? WHERE id = ?", (time.time() - 120, stale.id))
    writer.commit()
    writer.close()
    assert study.requeue_expired() == []  # its own: this Study is alive
    other = Study.open(db, "s", NAGO, OBJS)
    assert [t.id for t in other.requeued] == [stale.id]
    with pytest.raises(ValueError) as err:
        study.trial(999)
    assert str(err.value) == "study 's' has no trial with id 999"
    with pytest.raises(NagoError) as err:
        Study.open(":memory:", "s", NAGO, [])
    assert str(err.value) == "a study needs at least one objective ({name, direction: max|min})"
    with pytest.raises(NagoError) as err:
        Study.open(tmp_path, "s", NAGO, OBJS)  # a folder
    assert str(err.value).startswith(f"cannot open study database {tmp_path}: ")


def test_a_study_file_from_before_leases_gets_their_columns(tmp_path: Path) -> None:
    """Mutants killed (``_attach``): the columns added after the first release (owner,
    heartbeat) not added to an older file (``missing = None``, a broken script)."""
    db = tmp_path / "study.db"
    Study.open(db, "s", NAGO, OBJS).close()
    old = sqlite3.connect(db)
    for column in ("owner", "heartbeat"):
        old.execute(f"ALTER TABLE trials DROP COLUMN {column}")
    old.commit()
    old.close()
    study = Study.open(db, "s", NAGO, OBJS)
    assert study.add_trial(NAGO.sobol(1, 0)[0], seed=0).owner == study.owner
