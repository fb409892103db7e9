"""LISSNAS-style shrinkage on the NAS-Bench-201 table: what the shrunk space holds, and
searching inside it against searching the whole space at equal total queries.

Per (dataset, seed): the shrinking stage (``search.shrink=lissnas``'s defaults unless
``--queries``) runs through ask/tell on an in-memory Study with the table's 200-epoch test
accuracy as the reward; then the shrunk space is compared with the whole space (size, share of
the top 0.1 % / 1 % cells kept, a cell within 0.1 point of the optimum held, mean / median
accuracy, pockets and their mean pairwise edit distance) and with a one-region baseline of
the same size: the cells nearest the best cell the stage found (edit distance, ties broken at
random), i.e. the best single ball. Kendall tau is that of the accuracies inside the shrunk
space against the stage's pocket order (a cell ranks by its pocket's observed centre value).
Then ``random`` and ``evolution`` search inside the shrunk space for the queries left of
``--total`` and on the whole space for all ``--total``; the best accuracy each found is
reported. Results go to ``--out`` (JSON lines; runs already there are skipped), then a markdown
summary is printed.

``--score nwot --root <CIFAR-10 image folder>`` ranks the stage's cells by the NASWOT proxy of
the untrained benchmark network (C=16, 5 cells) on 64 of those training images instead
(``search.shrink_options.score=nwot``): its queries are not table queries, so every search
inside gets all ``--total``.

    python bench/shrink_nb201.py --seeds 20 --datasets cifar10
    python bench/shrink_nb201.py --report runs/bench/shrink_nb201.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from nb201_strategies import DATASETS, OBJECTIVES, SPACE, TABLE
from scipy.stats import kendalltau

from nago_pl.data.image_folder import ImageFolderDataModule
from nago_pl.network.nb201 import Nb201Network, Nb201Spec
from nago_pl.proxies import score
from nago_pl.search import Objective, SearchSpace, Study
from nago_pl.search.nb201_table import Nb201Table, cell_string
from nago_pl.search.prescreen import PROXY_THREADS
from nago_pl.search.shrink import Lissnas, ShrunkSpace
from nago_pl.search.shrink.stage import proxy_shrink
from nago_pl.search.strategies import make_strategy
from nago_pl.search.strategies.mobo import torch_threads
from nago_pl.space.nb201 import OPS, Nb201Cell

STRATEGIES = ("random", "evolution")
#: The whole space's mean and median test accuracy (%) per dataset (the table's 15,625 cells).
WHOLE = {"cifar10": (87.06, 90.75), "cifar100": (61.41, 65.29), "ImageNet16-120": (33.59, 36.39)}
CELLS = np.array(list(itertools.product(range(len(OPS)), repeat=6)))
#: The evaluated network (NAS-Bench-201's C=16, 5 cells per stage) a proxy scores.
EVALUATED = Nb201Spec(3, 10, 32, 16, 5)


def shrink(seed: int, queries: int | None, accuracy: Callable[[dict], float],
           shrink_options: dict[str, Any], proxy: ProxyOnCells | None = None
           ) -> tuple[Study, ShrunkSpace, float]:
    """The stage (``search.shrink_options``: ``shrink_options``) on an in-memory study; the
    best accuracy it observed (with a ``proxy``: the stage's own study holds proxy scores, so
    the study returned is empty and the best is 0)."""
    study = Study.open(":memory:", "shrink", SPACE, OBJECTIVES)
    options = {**shrink_options, **({} if queries is None else {"queries": queries})}
    if proxy is not None:
        stage = Lissnas(SearchSpace.from_config(SPACE), Objective(proxy.name, "max"), seed,
                        **options)
        return study, proxy_shrink(stage, proxy.batch_for(seed)), 0.0
    stage = Lissnas(SearchSpace.from_config(SPACE), OBJECTIVES[0], seed, **options)
    best = 0.0
    while len(stage.stage_trials(study)) < stage.queries:
        trial = stage.ask(study, 1)[0]
        value = accuracy(trial.params)
        best = max(best, value)
        study.tell(trial.id, {"val_acc": value})
    return study, stage.result(study), best


class ProxyOnCells:
    """Zero-cost proxy ``name`` of the benchmark's untrained network for a cell, on 64 images
    of the ImageFolder ``root`` (a batch per seed)."""

    def __init__(self, name: str, root: str) -> None:
        self.name = name
        self.data = ImageFolderDataModule(root=root, batch_size=64, image_size=32,
                                          max_train_samples=5000)
        self.data.setup("fit")

    def batch_for(self, seed: int) -> Callable[[dict[str, Any], int], float]:
        """The score of (params, trial seed) on seed ``seed``'s batch."""
        order = torch.randperm(len(self.data.train_set),
                               generator=torch.Generator().manual_seed(seed))[:64]
        x, y = self.data.train_set[order.tolist()]
        batch = (self.data.batch_transform(x, train=False), y)

        def scored(params: dict[str, Any], trial_seed: int) -> float:
            cell = Nb201Cell(tuple(params[f"edge_{i}"] for i in range(6)))
            torch.manual_seed(trial_seed)
            with torch_threads(PROXY_THREADS):
                return score(self.name, Nb201Network(cell, EVALUATED), batch)
        return scored


