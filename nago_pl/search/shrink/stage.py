"""The shrinkage stage of a search: run it (or load a saved shrunk space) before the strategy.

Its queries are ordinary trials of the search's Study (``info["source"] == "shrink"``), run by
the same driver and executor as the strategy's, so they count toward ``search.trials``, show on
the plots and resume after a kill; a finished stage is rebuilt from them, not re-run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from nago_pl.errors import NagoError
from nago_pl.search.shrink.lissnas import Lissnas, stage_done
from nago_pl.search.shrink.pockets import FILE_NAME, ShrunkSpace
from nago_pl.search.study import Study

#: The shrinkage methods ``search.shrink`` names.
METHODS = ("lissnas",)


def shrink_stage(cfg: DictConfig, study: Study, run_dir: Path, console: Console,
                 feasible: Callable[[int, dict[str, Any]], bool] | None,
                 run: Callable[[Lissnas, int], None]) -> ShrunkSpace | None:
    """The shrunk space the search's strategy is confined to (None: the whole space):
    loaded from ``search.space_from``, or made by ``search.shrink``'s stage, whose queries
    ``run(stage, total)`` runs until ``total`` trials of the study have finished. The result is
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
        options = OmegaConf.to_container(cfg.search.shrink_options, resolve=True)
        stage = Lissnas(study.space, study.objectives[0], int(cfg.seed), feasible=feasible,
                        **options)  # type: ignore[arg-type]
        if not stage_done(stage, study):
            run(stage, min(stage.queries, int(cfg.search.trials)))
        shrunk = stage.result(study)
    shrunk.save(run_dir / FILE_NAME)
    size = f"{shrunk.size:,} architectures, " if shrunk.size is not None else ""
    console.print(f"shrunk space: {len(shrunk.pockets)} pocket(s), {size}"
                  f"{100 * shrunk.share:.3g} % of the space ({run_dir / FILE_NAME})",
                  highlight=False, soft_wrap=True)
    return shrunk
