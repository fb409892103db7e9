"""Property-based tests: valid generators, search spaces and settings are accepted and do what
they promise; junk is refused with a project error naming exactly the setting that is wrong.

Each area has a property over valid inputs (which must succeed) and one over junk (each case
wrong in one known way, whose error must begin with the wrong setting's name); both label the
outcome of each example with ``hypothesis.event`` (see ``pytest --hypothesis-show-statistics``).
The examples run derandomised (the ``ci`` profile in conftest.py); ``HYPOTHESIS_PROFILE=explore``
draws many new ones, and what it finds is pinned below with ``@example``.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig
from omegaconf.nodes import FloatNode, IntegerNode

from nago_pl.config import compose, instantiate_checked
from nago_pl.config.cli import one_line
from nago_pl.config.validate import MAX_PRESCREEN, validate_search
from nago_pl.errors import NagoError
from nago_pl.network import NetworkSpec, choose_multiplier, count_parameters
from nago_pl.search.space import MAX_INT, SearchSpace
from nago_pl.space import GeneratorConfig, sample
from nago_pl.space.architecture import OPS
from nago_pl.space.generator import MAX_NODES, MAX_OPS, MAX_RATIO
from nago_pl.space.graphs import FAMILIES

NAN, INF = float("nan"), float("inf")
#: Values of no setting's type and range (each junk strategy adds its setting's own).
JUNK = [None, "x", True, NAN, INF, [], {}]


# ---------------------------------------------------------------- the generator
LEVELS = ("G1", "G2", "G3")
#: Stage ratios over their whole range; channel ratios (widths) over the usual ones, so most
#: networks fit the budgets drawn (widths x1000 outgrow any).
STAGE_RATIO, CHANNEL_RATIO = st.floats(1e-3, MAX_RATIO), st.floats(0.05, 16.0)
#: Parameter budgets, log-uniform over 10^4 (below most networks) .. 10^7.
BUDGETS = st.floats(4.0, 7.0).map(lambda exponent: round(10**exponent))


@st.composite
def valid_generators(draw: st.DrawFn) -> dict[str, Any]:
    """A mapping ``GeneratorConfig.from_mapping`` accepts (any subset of its fields)."""
    nodes = [draw(st.integers(1, 8)) for _ in LEVELS]
    stages = draw(st.integers(1, 4))
    values: dict[str, Any] = {
        **{f"{level}_nodes": n for level, n in zip(LEVELS, nodes, strict=True)},
        **{f"{level}_K": draw(st.integers(1, MAX_NODES - 1)) for level in LEVELS},
        **{f"{level}_P": draw(st.floats(0.0, 1.0)) for level in LEVELS},
        **{f"{level}_family": draw(st.sampled_from(FAMILIES))
           for level in ("top", "mid", "bottom")},
        "stage_ratios": draw(st.lists(STAGE_RATIO, min_size=stages, max_size=stages)),
        "channel_ratios": draw(st.lists(CHANNEL_RATIO, min_size=stages, max_size=stages)),
        "ops": draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=4)),
    }
    # leave some fields at their defaults (the default ratios have 3 stages: both or neither)
    dropped = draw(st.sets(st.sampled_from([k for k in values if not k.endswith("ratios")])))
    return {k: v for k, v in values.items() if k not in dropped}


#: Per field, values it refuses whatever the other fields hold.
BAD_FIELD = {
    **{f"{level}_nodes": st.sampled_from([0, -1, MAX_NODES + 1, 2.5, *JUNK]) for level in LEVELS},
    **{f"{level}_K": st.sampled_from([0, -3, MAX_NODES, 1.5, *JUNK]) for level in LEVELS},
    **{f"{level}_P": st.sampled_from([-0.1, 1.5, -INF, *JUNK]) for level in LEVELS},
    **{f"{level}_family": st.sampled_from(["foo", "", "WS", 1, *JUNK])
       for level in ("top", "mid", "bottom")},
    **{name: st.sampled_from([[], [0.0], [-1.0], [2 * MAX_RATIO], [1.0, NAN], [True], ["a"], *JUNK])
       for name in ("stage_ratios", "channel_ratios")},
    "ops": st.sampled_from([[], ["conv7x7"], ["conv3x3", 1], "conv3x3", *JUNK]),
}


@st.composite
def junk_generators(draw: st.DrawFn) -> tuple[dict[str, Any], Any, str]:
    """``(values, seed, start)``: a valid mapping with one thing wrong; the error must begin
    with ``start``, which names it."""
    values = draw(valid_generators())
    wrong = draw(st.sampled_from([*BAD_FIELD, "seed", "unknown", "op nodes", "stages"]))
    seed: Any = draw(st.integers(0, 2**32 - 1))
    if wrong in BAD_FIELD:
        values[wrong] = draw(BAD_FIELD[wrong])
        if wrong == "G2_P":  # G2_P matters only for a WS or ER mid level
            values["mid_family"] = draw(st.sampled_from(["ws", "er"]))
        return values, seed, f"{wrong}="
    if wrong == "seed":
        return values, draw(st.sampled_from([-1, 2**63, 1.5, *JUNK])), "seed="
    if wrong == "unknown":
        name = draw(st.sampled_from(["G4_nodes", "g1_nodes", "nodes", "seed"]))
        return {**values, name: 3}, seed, f"unknown generator parameter(s) {name}"
    if wrong == "op nodes":
        values.update(G1_nodes=MAX_NODES, G2_nodes=MAX_NODES,
                      G3_nodes=draw(st.integers(MAX_OPS // MAX_NODES**2 + 1, MAX_NODES)))
        return values, seed, "G1_nodes x G2_nodes x G3_nodes"
    stages = len(values["stage_ratios"])  # one channel ratio per stage
    values["channel_ratios"] = [1.0] * draw(st.integers(1, 5).filter(lambda n: n != stages))
    return values, seed, "stage_ratios has"


@given(values=valid_generators(), seed=st.integers(0, 2**32 - 1), limit=BUDGETS,
       image_size=st.sampled_from([8, 32, 64]))
def test_valid_generators_sample_networks_within_their_budget(
        values: dict[str, Any], seed: int, limit: int, image_size: int) -> None:
    try:
        arch = sample(GeneratorConfig.from_mapping(values), seed)
    except NagoError as err:  # a level whose P is too low to draw a connected graph
        event("no connected graph")
        assert "no connected" in str(err) and str(err).startswith(
            tuple(f"{level}_nodes=" for level in LEVELS)), err
        return
    spec = NetworkSpec(in_channels=3, num_classes=10, image_size=image_size, multiplier=1)
    try:
        multiplier = choose_multiplier(arch, spec, limit)
    except NagoError as err:
        event("budget below the smallest network")
        assert str(err).startswith(f"network.param_limit={limit} is below"), err
        return
    event("fits its budget")
    assert count_parameters(arch, NetworkSpec(3, 10, image_size, multiplier)) <= limit


@given(case=junk_generators())
@example(case=({"G1_P": NAN}, 0, "G1_P="))
@example(case=({"mid_family": "ws", "G2_P": INF}, 0, "G2_P="))
def test_invalid_generators_are_refused_naming_the_wrong_field(
        case: tuple[dict[str, Any], Any, str]) -> None:
    values, seed, start = case
    with pytest.raises(NagoError) as info:
        sample(GeneratorConfig.from_mapping(values), seed)
    event(f"refused: {start.split('=')[0]}")
    assert str(info.value).startswith(start), (start, info.value)


# ---------------------------------------------------------------- the search space
NAMES = ["G1_nodes", "G1_P", "param_limit", "mid_family", "x", "stage_ratio_0"]
FINITE = st.floats(-1e9, 1e9, allow_subnormal=False)
SCALAR = st.one_of(st.text(min_size=1, max_size=4), st.integers(-10**6, 10**6), st.booleans(),
                   FINITE)


@st.composite
def valid_specs(draw: st.DrawFn, searched: bool = False) -> dict[str, Any]:
    """One valid entry: an int or float range (maybe on a log scale), a choice or (unless
    ``searched``) a fixed value."""
    kind = draw(st.sampled_from(["int", "float", "choice", *([] if searched else ["fixed"])]))
    if kind == "choice":
        return {"type": "choice", "values": draw(st.lists(
            SCALAR, min_size=2, max_size=5, unique_by=lambda v: (type(v), v)))}
    if kind == "fixed":
        return {"value": draw(SCALAR)}
    log = draw(st.booleans())
    if kind == "int":
        low = draw(st.integers(1 if log else -10**6, 10**6))
        high = low + draw(st.integers(1, MAX_INT - low))
    elif log:  # apart in log space too
        low = draw(st.floats(1e-9, 1e6))
        high = low * draw(st.floats(1.0 + 1e-9, 1e3))
    else:
        low = draw(st.floats(-1e9, 1e9, allow_subnormal=False, exclude_max=True))
        high = draw(st.floats(low, 1e9, exclude_min=True))
    spec = {"type": kind, "low": low, "high": high}
    if log or draw(st.booleans()):
        spec["log"] = log
    return spec


@st.composite
def valid_spaces(draw: st.DrawFn) -> dict[str, Any]:
    """A search space ``SearchSpace.from_config`` accepts: 1-4 entries, one or more searched,
    a range maybe conditional on a choice."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    space = {name: draw(valid_specs()) for name in names}
    searched = [n for n, s in space.items() if "value" not in s]
    if not searched:
        space[names[0]] = draw(valid_specs(searched=True))
    choices = [n for n, s in space.items() if s.get("type") == "choice"]
    ranges = [n for n, s in space.items() if s.get("type") in ("int", "float")]
    if choices and ranges and draw(st.booleans()):
        parent, child = draw(st.sampled_from(choices)), draw(st.sampled_from(ranges))
        values = space[parent]["values"]
        space[child]["when"] = {parent: draw(st.lists(st.sampled_from(values), min_size=1,
                                                      unique_by=lambda v: (type(v), v)))}
    return space


