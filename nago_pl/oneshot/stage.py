"""``search=snas`` / ``search=darts``: train the supernet, then hand its derived cells to the
search loop as the strategy, so they become ordinary trials of the Study."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from nago_pl.config.instantiate import instantiate_checked
from nago_pl.data.base import ImageDataModule
from nago_pl.errors import NagoError
from nago_pl.network.nb201 import Nb201Spec
from nago_pl.oneshot import METHODS
from nago_pl.oneshot.module import OneShotSettings
from nago_pl.oneshot.search import run_oneshot
from nago_pl.oneshot.strategy import DerivedCells
from nago_pl.search.constraints import DataShape
from nago_pl.search.space import SearchSpace
from nago_pl.search.study import Study
from nago_pl.space.nb201 import EDGES, OPS
from nago_pl.training.run import trainer_arguments

#: Options of the supernet and its data (the rest are :class:`OneShotSettings`).
SUPERNET_OPTIONS = {"channels": 8, "cells_per_stage": 1, "train_images": 10_000,
                    "val_images": 1_000}


def split_options(method: str, options: dict[str, Any]) -> tuple[OneShotSettings, dict[str, Any]]:
    """``search.options`` as the search's settings and the supernet's options; an unknown
    option is a one-line error naming the allowed ones."""
    setting_names = [f.name for f in dataclasses.fields(OneShotSettings) if f.name != "method"]
    unknown = sorted(set(options) - set(setting_names) - set(SUPERNET_OPTIONS))
    if unknown:
        raise NagoError(f"search={method} has no option(s) {unknown}; allowed: "
                        f"{', '.join([*setting_names, *SUPERNET_OPTIONS])}")
    supernet = {**SUPERNET_OPTIONS, **{k: v for k, v in options.items()
                                        if k in SUPERNET_OPTIONS}}
    for name in ("channels", "cells_per_stage", "train_images", "val_images"):
        value = supernet[name]
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise NagoError(f"search.options.{name}={value!r}: expected an integer >= 1")
    settings = OneShotSettings(method=method, **{k: v for k, v in options.items()
                                                 if k in setting_names})
    return settings, supernet


def edge_ops(cfg: DictConfig, space: SearchSpace,
             allowed: Mapping[str, Collection[Any]] | None = None) -> list[list[str]]:
    """Per edge, the ops the supernet mixes: a searched ``edge_<k>``'s values (only those in
    ``allowed[edge_<k>]`` when given: a shrunk space's), else the space's fixed op."""
    fixed = list(cfg.space.ops)
    ops = []
    for k in range(len(EDGES)):
        name = f"edge_{k}"
        if name in space.names:
            values = next(p.values for p in space.params if p.name == name)
            ops.append([op for op in OPS
                        if op in values and (allowed is None or op in allowed[name])])
        else:
            ops.append([fixed[k]])
    return ops


def oneshot_strategy(cfg: DictConfig, study: Study, run_dir: Path, console: Console,
                     data_shape: DataShape,
                     feasible: Callable[[int, dict[str, Any]], bool] | None,
                     allowed: Mapping[str, Collection[Any]] | None = None,
                     members: Sequence[dict[str, Any]] | None = None) -> DerivedCells:
    """Train (or resume, or reload) the one-shot search ``search.strategy`` on the dataset
    (of ``data_shape``: the table's when the table scores the cells) in ``<run_dir>/oneshot``
    (each edge mixing the ops ``allowed`` keeps: :func:`edge_ops`) and return the strategy
    proposing its derived cells (those ``feasible`` accepts; ``members`` only, given a shrunk
    space's)."""
    method = str(cfg.search.strategy)
    if method not in METHODS:
        raise NagoError(f"search.strategy={method!r} is not a one-shot method; allowed: "
                        f"{', '.join(METHODS)}")
    if cfg.space.name != "nb201":
        raise NagoError(f"search={method}: the one-shot supernet is NAS-Bench-201's cell; "
                        f"space={cfg.space.name} is not supported (use space=nb201)")
    options = OmegaConf.to_container(cfg.search.options, resolve=True)
    settings, supernet = split_options(method, options)
    data_cfg = cfg.dataset.copy()
    data_cfg.max_train_samples = supernet["train_images"]
    shape = (data_shape.in_channels, data_shape.num_classes, data_shape.image_size)
    out_dir = run_dir / "oneshot"
    base = cfg.copy()
    base.tracking.group = cfg.tracking.group or cfg.study_name
    base.tracking.job_type, base.tracking.name = "oneshot", f"{study.name}-{method}"

    def loggers() -> list[Any]:
        made = instantiate_checked(base.logger, "logger", save_dir=str(out_dir))
        return list(made) if isinstance(made, list) else [made] if made else []

    def data() -> ImageDataModule:
        console.print(f"{method}: training the supernet ({settings.epochs} epochs, "
                      f"{supernet['train_images']:,} images) in {out_dir}", highlight=False)
        module = instantiate_checked(data_cfg, "dataset")
        module.setup("fit")
        found = DataShape(module.in_channels, module.num_classes, module.image_size)
        if found != data_shape:
            raise NagoError(f"search={method}: the dataset has {_shape(found)}, but the cells "
                            f"are scored on {_shape(data_shape)} (evaluator.dataset="
                            f"{cfg.evaluator.get('dataset')}): search on the data they are "
                            "scored on")
        return module

    result = run_oneshot(
        data, settings, Nb201Spec(*shape, supernet["channels"], supernet["cells_per_stage"]),
        Nb201Spec.of(cfg.space, *shape), edge_ops(cfg, study.space, allowed), out_dir,
        trainer_arguments(cfg), loggers, seed=int(cfg.seed), val_images=supernet["val_images"],
        say=lambda line: console.print(line, highlight=False, soft_wrap=True))
    console.print(f"{method}: derived cell {result.cell.to_string()} "
                  f"(after {result.epochs} epochs)", highlight=False, soft_wrap=True)
    return DerivedCells(study.space, study.objectives, int(cfg.seed), result.probabilities,
                        method, feasible=feasible, members=members)




def _shape(shape: DataShape) -> str:
    return (f"{shape.num_classes} classes of {shape.in_channels}x{shape.image_size}x"
            f"{shape.image_size} images")
