"""Files and folders the scripts cannot use are one ``error:`` line, exit 2, no traceback
(issue 18): a binary ``arch=`` file, a run directory that cannot be written, a damaged
``study.db``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.search.study import Objective, Study
from nago_pl.training.run import train_architecture

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "logger=none"]
SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
OBJS = [Objective("val_acc", "max")]


def run_script(script: str, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, script, f"hydra.run.dir={run_dir}", *QUIET, *overrides],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize("space", ["hnag", "nb201"])
def test_a_binary_arch_file_is_one_line_error(tmp_path: Path, space: str) -> None:
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    cfg = compose("train", [*QUIET, f"space={space}", f"arch={binary}"])
    with pytest.raises(NagoError, match=str(binary)):
        train_architecture(cfg, tmp_path / "run")


def test_a_run_directory_whose_log_cannot_be_written_is_one_line_error(tmp_path: Path) -> None:
    """Hydra's log file handler cannot open ``train.log`` (here a folder: root writes into
    read-only folders, so this stands for one)."""
    (tmp_path / "train.log").mkdir()
    line = one_error_line(run_script("train.py", tmp_path))
    assert f"hydra.run.dir={tmp_path}: cannot write the run directory" in line


def test_a_run_directory_under_a_file_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    line = one_error_line(run_script("search.py", tmp_path / "file" / "run"))
    assert "cannot write the run directory (Not a directory" in line


def damaged_study(path: Path) -> Path:
    with Study.open(path, "s", SPACE, OBJS) as study:
        for i in range(200):
            trial = study.add_trial({"x": i / 200}, seed=i, info={"note": "x" * 200})
            study.tell(trial.id, {"val_acc": 0.5})
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(path, "r+b") as f:  # scribble over the middle of a table page
        f.seek(5 * 4096 + 100)
        f.write(b"\xde\xad\xbe\xef" * 200)
    return path


def test_a_damaged_study_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = damaged_study(tmp_path / "study.db")
    message = f"cannot open study database {path}: not a valid study file"
    with pytest.raises(NagoError, match=message) as err:
        Study.open(path, "s", SPACE, OBJS)
    assert "\n" not in str(err.value)


def test_a_file_that_is_not_sqlite_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    path.write_bytes(b"not a database " * 100)
    with pytest.raises(NagoError, match=f"study database {path}: not a valid study file"):
        Study.open(path, "s", SPACE, OBJS)


def test_search_py_on_a_damaged_study_is_one_line_error(tmp_path: Path) -> None:
    damaged_study(tmp_path / "study.db")
    line = one_error_line(run_script("search.py", tmp_path, "study_name=s"))
    assert f"{tmp_path / 'study.db'}: not a valid study file" in line