BAD_SPECS = ["not a mapping", "empty", "low >= high", "bound", "type", "int bounds", "log",
             "log flag", "unknown key", "missing key", "fixed key", "choice", "when", "too wide"]


def _bad_spec(draw: st.DrawFn, bad: str, space: dict[str, Any]) -> Any:
    """An entry wrong in the way ``bad`` names, whatever the rest of the ``space`` holds."""
    rng = {"type": "int", "low": 0, "high": 5}
    if bad == "not a mapping":
        return draw(st.sampled_from([None, "x", 1.5, [], True]))
    if bad == "empty":
        return {}
    if bad == "low >= high":
        low = draw(st.integers(-100, 100))
        return {"type": draw(st.sampled_from(["int", "float"])), "low": low,
                "high": low - draw(st.integers(0, 10))}
    if bad == "bound":
        return {**rng, draw(st.sampled_from(["low", "high"])):
                draw(st.sampled_from([NAN, INF, -INF, "1", None, True, [1]]))}
    if bad == "type":
        return {**rng, "type": draw(st.sampled_from(["str", "", None, "Int", 1]))}
    if bad == "int bounds":
        return {**rng, "low": 0.5}
    if bad == "log":
        return {**rng, "low": draw(st.sampled_from([0, -1])), "log": True}
    if bad == "log flag":
        return {**rng, "log": draw(st.sampled_from(["yes", 1, None]))}
    if bad == "unknown key":
        return {**rng, draw(st.sampled_from(["step", "values", "q"])): 1}
    if bad == "missing key":
        missing = draw(st.sampled_from(["type", "low", "high"]))
        return {k: v for k, v in rng.items() if k != missing}
    if bad == "fixed key":
        return {"value": 1, **rng}
    if bad == "choice":
        return {"type": "choice", "values": draw(st.sampled_from(
            [[], [1], "ab", [1, 1], ["a", "a"], [1, [2]], [1, None], [NAN, 1], 3]))}
    if bad == "too wide":
        return {"type": "int", "low": -MAX_INT - 1, "high": 0}
    # a condition on no searched choice, or on values the choice does not have
    choices = [n for n, s in space.items() if isinstance(s, dict) and s.get("type") == "choice"]
    parent = draw(st.sampled_from(choices)) if choices else "nothing"
    return {**rng, "when": draw(st.sampled_from([{parent: ["no such value"]}, {"nothing": [1]},
                                                 {parent: []}, "x", None]))}


