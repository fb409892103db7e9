"""SNAS and the DARTS control on CIFAR-10 (CPU), their derived cells scored by the NB201 table.

Each (method, seed) trains a reduced supernet (``--channels``, ``--cells`` per stage) on
``--train-images`` CIFAR-10 training JPEGs (DARTS: half for θ, half for α) for ``--epochs``,
then looks up its derived (argmax) cell's 200-epoch test accuracy on CIFAR-10, CIFAR-100 and
ImageNet16-120, with α's entropy per epoch, the cost of the cell and the wall clock. ``nwot``
is the zero-cost baseline at the same wall clock: random cells scored by the NASWOT proxy (the
benchmark's C=16, 5-cells network, a batch of 64 training images) until ``--nwot-seconds``
have passed (give the SNAS runs' wall clock); the best score's cell is looked up. Results go
to ``--out`` (JSON lines; runs already there are skipped).

``--shrunk`` first runs the LISSNAS stage (``search.shrink=lissnas``'s defaults: 80 queries of
the CIFAR-10 column, the seed's) and restricts every supernet edge to the operations its shrunk
space keeps there (what ``search.shrink=lissnas search=snas`` does); the rows are then
``snas+lissnas`` (or ``darts+lissnas``), and their cell is what such a search trains first: the
shrunk space's likeliest member under the learned distribution (the per-edge argmax, seldom a
member, is kept as ``argmax_cell`` with its accuracies), with the edges' operations.

    mkdir -p /tmp/cifar10-jpg
    tar xzf ../shared/data/cifar10-jpg/cifar10-jpg.tar.gz -C /tmp/cifar10-jpg
    python bench/oneshot_nb201.py --methods snas --out runs/bench/oneshot.jsonl
    python bench/oneshot_nb201.py --methods darts --out runs/bench/oneshot_darts.jsonl
    python bench/oneshot_nb201.py --methods snas --seeds 0 1 --cost-weight 0.5 \
        --out runs/bench/oneshot_cost.jsonl
    python bench/oneshot_nb201.py --methods nwot --seeds 0 1 --nwot-seconds 890 \
        --out runs/bench/oneshot_nwot.jsonl
    python bench/oneshot_nb201.py --methods snas --seeds 0 1 2 --shrunk \
        --out runs/bench/oneshot_shrunk.jsonl
    python bench/oneshot_nb201.py --report runs/bench/oneshot*.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import time
from pathlib import Path

import torch
from shrink_nb201 import shrink

from nago_pl.data.image_folder import ImageFolderDataModule
from nago_pl.network.nb201 import Nb201Costs, Nb201Network, Nb201Spec
from nago_pl.oneshot.module import OneShotSettings
from nago_pl.oneshot.search import run_oneshot
from nago_pl.oneshot.strategy import DerivedCells
from nago_pl.proxies import score
from nago_pl.search import Objective
from nago_pl.search.nb201_table import Nb201Table, cell_string
from nago_pl.search.shrink import ShrunkSpace
from nago_pl.space.nb201 import OPS, Nb201Cell

TABLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nas-bench-201" / \
    "nats_tss_test_acc_200ep.csv"
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
#: The evaluated network (NAS-Bench-201's): its cost is the cost term's and the table's.
EVALUATED = Nb201Spec(3, 10, 32, 16, 5)


def tables() -> dict[str, Nb201Table]:
    return {name: Nb201Table.load(TABLE, name) for name in DATASETS}


def lookup(cell: Nb201Cell, by_dataset: dict[str, Nb201Table]) -> dict[str, float]:
    return {name: round(100 * t.accuracy[cell.to_string()], 2) for name, t in by_dataset.items()}


def run_method(args: argparse.Namespace, method: str, seed: int, data: ImageFolderDataModule,
               by_dataset: dict[str, Nb201Table]) -> dict:
    settings = OneShotSettings(method=method, epochs=args.epochs, cost_weight=args.cost_weight,
                               alpha_lr=args.alpha_lr, cost=args.cost)
    shrunk = shrunk_space(seed, by_dataset["cifar10"]) if args.shrunk else None
    edge_ops = [list(OPS)] * 6
    if shrunk is not None:
        kept = shrunk.member_values()
        edge_ops = [[op for op in OPS if op in kept[f"edge_{i}"]] for i in range(6)]
        method = f"{method}+lissnas"
    out = Path(args.work) / f"{method}-cw{args.cost_weight}-s{seed}"
    shutil.rmtree(out, ignore_errors=True)
    result = run_oneshot(lambda: data, settings, Nb201Spec(3, 10, 32, args.channels, args.cells),
                         EVALUATED, edge_ops, out,
                         {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
                          "enable_model_summary": False}, seed=seed, val_images=1000)
    with (out / "alpha.csv").open() as f:
        rows = list(csv.DictReader(f))
    params, flops = Nb201Costs.measure(EVALUATED).of(result.cell)
    return {"method": method, "seed": seed, "cost_weight": args.cost_weight,
            "cell": result.cell.to_string(), "accuracy": lookup(result.cell, by_dataset),
            "params": params, "flops": flops, "seconds": result.seconds,
            "entropy": [float(r["entropy"]) for r in rows],
            "cells": [r["cell"] for r in rows], "settings": vars(args),
            **({} if shrunk is None else in_shrunk_space(shrunk, result.probabilities,
                                                         edge_ops, by_dataset))}


def in_shrunk_space(shrunk: ShrunkSpace, probabilities: torch.Tensor,
                    edge_ops: list[list[str]], by_dataset: dict[str, Nb201Table]) -> dict:
    """A ``--shrunk`` row's fields: the likeliest member as its cell (see the module doc)."""
    cells = DerivedCells(shrunk.space, [Objective("val_acc", "max")], 0, probabilities,
                         "bench", members=shrunk.member_configs())
    member = Nb201Cell(tuple(cells.argmax()[f"edge_{i}"] for i in range(6)))
    argmax = Nb201Cell(tuple(OPS[int(i)] for i in torch.as_tensor(probabilities).argmax(-1)))
    params, flops = Nb201Costs.measure(EVALUATED).of(member)
    return {"cell": member.to_string(), "accuracy": lookup(member, by_dataset),
            "params": params, "flops": flops,
            "argmax_cell": argmax.to_string(), "argmax_accuracy": lookup(argmax, by_dataset),
            "argmax_in_shrunk": shrunk.contains({f"edge_{i}": op
                                                 for i, op in enumerate(argmax.ops)}),
            "edge_ops": edge_ops, "shrunk_size": shrunk.size}


