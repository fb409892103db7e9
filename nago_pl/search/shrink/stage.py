"""The shrinkage stage of a search: run it (or load a saved shrunk space) before the strategy.

Its queries are ordinary trials of the search's Study (``info["source"] == "shrink"``), run by
the same driver and executor as the strategy's, so they count toward ``search.trials``, show on
the plots and resume after a kill; a finished stage is rebuilt from them, not re-run.

With ``search.shrink_options.score=<proxy>`` (e.g. ``nwot``) the stage ranks architectures by
that zero-cost proxy of their untrained network instead: one forward/backward pass each, so
its queries are not trials (``search.trials`` is all the strategy's), they run in an
in-memory study, and a resumed search repeats them (deterministic: same seeds, same batch).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from nago_pl.errors import NagoError
from nago_pl.search.shrink.lissnas import Lissnas, stage_done
from nago_pl.search.shrink.pockets import FILE_NAME, ShrunkSpace
from nago_pl.search.study import Objective, Study

if TYPE_CHECKING:
    from nago_pl.search.prescreen import ProxyScore

#: The shrinkage methods ``search.shrink`` names.
METHODS = ("lissnas",)
#: ``search.shrink_options.score`` that ranks by the search's first objective (as evaluated).
EVALUATOR = "evaluator"


def shrink_stage(cfg: DictConfig, study: Study, run_dir: Path, console: Console,
                 feasible: Callable[[int, dict[str, Any]], bool] | None,
                 run: Callable[[Lissnas, int], None],
                 proxy_score: Callable[[str], ProxyScore]) -> ShrunkSpace | None:
    """The shrunk space the search's strategy is confined to (None: the whole space):
    loaded from ``search.space_from``, or made by ``search.shrink``'s stage, whose queries
    ``run(stage, total)`` runs until ``total`` trials of the study have finished (or, with a
    proxy as ``score``, :func:`proxy_shrink` with ``proxy_score(name)``). The result is
    written to ``<run_dir>/shrunk_space.json``."""
    method, source = cfg.search.shrink, cfg.search.space_from
    if method is not None and source is not None:
        raise NagoError(f"search.shrink={method} and search.space_from={source}: give one (a "
                        "saved shrunk space is not shrunk again)")
    if source is not None:
        shrunk = ShrunkSpace.load(source, study.space)
    elif method is None:
        return None
    elif method not in METHODS:
        raise NagoError(f"search.shrink={method!r}: unknown shrinkage; allowed: "
                        f"{', '.join(METHODS)} (or null: search the whole space)")
    else:
        options: dict[str, Any] = OmegaConf.to_container(  # type: ignore[assignment]
            cfg.search.shrink_options, resolve=True)
        score = options.pop("score")
        if score == EVALUATOR:
            stage = Lissnas(study.space, study.objectives[0], int(cfg.seed), feasible=feasible,
                            **options)
            if not stage_done(stage, study):
                run(stage, min(stage.queries, int(cfg.search.trials)))
            shrunk = stage.result(study)
        else:
            scorer = proxy_score(score)
            shrunk = proxy_shrink(Lissnas(study.space, Objective(score, "max"), int(cfg.seed),
                                          feasible=feasible, **options), scorer)
    shrunk.save(run_dir / FILE_NAME)
    size = f"{shrunk.size:,} architectures, " if shrunk.size is not None else ""
    console.print(f"shrunk space: {len(shrunk.pockets)} pocket(s), {size}"
                  f"{100 * shrunk.share:.3g} % of the space ({run_dir / FILE_NAME})",
                  highlight=False, soft_wrap=True)
    return shrunk


def proxy_shrink(stage: Lissnas, score: Callable[[dict[str, Any], int], float]) -> ShrunkSpace:
    """Run all of ``stage``'s queries on an in-memory study, each scored by ``score(params,
    seed)`` (a zero-cost proxy, maximised; a non-finite score fails the query), and return the
    shrunk space they give."""
    study = Study.open(":memory:", "shrink", stage.space, [stage.objective])
    while not stage_done(stage, study):
        trial = stage.ask(study, 1)[0]
        value = score(trial.params, trial.seed)
        if math.isfinite(value):
            study.tell(trial.id, {stage.objective.name: value})
        else:
            study.fail(trial.id, f"{stage.objective.name} is not finite")
    return stage.result(study)
