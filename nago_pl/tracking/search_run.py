"""A search's own W&B run: the Pareto front, the plots, the Study and the best model."""

from __future__ import annotations

import re
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from nago_pl.search.report import hypervolume_history
from nago_pl.search.study import FINISHED, Study
from nago_pl.tracking.wandb_run import configured_wandb_run, flat_config


def log_search(cfg: DictConfig, study: Study, run_dir: Path,
               records: list[dict[str, Any]]) -> bool:
    """When ``cfg.logger`` logs to W&B, one run with ``job_type=search`` in the study's group:
    the front (``records``) as a table, ``pareto.png`` / ``hypervolume.png`` as images, the
    study database (and ``final.json``) and the best first-objective model as artifacts.
    Returns whether such a run was logged. (Plain ``wandb``: no Lightning import.)"""
    node = cfg.copy()
    node.tracking.group = cfg.tracking.group or cfg.study_name
    node.tracking.job_type, node.tracking.name, node.tracking.trial = "search", "search", None
    arguments = configured_wandb_run(node.get("logger"), str(run_dir))
    if arguments is None:
        return False
    import wandb

    run = wandb.init(**arguments)
    failed = True
    try:
        run.config.update(flat_config(node), allow_val_change=True)
        images = {name: wandb.Image(str(run_dir / f"{name}.png"))
                  for name in ("pareto", "hypervolume") if (run_dir / f"{name}.png").is_file()}
        run.log({"pareto_front": _front_table(wandb, study, records), **images})
        history = hypervolume_history(study)
        run.summary.update({"hypervolume": history[-1] if history else None,
                            **{f"trials/{s}": len(study.trials((s,))) for s in FINISHED}})
        run.log_artifact(_study_artifact(wandb, study, run_dir))
        if records and records[0]["paths"].get("checkpoint"):
            run.log_artifact(_model_artifact(wandb, study, records[0]))
        failed = False
    finally:
        wandb.finish(exit_code=1 if failed else 0)
    return True


def _front_table(wandb: Any, study: Study, records: list[dict[str, Any]]) -> Any:
    objectives = [o.name for o in study.objectives]
    hparams = sorted({name for record in records for name in record["hparams"]})
    table = wandb.Table(columns=["trial", *objectives, "epochs", "seed", *hparams])
    for r in records:
        table.add_data(r["trial"], *(r["values"].get(o) for o in objectives), r["epochs"],
                       r["seed"], *(r["hparams"].get(p) for p in hparams))
    return table


def _artifact_name(study: Study, what: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{study.name}-{what}")


def _study_artifact(wandb: Any, study: Study, run_dir: Path) -> Any:
    """The study database as a consistent snapshot (SQLite backup, WAL included)."""
    artifact = wandb.Artifact(_artifact_name(study, "study"), type="study",
                              metadata={"trials": study.n_trials()})
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = Path(tmp) / "study.db"
        with closing(sqlite3.connect(study.path)) as source, \
                closing(sqlite3.connect(snapshot)) as target:
            source.backup(target)
        artifact.add_file(str(snapshot), name="study.db")  # copied into W&B's staging area
    if (run_dir / "final.json").is_file():
        artifact.add_file(str(run_dir / "final.json"), name="final.json")
    return artifact


def _model_artifact(wandb: Any, study: Study, record: dict[str, Any]) -> Any:
    """The checkpoint (and Architecture JSON) of the front's best first-objective trial."""
    artifact = wandb.Artifact(_artifact_name(study, "best-model"), type="model",
                              metadata={"trial": record["trial"], "hparams": record["hparams"],
                                        "seed": record["seed"], "values": record["values"]})
    artifact.add_file(record["paths"]["checkpoint"], name="best.ckpt")
    if record["paths"].get("architecture"):
        artifact.add_file(record["paths"]["architecture"], name="architecture.json")
    return artifact