def search(name: str, seed: int, trials: int, accuracy: Callable[[dict], float],
           study: Study | None = None, shrunk: ShrunkSpace | None = None) -> float:
    """The best accuracy strategy ``name`` finds in ``trials`` more queries of ``study``."""
    study = study or Study.open(":memory:", "bench", SPACE, OBJECTIVES)
    space = shrunk.search_space() if shrunk else SearchSpace.from_config(SPACE)
    strategy = make_strategy(name, space=space, objectives=OBJECTIVES,
                             seed=seed, feasible=shrunk.restrict(None) if shrunk else None)
    best = 0.0
    for _ in range(trials):
        trial = strategy.ask(study, 1)[0]
        value = accuracy(trial.params)
        best = max(best, value)
        study.tell(trial.id, {"val_acc": value})
    return best


def cell_index(space: SearchSpace, X: torch.Tensor) -> np.ndarray:
    """Row of CELLS of every unit point of ``X``."""
    bins = space.bin_indices(X).numpy()
    return (bins * (len(OPS) ** np.arange(5, -1, -1))).sum(1)


def one_seed(dataset: str, seed: int, args: argparse.Namespace, acc: np.ndarray,
             accuracy: Callable[[dict], float], proxy: ProxyOnCells | None) -> dict[str, Any]:
    start = time.perf_counter()
    space = SearchSpace.from_config(SPACE)
    study, shrunk, stage_best = shrink(seed, args.queries, accuracy, json.loads(args.options),
                                       proxy)
    used = study.n_trials()
    inside = cell_index(space, torch.tensor(sorted(shrunk.members()), dtype=torch.float64))
    order = np.argsort(-acc)
    top01, top1 = set(order[:16].tolist()), set(order[:156].tolist())
    held = set(inside.tolist())
    # one region of the same size: the cells nearest the best centre (ties at random)
    centre = cell_index(space, shrunk.centres[:1])[0]
    distance = (CELLS != CELLS[centre]).sum(1)
    ties = np.random.default_rng(seed).random(len(CELLS))
    region = set(np.lexsort((ties, distance))[: len(inside)].tolist())
    centres = shrunk.centres
    gaps = shrunk.metric.pairwise(centres, centres)
    pairs = [float(gaps[i, j]) for i in range(len(centres)) for j in range(i + 1, len(centres))]
    pocket_of = [shrunk.pocket_of(c) for c in space.from_unit(
        torch.tensor(sorted(shrunk.members()), dtype=torch.float64))]
    by_pocket = [-shrunk.pockets[k].value for k in pocket_of]  # type: ignore[index]
    tau = kendalltau(by_pocket, -acc[inside]).statistic if len(shrunk.pockets) > 1 \
        else float("nan")
    row = {"dataset": dataset, "seed": seed, "score": args.score, "queries": used,
           "size": len(inside),
           "share": len(inside) / len(CELLS), "pockets": len(shrunk.pockets),
           "radius": shrunk.locality.get("radius"),
           "pair_distance": statistics.mean(pairs) if pairs else None,
           "top01": len(held & top01) / len(top01), "top1": len(held & top1) / len(top1),
           "region_top1": len(region & top1) / len(top1),
           "region_mean": float(acc[list(region)].mean()),
           "optimum": bool(acc[inside].max() >= acc.max() - 0.1),
           "mean": float(acc[inside].mean()), "median": float(np.median(acc[inside])),
           "tau": None if np.isnan(tau) else float(tau), "stage_best": stage_best}
    for name in STRATEGIES:
        left = args.total - used
        row[f"{name}_inside"] = max(stage_best, search(name, seed, left, accuracy, study,
                                                       shrunk))
        row[f"{name}_whole"] = search(name, seed, args.total, accuracy)
    row["seconds"] = time.perf_counter() - start
    return row


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["dataset"], r["seed"]) for r in load([out])} if out.exists() else set()
    proxy = ProxyOnCells(args.score, args.root) if args.score != "evaluator" else None
    for dataset in args.datasets:
        table = Nb201Table.load(TABLE, dataset)
        acc = np.array([100 * table.accuracy[cell_string([OPS[i] for i in c])] for c in CELLS])

        def accuracy(params: dict, table: Nb201Table = table) -> float:
            return 100 * table.accuracy[cell_string([params[f"edge_{i}"] for i in range(6)])]

        for seed in range(args.first_seed, args.first_seed + args.seeds):
            if (dataset, seed) in done:
                continue
            row = one_seed(dataset, seed, args, acc, accuracy, proxy)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{dataset} seed {seed}: {row['pockets']} pockets, {row['size']} cells, "
                  f"mean {row['mean']:.2f} in {row['seconds']:.1f} s", flush=True)


