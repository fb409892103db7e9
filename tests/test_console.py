"""What a search prints: no Lightning banners (nor any line twice), one plain line per finished
trial, the final table; no expected GP jitter warnings; a training trial shown as running."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from shared_data import needs_shared

from nago_pl.config import compose
from nago_pl.search import progress as progress_module
from nago_pl.search.runner import run_search
from nago_pl.training import run as run_module  # trials import train_architecture from here

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / ".." / "shared" / "data" / "nas-bench-201" / "nats_tss_test_acc_200ep.csv"
FAST = [
    "search.space.G1_nodes.high=4", "search.space.G2_nodes.high=2", "search.space.G3_nodes.high=4",
    "network.param_limit=30000", "network.head_channels=64", "trainer.max_epochs=3",
    "search.pruning.min_epochs=1", "logger=csv",
]
FINISHED = re.compile(r"^trial (\d+) (complete|pruned|failed)\b")


def piped_search(run_dir: Path, *overrides: str) -> tuple[str, str]:
    """Run search.py with its output piped (not a terminal); its stdout and stderr."""
    proc = subprocess.run([sys.executable, "search.py", f"hydra.run.dir={run_dir}", *overrides],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def test_a_piped_search_prints_a_line_per_trial_and_the_table_and_no_banner(
        tmp_path: Path) -> None:
    out, err = piped_search(tmp_path, *FAST, "search.trials=3", "search.options.n_init=2")
    text = out + err
    for banner in ("GPU available", "TPU available", "litlogger", "Restoring states",
                   "Loaded model weights", "Trainer.fit", "INFO"):
        assert banner not in text, banner
    lines = [line for line in text.splitlines() if line.strip() and not set(line) <= set("─━│┃ ")]
    repeated = [line for line, n in Counter(lines).items() if n > 1 and "│" not in line]
    assert not repeated, repeated
    finished = [FINISHED.match(line) for line in out.splitlines()]
    assert sorted(int(m.group(1)) for m in finished if m) == [0, 1, 2]
    assert "Pareto front of study" in out


def test_a_trial_is_shown_running_while_it_trains(tmp_path: Path, monkeypatch) -> None:
    shown: dict[int, str] = {}
    seen_while_training: list[str] = []
    show = progress_module.SearchProgress.trial

    def recording(self, trial_id, number, epochs, epoch=0, where=None):
        if where is not None:
            shown[number] = where
        return show(self, trial_id, number, epochs, epoch, where)

    real = run_module.train_architecture

    def training(cfg, run_dir, callbacks=()):
        seen_while_training.append(shown[cfg.tracking.trial])
        return real(cfg, run_dir, callbacks=callbacks)

    monkeypatch.setattr(progress_module.SearchProgress, "trial", recording)
    monkeypatch.setattr(run_module, "train_architecture", training)
    cfg = compose("search", [*FAST, "logger=none", "search=random", "search.trials=2"])
    run_search(cfg, tmp_path, Console(quiet=True))
    assert seen_while_training == ["in-process", "in-process"]


@needs_shared(TABLE)
def test_the_table_search_prints_no_jitter_warning(tmp_path: Path) -> None:
    out, err = piped_search(tmp_path, "space=nb201", "evaluator=nb201_table", "dataset=cifar10",
                            "search.trials=30", "logger=none")
    assert "NumericalWarning" not in out + err and "added jitter" not in out + err
    assert len([line for line in out.splitlines() if FINISHED.match(line)]) == 30
