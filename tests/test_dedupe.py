"""A proposal whose network a complete trial already trained is not trained again: it is
recorded with that trial's result (``info.duplicate_of``), and still counts as a trial."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console

from nago_pl.config import compose
from nago_pl.search.constraints import DataShape, FeasibilityCheck
from nago_pl.search.duplicates import network_key
from nago_pl.search.runner import run_search, trial_base_config
from nago_pl.search.study import Trial
from nago_pl.training import run as run_module  # trials import train_architecture from here

# 3 top nodes, 1 mid node, 3 bottom nodes: every seed, K and P give the same network.
ONE_NETWORK = [
    "~search.space.G1_nodes", "~search.space.G2_nodes", "~search.space.G3_nodes",
    "~search.space.G2_P", "~search.space.param_limit", "generator.G1_nodes=3",
    "generator.G2_nodes=1", "generator.G3_nodes=3", "network.param_limit=30000",
    "network.head_channels=64", "trainer.max_epochs=2", "search.pruning.enabled=false",
    "search.baseline=false", "logger=none",
]
SHAPE = DataShape(1, 10, 8)


def trial(params: dict, seed: int) -> Trial:
    return Trial(0, 0, params, seed, None, "running", None, None, None, None, None, None)


def test_proposals_of_one_network_train_it_once(tmp_path: Path, monkeypatch) -> None:
    trained: list[int] = []
    real = run_module.train_architecture

    def counting(cfg, run_dir, callbacks=()):
        trained.append(cfg.tracking.trial)
        return real(cfg, run_dir, callbacks=callbacks)

    monkeypatch.setattr(run_module, "train_architecture", counting)
    console = Console(record=True, width=200)
    study = run_search(compose("search", [*ONE_NETWORK, "search=random", "search.trials=3"]),
                       tmp_path, console)
    first, *others = study.trials()
    assert trained == [0]
    assert [t.status for t in study.trials()] == ["complete"] * 3  # each counts as a trial
    assert all(t.params != first.params and t.seed != first.seed for t in others)
    for other in others:
        assert other.info["duplicate_of"] == 0 and other.values == first.values
        assert other.epochs_reached == first.epochs_reached
        assert other.paths["checkpoint"] == first.paths["checkpoint"]
        assert other.duration < 1.0  # no training time
    out = console.export_text()
    assert "trial 1 complete (the network of trial 0: its result, not trained)" in out


def test_the_fingerprint_is_the_network_not_its_generator_or_seed() -> None:
    cfg = compose("search", ONE_NETWORK)
    check = FeasibilityCheck(trial_base_config(cfg, "trial"), SHAPE)
    params = {"G1_K": 2, "G1_P": 0.2, "G3_K": 4, "G3_P": 0.9}
    same = network_key(check, trial(params, 1))
    assert network_key(check, trial({**params, "G1_K": 5, "G3_P": 0.1}, 7)) == same
    # a wider network (another budget) or other training settings: another network
    wide = compose("search", [*ONE_NETWORK, "network.param_limit=90000"])
    assert network_key(FeasibilityCheck(trial_base_config(wide, "trial"), SHAPE),
                       trial(params, 1)) != same
    longer = trial_base_config(cfg, "trial")
    OmegaConf.update(longer, "model.optimizer.lr", 0.5)
    assert network_key(FeasibilityCheck(longer, SHAPE), trial(params, 1)) != same
    # another architecture (more top nodes)
    hnag = compose("search", [*ONE_NETWORK, "generator.G1_nodes=6"])
    assert network_key(FeasibilityCheck(trial_base_config(hnag, "trial"), SHAPE),
                       trial(params, 1)) != same
