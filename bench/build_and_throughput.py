"""Time to sample + build a 4M-parameter CIFAR network, and CPU training throughput, Lightning vs plain.

    .venv/bin/python bench/build_and_throughput.py [--seeds 10] [--repeats 5] [--steps 20] [--quick]

Part 1: ``sample(config, seed)`` then ``build_network(..., image_size=32, param_limit=4M)`` (the
exact-width search on the meta device included) for the paper's generator and a large one,
interleaved per seed. Part 2: images/s of the same network (same init state_dict), the same CIFAR-10
JPEG subset (``ImageFolderDataModule``, crop 4 + flip), the same SGD and number of steps, trained by a
``lightning.Trainer`` fitting ``ClassificationModule`` and by a plain PyTorch loop calling
``dm.batch_transform`` itself; repeats interleave the variants (A B A B ...). Only the steps after
``--warmup`` batches are timed: from the end of the last warm-up step to the end of the last step
(loading, augmentation, forward, backward and optimizer step of every timed batch). Every variant
runs once untimed first. ``--lean`` (on by default) adds a third variant, Lightning with a module
that neither logs nor updates metrics, to split Lightning's own overhead from the module's per-step
``self.log`` + torchmetrics work. Torch runs 1 intra-op thread by default (``--threads``): on a
shared, oversubscribed CPU 2 threads were ~3x slower and far noisier. Prints markdown tables;
writes nothing outside a temporary directory.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from nago_pl.data import ImageDataModule, ImageFolderDataModule
from nago_pl.data.base import RawSplits
from nago_pl.network.budget import build_network
from nago_pl.network.model import Network
from nago_pl.space.architecture import Architecture
from nago_pl.space.generator import GeneratorConfig, sample
from nago_pl.training.module import ClassificationModule

TAR = Path("/work/shared/data/cifar10-jpg/cifar10-jpg.tar.gz")
GENERATORS = {
    "paper WS(8,5,0.6)/ER(1,0.7)/WS(5,4,0.2)": GeneratorConfig(),
    "large WS(10,5,0.6)/ER(10,0.2)/WS(10,4,0.2)": GeneratorConfig(
        G1_nodes=10, G2_nodes=10, G2_P=0.2, G3_nodes=10),
}


def stats(values: list[float], fmt: str = "{:.3f}") -> str:
    return f"{fmt.format(statistics.median(values))} | {fmt.format(min(values))} | {fmt.format(max(values))}"


def bench_build(seeds: int, param_limit: int) -> None:
    """Part 1: per-seed sample and build times, the generators interleaved seed by seed."""
    times: dict[str, dict[str, list[float]]] = {g: {"sample": [], "build": [], "params": [], "mult": []}
                                                for g in GENERATORS}
    for seed in range(seeds):
        for name, config in GENERATORS.items():
            t0 = time.perf_counter()
            arch = sample(config, seed)
            t1 = time.perf_counter()
            net = build_network(arch, in_channels=3, num_classes=10, image_size=32, param_limit=param_limit)
            t2 = time.perf_counter()
            row = times[name]
            row["sample"].append(t1 - t0)
            row["build"].append(t2 - t1)
            row["params"].append(sum(p.numel() for p in net.parameters()))
            row["mult"].append(net.spec.multiplier)
    print(f"### Sample + build, CIFAR size (3x32x32, 10 classes), param_limit={param_limit:,}, "
          f"{seeds} seeds\n")
    print("| generator | step | median (s) | min (s) | max (s) | params median (min–max) "
          "| multiplier (min–max) |")
    print("|---|---|---:|---:|---:|---|---|")
    for name, row in times.items():
        params = f"{statistics.median(row['params']):,.0f} ({min(row['params']):,}–{max(row['params']):,})"
        mult = f"{min(row['mult'])}–{max(row['mult'])}"
        print(f"| {name} | sample | {stats(row['sample'], '{:.4f}')} | {params} | {mult} |")
        print(f"| {name} | build | {stats(row['build'])} | | |")
        total = [a + b for a, b in zip(row["sample"], row["build"], strict=True)]
        print(f"| {name} | **total** | {stats(total)} | | |")
    print()


def extract_subset(dest: Path, train_per_class: int, test_per_class: int) -> bool:
    """Copy the first images of each class of the CIFAR-10 JPEG tar into an ImageFolder tree."""
    if not TAR.is_file():
        return False
    quota = {"train": train_per_class, "test": test_per_class}
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(TAR, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) != 3 or parts[0] not in quota:
                continue
            key = (parts[0], parts[1])
            if taken.get(key, 0) < quota[parts[0]]:
                taken[key] = taken.get(key, 0) + 1
                tar.extract(member, dest, filter="data")
    return True


class RandomDataModule(ImageDataModule):
    """Fallback when the tar is absent: random uint8 images, 10 classes."""

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n = n

    def _load(self) -> RawSplits:
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (self.n, 3, 32, 32), dtype=torch.uint8, generator=g)
        y = torch.arange(self.n) % 10
        return RawSplits(x, y, x[:100], y[:100], [str(i) for i in range(10)])


class LeanModule(ClassificationModule):
    """ClassificationModule without per-step ``self.log`` and torchmetrics (for the breakdown)."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)


