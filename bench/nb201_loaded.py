"""The tabular NB201 search on a busy machine: its wall clock with one torch thread (the
default) and with every core (``+search.options.num_threads=null``), each alone and beside a
CPU-bound process (``python -c 'while True: pass'``, killed at the end).

Runs ``search.py`` as a user types it, the four cases interleaved ``--repeats`` times so a
drift of the machine's own load hits them alike; prints each run's seconds and the 1-minute
load average before it, and per case the median.

    python bench/nb201_loaded.py --trials 50 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["space=nb201", "evaluator=nb201_table", "dataset=cifar10"]
THREADS = {"one thread (default)": [], "every core": ["+search.options.num_threads=null"]}


def run_search(trials: int, extra: list[str], run_dir: Path) -> float:
    """Seconds of one ``search.py`` run (it must succeed)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "search.py", *COMMAND, f"search.trials={trials}",
                    f"hydra.run.dir={run_dir}", *extra], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; search.trials={args.trials}")
    seconds: dict[tuple[str, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for busy in (False, True):
                for name, extra in THREADS.items():
                    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) \
                        if busy else None
                    try:
                        load = os.getloadavg()[0]
                        run_dir = Path(tmp) / f"{repeat}-{busy}-{len(extra)}"
                        took = run_search(args.trials, extra, run_dir)
                    finally:
                        if hog is not None:
                            hog.kill()
                            hog.wait()
                    seconds.setdefault((name, busy), []).append(took)
                    print(f"repeat {repeat}: {name:21s} {'beside a busy process' if busy else 'alone':22s}"
                          f" {took:6.1f} s (load before {load:.2f})", flush=True)
    print("\nmedian seconds:")
    for (name, busy), values in seconds.items():
        print(f"  {name:21s} {'busy' if busy else 'alone':6s} {statistics.median(values):6.1f}")


if __name__ == "__main__":
    main()