@st.composite
def junk_spaces(draw: st.DrawFn) -> tuple[dict[str, Any], str, str]:
    """``(space, name, wrong)``: a valid space with entry ``name`` made invalid (``wrong``)."""
    space = draw(valid_spaces())
    name = draw(st.sampled_from(NAMES))
    for spec in space.values():  # a condition on the entry made invalid: not the error sought
        if name in spec.get("when", {}):
            del spec["when"]
    wrong = draw(st.sampled_from(BAD_SPECS))
    space[name] = _bad_spec(draw, wrong, {k: v for k, v in space.items() if k != name})
    return space, name, wrong


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


@given(space=valid_spaces(), seed=st.integers(0, 2**31), n=st.integers(1, 6))
@example(space={"G1_nodes": {"type": "int", "low": 0, "high": 1},
                "G1_P": {"type": "int", "low": 1, "high": MAX_INT}}, seed=0, n=4)
def test_valid_search_spaces_encode_and_round_trip_their_points(
        space: dict[str, Any], seed: int, n: int) -> None:
    box = SearchSpace.from_config(space)
    event("conditional" if box.conditions else "unconditional")
    points = box.sobol(n, seed)
    assert len(points) == n
    for point in points:
        for param in box.params:
            value = point[param.name]
            if param.kind == "choice":
                assert any(_same(value, v) for v in param.values)
            else:
                assert type(value) is (int if param.kind == "int" else float)
                assert param.low <= value <= param.high
            if not box.active(param.name, point):
                assert _same(value, param.values[0] if param.values else param.low)
        assert all(_same(point[name], value) for name, value in box.fixed.items())
    unit = box.to_unit(points)
    assert ((unit >= 0) & (unit <= 1)).all()
    for again, point in zip(box.from_unit(unit), points, strict=True):
        assert again.keys() == point.keys()
        for param in box.params:  # integers and choices exactly, floats to rounding
            a, b = again[param.name], point[param.name]
            assert _same(a, b) if param.kind != "float" else \
                math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * (param.high - param.low))
    assert SearchSpace.from_config(box.to_config()).to_config() == box.to_config()