def load(paths: list[Path]) -> list[dict]:
    """Every result line of ``paths``."""
    return [json.loads(line) for p in paths for line in p.read_text().splitlines() if line]


def _ms(values: list[float], digits: int = 2) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def report(paths: list[Path]) -> None:
    results = load(paths)
    for dataset in DATASETS:
        rows = [r for r in results if r["dataset"] == dataset]
        if not rows:
            continue
        n = len(rows)
        ranked_by = rows[0].get("score", "evaluator")
        print(f"\n{dataset}, {n} seeds, {rows[0]['queries']} shrinking queries of the table "
              f"(cells ranked by: {ranked_by}): the shrunk space (mean ± std over seeds)\n")
        print("| measure | shrunk space (pockets) | one region, same size |")
        print("| --- | ---: | ---: |")
        print(f"| cells (share of 15,625) | {_ms([r['size'] for r in rows], 0)} "
              f"({_ms([100 * r['share'] for r in rows])} %) | same |")
        print("| pockets / the stage's radius | "
              f"{_ms([r['pockets'] for r in rows], 1)} / "
              f"{_ms([r['radius'] for r in rows], 1)} | 1 |")
        print(f"| mean pairwise centre distance (edits) | "
              f"{_ms([r['pair_distance'] for r in rows])} | n/a |")
        print(f"| top 0.1 % kept | {_ms([100 * r['top01'] for r in rows], 1)} % | |")
        print(f"| top 1 % kept | {_ms([100 * r['top1'] for r in rows], 1)} % | "
              f"{_ms([100 * r['region_top1'] for r in rows], 1)} % |")
        more = sum(r["top1"] > r["region_top1"] for r in rows)
        same = sum(r["top1"] == r["region_top1"] for r in rows)
        print(f"| seeds keeping more / as many / fewer top 1 % cells than one region | "
              f"{more} / {same} / {n - more - same} | |")
        print(f"| holds a cell within 0.1 pt of the optimum | "
              f"{sum(r['optimum'] for r in rows)} / {n} seeds | |")
        print(f"| mean accuracy (whole space {WHOLE[dataset][0]}) | "
              f"{_ms([r['mean'] for r in rows])} | {_ms([r['region_mean'] for r in rows])} |")
        print(f"| median accuracy (whole space {WHOLE[dataset][1]}) | "
              f"{_ms([r['median'] for r in rows])} | |")
        print(f"| Kendall τ (pocket order vs accuracy inside) | "
              f"{_ms([r['tau'] for r in rows])} | |")
        total = rows[0]["queries"]
        print(f"\n{dataset}: best accuracy found at equal total queries (the shrinking's "
              f"{total} included), mean ± std over {n} seeds\n")
        print("| strategy | inside the shrunk space | whole space | inside better / equal / "
              "worse |")
        print("| --- | ---: | ---: | ---: |")
        for name in STRATEGIES:
            inside = [r[f"{name}_inside"] for r in rows]
            whole = [r[f"{name}_whole"] for r in rows]
            wins = sum(a > b for a, b in zip(inside, whole, strict=True))
            ties = sum(a == b for a, b in zip(inside, whole, strict=True))
            print(f"| {name} | {_ms(inside)} | {_ms(whole)} | {wins} / {ties} / "
                  f"{n - wins - ties} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["cifar10"], choices=DATASETS)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds from this one on")
    parser.add_argument("--queries", type=int, default=None,
                        help="the stage's queries (default: search.shrink_options.queries)")
    parser.add_argument("--total", type=int, default=150,
                        help="queries of each search, the shrinking's included")
    parser.add_argument("--options", default="{}",
                        help="search.shrink_options as JSON (default: the stage's defaults)")
    parser.add_argument("--score", default="evaluator",
                        help="evaluator (the table) or a zero-cost proxy, e.g. nwot")
    parser.add_argument("--root", help="CIFAR-10 ImageFolder tree (the proxy's images)")
    parser.add_argument("--out", default="runs/bench/shrink_nb201.jsonl")
    parser.add_argument("--report", nargs="*", type=Path,
                        help="only summarise these result files")
    args = parser.parse_args()
    if args.score != "evaluator" and args.root is None and args.report is None:
        parser.error(f"--score {args.score} needs --root (the images the proxy scores on)")
    if args.report is None:
        run(args)
    report(args.report or [Path(args.out)])


if __name__ == "__main__":
    main()
