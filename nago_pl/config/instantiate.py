"""Instantiate ``_target_`` config nodes, turning mistakes into one-line errors."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import torch
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
        _check_type(params[key], node[key], f"{where}.{key}")


_NAMES = {"int": int, "float": float, "bool": bool, "Tensor": torch.Tensor,
          "torch.Tensor": torch.Tensor}


def _kinds(param: inspect.Parameter) -> set[Any]:
    """The plain types a parameter accepts, from its annotation (or its default's type)."""
    annotation = param.annotation
    if annotation is inspect.Parameter.empty:
        return set() if param.default in (None, inspect.Parameter.empty) else {type(param.default)}
    if isinstance(annotation, str):
        return {_NAMES.get(part.strip(), part.strip()) for part in annotation.split("|")}
    return set(typing.get_args(annotation)) if typing.get_args(annotation) else {annotation}


def _check_type(param: inspect.Parameter, value: Any, where: str) -> None:
    """A value given for a plain number or flag argument must be one."""
    if OmegaConf.is_config(value):
        return  # a nested config: built (and checked) by its own target
    kinds = _kinds(param)
    if kinds == {bool} and not isinstance(value, bool):
        raise NagoError(f"{where}={value!r}: must be true or false")
    numeric = kinds & {int, float} and kinds <= {int, float, torch.Tensor}
    if numeric and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise NagoError(f"{where}={value!r}: must be a number")


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
    except (TypeError, ValueError) as err:  # Hydra's own checks, e.g. a non-boolean _partial_
        reason = " ".join(str(err).split())
        raise NagoError(f"{where}: could not build {node['_target_']}: {reason}") from None