class StepTimer(L.Callback):
    """Wall time and images from the end of batch ``warmup - 1`` to the end of the last batch."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = 0.0
        self.images = 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self.end = time.perf_counter()
        if batch_idx == self.warmup - 1:
            self.start = self.end
        elif batch_idx >= self.warmup:
            self.images += int(batch[1].shape[0])


def run_lightning(module_cls: type[ClassificationModule], net: Network, dm: ImageDataModule,
                  optimizer: Callable[..., torch.optim.Optimizer], warmup: int, steps: int,
                  root: Path) -> float:
    timer = StepTimer(warmup)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=warmup + steps,
                        limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[timer], default_root_dir=root)
    trainer.fit(module_cls(net, 10, optimizer=optimizer), datamodule=dm)
    return timer.images / (timer.end - timer.start)


def run_plain(net: Network, dm: ImageDataModule, optimizer: Callable[..., torch.optim.Optimizer],
              warmup: int, steps: int) -> float:
    net.train()
    opt = optimizer(net.parameters())
    start = end = 0.0
    images = 0
    for i, (x, y) in enumerate(dm.train_dataloader()):
        if i == warmup + steps:
            break
        loss = F.cross_entropy(net(dm.batch_transform(x, train=True)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        end = time.perf_counter()
        if i == warmup - 1:
            start = end
        elif i >= warmup:
            images += int(y.shape[0])
    return images / (end - start)


def bench_throughput(args: argparse.Namespace, arch: Architecture, dm: ImageDataModule, data_note: str,
                     root: Path) -> None:
    """Part 2: interleaved repeats of every variant on the same init weights, data and RNG seed."""
    dm.setup("fit")
    if args.warmup + args.steps > dm.train_size // args.batch_size:
        raise SystemExit(f"--warmup + --steps exceeds the {dm.train_size // args.batch_size} full batches")
    base = build_network(arch, in_channels=3, num_classes=10, image_size=32, param_limit=args.param_limit)
    init = {k: v.clone() for k, v in base.state_dict().items()}
    optimizer = partial(torch.optim.SGD, lr=0.05, momentum=0.9)

    def fresh() -> Network:
        net = build_network(arch, in_channels=3, num_classes=10, image_size=32,
                            multiplier=base.spec.multiplier)
        net.load_state_dict(init)
        return net

    variants: dict[str, Callable[[], float]] = {
        "Lightning (ClassificationModule)": lambda: run_lightning(
            ClassificationModule, fresh(), dm, optimizer, args.warmup, args.steps, root),
        "plain PyTorch loop": lambda: run_plain(fresh(), dm, optimizer, args.warmup, args.steps),
    }
    if args.lean:
        variants["Lightning, lean module (no log/metrics)"] = lambda: run_lightning(
            LeanModule, fresh(), dm, optimizer, args.warmup, args.steps, root)
    for run in variants.values():  # untimed round: process-wide warm-up (allocator, oneDNN kernels)
        torch.manual_seed(0)
        run()
    speed: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(args.repeats):
        for name, run in variants.items():
            torch.manual_seed(rep)  # same shuffling and augmentation for every variant
            speed[name].append(run())
    params = sum(p.numel() for p in base.parameters())
    print(f"### Training throughput, CPU, 32 px, batch {args.batch_size}, {args.steps} timed steps after "
          f"{args.warmup} warm-up, {args.repeats} interleaved repeats\n")
    print(f"Network: paper generator seed {args.seed}, {params:,} params (multiplier "
          f"{base.spec.multiplier}); data: {data_note}; torch threads: {torch.get_num_threads()}.\n")
    print("| variant | median img/s | min | max | median ratio to plain |")
    print("|---|---:|---:|---:|---:|")
    plain = speed["plain PyTorch loop"]
    for name, values in speed.items():
        ratios = [a / b for a, b in zip(values, plain, strict=True)]  # per-repeat (adjacent runs)
        print(f"| {name} | {stats(values, '{:.1f}')} | {statistics.median(ratios):.3f} |")
    lightning = speed["Lightning (ClassificationModule)"]
    of_medians = statistics.median(lightning) / statistics.median(plain)
    per_repeat = ", ".join(f"{a / b:.3f}" for a, b in zip(lightning, plain, strict=True))
    print(f"\nLightning/plain: ratio of medians {of_medians:.3f}; per-repeat ratios {per_repeat}.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per generator in part 1")
    parser.add_argument("--build-limit", type=int, default=4_000_000)
    parser.add_argument("--param-limit", type=int, default=500_000, help="network size for part 2")
    parser.add_argument("--seed", type=int, default=0, help="architecture seed for part 2")
    parser.add_argument("--train-images", type=int, default=2000, help="CIFAR-10 training images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lean", action=argparse.BooleanOptionalAction, default=True,
                        help="add the lean-module Lightning variant (default: on)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: stable on a busy shared CPU)")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 2 repeats of 4 steps")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.repeats, args.steps, args.warmup, args.train_images = 2, 2, 4, 1, 800
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if not args.skip_build:
        bench_build(args.seeds, args.build_limit)
    if args.skip_throughput:
        return
    arch = sample(GeneratorConfig(), args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_root = root / "cifar10"
        kwargs: dict[str, Any] = dict(image_size=32, batch_size=args.batch_size, crop_padding=4, hflip=True)
        if extract_subset(data_root, args.train_images // 10, 20):
            dm: ImageDataModule = ImageFolderDataModule(root=str(data_root), **kwargs)
            note = (f"CIFAR-10 JPEG subset ({args.train_images} train images, 10% held out for "
                    "validation), crop 4 + hflip")
        else:
            dm = RandomDataModule(args.train_images, **kwargs)
            note = f"RANDOM uint8 tensors ({TAR} absent), crop 4 + hflip"
        bench_throughput(args, arch, dm, note, root)


if __name__ == "__main__":
    main()
