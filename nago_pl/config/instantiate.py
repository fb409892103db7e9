"""Instantiate ``_target_`` config nodes, turning mistakes into one-line errors."""

from __future__ import annotations

import inspect
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from nago_pl.errors import NagoError


def _target(node: DictConfig, where: str) -> Any:
    path = node.get("_target_")
    if not path:
        raise NagoError(f"{where}: missing _target_ (the class or function to build)")
    try:
        return get_object(path)
    except Exception:  # hydra raises several kinds; all mean "cannot be imported"
        raise NagoError(f"{where}._target_={path}: cannot be imported") from None


def check_arguments(node: DictConfig, where: str) -> None:
    """Fail with the allowed names when ``node`` has a key its ``_target_`` does not accept."""
    target = _target(node, where)
    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in node:
        if str(key).startswith("_"):
            continue
        if key not in allowed:
            raise NagoError(
                f"{where}.{key}: not an argument of {node['_target_']}; allowed: {', '.join(allowed)}"
            )


def instantiate_checked(node: DictConfig | None, where: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` after :func:`check_arguments`; ``None`` stays ``None``."""
    if node is None:
        return None
    if not isinstance(node, DictConfig):
        node = OmegaConf.create(node)
    check_arguments(node, where)
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
        if isinstance(cause, NagoError):
            raise cause from None
        raise NagoError(f"{where}: could not build {node['_target_']}: {cause}") from None
