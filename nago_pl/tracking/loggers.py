"""The ``logger=wandb`` and ``logger=auto`` config targets: Lightning loggers for one run."""

from __future__ import annotations

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

from nago_pl.errors import NagoError
from nago_pl.tracking.mode import notice, wandb_installed
from nago_pl.tracking.wandb_run import wandb_init_arguments


class WandbRunLogger(WandbLogger):
    """Lightning's ``WandbLogger`` for one run, in the mode :func:`resolve_mode` decides (a
    one-line notice with the ``wandb sync`` command when it falls back to offline). Run files go
    to ``$WANDB_DIR`` or ``save_dir``; W&B starts the run on first use, :func:`finish_runs` ends it.
    """

    def __init__(self, save_dir: str, project: str | None = None, entity: str | None = None,
                 mode: str | None = None, group: str | None = None, job_type: str = "train",
                 name: str | None = None, tags: list[str] | None = None,
                 log_model: bool = False) -> None:
        arguments = wandb_init_arguments(save_dir, project, entity, mode, group, job_type, name,
                                         tags, log_model)
        super().__init__(save_dir=arguments.pop("dir"), log_model=log_model, **arguments)
        # Lightning always passes anonymous=None, which recent wandb warns about on every run.
        self._wandb_init.pop("anonymous", None)


class AutoLoggers(list):
    """The default logger set: CSV (``<save_dir>/csv/metrics.csv``) plus :class:`WandbRunLogger`
    when the wandb package is installed; if W&B cannot run as asked, CSV only, with a notice."""

    def __init__(self, save_dir: str, project: str | None = None, entity: str | None = None,
                 mode: str | None = None, group: str | None = None, job_type: str = "train",
                 name: str | None = None, tags: list[str] | None = None,
                 log_model: bool = False) -> None:
        loggers: list[Logger] = [CSVLogger(save_dir, name="csv", version="")]
        if wandb_installed():
            try:
                loggers.append(WandbRunLogger(save_dir, project, entity, mode, group, job_type,
                                              name, tags, log_model))
            except NagoError as err:
                notice(f"{err}; logging to CSV only")
        super().__init__(loggers)