@given(case=junk_spaces())
@example(case=({"G1_P": {"type": "int", "low": 1, "high": 5222509093386361}}, "G1_P", "too wide"))
@example(case=({"G1_P": {"type": "float", "low": NAN, "high": 1}}, "G1_P", "bound"))
@example(case=({"G1_P": {"type": "float", "low": -1e308, "high": 1e308}}, "G1_P", "too wide"))
@example(case=({"G1_P": {"type": "float", "low": 999999999.9999998, "high": 1e9, "log": True}},
               "G1_P", "log"))
@example(case=({"G1_nodes": {"type": "int", "low": 0}}, "G1_nodes", "missing key"))
def test_invalid_search_spaces_are_refused_naming_the_wrong_parameter(
        case: tuple[dict[str, Any], str, str]) -> None:
    space, name, wrong = case
    with pytest.raises(NagoError) as info:
        SearchSpace.from_config(space)
    event(f"refused: {wrong}")
    assert str(info.value).startswith(f"search space parameter '{name}': "), info.value


# ---------------------------------------------------------------- the command line
def _numeric_settings(node: DictConfig, prefix: str = "") -> list[str]:
    """The dotted names of the search config's number settings (typed or holding a number)."""
    names = []
    for key in node:
        child, name = node._get_node(key), f"{prefix}{key}"
        if isinstance(child, DictConfig):
            names += _numeric_settings(child, f"{name}.")
        elif isinstance(child, IntegerNode | FloatNode) or (
                isinstance(child._value(), int | float) and not isinstance(child._value(), bool)):
            names.append(name)
    return names