def shrunk_space(seed: int, table: Nb201Table) -> ShrunkSpace:
    """The LISSNAS stage's shrunk space (defaults, seed ``seed``) on the CIFAR-10 column."""
    def accuracy(params: dict) -> float:
        return 100 * table.accuracy[cell_string([params[f"edge_{i}"] for i in range(6)])]
    return shrink(seed, None, accuracy, {})[1]


def run_nwot(args: argparse.Namespace, seed: int, data: ImageFolderDataModule,
             by_dataset: dict[str, Nb201Table], seconds: float) -> dict:
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.train_set), generator=gen)[:64]
    x, y = data.train_set[order.tolist()]
    x = data.batch_transform(x, train=False)
    started, best, scored = time.perf_counter(), None, 0
    while time.perf_counter() - started < seconds:
        cell = Nb201Cell(tuple(OPS[int(i)] for i in torch.randint(len(OPS), (6,), generator=gen)))
        torch.manual_seed(seed)
        value = score("nwot", Nb201Network(cell, EVALUATED), (x, y))
        scored += 1
        if value == value and (best is None or value > best[0]):
            best = (value, cell)
    assert best is not None
    return {"method": "nwot", "seed": seed, "cell": best[1].to_string(),
            "accuracy": lookup(best[1], by_dataset), "scored": scored,
            "seconds": round(time.perf_counter() - started, 3), "settings": vars(args)}


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["method"], r["seed"], r.get("cost_weight")) for r in load([out])}
    by_dataset = tables()
    torch.set_num_threads(args.threads)
    data = ImageFolderDataModule(root=args.root, batch_size=args.batch_size, image_size=32,
                                 max_train_samples=args.train_images)
    data.setup("fit")
    for seed in args.seeds:
        for method in args.methods:
            label = f"{method}+lissnas" if args.shrunk and method != "nwot" else method
            key = (label, seed, None if method == "nwot" else args.cost_weight)
            if key in done:
                continue
            if method == "nwot":
                record = run_nwot(args, seed, data, by_dataset, args.nwot_seconds)
            else:
                record = run_method(args, method, seed, data, by_dataset)
            print(json.dumps({k: v for k, v in record.items()
                              if k not in ("settings", "cells")}), flush=True)
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")


