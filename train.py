"""Train (or later fine-tune) one architecture: ``python train.py [hydra overrides]``.

Examples::

    python train.py                                   # digits, CPU, the default generator
    python train.py generator=randwire seed=3         # another generator / sample
    python train.py arch=runs/train/latest/architecture.json   # the newest finished run
    python train.py dataset=fashion_mnist dataset.root=../shared/data/fashion-mnist
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig
from rich.console import Console

from nago_pl.config import register_configs
from nago_pl.config.cli import check_command_line, exit_with_error
from nago_pl.errors import NagoError
from nago_pl.latest_link import point_latest
from nago_pl.training.interrupt import interruptible
from nago_pl.training.run import train_architecture

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        with interruptible(f"the run in {run_dir} is incomplete (no metrics.json)"):
            result = train_architecture(cfg, run_dir)
    except NagoError as err:
        exit_with_error(err)
    if rank_zero_only.rank != 0:  # under DDP every process runs this script; rank zero reports
        return
    if default_run_dir():
        point_latest(run_dir)  # runs/train/latest: the newest finished run
    m = result.metrics
    exported = f"\nexported model: {run_dir / 'export'}" if cfg.get("export") else ""
    Console().print(
        f"val_acc {m['val_acc']:.4f}  test_acc {m['test_acc']:.4f}  params {m['params']:,}  "
        f"flops {m['flops']:,}  epochs {m['epochs']}  {m['train_seconds']:.1f}s\n"
        f"run dir: {result.run_dir}{exported}",
        highlight=False, soft_wrap=True,
    )


def default_run_dir() -> bool:
    """Whether this run's directory is the configured ``runs/train/<date>`` (not a
    ``hydra.run.dir=`` of the command line, nor a multirun job)."""
    hydra_cfg = HydraConfig.get()
    return hydra_cfg.mode == RunMode.RUN and not any(
        o.startswith("hydra.run.dir=") for o in hydra_cfg.overrides.hydra)


if __name__ == "__main__":
    check_command_line("train", sys.argv[1:])
    main()
