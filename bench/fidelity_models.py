"""Which surrogate predicts a pruned trial's final accuracy best: leave-one-out over real
learning curves.

For every complete trial of the given studies (real searches: every complete trial has its whole
per-epoch ``val_acc`` curve), pretend it was pruned at ``--stop`` epochs: it keeps only its reports
up to there, every other trial keeps everything. Each model then predicts its final ``val_acc``:

- ``last value``: the old surrogate (a GP on the last values, as if final),
- ``product``: a GP over (θ, fidelity) with a Matern(θ) × Matern(fidelity) kernel (the default),
- ``linear_truncated``: BoTorch's ``SingleTaskMultiFidelityGP`` over (θ, fidelity).

Prints, per model, the Spearman rank correlation between predicted and true finals over the
held-out trials and their mean absolute error.

    python bench/fidelity_models.py runs/bench-quality/digits-*/study.db --stop 3
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
from pathlib import Path

import torch
from botorch.utils.sampling import manual_seed
from scipy.stats import spearmanr

from nago_pl.search import Objective, Study
from nago_pl.search.fidelity import curve_data
from nago_pl.search.strategies.mobo import FIDELITY_KERNELS, fit_curve_models, fit_surrogate

OBJECTIVES = [Objective("val_acc", "max")]


def copy_with_truncated(source: Study, held_out: int, stop: int) -> Study:
    """An in-memory copy of ``source``'s finished trials; trial ``held_out`` pruned at ``stop``."""
    study = Study.open(":memory:", "loo", source.space, OBJECTIVES)
    for trial in source.trials(("complete", "pruned")):
        copy = study.add_trial(trial.params, trial.seed)
        reports = source.reports(trial.id)
        last = stop if trial.id == held_out else max(reports, default=0)
        for epoch, metrics in reports.items():
            if epoch <= last:
                study.report(copy.id, epoch, {"val_acc": metrics["val_acc"]})
        if trial.id == held_out:
            study.tell(copy.id, None, status="pruned", epochs=stop)
        else:
            study.tell(copy.id, {"val_acc": trial.values["val_acc"]}, status=trial.status,
                       epochs=trial.epochs_reached)
    return study


def predict(study: Study, x: torch.Tensor, model: str) -> float:
    """The model's mean final val_acc at unit point ``x``."""
    with manual_seed(0):
        if model == "last value":
            params, values = study.observations()
            gp = fit_surrogate(study.space.to_unit(params), values)
            return float(gp.posterior(x[None]).mean)
        gp = fit_curve_models(curve_data(study, OBJECTIVES), model)
        return float(gp.posterior(torch.cat([x, torch.ones(1, dtype=x.dtype)])[None]).mean)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", type=Path)
    parser.add_argument("--stop", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = ["last value", *FIDELITY_KERNELS]
    truth: list[float] = []
    preds: dict[str, list[float]] = {m: [] for m in models}
    for path in args.studies:
        with sqlite3.connect(path) as conn:
            (name,) = conn.execute("SELECT name FROM studies").fetchone()
        source = Study.open(path, name, *_space_and_objectives(path, name), requeue=False)
        for trial in source.trials(("complete",)):
            if max(source.reports(trial.id), default=0) <= args.stop:
                continue
            study = copy_with_truncated(source, trial.id, args.stop)
            x = study.space.to_unit([trial.params])[0]
            truth.append(trial.values["val_acc"])
            for model in models:
                preds[model].append(predict(study, x, model))
        source.close()
    print(f"{len(truth)} held-out trials from {len(args.studies)} studies, pruned at epoch "
          f"{args.stop}\n")
    print("| model | Spearman (pred vs true final) | mean abs error |")
    print("|---|---:|---:|")
    for model in models:
        rho = spearmanr(preds[model], truth).statistic
        mae = statistics.fmean(abs(p - t) for p, t in zip(preds[model], truth, strict=True))
        print(f"| {model} | {rho:.3f} | {mae:.3f} |")


def _space_and_objectives(path: Path, name: str) -> tuple[dict, list[Objective]]:
    with sqlite3.connect(path) as conn:
        space, objectives = conn.execute("SELECT space, objectives FROM studies WHERE name = ?",
                                         (name,)).fetchone()
    return json.loads(space), [Objective(**o) for o in json.loads(objectives)]


if __name__ == "__main__":
    main()
