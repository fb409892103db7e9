"""Fine-tuning a found model on new data, export / load, and the bad inputs around them."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from shared_data import require_shared

import nago_pl
from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.network import build_network
from nago_pl.network.model import Network, NetworkSpec
from nago_pl.network.nb201 import Nb201Network, Nb201Spec
from nago_pl.space import GeneratorConfig, sample
from nago_pl.space.nb201 import Nb201Cell
from nago_pl.training.run import train_architecture
from nago_pl.transfer import (
    TrainedModel,
    load_adapted,
    load_trained,
    network_for_data,
    read_checkpoint,
)
from nago_pl.transfer.adapt import adapt_input_channels

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "../shared/data"
QUIET = ["trainer.enable_progress_bar=false", "logger=none"]


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny) search on digits, run through search.py."""
    run_dir = tmp_path_factory.mktemp("search")
    done = subprocess.run(
        [sys.executable, "search.py", f"hydra.run.dir={run_dir}", "search=random",
         "search.trials=3", "trainer.max_epochs=4", "search.pruning.enabled=false",
         "search.space.G1_nodes.high=4", "search.space.G2_nodes.high=2",
         "search.space.G3_nodes.high=4", *QUIET],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return run_dir


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("digits")
    train_architecture(compose("train", [*QUIET, "trainer.max_epochs=2", "export=true"]), run_dir)
    return run_dir


@pytest.mark.slow
def test_fine_tune_the_best_found_model_on_fashion_mnist(search_dir: Path, tmp_path: Path) -> None:
    fashion = DATA / "fashion-mnist"
    require_shared(fashion)
    front = json.loads((search_dir / "pareto.json").read_text())["front"]
    best = max(front, key=lambda r: r["values"]["val_acc"])
    cfg = compose("train", [*QUIET, f"init_from={search_dir}", "dataset=fashion_mnist",
                            f"dataset.root={fashion}", "dataset.max_train_samples=4000",
                            "trainer.max_epochs=2", "finetune.freeze_epochs=1"])
    result = train_architecture(cfg, tmp_path)
    source = search_dir / "trials" / f"{best['trial']:04d}" / "architecture.json"
    assert result.architecture.to_json() == source.read_text()  # pick=best_acc by default
    assert result.metrics["test_acc"] > 0.5  # 10 classes, chance 0.1


@pytest.mark.slow
def test_fine_tune_on_the_cifar10_jpeg_tree_adapts_channels(search_dir: Path,
                                                             tmp_path: Path) -> None:
    archive = DATA / "cifar10-jpg" / "cifar10-jpg.tar.gz"
    require_shared(archive)
    root = tmp_path / "cifar"
    counts: dict[str, int] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) >= 3 and parts[-3] in ("train", "test"):
                key = "/".join(parts[-3:-1])
                if counts.get(key, 0) < (40 if parts[-3] == "train" else 10):
                    counts[key] = counts.get(key, 0) + 1
                    member.name = "/".join(parts[-3:])
                    tar.extract(member, root, filter="data")
    cfg = compose("train", [*QUIET, f"init_from={search_dir}", "pick=smallest",
                            "dataset=image_folder", f"dataset.root={root}",
                            "trainer.max_epochs=1"])
    result = train_architecture(cfg, tmp_path / "run")
    assert result.metrics["epochs"] == 1 and 0 <= result.metrics["test_acc"] <= 1
    smallest = min(json.loads((search_dir / "pareto.json").read_text())["front"],
                   key=lambda r: r["values"]["params"])
    assert result.architecture == load_trained(search_dir, str(smallest["trial"])).architecture


def test_export_round_trip_is_bit_identical(digits_run: Path) -> None:
    trained = read_checkpoint(digits_run / "checkpoints" / "best.ckpt")
    net = Network(trained.architecture, NetworkSpec(**trained.spec))
    net.load_state_dict(trained.state_dict)
    net.eval()
    model = nago_pl.load_model(digits_run / "export")
    assert not model.training and model.class_names == [str(i) for i in range(10)]
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    expected = net((images.float() / 255 - model.mean) / model.std)
    assert torch.equal(model(images), expected)
    program = torch.export.load(str(digits_run / "export" / "model.pt2")).module()
    assert torch.equal(program(images), expected)


