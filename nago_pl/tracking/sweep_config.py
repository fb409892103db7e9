"""Check a W&B sweep file for ``train.py`` before ``wandb sweep`` uploads it: known keys, the
Hydra-style command, and every parameter value a valid ``train.py`` override.

``python -m nago_pl.tracking.sweep_config conf/sweep/bayes.yaml`` checks one from the shell.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from nago_pl.config.compose import compose
from nago_pl.errors import NagoError

#: Agents run ``train.py key=value ...``: Hydra overrides take no leading hyphens.
COMMAND = ("${env}", "${interpreter}", "${program}", "${args_no_hyphens}")
KEYS = {"program", "method", "metric", "parameters", "early_terminate", "command", "name",
        "description", "project", "entity", "run_cap", "controller"}
METHODS = ("random", "bayes", "grid")


def parameter_values(name: str, spec: Any) -> list[Any]:
    """The values a sweep parameter can take at its extremes: ``value``, ``values`` or
    ``min`` and ``max``."""
    if isinstance(spec, dict):
        if "value" in spec:
            return [spec["value"]]
        if isinstance(spec.get("values"), list) and spec["values"]:
            return list(spec["values"])
        if "min" in spec and "max" in spec:
            return [spec["min"], spec["max"]]
    raise NagoError(f"sweep parameter {name}: needs value, values or min and max, got {spec!r}")


def check_overrides(values: dict[str, list[Any]]) -> None:
    """Raise a one-line :class:`NagoError` naming the first ``name=value`` that ``train.py``
    does not accept; composes one config per value index (all lows, all highs...)."""
    for index in range(max(map(len, values.values()), default=0)):
        overrides = [(name, vals[index]) for name, vals in values.items() if index < len(vals)]
        try:
            compose("train", [f"{name}={value}" for name, value in overrides])
        except Exception:  # noqa: BLE001 - Hydra raises several kinds; find the culprit
            for name, value in overrides:
                check_override(name, value)
            raise


def check_override(name: str, value: Any) -> None:
    """Raise a one-line :class:`NagoError` unless ``train.py name=value`` composes."""
    try:
        compose("train", [f"{name}={value}"])
    except Exception as err:  # noqa: BLE001 - Hydra raises several kinds; all mean "invalid"
        reason = next((str(e).strip().splitlines()[0] for e in (err.__cause__, err)
                       if e is not None and str(e).strip()), type(err).__name__)
        raise NagoError(f"sweep parameter {name}={value}: not a valid train.py override "
                        f"({reason})") from None


def validate_sweep(path: str | Path) -> dict[str, Any]:
    """Load the sweep file ``path`` and check it (one-line :class:`NagoError` on the first
    problem); returns the sweep configuration."""
    path = Path(path)
    try:
        sweep = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise NagoError(f"{path}: cannot read the sweep file: {err}".splitlines()[0]) from None
    if not isinstance(sweep, dict):
        raise NagoError(f"{path}: a sweep file is a mapping (program, method, parameters...)")
    if unknown := sorted(set(sweep) - KEYS):
        raise NagoError(f"{path}: unknown key(s) {unknown}; allowed: {', '.join(sorted(KEYS))}")
    if sweep.get("program") != "train.py":
        raise NagoError(f"{path}: program must be train.py, got {sweep.get('program')!r}")
    if sweep.get("method") not in METHODS:
        raise NagoError(f"{path}: method must be one of {', '.join(METHODS)}, "
                        f"got {sweep.get('method')!r}")
    if "${args_no_hyphens}" not in (sweep.get("command") or []):
        raise NagoError(f"{path}: command must pass ${{args_no_hyphens}} (Hydra overrides), e.g. "
                        f"[{', '.join(COMMAND)}]")
    metric = sweep.get("metric") or {}
    if not metric.get("name") or metric.get("goal", "minimize") not in ("minimize", "maximize"):
        raise NagoError(f"{path}: metric needs a name and goal minimize or maximize, got {metric}")
    stop = sweep.get("early_terminate")
    if stop is not None and (stop.get("type") != "hyperband" or not (
            isinstance(stop.get("min_iter"), int) or "max_iter" in stop)):
        raise NagoError(f"{path}: early_terminate must be {{type: hyperband, min_iter: n}}")
    parameters = sweep.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise NagoError(f"{path}: parameters must map train.py override names to their values")
    check_overrides({name: parameter_values(name, spec) for name, spec in parameters.items()})
    return sweep


def main(argv: list[str]) -> int:
    """Check each sweep file named on the command line; exit status 2 on the first problem."""
    try:
        for path in argv:
            validate_sweep(path)
            print(f"{path}: ok")
    except NagoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
