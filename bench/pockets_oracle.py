"""How much can pockets beat one region on the NAS-Bench-201 table at all? With the table's
answers known: K disjoint one-edit pockets centred on the best cells (best first, centres at
least 3 edits apart) against one region of the same size around the optimum (the cells
nearest it, ties at random), counting the top 1 % cells (156) each holds and their mean
accuracy. No search involved: an upper bound on what the multi-pocket shape can add. Beside
them, the best *box* (a set of operations per edge) of at most the same size, built greedily
from the whole space by dropping the (edge, operation) that loses the fewest top cells per cell
removed: the shape the forest-shaped pockets of ``search.shrink=lissnas`` approximate.

    python bench/pockets_oracle.py --pockets 3 8 12
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from nb201_strategies import DATASETS, TABLE

from nago_pl.search.nb201_table import Nb201Table, cell_string
from nago_pl.space.nb201 import OPS

CELLS = np.array(list(itertools.product(range(len(OPS)), repeat=6)))


def edits(i: int) -> np.ndarray:
    """Edit distance (edges changed) of every cell to cell ``i``."""
    return (CELLS != CELLS[i]).sum(1)


def compare(acc: np.ndarray, pockets: int, seed: int = 0) -> tuple[int, int, int, float, float]:
    """Cells, top-1 % cells in the pockets and in the region, and both mean accuracies."""
    order = np.argsort(-acc)
    top1 = set(order[:156].tolist())
    centres: list[int] = []
    for i in order:
        if all(edits(i)[c] >= 3 for c in centres):
            centres.append(int(i))
        if len(centres) == pockets:
            break
    inside = set().union(*(set(np.nonzero(edits(c) <= 1)[0].tolist()) for c in centres))
    ties = np.random.default_rng(seed).random(len(CELLS))
    region = set(np.lexsort((ties, edits(int(order[0]))))[: len(inside)].tolist())
    return (len(inside), len(inside & top1), len(region & top1),
            float(acc[list(inside)].mean()), float(acc[list(region)].mean()))


def best_box(acc: np.ndarray, size: int) -> tuple[int, int]:
    """Cells and top-1 % cells of the greedy box of at most ``size`` cells (module doc)."""
    top = np.zeros(len(CELLS), dtype=bool)
    top[np.argsort(-acc)[:156]] = True
    allowed = [set(range(len(OPS))) for _ in range(6)]

    def inside(sets: list[set[int]]) -> np.ndarray:
        return np.all([np.isin(CELLS[:, e], list(sets[e])) for e in range(6)], axis=0)

    while inside(allowed).sum() > size:
        now = inside(allowed)
        options = []
        for e, op in itertools.product(range(6), range(len(OPS))):
            if op in allowed[e] and len(allowed[e]) > 1:
                trial = [a - {op} if i == e else a for i, a in enumerate(allowed)]
                kept = inside(trial)
                lost = ((now & top).sum() - (kept & top).sum()) / max(1, now.sum() - kept.sum())
                options.append((lost, e, op))
        _, e, op = min(options)
        allowed[e] = allowed[e] - {op}
    box = inside(allowed)
    return int(box.sum()), int((box & top).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pockets", type=int, nargs="+", default=[3, 8, 12])
    args = parser.parse_args()
    print("| dataset | pockets | cells | top 1 % in pockets | in one region | mean acc. pockets "
          "| one region | best box: cells, top 1 % |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for dataset in DATASETS:
        table = Nb201Table.load(TABLE, dataset)
        acc = np.array([100 * table.accuracy[cell_string([OPS[i] for i in c])] for c in CELLS])
        for k in args.pockets:
            size, ours, region, mean, region_mean = compare(acc, k)
            box, box_top = best_box(acc, size)
            print(f"| {dataset} | {k} | {size} | {ours} | {region} | {mean:.2f} | "
                  f"{region_mean:.2f} | {box}, {box_top} |")


if __name__ == "__main__":
    main()