def load(paths: list[Path]) -> list[dict]:
    return [json.loads(line) for p in paths if p.is_file() for line in p.read_text().splitlines()
            if line.strip()]


def report(paths: list[Path]) -> None:
    records = load(paths)
    print("| method | cost_weight | seed | derived cell | CIFAR-10 | CIFAR-100 | ImageNet16 "
          "| params | MFLOPs | entropy first → last | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(records, key=lambda r: (r["method"], r.get("cost_weight") or 0, r["seed"])):
        acc = r["accuracy"]
        entropy = f"{r['entropy'][0]:.3f} → {r['entropy'][-1]:.3f}" if "entropy" in r else \
            f"{r['scored']} cells scored"
        params = f"{r['params'] / 1e6:.3f}M" if "params" in r else ""
        flops = f"{r['flops'] / 1e6:.0f}" if "flops" in r else ""
        print(f"| {r['method']} | {r.get('cost_weight', '')} | {r['seed']} | `{r['cell']}` | "
              f"{acc['cifar10']:.2f} | {acc['cifar100']:.2f} | {acc['ImageNet16-120']:.2f} | "
              f"{params} | {flops} | {entropy} | {r['seconds']:.0f} |")
    print()
    print("| method | cost_weight | runs | CIFAR-10 | CIFAR-100 | ImageNet16 | min CIFAR-10 "
          "| params | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r.get("cost_weight")), []).append(r)
    for (method, weight), runs in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or 0)):
        cells = []
        for name in DATASETS:
            values = [r["accuracy"][name] for r in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.2f} ± {spread:.2f}")
        params = [r["params"] for r in runs if "params" in r]
        size = f"{statistics.mean(params) / 1e6:.3f}M" if params else ""
        print(f"| {method} | {'' if weight is None else weight} | {len(runs)} | "
              + " | ".join(cells) + f" | {min(r['accuracy']['cifar10'] for r in runs):.2f} | "
              f"{size} | {statistics.mean(r['seconds'] for r in runs):.0f} |")
    entropy_table(records)


def entropy_table(records: list[dict]) -> None:
    """Mean α entropy (nats; uniform over 5 ops: 1.609) per method at some epochs."""
    runs = [r for r in records if "entropy" in r]
    if not runs:
        return
    last = max(len(r["entropy"]) for r in runs)
    epochs = sorted({1, *range(5, last + 1, 5), last})
    print()
    print("| method | cost_weight | " + " | ".join(f"epoch {e}" for e in epochs) + " |")
    print("|---|---|" + "---|" * len(epochs))
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["method"], r["cost_weight"]), []).append(r)
    for (method, weight), group in sorted(groups.items()):
        means = [statistics.mean(r["entropy"][e - 1] for r in group if len(r["entropy"]) >= e)
                 for e in epochs]
        print(f"| {method} | {weight} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["snas", "darts"],
                        choices=["snas", "darts", "nwot"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--root", default="/tmp/cifar10-jpg", help="the unpacked CIFAR-10 JPEGs")
    parser.add_argument("--train-images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1, help="cells per stage")
    parser.add_argument("--alpha-lr", type=float, default=3e-3)
    parser.add_argument("--cost-weight", type=float, default=1.5e-3)
    parser.add_argument("--cost", default="flops", choices=["flops", "params"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nwot-seconds", type=float, default=None)
    parser.add_argument("--shrunk", action="store_true",
                        help="search inside the LISSNAS stage's shrunk space (module doc)")
    parser.add_argument("--work", default="runs/bench/oneshot")
    parser.add_argument("--out", default="runs/bench/oneshot.jsonl")
    parser.add_argument("--report", nargs="*", type=Path, help="only summarise these files")
    args = parser.parse_args()
    if "nwot" in args.methods and args.nwot_seconds is None and args.report is None:
        parser.error("--methods nwot needs --nwot-seconds (the SNAS runs' wall clock)")
    if args.report is None:
        run(args)
    report(args.report or [Path(args.out)])


if __name__ == "__main__":
    main()
