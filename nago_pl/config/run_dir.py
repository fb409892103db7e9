"""The run directory is checked before Hydra writes into it: one that cannot be written
(read-only, not a folder) is one ``error:`` line at start-up, not a traceback from Hydra's
log file handler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from nago_pl.config.cli import exit_with_error
from nago_pl.errors import NagoError


class RunDirCheck(Callback):
    """A Hydra callback (``hydra.callbacks``): before a run starts, create its run directory
    and open its log file ``<job name>.log`` there as Hydra will; exit with one ``error:`` line
    (status 2) when that fails."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(str(config.hydra.run.dir))
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            with open(run_dir / f"{config.hydra.job.name}.log", "a"):
                pass
        except OSError as err:
            exit_with_error(NagoError(
                f"hydra.run.dir={run_dir}: cannot write the run directory "
                f"({err.strerror or err}: {err.filename}); choose a writable folder with "
                "hydra.run.dir=<folder>"))
