"""Property-based tests: random generators, search spaces and settings are accepted, or refused
with a project error naming the parameter; never another exception, never more than seconds."""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from nago_pl.config import compose, instantiate_checked
from nago_pl.config.cli import one_line
from nago_pl.config.validate import validate_search
from nago_pl.errors import NagoError
from nago_pl.network import NetworkSpec, choose_multiplier, count_parameters
from nago_pl.search.runner import open_study, search_strategy
from nago_pl.search.space import SearchSpace
from nago_pl.space import GeneratorConfig, sample
from nago_pl.space.architecture import OPS
from nago_pl.space.graphs import FAMILIES

SECONDS = 5.0  # the most any one check may take
RUN = settings(max_examples=120, deadline=timedelta(seconds=2 * SECONDS),
               suppress_health_check=[HealthCheck.too_slow])
JUNK = st.sampled_from([None, "x", True, 1.5, -1, float("nan"), float("inf"), [], {}])
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6))


def timed(check: Any, *args: Any) -> Any:
    started = time.perf_counter()
    try:
        return check(*args)
    finally:
        assert time.perf_counter() - started < SECONDS, f"{check.__name__} took too long"


# ---------------------------------------------------------------- the generator
RATIOS = st.one_of(st.lists(st.one_of(st.floats(1e-4, 2e3), st.integers(-1, 5)), min_size=0,
                            max_size=5), JUNK)
GENERATOR_VALUES = {
    **{f"G{level}_nodes": st.one_of(st.integers(-1, 70), JUNK) for level in (1, 2, 3)},
    **{f"G{level}_K": st.one_of(st.integers(-1, 70), JUNK) for level in (1, 2, 3)},
    **{f"G{level}_P": st.one_of(st.floats(-0.5, 1.5), JUNK) for level in (1, 2, 3)},
    **{f"{level}_family": st.one_of(st.sampled_from(FAMILIES), JUNK)
       for level in ("top", "mid", "bottom")},
    "stage_ratios": RATIOS, "channel_ratios": RATIOS,
    "ops": st.one_of(st.lists(st.sampled_from([*OPS, "conv7x7"]), max_size=4), JUNK),
}


@RUN
@given(values=st.fixed_dictionaries({}, optional=GENERATOR_VALUES),
       seed=st.one_of(st.integers(0, 2**40), JUNK),
       limit=st.integers(1, 10**8), image_size=st.sampled_from([8, 32, 64]))
def test_any_generator_samples_and_fits_a_budget_or_names_its_parameter(
        values: dict[str, Any], seed: Any, limit: int, image_size: int) -> None:
    try:
        config = GeneratorConfig.from_mapping(values)
        arch = timed(sample, config, seed)
    except NagoError as err:
        named = [*values, "seed"]
        assert any(name in str(err) for name in named), err
        return
    spec = NetworkSpec(in_channels=3, num_classes=10, image_size=image_size, multiplier=1)
    try:
        multiplier = timed(choose_multiplier, arch, spec, limit)
    except NagoError as err:
        assert "param_limit" in str(err)
        return
    spec = NetworkSpec(3, 10, image_size, multiplier)
    assert count_parameters(arch, spec) <= limit


# ---------------------------------------------------------------- the search space
SPEC = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["int", "float", "str"]), "low": NUMBER,
                           "high": NUMBER}, optional={"log": st.one_of(st.booleans(), JUNK)}),
    st.fixed_dictionaries({"value": st.one_of(NUMBER, JUNK)}),
    st.dictionaries(st.sampled_from(["type", "low", "high", "log", "value", "step"]), JUNK,
                    max_size=4),
    JUNK,
)


@RUN
@given(space=st.dictionaries(st.sampled_from(["G1_nodes", "G1_P", "param_limit", "x", ""]),
                             SPEC, max_size=4), seed=st.integers(0, 2**31))
def test_any_search_space_encodes_its_points_or_names_its_parameter(space: dict[str, Any],
                                                                    seed: int) -> None:
    try:
        box = timed(SearchSpace.from_config, space)
    except NagoError as err:
        assert "search space" in str(err), err
        return
    points = timed(box.sobol, 4, seed)
    for point in points:
        for param in box.params:
            assert param.low <= point[param.name] <= param.high
            assert isinstance(point[param.name], int) == (param.kind == "int")
    assert box.from_unit(box.to_unit(points)) == points


# ---------------------------------------------------------------- the command line
def _leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


SETTINGS = [key for key in _leaves(OmegaConf.to_container(compose("search")))
            if not key.startswith(("logger", "search.objectives", "dataset._target_"))]
VALUE_TEXT = st.one_of(
    st.integers(-3, 200).map(str), st.floats(-2, 2).map(lambda x: f"{x:.3f}"),
    st.sampled_from(["null", "true", "false", "abc", "nan", "inf", "-inf", "[1,2]", "{a:1}", "''",
                     "0", "-1", "1e12", "hnag"]))
OBJECTIVE = st.fixed_dictionaries(
    {"name": st.sampled_from(["val_acc", "params", "test_acc", "x"]),
     "direction": st.sampled_from(["max", "min", "up"])}, optional={"log": st.booleans()})


def _objectives_override(objectives: list[dict[str, Any]]) -> str:
    items = ",".join("{" + ",".join(f"{k}:{str(v).lower()}" for k, v in o.items()) + "}"
                     for o in objectives)
    return f"search.objectives=[{items}]"


@settings(max_examples=80, deadline=timedelta(seconds=2 * SECONDS),
          suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(SETTINGS), VALUE_TEXT), min_size=1,
                        max_size=3),
       objectives=st.one_of(st.none(), st.lists(OBJECTIVE, max_size=3)))
def test_any_setting_is_accepted_or_refused_naming_it(changes: list[tuple[str, str]],
                                                     objectives: list[dict[str, Any]] | None
                                                     ) -> None:
    from nago_pl.training.run import make_trainer

    overrides = [f"{key}={value}" for key, value in changes]
    # a setting is named by its own name or by its config node (model.optimizer, ...)
    named = [name for key, _ in changes
             for name in (key.rsplit(".", 1)[-1], key.rsplit(".", 1)[0]) if "." in name or
             name == key.rsplit(".", 1)[-1]]
    if objectives is not None:
        overrides.append(_objectives_override(objectives))
        named += ["objective", "search.objectives"]
    try:
        cfg = timed(compose, "search", overrides)
    except Exception as err:  # noqa: BLE001 - Hydra's own errors: shown as one line
        message = one_line(err)
        assert any(name in message for name in named), message
        return
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            timed(validate_search, cfg)
            study = timed(open_study, cfg, Path(run_dir))
            timed(search_strategy, cfg, study)
            study.close()
            timed(instantiate_checked, cfg.dataset, "dataset")
            timed(make_trainer, cfg, None, [], Path(run_dir))
    except NagoError as err:
        message = str(err)
        assert "\n" not in message
        # the message names a changed setting, or one derived from it (the searched
        # param_limit range follows network.param_limit; T_max follows trainer.max_epochs)
        related = {"param_limit": ["param_limit"], "max_epochs": ["max_epochs", "T_max"]}
        assert any(alias in message for name in named for alias in related.get(name, [name])), \
            (overrides, message)
