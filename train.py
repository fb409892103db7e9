"""Train (or later fine-tune) one architecture: ``python train.py [hydra overrides]``.

Examples::

    python train.py                                   # digits, CPU, the default generator
    python train.py generator=randwire seed=3         # another generator / sample
    python train.py arch=runs/train/.../architecture.json
    python train.py dataset=fashion_mnist dataset.root=../shared/data/fashion-mnist
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig
from rich.console import Console

from nago_pl.config import register_configs
from nago_pl.config.cli import check_command_line, exit_with_error
from nago_pl.errors import NagoError
from nago_pl.training.run import train_architecture

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        result = train_architecture(cfg, HydraConfig.get().runtime.output_dir)
    except NagoError as err:
        exit_with_error(err)
    if rank_zero_only.rank != 0:  # under DDP every process runs this script; rank zero reports
        return
    m = result.metrics
    Console().print(
        f"val_acc {m['val_acc']:.4f}  test_acc {m['test_acc']:.4f}  params {m['params']:,}  "
        f"flops {m['flops']:,}  epochs {m['epochs']}  {m['train_seconds']:.1f}s\n"
        f"run dir: {result.run_dir}",
        highlight=False,
    )


if __name__ == "__main__":
    check_command_line("train", sys.argv[1:])
    main()
