"""What a search checks before its first trial: errors that are not a trial's fault (settings,
the dataset, a budget no network of the space fits) stop it at once, with nothing trained and
no trial budget spent."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nago_pl.config.instantiate import instantiate_checked
from nago_pl.config.validate import check_architecture
from nago_pl.errors import NagoError
from nago_pl.search.constraints import Constraint, DataShape, FeasibilityCheck
from nago_pl.search.space import SearchSpace
from nago_pl.search.study import Objective
from nago_pl.search.trial import config_path, trial_config

#: Accuracy reference above chance (1 / classes): a network no better learned nothing.
ACCURACY_MARGIN = 0.1
#: Size reference: this much above the parameter budget, so a network at the budget counts.
BUDGET_MARGIN = 1.1


def load_data_shape(cfg: DictConfig) -> DataShape:
    """Load the dataset once (a missing or corrupt one is a one-line error) and return its shape."""
    try:
        datamodule = instantiate_checked(cfg.dataset, "dataset")
        datamodule.setup("fit")
    except NagoError:
        raise
    except Exception as err:  # noqa: BLE001 - any loading failure is the dataset's, not a trial's
        raise NagoError(f"dataset: cannot load {cfg.dataset.get('root') or cfg.dataset._target_}"
                        f": {err}") from err
    return DataShape(datamodule.in_channels, datamodule.num_classes, datamodule.image_size)


def budget_high(cfg: DictConfig) -> float | None:
    """The largest parameter budget a trial may get (the space's ``param_limit`` high, else
    ``network.param_limit``); None when networks are sized by a multiplier or have fixed widths
    (``space=nb201``)."""
    if cfg.space.name == "nb201":
        return None
    space = OmegaConf.to_container(cfg.search.space, resolve=True)
    spec = space.get("param_limit")
    if isinstance(spec, dict) and "high" in spec:
        return float(spec["high"])
    if isinstance(spec, dict) and "value" in spec:
        return float(spec["value"])
    limit = cfg.network.param_limit
    return None if limit is None else float(limit)


def default_reference(name: str, direction: str, shape: DataShape,
                      cfg: DictConfig) -> float | None:
    """The reference point of an objective the user gave none: chance-level accuracy plus
    ACCURACY_MARGIN, chance-level cross-entropy, BUDGET_MARGIN times the parameter budget; cost
    objectives get None (the worst value seen)."""
    if name == "val_acc" and direction == "max":
        return 1.0 / shape.num_classes + ACCURACY_MARGIN
    if name == "val_loss" and direction == "min":
        return math.log(shape.num_classes)
    if name == "params" and direction == "min":
        high = budget_high(cfg)
        return None if high is None else high * BUDGET_MARGIN
    return None


def objectives_with_references(cfg: DictConfig, shape: DataShape) -> list[Objective]:
    """``search.objectives`` with every missing ``ref`` filled by :func:`default_reference`."""
    objectives = []
    for entry in OmegaConf.to_container(cfg.search.objectives):
        objective = Objective.from_config(entry)
        if "ref" not in entry:
            ref = default_reference(objective.name, objective.direction, shape, cfg)
            objective = Objective(objective.name, objective.direction, objective.log, ref)
        objectives.append(objective)
    return objectives


def feasibility_check(cfg: DictConfig, base: DictConfig, shape: DataShape) -> FeasibilityCheck:
    """The search's known constraints; NagoError when even the space's smallest generator at the
    largest budget violates them (no trial could ever run)."""
    constraints = [Constraint.parse(text) for text in cfg.search.constraints]
    check = FeasibilityCheck(base, shape, int(cfg.search.min_width), constraints)
    space = SearchSpace.from_config(OmegaConf.to_container(cfg.search.space, resolve=True))
    smallest: dict[str, Any] = {p.name: p.high if p.name == "param_limit" else
                                p.values[0] if p.kind == "choice" else p.low
                                for p in space.params}
    smallest.update(space.fixed)
    check_space_values(base, space, smallest, int(cfg.seed))
    try:
        reason = check.reason(int(cfg.seed), smallest)
    except NagoError as err:
        raise NagoError(f"the smallest network of the search space cannot be built: {err}") \
            from None
    if reason is not None:
        shown = ", ".join(f"{k}={v}" for k, v in smallest.items())
        raise NagoError(f"no network of the search space is feasible: even the smallest "
                        f"({shown}) fails: {reason}; lower search.min_width, relax "
                        f"search.constraints or raise network.param_limit")
    return check


def _trial(base: DictConfig, params: Mapping[str, Any], seed: int) -> DictConfig:
    """:func:`trial_config`, with a value of the wrong type for its setting (OmegaConf refuses
    it) as a NagoError naming the searched parameter."""
    try:
        return trial_config(base, params, seed)
    except OmegaConfBaseException:
        for name, value in params.items():  # which one: each alone, on the base config
            try:
                trial_config(base, {name: value}, seed)
            except OmegaConfBaseException as err:
                reason = str(getattr(err, "msg", err)).splitlines()[0]
                raise NagoError(f"search.space.{name}: {value!r} cannot be "
                                f"{config_path(name)[0]}: {reason}") from None
        raise


def check_space_values(base: DictConfig, space: SearchSpace, smallest: Mapping[str, Any],
                       seed: int) -> None:
    """Refuse a value the space can give a trial that no trial could train with: one of the
    wrong type for its setting (``4.5`` for an integer) or one the trial's start-up checks
    refuse (a family ``foo``, a ``G1_P`` above 1). Each choice and both ends of each range are
    tried at the ``smallest`` point (where the generator's size limits bind least), so such a
    search stops before anything trains, not when a strategy first proposes the value."""
    trial = _trial(base, smallest, seed)
    try:
        check_architecture(trial)
    except NagoError as err:
        raise NagoError(f"the smallest network of the search space cannot be built: {err}") \
            from None
    for param in space.params:
        for value in param.values or (param.low, param.high):
            trial = _trial(base, {**smallest, param.name: value}, seed)
            try:
                check_architecture(trial)
            except NagoError as err:
                raise NagoError(f"search.space.{param.name}: a trial with {param.name}="
                                f"{value!r} cannot be trained: {err}") from None
