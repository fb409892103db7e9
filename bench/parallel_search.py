"""Parallel trials: a 12-trial digits search at 3 epochs with workers=1 and workers=2, on the
process and the Ray executors (torch 1 thread per trial): wall clock, speed-up, hypervolume.

    python bench/parallel_search.py [--trials 12] [--epochs 3] [--out /tmp/nago-parallel] \
        [--executors process ray] [extra search.py overrides, e.g. network.param_limit=30000]

Each run is a fresh ``search.py`` process (its start-up and, for Ray, the local cluster's start
are part of its time); the hypervolume is the study's after its last trial.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nago_pl.config import compose  # noqa: E402
from nago_pl.search.report import hypervolume_history  # noqa: E402
from nago_pl.search.runner import open_study  # noqa: E402


def run(executor: str, workers: int, trials: int, epochs: int, out: Path, extra: list[str]
        ) -> tuple[float, float]:
    """Wall-clock seconds and final hypervolume of one search."""
    run_dir = out / f"{executor}-{workers}"
    overrides = [f"executor={executor}", f"search.workers={workers}", f"search.trials={trials}",
                 f"trainer.max_epochs={epochs}", "logger=none", "executor.cpus_per_trial=1",
                 *extra]
    started = time.perf_counter()
    subprocess.run([sys.executable, "search.py", f"hydra.run.dir={run_dir}", *overrides],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    study = open_study(compose("search", overrides), run_dir)
    history = hypervolume_history(study)
    return seconds, history[-1] if history else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/nago-parallel"))
    parser.add_argument("--executors", nargs="+", choices=("process", "ray"),
                        default=["process", "ray"])
    parser.add_argument("overrides", nargs="*", help="extra search.py overrides")
    args = parser.parse_args()
    print("| executor | workers | wall clock (s) | speed-up vs workers=1 | hypervolume |")
    print("|---|---|---|---|---|")
    for executor in args.executors:
        results = {w: run(executor, w, args.trials, args.epochs, args.out, args.overrides)
                   for w in (1, 2)}
        for workers, (seconds, hv) in results.items():
            print(f"| {executor} | {workers} | {seconds:.0f} | {results[1][0] / seconds:.2f} | "
                  f"{hv:.4f} |", flush=True)


if __name__ == "__main__":
    main()
