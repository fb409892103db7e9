"""The proxy registry and the guard every proxy runs under: an unscorable network or a
non-finite result gives NaN and a logged reason, never an exception."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

#: ``(inputs, targets)``: one batch of data.
Batch = tuple[torch.Tensor, torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Proxy = Callable[..., float]

#: name → proxy function, in registration order.
PROXIES: dict[str, Proxy] = {}
#: the proxies that take a loss function as third argument.
USES_LOSS: set[str] = set()


class Unscorable(Exception):
    """Raised inside a proxy when the network cannot be scored; the guard turns it into NaN."""


def proxy(name: str, uses_loss: bool = False) -> Callable[[Proxy], Proxy]:
    """Register ``fn`` under ``name``; the registered function returns NaN (and logs why) when
    the network cannot be scored or the score is not finite."""

    def register(fn: Proxy) -> Proxy:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> float:
            try:
                value = float(fn(*args, **kwargs))
            except Unscorable as why:
                log.warning("proxy %s: NaN: %s", name, why)
                return math.nan
            if not math.isfinite(value):
                log.warning("proxy %s: NaN: the score is not finite (%s)", name, value)
                return math.nan
            return value

        PROXIES[name] = guarded
        if uses_loss:
            USES_LOSS.add(name)
        return guarded

    return register


def score(name: str, net: nn.Module, batch: Batch, loss: Loss | None = None) -> float:
    """The proxy ``name`` of ``net`` on ``batch`` (``loss`` defaults to cross-entropy)."""
    if name not in PROXIES:
        raise KeyError(f"unknown proxy {name!r}; known: {', '.join(PROXIES)}")
    if name in USES_LOSS and loss is not None:
        return PROXIES[name](net, batch, loss)
    return PROXIES[name](net, batch)
