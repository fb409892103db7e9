"""Start-up checks of issue 18: non-finite numbers, Lightning's batch limits, the values a
search space can give a trial, the prescreen bound. Each is one ``error:`` line naming the
setting, before anything trains."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from nago_pl.config import compose
from nago_pl.config.validate import MAX_PRESCREEN, validate_search, validate_train
from nago_pl.errors import NagoError
from nago_pl.search.constraints import DataShape
from nago_pl.search.preflight import feasibility_check
from nago_pl.search.runner import run_search, trial_base_config
from nago_pl.training.run import make_trainer

FAST = ["logger=none", "trainer.enable_progress_bar=false", "search.trials=1",
        "trainer.max_epochs=1"]


@pytest.mark.parametrize(
    ("override", "named"),
    [("model.optimizer.lr=nan", "model.optimizer.lr=nan"),
     ("model.optimizer.lr=inf", "model.optimizer.lr=inf"),
     ("model.optimizer.weight_decay=-inf", "model.optimizer.weight_decay=-inf"),
     ("model.scheduler.T_max=inf", "model.scheduler.T_max=inf"),
     ("dataset.val_fraction=nan", "dataset.val_fraction=nan"),
     ("generator.stage_ratios=[1,nan,1]", "generator.stage_ratios[1]=nan"),
     ("+search.options.refit_growth=nan", "search.options.refit_growth=nan"),
     ("search.space.G1_P.low=nan", "search.space.G1_P.low=nan"),
     ("search.space.G3_P.high=inf", "search.space.G3_P.high=inf"),
     ("search.objectives=[{name:val_acc,direction:max,ref:nan}]", "search.objectives[0].ref=nan")],
)
def test_nan_and_infinity_are_refused_in_every_float_setting(override: str, named: str) -> None:
    with pytest.raises(NagoError) as info:
        validate_search(compose("search", [override]))
    assert str(info.value) == f"{named}: must be a finite number (NaN and infinity are not allowed)"


def test_train_refuses_a_nan_learning_rate_before_training() -> None:
    with pytest.raises(NagoError, match=r"^model.optimizer.lr=nan: must be a finite number"):
        validate_train(compose("train", ["model.optimizer.lr=nan"]))


def test_a_search_with_a_nan_learning_rate_stops_before_its_study(tmp_path: Path) -> None:
    """It used to end in a traceback storing the study's settings (strict JSON)."""
    cfg = compose("search", [*FAST, "model.optimizer.lr=nan"])
    with pytest.raises(NagoError, match=r"^model.optimizer.lr=nan: must be a finite number"):
        run_search(cfg, tmp_path, Console(quiet=True))
    assert not (tmp_path / "study.db").exists()


def test_batch_limits_keep_lightnings_meaning(tmp_path: Path) -> None:
    """An int is a number of batches, a float a fraction of them."""
    cfg = compose("train", ["+trainer.limit_train_batches=150", "trainer.limit_val_batches=0.5"])
    validate_train(cfg)
    trainer = make_trainer(cfg, None, [], tmp_path)
    assert trainer.limit_train_batches == 150 and isinstance(trainer.limit_train_batches, int)
    assert trainer.limit_val_batches == 0.5 and isinstance(trainer.limit_val_batches, float)
    cfg = compose("train", ["trainer.limit_test_batches=3", "trainer.val_check_interval=0.25"])
    validate_train(cfg)
    trainer = make_trainer(cfg, None, [], tmp_path)
    assert trainer.limit_test_batches == 3 and isinstance(trainer.limit_test_batches, int)
    assert trainer.val_check_interval == 0.25


def test_a_search_refuses_validating_more_than_once_an_epoch() -> None:
    """Trials report (and are pruned) once per epoch; ``train.py`` takes any interval."""
    with pytest.raises(NagoError, match=r"^trainer.val_check_interval=0.5: a search's trials"):
        validate_search(compose("search", ["trainer.val_check_interval=0.5"]))
    validate_search(compose("search", ["trainer.val_check_interval=1.0"]))


@pytest.mark.parametrize("override", [
    "trainer.limit_train_batches=0", "trainer.limit_train_batches=-3",
    "trainer.limit_train_batches=0.0", "trainer.limit_val_batches=1.5",
    "trainer.limit_val_batches=abc", "trainer.limit_val_batches=true",
    "trainer.limit_test_batches=0", "trainer.val_check_interval=-1",
    "trainer.val_check_interval=2.5"])
def test_batch_limits_out_of_range_are_refused(override: str) -> None:
    key, value = override.split("=")
    shown = {"abc": "'abc'", "true": "True"}.get(value, value)
    with pytest.raises(NagoError) as info:
        validate_train(compose("train", [override]))
    assert str(info.value) == (f"{key}={shown}: must be an integer >= 1 (a number of batches), "
                               "a number in (0, 1] (a fraction of them) or null")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(["+search.space.mid_family={type:choice,values:[er,foo]}"],
      "search.space.mid_family: a trial with mid_family='foo' cannot be trained: "
      "mid_family='foo'; allowed: ws, er, ba, chain"),
     (["~search.space.G1_nodes", "+search.space.G1_nodes={type:choice,values:[3,4.5]}"],
      "search.space.G1_nodes: 4.5 cannot be generator.G1_nodes: Value '4.5' of type 'float' "
      "could not be converted to Integer"),
     (["~search.space.G3_nodes", "+search.space.G3_nodes={type:float,low:3,high:10}"],
      "search.space.G3_nodes: 3.0 cannot be generator.G3_nodes"),
     (["~search.space.G1_nodes", "+search.space.G1_nodes={value:2.5}"],
      "search.space.G1_nodes: 2.5 cannot be generator.G1_nodes"),
     (["search.space.G1_P.high=1.5"],
      "search.space.G1_P: a trial with G1_P=1.5 cannot be trained: G1_P=1.5: must be a number"),
     (["search.space.G2_nodes.high=65"],
      "search.space.G2_nodes: a trial with G2_nodes=65 cannot be trained"),
     (["space=nb201", "+search.space.edge_0={type:choice,values:[none,conv9]}"],
      "search.space.edge_0: a trial with edge_0='conv9' cannot be trained: nb201 cell: "
      "unknown operation(s) ['conv9']")],
)
def test_search_space_values_no_trial_could_train_are_refused_at_start_up(
        overrides: list[str], message: str) -> None:
    cfg = compose("search", overrides)
    with pytest.raises(NagoError) as info:
        feasibility_check(cfg, trial_base_config(cfg, "trial"), DataShape(1, 10, 8))
    assert str(info.value).startswith(message), info.value


def test_a_bad_family_choice_stops_the_search_before_the_baseline_trains(tmp_path: Path) -> None:
    """It used to be refused only when a strategy first proposed it, after trial 0 trained."""
    cfg = compose("search", [*FAST, "+search.space.mid_family={type:choice,values:[er,foo]}"])
    with pytest.raises(NagoError, match=r"^search.space.mid_family: a trial with mid_family='foo'"):
        run_search(cfg, tmp_path, Console(quiet=True))
    assert not (tmp_path / "study.db").exists() and not (tmp_path / "trials").exists()


def test_prescreen_has_an_upper_bound() -> None:
    validate_search(compose("search", [f"search.prescreen={MAX_PRESCREEN}"]))
    with pytest.raises(NagoError) as info:
        validate_search(compose("search", ["search.prescreen=1000000000"]))
    assert str(info.value) == f"search.prescreen=1000000000: must be an integer in 0..{MAX_PRESCREEN}"