#: Each example composes a Hydra config (about 0.3 s; a valid one also opens a study, builds
#: the strategy and a Trainer): fewer examples than the other properties.
VALID_SETTINGS = settings(max_examples=max(1, settings.default.max_examples // 5))
JUNK_SETTINGS = settings(max_examples=max(1, settings.default.max_examples // 4))
SEARCH = compose("search")
NUMBER_SETTINGS = _numeric_settings(SEARCH)
FRACTION = st.floats(0.0, 1.0, exclude_min=True)
#: Settings with values they accept (override text) and values they refuse.
SETTINGS: dict[str, tuple[st.SearchStrategy[Any], list[Any]]] = {
    "seed": (st.integers(0, 2**32 - 1), [-1, 2**32, "abc", 1.5]),
    "trainer.max_epochs": (st.integers(1, 200), [0, -1, "abc", 1.5]),
    "trainer.gradient_clip_val": (st.one_of(st.none(), st.floats(0, 100)), [-1, "abc"]),
    "trainer.accumulate_grad_batches": (st.integers(1, 8), [0, 1.5]),
    "trainer.limit_train_batches": (st.one_of(st.none(), st.integers(1, 10**6), FRACTION),
                                    [0, -1, 0.0, 1.5, "abc", True]),
    "trainer.limit_val_batches": (st.one_of(st.none(), st.integers(1, 10**6), FRACTION),
                                  [0, -2, 2.5, "abc"]),
    "network.param_limit": (st.integers(10, 10**8), [0, -5, "abc", 1.5]),
    "network.dropout": (st.floats(0.0, 1.0, exclude_max=True), [1, -0.1, "abc"]),
    "model.optimizer.lr": (st.floats(1e-6, 1.0), ["abc", True]),
    "model.optimizer.momentum": (st.floats(0.0, 0.99, exclude_min=True), ["abc"]),  # Nesterov
    "model.label_smoothing": (st.floats(0.0, 1.0, exclude_max=True), [1, -0.5]),
    "dataset.batch_size": (st.integers(1, 512), [0, "abc"]),
    "dataset.val_fraction": (st.floats(0.01, 0.99), [0, 1, -0.5]),
    "search.trials": (st.integers(1, 1000), [0, -3, "abc"]),
    "search.pruning.eta": (st.floats(1.01, 8.0), [1, 0.5, "abc"]),
    "search.final.top": (st.integers(0, 5), [-1]),
    "search.min_width": (st.integers(1, 16), [0]),
    "search.prescreen": (st.integers(0, MAX_PRESCREEN), [-1, MAX_PRESCREEN + 1, 10**9]),
    "search.max_minutes": (st.one_of(st.none(), st.floats(0.01, 1e4)), [0, -1]),
    "search.space.G1_nodes.high": (st.integers(4, 64), []),
    "search.space.G1_P.low": (st.floats(0.0, 0.9), []),
    "executor.cpus_per_trial": (st.integers(1, 16), [0]),
}


def text(value: Any) -> str:
    """``value`` as Hydra override text."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else \
        repr(value) if isinstance(value, float) else str(value)


def check_search_settings(overrides: list[str]) -> None:
    """What ``search.py`` does with its settings before its first trial (minus loading data)."""
    from nago_pl.search.runner import open_study, search_strategy
    from nago_pl.training.run import make_trainer

    cfg = compose("search", overrides)
    validate_search(cfg)
    with tempfile.TemporaryDirectory() as run_dir:
        study = open_study(cfg, Path(run_dir))
        try:
            search_strategy(cfg, study)
        finally:
            study.close()
        instantiate_checked(cfg.dataset, "dataset")
        make_trainer(cfg, None, [], Path(run_dir))


def refusal(overrides: list[str]) -> str:
    """The one-line error ``search.py`` gives for ``overrides``."""
    try:
        check_search_settings(overrides)
    except NagoError as err:
        return str(err)
    except Exception as err:  # noqa: BLE001 - Hydra's composition errors, shown as one line
        return one_line(err)
    raise AssertionError(f"{overrides}: accepted")


#: Objectives (of the trial metrics) as override text, each maybe log-scaled or referenced.
OBJECTIVE = st.sampled_from([("val_acc", "max"), ("val_loss", "min"), ("params", "min"),
                             ("flops", "min"), ("latency_ms", "min"), ("memory_mb", "min")])
OBJECTIVES = st.lists(st.tuples(OBJECTIVE, st.booleans(), st.one_of(st.none(), st.floats(
    0.01, 1e6))), min_size=1, max_size=3, unique_by=lambda o: o[0]).map(
    lambda objectives: "[" + ",".join(
        f"{{name:{name},direction:{direction},log:{text(log)}"
        + ("" if ref is None else f",ref:{text(ref)}") + "}"
        for (name, direction), log, ref in objectives) + "]")


@st.composite
def valid_settings(draw: st.DrawFn) -> list[str]:
    """1-3 settings, each at a value it accepts, maybe with other objectives."""
    keys = draw(st.lists(st.sampled_from(list(SETTINGS)), min_size=1, max_size=3, unique=True))
    overrides = [f"{key}={text(draw(SETTINGS[key][0]))}" for key in keys]
    if draw(st.booleans()):
        overrides.append(f"search.objectives={draw(OBJECTIVES)}")
    return overrides


#: Objectives ``search.py`` refuses naming ``search.objectives``.
BAD_OBJECTIVES = ["[{name:test_acc,direction:max}]", "[{name:x,direction:min}]",
                  "[{name:val_acc,direction:max,ref:nan}]", "[{name:params,direction:min,ref:inf}]"]


@st.composite
def junk_settings(draw: st.DrawFn) -> tuple[list[str], str, str]:
    """``(overrides, key, wrong)``: valid settings plus setting ``key`` at a value it refuses:
    out of its range, or not finite (any number setting), or an objective that is not one."""
    overrides = draw(valid_settings())
    wrong = draw(st.sampled_from(["out of range", "not finite", "objective"]))
    if wrong == "not finite":
        key = draw(st.sampled_from(NUMBER_SETTINGS))
        value = draw(st.sampled_from(["nan", "inf", "-inf"]))
    elif wrong == "objective":
        key, value = "search.objectives", draw(st.sampled_from(BAD_OBJECTIVES))
    else:
        key = draw(st.sampled_from([k for k, (_, bad) in SETTINGS.items() if bad]))
        value = text(draw(st.sampled_from(SETTINGS[key][1])))
    overrides = [o for o in overrides if not o.startswith(f"{key}=")] + [f"{key}={value}"]
    return overrides, key, wrong


@VALID_SETTINGS
@given(overrides=valid_settings())
@example(overrides=["trainer.limit_train_batches=150", "trainer.limit_val_batches=0.5"])
def test_valid_settings_are_accepted(overrides: list[str]) -> None:
    check_search_settings(overrides)
    event(f"accepted: {len(overrides)} setting(s)")


@JUNK_SETTINGS
@given(case=junk_settings())
@example(case=(["model.optimizer.lr=nan"], "model.optimizer.lr", "not finite"))
@example(case=(["dataset.val_fraction=nan"], "dataset.val_fraction", "not finite"))
@example(case=(["search.space.G1_P.low=nan"], "search.space.G1_P.low", "not finite"))
@example(case=(["search.space.param_limit.high=inf"], "search.space.param_limit.high",
               "not finite"))
def test_invalid_settings_are_refused_naming_the_setting(case: tuple[list[str], str, str]) -> None:
    overrides, key, wrong = case
    message = refusal(overrides)
    event(f"refused: {wrong}")
    assert "\n" not in message
    assert message.startswith(key) and message[len(key)] in "=:[", (overrides, message)
