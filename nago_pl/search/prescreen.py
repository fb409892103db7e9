"""Zero-cost prescreening of proposals (``search.prescreen=N``): before a proposed trial trains,
it and N-1 candidates around it (one parameter moved one step, a fresh sample seed) are scored
by a zero-cost proxy (:mod:`nago_pl.proxies`) on one batch of training data, untrained, and the
trial trains the best-scoring one. A proxy costs one forward/backward pass, a training run
many epochs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig

from nago_pl.config.instantiate import instantiate_checked
from nago_pl.errors import NagoError
from nago_pl.network.configured import build_model, resolve_architecture
from nago_pl.proxies import PROXIES, Batch, score
from nago_pl.search.constraints import DataShape
from nago_pl.search.space import Param, SearchSpace
from nago_pl.search.strategies.mobo import torch_threads
from nago_pl.search.study import Study, Trial
from nago_pl.search.trial import trial_config

#: Proposals that are prescreened (the status-quo baseline trains as configured).
PRESCREENED_SOURCES = ("sobol", "bo", "random")
#: A float parameter's step, in its unit coordinate.
FLOAT_STEP = 0.1
#: Draws per wanted candidate before giving up (infeasible or taken ones are skipped).
DRAWS_PER_CANDIDATE = 4
#: Torch threads while scoring: one, as for proposals. NASWOT of the NB201 network (C=16,
#: 5 cells, 64 images) took 0.36 s on one thread and 6.5 s on two beside a busy process
#: (BENCHMARKS.md, "NASWOT's kernel").
PROXY_THREADS = 1


def proxy_batch(cfg: DictConfig, size: int, shape: DataShape, where: str | None = None,
                off: str = "search.prescreen=0") -> Batch:
    """One batch (``size`` images) of the training split of ``cfg.dataset``, normalised as
    training sees it (without augmentation), the same for every trial. The dataset must have
    the search's data ``shape``: with ``evaluator=nb201_table`` no data is loaded for the
    trials, so the networks are the table's (e.g. CIFAR-10's 3x32x32, 10 classes) and a
    dataset of other images (the default digits) is refused, not scored (random inputs of the
    right shape would rank cells by nothing they learn). ``where``: the setting that asked
    for the batch, ``off``: the one that turns it off (error messages name both)."""
    where = where or f"search.prescreen={cfg.search.prescreen}"
    try:
        datamodule = instantiate_checked(cfg.dataset, "dataset")
        datamodule.setup("fit")
    except Exception as err:  # noqa: BLE001 - the dataset's fault, not a trial's
        raise NagoError(f"{where} scores networks on training images: cannot load the "
                        f"dataset ({err})") from err
    found = DataShape(datamodule.in_channels, datamodule.num_classes, datamodule.image_size)
    if found != shape:
        networks = (f"evaluator.dataset={cfg.evaluator.dataset}'s"
                    if cfg.evaluator.name == "nb201_table" else "the searched networks'")
        raise NagoError(f"{where} scores networks on training images of their input: "
                        f"{networks} {_describe(shape)}, but the dataset "
                        f"({cfg.dataset._target_.rsplit('.', 1)[-1]}) has {_describe(found)}; "
                        "give that data (e.g. dataset=cifar10 dataset.root=<folder>, or an "
                        f"image_folder of it) or set {off}")
    L.seed_everything(int(cfg.seed), verbose=False)
    inputs, targets = [], []
    count = 0
    for x, y in datamodule.train_dataloader():
        inputs.append(x)
        targets.append(y)
        count += x.shape[0]
        if count >= size:
            break
    images = datamodule.batch_transform(torch.cat(inputs)[:size], train=False)
    return images, torch.cat(targets)[:size]


def step(param: Param, value: Any, gen: torch.Generator) -> Any:
    """``value`` of ``param`` moved one step: another category, the next integer up or down,
    or a float FLOAT_STEP of its range away (inside the bounds)."""
    if param.kind == "choice":
        others = [v for v in param.values if v != value]
        return others[int(torch.randint(len(others), (1,), generator=gen))] if others else value
    up = bool(torch.rand(1, generator=gen) < 0.5)
    if param.kind == "int":
        moved = value + (1 if up else -1)
        if not param.low <= moved <= param.high:
            moved = value + (-1 if up else 1)
        return min(max(moved, int(param.low)), int(param.high))
    unit = param.encode(value) + (FLOAT_STEP if up else -FLOAT_STEP)
    return param.decode(torch.tensor([min(max(unit, 0.0), 1.0)]))[0]


class ProxyScore:
    """``(params, seed) -> float``: the zero-cost proxy ``proxy`` of the untrained network a
    trial (``params``, ``seed``) of the search ``base`` would train, on ``batch``; an unknown
    proxy is a NagoError naming the setting ``where``."""

    def __init__(self, base: DictConfig, shape: DataShape, batch: Batch, proxy: str,
                 where: str = "search.prescreen_proxy") -> None:
        if proxy not in PROXIES:
            raise NagoError(f"{where}={proxy!r}: allowed: {', '.join(PROXIES)}")
        self.base, self.shape, self.batch, self.proxy = base, shape, batch, proxy

    def __call__(self, params: Mapping[str, Any], seed: int) -> float:
        cfg = trial_config(self.base, params, seed)
        torch.manual_seed(seed)
        net = build_model(resolve_architecture(cfg), cfg, self.shape.in_channels,
                          self.shape.num_classes, self.shape.image_size)
        with torch_threads(PROXY_THREADS):
            return score(self.proxy, net, self.batch)


class Prescreen:
    """``(study, trial) -> trial``: the proposed trial, or the trial changed to the candidate
    around it that ``proxy`` scores best on ``batch`` (``candidates`` scored in all, the
    proposal first; NaN scores last; ties keep the proposal). Only configurations ``feasible``
    accepts and no trial of the study has are candidates."""

    def __init__(self, space: SearchSpace, base: DictConfig, shape: DataShape, batch: Batch,
                 candidates: int, proxy: str,
                 feasible: Callable[[int, Mapping[str, Any]], bool] | None = None) -> None:
        self.score = ProxyScore(base, shape, batch, proxy)
        self.space, self.proxy = space, proxy
        self.candidates, self.feasible = candidates, feasible

    def __call__(self, study: Study, trial: Trial) -> Trial:
        if trial.info.get("source") not in PRESCREENED_SOURCES or "prescreen" in trial.info:
            return trial  # the baseline, or re-queued after it was prescreened
        options = [(trial.params, trial.seed), *self.around(study, trial)]
        scores = [self.score(params, seed) for params, seed in options]
        best = max(range(len(options)),
                   key=lambda i: (not math.isnan(scores[i]), scores[i] if not math.isnan(
                       scores[i]) else 0.0, -i))
        params, seed = options[best]
        info = {**trial.info, "prescreen": {"proxy": self.proxy, "scored": len(options),
                                            "score": scores[best], "proposal_score": scores[0],
                                            "moved": best != 0}}
        return study.revise(trial.id, params, seed, info)

    def around(self, study: Study, trial: Trial) -> list[tuple[dict[str, Any], int]]:
        """Up to ``candidates - 1`` new feasible (params, seed) one step from the proposal."""
        gen = torch.Generator().manual_seed(trial.seed)
        taken = {_key(t.params) for t in study.trials()}
        searched = self.space.params
        found: list[tuple[dict[str, Any], int]] = []
        for _ in range(DRAWS_PER_CANDIDATE * (self.candidates - 1)):
            if len(found) == self.candidates - 1:
                break
            param = searched[int(torch.randint(len(searched), (1,), generator=gen))]
            params = self.space.normalise({**trial.params,
                                           param.name: step(param, trial.params[param.name], gen)})
            seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
            if _key(params) in taken or (self.feasible is not None
                                         and not self.feasible(seed, params)):
                continue
            taken.add(_key(params))
            found.append((params, seed))
        return found


def _describe(shape: DataShape) -> str:
    return (f"{shape.in_channels}x{shape.image_size}x{shape.image_size} images of "
            f"{shape.num_classes} classes")


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True)
