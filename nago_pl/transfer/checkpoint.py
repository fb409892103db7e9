"""Find and read a trained model safely: ``init_from`` may be a search run directory, a
trial / train run directory or a checkpoint file."""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from nago_pl.errors import NagoError
from nago_pl.network.configured import architecture_from_dict, load_architecture
from nago_pl.space import Architecture
from nago_pl.space.nb201 import Nb201Cell

PICKS = ("best_acc", "smallest", "<trial number>")


@dataclass(frozen=True)
class TrainedModel:
    """A trained network as plain data: its Architecture (or nb201 cell), build spec and
    ``net`` weights; ``origin`` says in words which model it is (a search's trial, a run, a
    file)."""

    architecture: Architecture | Nb201Cell
    spec: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    source: Path
    origin: str = ""


def read_checkpoint(path: Path) -> TrainedModel:
    """Load a nago-pl Lightning checkpoint without unpickling arbitrary objects."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        forbidden = re.search(r"[Uu]nsupported (?:global|GLOBAL|class):? (?:GLOBAL )?([\w.]+)",
                              str(err))
        if forbidden:
            raise NagoError(f"{path}: refusing to load: it carries a pickled object "
                            f"({forbidden.group(1)}); only tensors and plain data are read") from None
        raise NagoError(f"{path}: not a readable checkpoint (corrupted or truncated?)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError):
        raise NagoError(f"{path}: not a readable checkpoint (corrupted or truncated?)") from None
    if not isinstance(checkpoint, dict) or "nago" not in checkpoint or \
            "state_dict" not in checkpoint:
        raise NagoError(f"{path}: not a nago-pl checkpoint (no 'nago' architecture entry)")
    info = checkpoint["nago"]
    state = {k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items()
             if k.startswith("net.")}
    try:
        architecture = architecture_from_dict(info["architecture"])
    except NagoError as err:
        raise NagoError(f"{path}: {err}") from None
    return TrainedModel(architecture, dict(info["spec"]), state, path, origin=str(path))


def _from_run_dir(run_dir: Path, name: str = "best.ckpt") -> TrainedModel:
    """The checkpoint ``name`` of a run directory, checked against its ``architecture.json``.

    Earlier versions of this project left the checkpoint of a killed run beside the new one
    (``best-v1.ckpt``); such a directory is ambiguous unless a record names the file.
    """
    checkpoint = run_dir / "checkpoints" / name
    others = sorted(p.name for p in checkpoint.parent.glob("*.ckpt") if p.name != name)
    if name == "best.ckpt" and others:
        raise NagoError(f"init_from={run_dir}: holds several checkpoints (best.ckpt, "
                        f"{', '.join(others)}) from repeated runs; give the one to load as "
                        "init_from=<path to the .ckpt file>")
    model = read_checkpoint(checkpoint)
    arch_file = run_dir / "architecture.json"
    if arch_file.is_file() and load_architecture(arch_file) != model.architecture:
        raise NagoError(f"{checkpoint}: its Architecture does not match {arch_file}")
    return model


def _from_search_dir(search_dir: Path, pick: str) -> TrainedModel:
    if pick.isdigit():
        trial_dir = search_dir / "trials" / f"{int(pick):04d}"
        if not (trial_dir / "checkpoints" / "best.ckpt").is_file():
            raise NagoError(f"pick={pick}: {trial_dir} holds no trained model")
        return replace(_from_run_dir(trial_dir),
                       origin=f"trial {int(pick)} (pick={pick}) of the search {search_dir}")
    if pick not in ("best_acc", "smallest"):
        raise NagoError(f"pick={pick!r}; allowed: {', '.join(PICKS)}")
    pareto = search_dir / "pareto.json"
    metric = "val_acc" if pick == "best_acc" else "params"
    try:
        front = json.loads(pareto.read_text())["front"]
        ranked = [(r["values"][metric], int(r["trial"]), str(r["paths"]["checkpoint"]))
                  for r in front]
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise NagoError(f"init_from={search_dir}: {pareto} is not a pareto.json written by "
                        f"search.py with the objective {metric} ({type(err).__name__}: {err})"
                        ) from None
    if not ranked:
        raise NagoError(f"init_from={search_dir}: the search's Pareto front is empty")
    if not all(isinstance(value, int | float) for value, _, _ in ranked):
        raise NagoError(f"init_from={search_dir}: {pareto} holds a non-numeric {metric}")
    choose = max if pick == "best_acc" else min
    value, trial, recorded = choose(ranked, key=lambda entry: entry[0])
    if not recorded:
        raise NagoError(f"init_from={search_dir}: trial {trial} has no checkpoint recorded in "
                        "pareto.json")
    # The file the Study recorded, found in this search directory (which may have moved).
    model = _from_run_dir(search_dir / "trials" / f"{trial:04d}", Path(recorded).name)
    return replace(model, origin=f"trial {trial} (pick={pick}: {metric} {value:.4g}, of "
                                 f"{len(ranked)} on the front) of the search {search_dir}")


def load_trained(init_from: str | Path, pick: str = "best_acc") -> TrainedModel:
    """The model ``init_from`` points at (``pick`` chooses among a search's Pareto front)."""
    path = Path(init_from).expanduser()
    if path.is_file():
        return read_checkpoint(path)
    if (path / "pareto.json").is_file():
        return _from_search_dir(path, str(pick))
    if (path / "checkpoints" / "best.ckpt").is_file():
        return _from_run_dir(path)
    what = "does not exist" if not path.exists() else "holds no model"
    raise NagoError(f"init_from={path}: {what}; expected a search run directory (pareto.json), "
                    "a trial or train run directory (checkpoints/best.ckpt) or a .ckpt file")
