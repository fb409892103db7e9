"""What a search leaves behind: the Pareto front as JSON and a table, and two plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from rich.table import Table  # noqa: E402

from nago_pl.jsonfile import write_json  # noqa: E402
from nago_pl.search.pareto import (  # noqa: E402
    from_maximization,
    hypervolume,
    hypervolume_curve,
    to_maximization,
)
from nago_pl.search.study import Study, Trial  # noqa: E402


def scored_trials(study: Study) -> list[Trial]:
    """Complete and pruned trials with a value for every objective, in creation order."""
    names = [o.name for o in study.objectives]
    return [t for t in study.trials(("complete", "pruned"))
            if all(n in (t.values or {}) for n in names)]


def objective_matrix(study: Study, trials: list[Trial]) -> torch.Tensor:
    """``n x m`` objective values in maximisation form (min objectives negated, logs applied)."""
    values = torch.tensor([[t.values[o.name] for o in study.objectives] for t in trials],
                          dtype=torch.float64).reshape(len(trials), len(study.objectives))
    return to_maximization(values, study.objectives)


def hypervolume_history(study: Study) -> list[float]:
    """Dominated hypervolume of the complete trials after each scored trial, against the
    study's reference point (pruned trials are scored but never on the front)."""
    trials = scored_trials(study)
    if not trials:
        return []
    Y = objective_matrix(study, trials)
    complete = torch.tensor([t.status == "complete" for t in trials])
    ref = study.reference_point()
    # a pruned trial adds nothing: give it a value at the reference point
    Y = torch.where(complete[:, None], Y, ref.expand_as(Y))
    return hypervolume_curve(Y, ref)


def current_hypervolume(study: Study) -> float | None:
    """The last value of :func:`hypervolume_history` (None before a trial is scored), computed
    once instead of along the whole history."""
    trials = scored_trials(study)
    if not trials:
        return None
    complete = [t for t in trials if t.status == "complete"]
    return hypervolume(objective_matrix(study, complete), study.reference_point())


def pareto_records(study: Study) -> list[dict[str, Any]]:
    """The complete trials on the Pareto front, best first objective first: each one's
    hyper-parameters (``hparams``), seed, epochs, metrics (``values``, e.g. the parameter
    count ``values["params"]``) and file paths."""
    first = study.objectives[0]
    front = sorted(study.best_trials(), key=lambda t: t.values[first.name],
                   reverse=first.direction == "max")
    return [
        {"trial": t.number, "hparams": t.params, "seed": t.seed, "epochs": t.epochs_reached,
         "values": t.values, "paths": t.paths}
        for t in front
    ]


def write_pareto_json(study: Study, path: Path) -> list[dict[str, Any]]:
    records = pareto_records(study)
    reference = from_maximization(study.reference_point(), study.objectives).tolist()
    payload = {"study": study.name,
               "objectives": [o.describe() for o in study.objectives],
               "reference": {o.name: (v if math.isfinite(v) else None)
                             for o, v in zip(study.objectives, reference, strict=True)},
               "front": records}
    write_json(path, payload)
    return records


def plot_pareto(study: Study, path: Path) -> None:
    """All scored trials on the first two objectives (pruned hollow), the front highlighted;
    with one objective, its value against the trial number and the best so far."""
    if len(study.objectives) == 1:
        plot_best_so_far(study, path)
        return
    trials = scored_trials(study)
    x_obj, y_obj = study.objectives[1], study.objectives[0]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if trials:
        front = {t.id for t in study.best_trials()}
        for status, marker_face in (("complete", None), ("pruned", "none")):
            group = [t for t in trials if t.status == status]
            ax.scatter([t.values[x_obj.name] for t in group],
                       [t.values[y_obj.name] for t in group], s=28, alpha=0.7,
                       label=f"{status} ({len(group)})", facecolors=marker_face,
                       edgecolors="tab:blue")
        pareto = sorted((t for t in trials if t.id in front), key=lambda t: t.values[x_obj.name])
        ax.step([t.values[x_obj.name] for t in pareto], [t.values[y_obj.name] for t in pareto],
                where="post", color="tab:red", marker="o", label="Pareto front")
        baseline = [t for t in trials if t.info.get("source") == "baseline"]
        if baseline:
            ax.scatter([t.values[x_obj.name] for t in baseline],
                       [t.values[y_obj.name] for t in baseline], marker="*", s=160,
                       color="tab:green", zorder=3, label="default architecture")
        natural = from_maximization(study.reference_point(), study.objectives).tolist()
        ax.axhline(natural[0], color="grey", linestyle="--", linewidth=1, label="reference")
        ax.axvline(natural[1], color="grey", linestyle="--", linewidth=1)
        if x_obj.log:
            ax.set_xscale("log")
        ax.legend()
    ax.set_xlabel(f"{x_obj.name} ({x_obj.direction})")
    ax.set_ylabel(f"{y_obj.name} ({y_obj.direction})")
    ax.set_title(f"study {study.name}: {len(trials)} scored trials")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_best_so_far(study: Study, path: Path) -> None:
    """A single-objective study: every scored trial's value against its trial number (pruned
    hollow) and the best complete value so far, above the reference."""
    objective = study.objectives[0]
    trials = scored_trials(study)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for status, marker_face in (("complete", None), ("pruned", "none")):
        group = [t for t in trials if t.status == status]
        ax.scatter([t.number for t in group], [t.values[objective.name] for t in group], s=28,
                   alpha=0.7, label=f"{status} ({len(group)})", facecolors=marker_face,
                   edgecolors="tab:blue")
    complete = [t for t in trials if t.status == "complete"]
    if complete:
        running = torch.cummax(objective_matrix(study, complete), dim=0).values
        above = running[:, 0] > study.reference_point()[0]
        if bool(above.any()):
            ax.step([t.number for t, ok in zip(complete, above.tolist(), strict=True) if ok],
                    from_maximization(running[above], study.objectives)[:, 0].tolist(),
                    where="post", color="tab:red", label="best so far")
    reference = from_maximization(study.reference_point(), study.objectives).tolist()[0]
    if math.isfinite(reference):
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1, label="reference")
    if objective.log:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{objective.name} ({objective.direction})")
    ax.set_title(f"study {study.name}: {len(trials)} scored trials")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_hypervolume(study: Study, path: Path) -> None:
    """Hypervolume of the front after each scored trial."""
    history = hypervolume_history(study)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(range(1, len(history) + 1), history, marker=".")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("scored trials")
    ax.set_ylabel("hypervolume (maximisation form)")
    ax.set_title(f"study {study.name}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def front_table(study: Study, records: list[dict[str, Any]]) -> Table:
    """A rich table of the Pareto front: trial, objective values, hyper-parameters."""
    table = Table(title=f"Pareto front of study '{study.name}'")
    table.add_column("trial", justify="right")
    for objective in study.objectives:
        table.add_column(objective.describe(), justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("hyper-parameters")
    for record in records:
        values = [_fmt(record["values"][o.name]) for o in study.objectives]
        hparams = " ".join(f"{k}={_fmt(v)}" for k, v in record["hparams"].items())
        table.add_row(str(record["trial"]), *values, str(record["epochs"]), hparams)
    return table


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
