"""Bad settings fail at start-up: one ``error:`` line naming the setting, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nago_pl.config import compose
from nago_pl.config.cli import check_command_line
from nago_pl.config.validate import validate_search, validate_train
from nago_pl.errors import NagoError
from nago_pl.training.run import train_architecture

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "logger=none"]


def run_script(script: str, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, script, f"hydra.run.dir={run_dir}", *QUIET, *overrides],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("script", "override", "message"),
    [
        ("train.py", "+trainer.foo=1", "trainer.foo: unknown setting; allowed: accelerator"),
        ("train.py", "model.optimizer.lr=abc", "model.optimizer.lr='abc': must be a number"),
        ("train.py", "seed=-1", "seed=-1: must be an integer in 0..4294967295"),
        ("train.py", "trainer.max_epochs=0", "trainer.max_epochs=0: must be an integer >= 1"),
        ("train.py", "trainer.max_epochs=abc", "trainer.max_epochs: Value 'abc' of type 'str'"),
        ("search.py", "search.trials=-3", "search.trials=-3: must be an integer >= 1"),
        ("search.py", "trainer.max_epochs=-1", "trainer.max_epochs=-1: must be an integer >= 1"),
    ],
)
def test_bad_command_lines_are_one_line_errors(script: str, override: str, message: str,
                                               tmp_path: Path) -> None:
    done = run_script(script, tmp_path, override)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], done.stderr[-2000:]
    assert not (tmp_path / "study.db").exists()  # refused before the search started
    assert not (tmp_path / "metrics.json").exists()


def test_an_epoch_budget_of_zero_trains_nothing(tmp_path: Path) -> None:
    with pytest.raises(NagoError, match=r"trainer.max_epochs=0: must be an integer >= 1"):
        train_architecture(compose("train", [*QUIET, "trainer.max_epochs=0"]), tmp_path)
    assert list(tmp_path.iterdir()) == []


TRAIN_ERRORS = [
    ("+foo=1", "foo: unknown setting"),
    ("+network.width=3", "network.width: unknown setting"),
    ("model.optimizer.lr=-1", "model.optimizer: torch.optim.SGD refuses its arguments: "
                              "Invalid learning rate"),
    ("model.optimizer.nesterov=maybe", "model.optimizer.nesterov='maybe': must be true or false"),
    ("model.scheduler.T_max=abc", "model.scheduler.T_max='abc': must be a number"),
    ("seed=4294967296", "seed=4294967296: must be an integer in 0..4294967295"),
    ("trainer.min_epochs=0", "trainer.min_epochs=0: must be an integer in 1..20 or null"),
    ("trainer.min_epochs=21", "trainer.min_epochs=21: must be an integer in 1..20 or null"),
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1.0: must be a number in [0, inf)"),
    ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0"),
    ("trainer.check_val_every_n_epoch=0", "trainer.check_val_every_n_epoch=0"),
    ("trainer.limit_train_batches=0", "trainer.limit_train_batches=0: must be an integer >= 1"),
    ("trainer.limit_val_batches=2.5", "trainer.limit_val_batches=2.5: must be an integer >= 1"),
    ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps=0"),
    ("trainer.num_nodes=0", "trainer.num_nodes=0"),
    ("network.param_limit=0", "network.param_limit=0: must be an integer >= 1 or null"),
    ("network.head_channels=0", "network.head_channels=0"),
    ("network.dropout=1", "network.dropout=1.0: must be a number in [0, 1)"),
    ("network.dropout=nan", "network.dropout=nan"),
    ("model.label_smoothing=-0.1", "model.label_smoothing=-0.1"),
    ("finetune.freeze_epochs=-1", "finetune.freeze_epochs=-1"),
    ("finetune.body_lr_scale=-1", "finetune.body_lr_scale=-1.0"),
    ("threads=0", "threads=0"),
    ("tracking.trial=-1", "tracking.trial=-1"),
    ("pick=worst", "pick='worst': must be best_acc, smallest or a trial number"),
    ("generator.G1_P=1.5", "G1_P=1.5: must be a number in [0.0, 1.0]"),
]


@pytest.mark.parametrize(("override", "message"), TRAIN_ERRORS)
def test_bad_training_settings_name_the_setting(override: str, message: str) -> None:
    with pytest.raises(NagoError) as info:
        validate_train(compose("train", [override]))
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [("trainer.precision=99", "trainer: Lightning refuses these settings: Precision '99' is invalid"),
     ("trainer.accelerator=nope", "trainer: Lightning refuses these settings:")],
)
def test_trainer_settings_lightning_refuses_are_one_line(override: str, message: str,
                                                         tmp_path: Path) -> None:
    from nago_pl.training.run import make_trainer

    with pytest.raises(NagoError) as info:
        make_trainer(compose("train", [override]), None, [], tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [("search.trials=0", "search.trials=0"), ("search.batch_size=0", "search.batch_size=0"),
     ("search.pruning.min_epochs=0", "search.pruning.min_epochs=0"),
     ("search.pruning.eta=1", "search.pruning.eta=1.0: must be a number in (1, inf)"),
     ("search.final.top=-1", "search.final.top=-1"),
     ("search.final.samples=0", "search.final.samples=0"),
     ("search.final.max_epochs=0", "search.final.max_epochs=0: must be an integer >= 1 or null"),
     ("+search.foo=1", "search.foo: unknown setting"),
     ("+search.pruning.rungs=3", "search.pruning.rungs: unknown setting"),
     ("study_name=''", "study_name: must be a non-empty name")],
)
def test_bad_search_settings_name_the_setting(override: str, message: str) -> None:
    with pytest.raises(NagoError) as info:
        validate_search(compose("search", [override]))
    assert message in str(info.value)


def test_the_default_configs_are_valid() -> None:
    for name in ("train", "search"):
        for preset in ("generator=hnag", "generator=randwire", "generator=darts_like",
                       "model=adamw_cosine", "trainer=gpu", "dataset=cifar10"):
            cfg = compose(name, [preset])
            validate_search(cfg) if name == "search" else validate_train(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [("dataset.batchsize=3", "dataset.batchsize: Key 'batchsize' not in 'DatasetConfig'"),
     ("network=5", "network: Invalid type assigned: int is not a subclass of NetworkConfig"),
     ("seed=[1", "seed=[1: not a valid override"),
     ("seed=1,2", "Ambiguous value for argument 'seed=1,2'"),
     ("+seed=3", "Could not append to config. An item is already at 'seed'")],
)
def test_hydra_composition_errors_become_one_line(override: str, message: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        check_command_line("train", [override])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_hydra_flags_and_hydra_overrides_are_left_to_hydra() -> None:
    check_command_line("train", ["--cfg", "job", "trainer.max_epochs=abc"])
    check_command_line("search", ["hydra.run.dir=/tmp/x", "hydra.job.chdir=true", "seed=3"])
