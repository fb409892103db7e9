"""Train (or resume) a one-shot search and keep what it learned beside the study.

``<out_dir>/checkpoints/last.ckpt`` is written every epoch, so re-running resumes the supernet
where it stopped; ``alpha.csv`` holds α per epoch; ``alpha.json`` the final distribution (its
presence, with the same settings, means the search is done and is not trained again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from nago_pl.data.base import ImageDataModule
from nago_pl.errors import NagoError
from nago_pl.jsonfile import write_json
from nago_pl.network.nb201 import Nb201Spec
from nago_pl.oneshot.callbacks import AlphaLog
from nago_pl.oneshot.data import OneShotData
from nago_pl.oneshot.module import OneShotSearch, OneShotSettings
from nago_pl.oneshot.supernet import CellCost, Supernet, allowed_mask
from nago_pl.space.nb201 import OPS, Nb201Cell
from nago_pl.tracking.run_info import finish_runs


@dataclass(frozen=True)
class OneShotResult:
    """The learned distribution: per edge, each op's probability (``OPS`` order)."""

    probabilities: list[list[float]]
    cell: Nb201Cell
    epochs: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"cell": self.cell.to_string(), "probabilities": self.probabilities,
                "ops": list(OPS), "epochs": self.epochs, "seconds": self.seconds}


def run_oneshot(data: Callable[[], ImageDataModule], settings: OneShotSettings,
                supernet_spec: Nb201Spec, cost_spec: Nb201Spec, edge_ops: list[list[str]],
                out_dir: Path, trainer_arguments: dict[str, Any],
                loggers: Callable[[], list[Any]] = list, seed: int = 0,
                val_images: int | None = 1000, say: Callable[[str], None] = print
                ) -> OneShotResult:
    """Search with ``settings`` on the images ``data()`` loads (a supernet at
    ``supernet_spec``, each edge restricted to its ``edge_ops``; the cost term counts the
    network at ``cost_spec``; logged to ``loggers()``) and return the learned distribution.
    Resumes from ``out_dir``'s last checkpoint, and returns the saved result at once (loading
    nothing) when ``out_dir`` holds the finished search; ``say`` tells which it does."""
    out_dir.mkdir(parents=True, exist_ok=True)
    done_file = out_dir / "alpha.json"
    _claim(out_dir / "search.json", {"settings": asdict(settings),
                                     "supernet": asdict(supernet_spec),
                                     "edge_ops": edge_ops, "seed": seed})
    if done_file.is_file():
        saved = json.loads(done_file.read_text())
        say(f"{settings.method}: the supernet is trained ({done_file}); its cells go on")
        return OneShotResult(saved["probabilities"], Nb201Cell.from_string(saved["cell"]),
                             saved["epochs"], saved["seconds"])
    L.seed_everything(seed, workers=True, verbose=False)
    mask = allowed_mask(edge_ops)
    module = OneShotSearch(Supernet(supernet_spec, mask), mask,
                           CellCost(cost_spec, settings.cost), settings)
    last = out_dir / "checkpoints" / "last.ckpt"
    # monitor=None, save_top_k=1: the latest epoch's checkpoint, replacing the one before,
    # written after AlphaLog's row of that epoch (Lightning runs checkpoint callbacks last)
    checkpoint = ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="last",
                                 every_n_epochs=1, save_top_k=1, save_on_train_epoch_end=True,
                                 enable_version_counter=False)
    arguments = {**trainer_arguments, "max_epochs": settings.epochs,
                 "num_sanity_val_steps": 0}
    arguments.pop("gradient_clip_val", None)  # the module clips θ itself (manual optimisation)
    run_loggers = loggers()
    trainer = L.Trainer(**arguments, logger=run_loggers or False,
                        callbacks=[checkpoint, AlphaLog(out_dir / "alpha.csv")],
                        default_root_dir=str(out_dir))
    if last.is_file():
        say(f"{settings.method}: resuming the supernet from {last}")
    started = time.perf_counter()
    with finish_runs(run_loggers):
        trainer.fit(module, datamodule=OneShotData(data(), settings.method == "darts",
                                                   val_images),
                    ckpt_path=str(last) if last.is_file() else None)
    if trainer.interrupted:
        raise KeyboardInterrupt
    probabilities = module.probabilities().detach().cpu()
    result = OneShotResult(probabilities.tolist(), module.cell(), int(trainer.current_epoch),
                           round(time.perf_counter() - started, 3))
    if trainer.is_global_zero:
        write_json(done_file, {**result.to_dict(),
                               "logits": module.alpha.detach().cpu().tolist()})
    return result


def _claim(path: Path, identity: dict[str, Any]) -> None:
    """Record what search ``path``'s folder holds, or check that it is this one (a checkpoint
    or result of other settings must not be resumed or reused)."""
    identity = json.loads(json.dumps(identity))
    if not path.is_file():
        write_json(path, identity)
    elif json.loads(path.read_text()) != identity:
        raise NagoError(f"{path.parent} holds a one-shot search of other settings ({path}); "
                        "use another study_name (or delete that folder) to search with these")