def test_channel_rule_keeps_grey_activations() -> None:
    weight = torch.randn(6, 1, 3, 3)
    rgb = adapt_input_channels(weight, 1, 3, rescale=True)
    grey = torch.randn(1, 1, 8, 8)
    same = torch.nn.functional.conv2d(grey.repeat(1, 3, 1, 1), rgb)
    assert torch.allclose(same, torch.nn.functional.conv2d(grey, weight), atol=1e-6)
    back = adapt_input_channels(rgb, 1, 1, rescale=True)
    assert torch.allclose(back, weight, atol=1e-6)  # 3 -> 1 sums the filters


def test_weights_move_to_new_classes_channels_and_sizes() -> None:
    arch = sample(GeneratorConfig(G1_nodes=4, G2_nodes=2, G3_nodes=3), 0)
    source = build_network(arch, in_channels=1, num_classes=10, image_size=8, multiplier=3)
    trained = TrainedModel(arch, source.spec.__dict__, source.state_dict(), Path("src.ckpt"))
    same_stem = build_network(arch, in_channels=3, num_classes=5, image_size=32, multiplier=3)
    fresh = load_adapted(same_stem, trained)
    assert fresh == ["head.7.bias", "head.7.weight"]  # only the classifier is new
    name = "cells.1.mid.nodes.0.block.nodes.0.body.1.weight"
    assert torch.equal(same_stem.state_dict()[name], source.state_dict()[name])
    large = build_network(arch, in_channels=3, num_classes=10, image_size=64, multiplier=3)
    assert all(n.startswith("stem.") for n in load_adapted(large, trained))
    other = build_network(sample(GeneratorConfig(G1_nodes=5), 1), in_channels=1,
                          num_classes=10, image_size=8, multiplier=3)
    with pytest.raises(NagoError, match="does not match the architecture"):
        load_adapted(other, trained)


