"""Start-up checks of a composed config: unknown keys and the ranges the schemas cannot express.

Every problem is a :class:`NagoError` naming the setting, its value and what is allowed. Run by
:func:`nago_pl.training.run.train_architecture` (``train.py``, every trial and retrain) and by
``search.py`` before its search starts.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterator
from functools import cache
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from nago_pl.config.instantiate import instantiate_checked
from nago_pl.config.schema import SearchConfig, TrainConfig
from nago_pl.errors import NagoError
from nago_pl.space.generator import GeneratorConfig
from nago_pl.space.nb201 import Nb201Cell

MAX_SEED = 2**32 - 1  # Lightning's seed_everything (numpy) limit
#: Most candidates ``search.prescreen`` may score per proposal (each costs a forward/backward
#: pass, about 2 s on a CPU core: 1024 are half an hour per trial).
MAX_PRESCREEN = 1024
#: The search spaces ``space.name`` selects.
SPACES = ("hnag", "nb201")
#: How a search's trials get their metrics (``evaluator.name``).
EVALUATORS = ("train", "nb201_table")


@cache
def _fields(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def check_keys(node: DictConfig, schema: type, where: str = "") -> None:
    """Refuse keys the dataclass ``schema`` does not define (``+trainer.typo=1`` adds one)."""
    fields = _fields(schema)
    for key in node:
        if key not in fields:
            raise NagoError(f"{where}{key}: unknown setting; allowed: {', '.join(fields)}")
        kind = fields[key]
        child = node._get_node(key)
        if dataclasses.is_dataclass(kind) and isinstance(child, DictConfig) \
                and not child._is_none():
            check_keys(child, kind, f"{where}{key}.")


def _leaves(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """``(dotted name, value)`` of every leaf of a plain container (list items as ``[i]``)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaves(child, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _leaves(child, f"{where}[{index}]")
    else:
        yield where, value


def check_finite(cfg: DictConfig) -> None:
    """Refuse NaN and infinity in every setting (schema'd or free-form: optimizer arguments,
    search options, space ranges, objective references): no setting means them, and the JSON
    files the project writes cannot hold them."""
    for key, value in _leaves(OmegaConf.to_container(cfg, resolve=False), ""):
        if isinstance(value, float) and not math.isfinite(value):
            raise NagoError(f"{key}={value!r}: must be a finite number (NaN and infinity are "
                            "not allowed)")


def _value(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_int(cfg: DictConfig, key: str, low: int, high: int | None = None,
              optional: bool = False) -> None:
    """``cfg.<key>`` is an integer in ``low..high`` (or null when ``optional``)."""
    value = _value(cfg, key)
    if value is None and optional:
        return
    if not (_is_int(value) and value >= low and (high is None or value <= high)):
        allowed = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
        raise NagoError(f"{key}={value!r}: must be {allowed}{' or null' if optional else ''}")


def check_number(cfg: DictConfig, key: str, low: float, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, optional: bool = False) -> None:
    """``cfg.<key>`` is a finite number in the interval (or null when ``optional``)."""
    value = _value(cfg, key)
    if value is None and optional:
        return
    ok = _is_number(value) and (value > low if low_open else value >= low)
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        interval = (f"{'(' if low_open else '['}{low}, "
                    f"{'inf)' if high is None else f'{high}' + (')' if high_open else ']')}")
        raise NagoError(f"{key}={value!r}: must be a number in {interval}"
                        f"{' or null' if optional else ''}")


def check_batches(cfg: DictConfig, key: str) -> None:
    """``cfg.<key>`` (a ``limit_*_batches`` or ``val_check_interval``) in Lightning's meaning: an
    integer is a number of batches (>= 1: a run needs training and validation batches), a float
    a fraction of them (of an epoch) in ``(0, 1]``; null is Lightning's default (all, 1.0)."""
    value = _value(cfg, key)
    if value is None or (_is_int(value) and value >= 1):
        return
    if isinstance(value, float) and 0 < value <= 1:
        return
    raise NagoError(f"{key}={value!r}: must be an integer >= 1 (a number of batches), a number "
                    "in (0, 1] (a fraction of them) or null")


def check_optimization(cfg: DictConfig) -> None:
    """Build ``model.optimizer`` (and ``model.scheduler``) once on a dummy parameter, so a bad
    argument (a string or negative learning rate, ...) fails at start-up with its name."""
    optimizer_factory = instantiate_checked(cfg.model.optimizer, "model.optimizer")
    scheduler_factory = instantiate_checked(cfg.model.scheduler, "model.scheduler")
    try:
        optimizer = optimizer_factory([torch.nn.Parameter(torch.zeros(1))])
    except Exception as err:  # noqa: BLE001 - torch raises several kinds for bad arguments
        raise NagoError(f"model.optimizer: {cfg.model.optimizer.get('_target_')} refuses its "
                        f"arguments: {err}") from None
    if scheduler_factory is not None:
        try:
            scheduler_factory(optimizer)
        except Exception as err:  # noqa: BLE001
            raise NagoError(f"model.scheduler: {cfg.model.scheduler.get('_target_')} refuses "
                            f"its arguments: {err}") from None


def check_space(cfg: DictConfig) -> None:
    """``space.name`` is known; an nb201 space has a valid cell and sizes."""
    name = _value(cfg, "space.name")
    if name not in SPACES:
        raise NagoError(f"space.name={name!r}: must be one of {', '.join(SPACES)}")
    if name != "nb201":
        return
    Nb201Cell(tuple(cfg.space.ops))
    check_int(cfg, "space.channels", 1)
    check_int(cfg, "space.cells_per_stage", 1)


def check_architecture(cfg: DictConfig) -> None:
    """The settings that shape the network a run builds, which a search space sets per trial:
    ``network.param_limit``, the space (and its nb201 cell) and the generator."""
    check_int(cfg, "network.param_limit", 1, optional=True)
    check_space(cfg)
    if not cfg.get("arch") and not cfg.get("init_from") and cfg.space.name == "hnag":
        GeneratorConfig.from_mapping(OmegaConf.to_container(cfg.generator, resolve=True))


def validate_train(cfg: DictConfig) -> None:
    """Check the training settings (``train.py``'s config, or a search's)."""
    check_keys(cfg, SearchConfig if "search" in cfg else TrainConfig)
    check_finite(cfg)
    check_int(cfg, "seed", 0, MAX_SEED)
    check_int(cfg, "trainer.max_epochs", 1)
    check_int(cfg, "trainer.min_epochs", 1, _value(cfg, "trainer.max_epochs"), optional=True)
    check_int(cfg, "trainer.num_nodes", 1)
    check_number(cfg, "trainer.gradient_clip_val", 0, optional=True)
    check_int(cfg, "trainer.accumulate_grad_batches", 1)
    check_int(cfg, "trainer.check_val_every_n_epoch", 1)
    check_batches(cfg, "trainer.limit_train_batches")
    check_batches(cfg, "trainer.limit_val_batches")
    check_batches(cfg, "trainer.limit_test_batches")
    check_batches(cfg, "trainer.val_check_interval")
    check_int(cfg, "trainer.log_every_n_steps", 1)
    check_number(cfg, "network.multiplier", 0, low_open=True, optional=True)
    check_int(cfg, "network.head_channels", 1)
    check_number(cfg, "network.dropout", 0, 1, high_open=True)
    check_number(cfg, "model.label_smoothing", 0, 1, high_open=True)
    check_int(cfg, "finetune.freeze_epochs", 0)
    check_number(cfg, "finetune.body_lr_scale", 0)
    check_int(cfg, "threads", 1, optional=True)
    check_int(cfg, "tracking.trial", 0, optional=True)
    pick = str(_value(cfg, "pick"))
    if pick not in ("best_acc", "smallest") and not pick.isdigit():
        raise NagoError(f"pick={pick!r}: must be best_acc, smallest or a trial number")
    check_architecture(cfg)
    check_optimization(cfg)


def validate_search(cfg: DictConfig) -> None:
    """Check ``search.py``'s settings: the training ones and the search's own."""
    validate_train(cfg)
    if not str(_value(cfg, "study_name") or ""):
        raise NagoError("study_name: must be a non-empty name")
    if _value(cfg, "trainer.val_check_interval") not in (None, 1.0):
        raise NagoError(f"trainer.val_check_interval={_value(cfg, 'trainer.val_check_interval')!r}"
                        ": a search's trials report and are pruned once per epoch; only null or "
                        "1.0 here (train.py takes any)")
    check_int(cfg, "search.trials", 1)
    check_int(cfg, "search.batch_size", 1)
    check_int(cfg, "search.pruning.min_epochs", 1)
    check_number(cfg, "search.pruning.eta", 1, low_open=True)
    check_int(cfg, "search.final.top", 0)
    check_int(cfg, "search.final.samples", 1)
    check_int(cfg, "search.final.max_epochs", 1, optional=True)
    check_int(cfg, "search.min_width", 1)
    check_int(cfg, "search.prescreen", 0, MAX_PRESCREEN)
    check_int(cfg, "search.prescreen_batch", 1)
    proxy = _value(cfg, "search.prescreen_proxy")
    if int(_value(cfg, "search.prescreen")) >= 2:
        from nago_pl.proxies import PROXIES

        if proxy not in PROXIES:
            raise NagoError(f"search.prescreen_proxy={proxy!r}: allowed: {', '.join(PROXIES)}")
    check_number(cfg, "search.max_minutes", 0, low_open=True, optional=True)
    evaluator = _value(cfg, "evaluator.name")
    if evaluator not in EVALUATORS:
        raise NagoError(f"evaluator.name={evaluator!r}: must be one of {', '.join(EVALUATORS)}")
    if evaluator == "nb201_table" and (cfg.space.name != "nb201" or cfg.search.wandb_sweep):
        raise NagoError("evaluator=nb201_table: answers NAS-Bench-201 cells (space=nb201) in "
                        "the search process (not with search.wandb_sweep=true)")
    if evaluator == "nb201_table" and _value(cfg, "executor.kind") != "local":
        raise NagoError("evaluator=nb201_table: answers each trial in the search process in "
                        "milliseconds; drop executor=... (it runs on executor=local)")
    check_int(cfg, "search.workers", 1)
    check_int(cfg, "search.max_retries", 0)
    validate_executor(cfg)


def validate_executor(cfg: DictConfig) -> None:
    """Check ``executor.*`` (the kinds, and the settings each kind reads)."""
    from nago_pl.search.executors import KINDS
    from nago_pl.search.executors.placement import ORDERS

    kind = _value(cfg, "executor.kind")
    if kind not in KINDS:
        raise NagoError(f"executor.kind={kind!r}: allowed: {', '.join(KINDS)} "
                        "(executor=local|process|ray)")
    check_int(cfg, "executor.cpus_per_trial", 1)
    check_int(cfg, "executor.trials_per_gpu", 1)
    check_number(cfg, "executor.gpu_memory_mb", 0, low_open=True, optional=True)
    if _value(cfg, "executor.gpu_order") not in ORDERS:
        raise NagoError(f"executor.gpu_order={_value(cfg, 'executor.gpu_order')!r}: allowed: "
                        f"{', '.join(ORDERS)}")
    if kind == "local" and _value(cfg, "search.workers") != 1:
        raise NagoError(f"search.workers={_value(cfg, 'search.workers')}: executor=local runs one "
                        "trial at a time; use executor=process or executor=ray")
