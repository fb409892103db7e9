"""Zero-cost proxies on NAS-Bench-201 (issue 11): our scores of NASLib's 491 cells on one fixed
CIFAR-10 batch, against NASLib's own scores and the cells' CIFAR-10 validation accuracy.

    python bench/zero_cost_proxies.py [--limit 100] [--save scores.json]

Prints a markdown table: per proxy, Spearman of ours vs NASLib's, of ours vs val accuracy, and
NASLib's vs val accuracy. Needs ../shared/data (NASLib's JSON and the CIFAR-10 JPEG tar).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import random
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nago_pl.network.nb201 import Nb201Network, Nb201Spec
from nago_pl.proxies import PROXIES, score, spearman
from nago_pl.space.nb201 import Nb201Cell

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
ZC_JSON = DATA / "nas-bench-201" / "naslib_zc_nasbench201_491archs.json"
TAR = DATA / "cifar10-jpg" / "cifar10-jpg.tar.gz"
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def cifar10_batch(size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` training images drawn with ``seed`` from the JPEG tar, normalised, with labels."""
    files: dict[str, bytes] = {}
    with tarfile.open(TAR, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) == 3 and parts[0] == "train":
                files[member.name] = tar.extractfile(member).read()
    classes = sorted({Path(name).parts[1] for name in files})
    chosen = random.Random(seed).sample(sorted(files), size)
    images = np.stack([np.asarray(Image.open(io.BytesIO(files[n])).convert("RGB")) for n in chosen])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    x = (x - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    y = torch.tensor([classes.index(Path(n).parts[1]) for n in chosen])
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="score only this many cells (seeded)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="seeds the cell subset and weights")
    parser.add_argument("--batch-seed", type=int, help="seeds the batch (default: --seed)")
    parser.add_argument("--proxies", nargs="+", choices=list(PROXIES), default=list(PROXIES))
    parser.add_argument("--save", type=Path, help="write every score to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)

    table = json.loads(ZC_JSON.read_text())["nasbench201"]["cifar10"]
    keys = sorted(table)
    if args.limit:
        keys = sorted(random.Random(args.seed).sample(keys, args.limit))
    batch_seed = args.seed if args.batch_seed is None else args.batch_seed
    batch = cifar10_batch(args.batch_size, batch_seed)
    ours: dict[str, list[float]] = {name: [] for name in args.proxies}
    seconds = dict.fromkeys(args.proxies, 0.0)
    start = time.perf_counter()
    for i, key in enumerate(keys):
        torch.manual_seed(args.seed)
        net = Nb201Network(Nb201Cell.from_naslib(ast.literal_eval(key)), Nb201Spec(3, 10, 32))
        for name in args.proxies:
            t = time.perf_counter()
            ours[name].append(score(name, net, batch))
            seconds[name] += time.perf_counter() - t
        if (i + 1) % 25 == 0:
            print(f"# {i + 1}/{len(keys)} cells, {time.perf_counter() - start:.0f} s", flush=True)
    total = time.perf_counter() - start
    if args.save:
        args.save.write_text(json.dumps({"keys": keys, "scores": ours}))

    accuracy = [table[k]["val_accuracy"] for k in keys]
    print(f"\n{len(keys)} cells, batch {args.batch_size} (seed {batch_seed}), {total:.0f} s\n")
    print("| proxy | ours vs NASLib | ours vs val acc | NASLib vs val acc | NaN | s / cell |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, scores in ours.items():
        nans = int(np.isnan(scores).sum())
        if name in table[keys[0]]:
            theirs = [table[k][name] for k in keys]
            versus, their_acc = f"{spearman(scores, theirs):.3f}", f"{spearman(theirs, accuracy):.3f}"
        else:
            versus, their_acc = "—", "—"
        print(f"| {name} | {versus} | {spearman(scores, accuracy):.3f} | {their_acc} | {nans} "
              f"| {seconds[name] / len(keys):.2f} |")


if __name__ == "__main__":
    main()