def test_an_nb201_network_moves_to_new_classes_and_channels() -> None:
    cell = Nb201Cell.from_string("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+"
                                 "|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    source = Nb201Network(cell, Nb201Spec(1, 10, 8, 4, 1))
    trained = TrainedModel(cell, asdict(source.spec), source.state_dict(), Path("src.ckpt"))
    target = network_for_data(trained, in_channels=3, num_classes=5, image_size=32,
                              dropout=0.2)
    assert isinstance(target, Nb201Network) and target.spec == Nb201Spec(3, 5, 32, 4, 1)
    assert load_adapted(target, trained) == ["head.4.bias", "head.4.weight"]
    name = "cells.0.edges.0.1.weight"  # the first edge's 3x3 convolution
    assert torch.equal(target.state_dict()[name], source.state_dict()[name])
    assert torch.allclose(target.state_dict()["stem.0.weight"],
                          adapt_input_channels(source.state_dict()["stem.0.weight"], 1, 3, True))


def test_bad_sources_are_clear_errors(digits_run: Path, tmp_path: Path) -> None:
    with pytest.raises(NagoError, match="holds no model"):
        load_trained(tmp_path)
    with pytest.raises(NagoError, match="does not exist"):
        load_trained(tmp_path / "nope")
    mismatched = tmp_path / "mismatched"
    shutil.copytree(digits_run, mismatched)
    sample(GeneratorConfig(G1_nodes=3), 5).save(mismatched / "architecture.json")
    with pytest.raises(NagoError, match="does not match"):
        load_trained(mismatched)
    raw = (digits_run / "checkpoints" / "best.ckpt").read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(NagoError, match="corrupted or truncated"):
        load_trained(tmp_path / "truncated.ckpt")
    export = tmp_path / "export"
    shutil.copytree(digits_run / "export", export)
    weights = (export / "model.safetensors").read_bytes()
    (export / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(NagoError, match="unreadable weights"):
        nago_pl.load_model(export)
    with pytest.raises(NagoError, match="no exported model"):
        nago_pl.load_model(tmp_path)


class _Payload:
    marker = ""

    def __reduce__(self):  # noqa: ANN204 - the pickle protocol
        return (os.system, (f"touch {self.marker}",))


def test_tampered_checkpoint_is_refused_and_nothing_runs(digits_run: Path, tmp_path: Path) -> None:
    checkpoint = torch.load(digits_run / "checkpoints" / "best.ckpt", weights_only=True)
    payload = _Payload()
    payload.marker = str(tmp_path / "pwned")
    checkpoint["extra"] = payload
    torch.save(checkpoint, tmp_path / "tampered.ckpt")
    done = subprocess.run([sys.executable, "train.py", f"hydra.run.dir={tmp_path / 'run'}",
                           f"init_from={tmp_path / 'tampered.ckpt'}", *QUIET],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "refusing to load: it carries a pickled object" in done.stderr
    assert not (tmp_path / "pwned").exists()


def _net_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_rerun_in_a_used_run_dir_owns_its_checkpoint(digits_run: Path, tmp_path: Path) -> None:
    # The copied best.ckpt plays the file a killed run left behind; same architecture, new seed.
    rerun = tmp_path / "rerun"
    shutil.copytree(digits_run, rerun)
    stale = _net_weights(rerun / "checkpoints" / "best.ckpt")
    cfg = compose("train", [*QUIET, "trainer.max_epochs=1", "seed=5",
                            f"arch={digits_run / 'architecture.json'}"])
    result = train_architecture(cfg, rerun)
    assert result.checkpoint == rerun / "checkpoints" / "best.ckpt"
    assert sorted(p.name for p in (rerun / "checkpoints").iterdir()) == ["best.ckpt"]
    fresh = _net_weights(result.checkpoint)
    assert not _same(fresh, stale)
    assert _same(load_trained(rerun).state_dict, fresh)


def test_a_search_dir_loads_the_checkpoint_its_records_name(digits_run: Path,
                                                            tmp_path: Path) -> None:
    trial = tmp_path / "search" / "trials" / "0000"
    shutil.copytree(digits_run, trial)
    checkpoint = torch.load(trial / "checkpoints" / "best.ckpt", weights_only=True)
    for value in checkpoint["state_dict"].values():
        if value.is_floating_point():
            value += 1.0
    torch.save(checkpoint, trial / "checkpoints" / "best-v1.ckpt")  # left by an older version
    record = {"trial": 0, "hparams": {}, "seed": 0, "epochs": 2,
              "values": {"val_acc": 0.9, "params": 1000.0},
              "paths": {"checkpoint": "/moved/elsewhere/trials/0000/checkpoints/best-v1.ckpt"}}
    (tmp_path / "search" / "pareto.json").write_text(json.dumps({"front": [record]}))
    loaded = load_trained(tmp_path / "search")
    assert loaded.source.name == "best-v1.ckpt"
    assert _same(loaded.state_dict, _net_weights(trial / "checkpoints" / "best-v1.ckpt"))
    with pytest.raises(NagoError, match=r"several checkpoints \(best.ckpt, best-v1.ckpt\)"):
        load_trained(trial)


@pytest.mark.parametrize("text", ["{", "[]", '{"front": [{"trial": 0}]}',
                                  '{"front": [{"trial": 0, "values": {"val_acc": "x"}, '
                                  '"paths": {"checkpoint": "a"}}]}'])
def test_a_malformed_pareto_json_is_a_clear_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "pareto.json").write_text(text)
    with pytest.raises(NagoError, match=r"init_from=.*pareto.json"):
        load_trained(tmp_path)


def test_init_from_says_which_trial_it_loaded(digits_run: Path, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    search = tmp_path / "search"
    shutil.copytree(digits_run, search / "trials" / "0003")
    record = {"trial": 3, "hparams": {}, "seed": 0, "epochs": 2,
              "values": {"val_acc": 0.9, "params": 1000.0},
              "paths": {"checkpoint": "elsewhere/trials/0003/checkpoints/best.ckpt"}}
    (search / "pareto.json").write_text(json.dumps({"front": [record]}))
    caplog.set_level(logging.INFO, logger="nago_pl.training.run")
    train_architecture(compose("train", [*QUIET, f"init_from={search}", "trainer.max_epochs=1"]),
                       tmp_path / "run")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("init_from:")]
    assert lines == [f"init_from: loaded trial 3 (pick=best_acc: val_acc 0.9, of 1 on the front) "
                     f"of the search {search}"]
