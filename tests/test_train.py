"""train.py and the training runner: real short trainings and bad-input errors."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shared_data import require_shared

from nago_pl.config import compose
from nago_pl.training.run import train_architecture

ROOT = Path(__file__).resolve().parents[1]
FASHION = ROOT / "../shared/data/fashion-mnist"
QUIET = ["trainer.enable_progress_bar=false"]


def run_train(*overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "train.py", *QUIET, *overrides], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_short_training_on_digits_learns(tmp_path: Path) -> None:
    cfg = compose("train", [*QUIET, "trainer.max_epochs=8", "logger=none"])
    result = train_architecture(cfg, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == result.metrics
    assert metrics["val_acc"] >= 0.9
    assert metrics["test_acc"] >= 0.85
    assert metrics["epochs"] == 8
    assert 0.9 * 100_000 <= metrics["params"] <= 100_000
    assert metrics["flops"] > 0 and metrics["train_seconds"] > 0
    assert (tmp_path / "architecture.json").read_text() == result.architecture.to_json()
    assert result.checkpoint == tmp_path / "checkpoints" / "best.ckpt"
    assert result.checkpoint.is_file()


@pytest.mark.slow
def test_train_cli_writes_its_files_and_trains_from_an_architecture_file(tmp_path: Path) -> None:
    first = tmp_path / "first"
    done = run_train(f"hydra.run.dir={first}", "trainer.max_epochs=2", "seed=4")
    assert done.returncode == 0, done.stderr
    assert "test_acc" in done.stdout
    for name in ("architecture.json", "metrics.json", "checkpoints/best.ckpt", "csv/metrics.csv"):
        assert (first / name).is_file(), name
    again = tmp_path / "again"
    done = run_train(f"hydra.run.dir={again}", "trainer.max_epochs=1",
                     f"arch={first / 'architecture.json'}", "seed=99", "export=true")
    assert done.returncode == 0, done.stderr
    assert f"exported model: {again / 'export'}" in done.stdout
    assert (again / "architecture.json").read_text() == (first / "architecture.json").read_text()
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (first, again)]
    assert metrics[0]["params"] == metrics[1]["params"]


@pytest.mark.slow
def test_fashion_mnist_idx_files_train(tmp_path: Path) -> None:
    require_shared(FASHION)
    cfg = compose("train", [*QUIET, "dataset=fashion_mnist", f"dataset.root={FASHION}",
                            "dataset.max_train_samples=8000", "trainer.max_epochs=2",
                            "network.param_limit=50000", "network.head_channels=128",
                            "logger=none"])
    metrics = train_architecture(cfg, tmp_path).metrics
    assert metrics["test_acc"] > 0.6  # 10 classes: chance is 0.1


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_shards_the_data_and_writes_once(tmp_path: Path) -> None:
    done = run_train(f"hydra.run.dir={tmp_path}", "trainer.devices=2", "trainer.strategy=ddp",
                     "trainer.max_epochs=1", "logger=csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("test_acc") == 1  # only rank zero reports
    with (tmp_path / "csv" / "metrics.csv").open() as f:
        steps = [int(row["step"]) for row in csv.DictReader(f) if row["epoch"] == "0"]
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 1
    # digits: 1,150 training images, batch 64: 18 batches alone, 9 per process with 2 processes
    assert max(steps) + 1 == 9


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["generator.G1_nodes=0"], "G1_nodes=0: must be an integer in 1..64"),
        (["dataset=fashion_mnist", "dataset.root=/no/such/dir"], "/no/such/dir"),
        (["+model.optimizer.lrr=0.1"], "model.optimizer.lrr: not an argument of torch.optim.SGD"),
        (["arch=/no/such/architecture.json"], "arch=/no/such/architecture.json: no such file"),
    ],
)
def test_user_errors_are_one_line_without_traceback(overrides: list[str], message: str,
                                                      tmp_path: Path) -> None:
    done = run_train(f"hydra.run.dir={tmp_path}", *overrides)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], done.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [("dataset.batchsize=3", "dataset.batchsize"), ("trainer.max_epochs=abc", "max_epochs"),
     ("generator=nope", "generator")],
)
def test_bad_config_keys_and_types_fail_at_start_up(override: str, message: str) -> None:
    done = run_train(override)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert message in done.stderr


def test_a_diverged_training_is_a_one_line_error_without_metrics(tmp_path: Path) -> None:
    done = run_train(f"hydra.run.dir={tmp_path}", "trainer.max_epochs=2", "logger=none",
                     "model.optimizer.lr=1e20", "trainer.gradient_clip_val=null",
                     "network.param_limit=20000", "network.head_channels=32")
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "training diverged: val/loss is nan after epoch 1" in lines[0]
    assert not (tmp_path / "metrics.json").exists()
    assert not list(tmp_path.glob("checkpoints/*.ckpt"))


def test_json_files_are_strict_with_null_for_non_finite_values(tmp_path: Path) -> None:
    from nago_pl.jsonfile import write_json

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    write_json(tmp_path / "m.json", {"a": float("nan"), "b": [float("inf"), 1.5], "c": {"d": -1e400}})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text, parse_constant=refuse) == {"a": None, "b": [None, 1.5], "c": {"d": None}}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no partial file left


@pytest.mark.slow
def test_sigterm_while_training_says_so_and_exits_non_zero(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "train.py", *QUIET, f"hydra.run.dir={tmp_path}",
                             "trainer.max_epochs=500", "logger=none"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not (tmp_path / "checkpoints" / "best.ckpt").is_file():  # an epoch has finished
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err
    lines = [line for line in err.splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1 and "SIGTERM" in lines[0] and "no metrics.json" in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "metrics.json").exists()
