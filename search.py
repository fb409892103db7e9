"""Run (or resume) a NAGO search: ``python search.py [hydra overrides]``.

Examples::

    python search.py                                  # digits on CPU, mobo, 20 trials
    python search.py search=random study_name=baseline
    python search.py search.trials=40 search.final.top=2
    python search.py dataset=cifar10 dataset.root=/data/cifar-10-batches-py trainer=gpu search.trials=60
    python search.py search.wandb_sweep=true          # trials trained by `wandb agent`s

Re-running the same command (same ``study_name``) continues the study in ``runs/search/<name>``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from rich.console import Console

from nago_pl.config import register_configs
from nago_pl.config.cli import check_command_line, exit_with_error
from nago_pl.errors import NagoError
from nago_pl.search.runner import final_evaluation, run_search, write_outputs
from nago_pl.tracking.search_run import log_search
from nago_pl.tracking.sweep_driver import drive_sweep

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="search")
def main(cfg: DictConfig) -> None:
    console = Console()
    # One Trainer per trial: keep Lightning's per-Trainer banners out of the search's output.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        if cfg.search.wandb_sweep:  # W&B sweep agents train the trials
            study = drive_sweep(cfg, run_dir, console, list(HydraConfig.get().overrides.task))
        else:
            study = run_search(cfg, run_dir, console)
        records = write_outputs(study, run_dir, console)
        if cfg.search.final.top > 0:
            final_evaluation(cfg, records, run_dir, console)
        log_search(cfg, study, run_dir, records)  # with a W&B logger: the search's own run
    except NagoError as err:
        exit_with_error(err)


if __name__ == "__main__":
    check_command_line("search", sys.argv[1:])
    main()
