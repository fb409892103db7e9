"""Ask/tell search strategies: stateless objects that read the Study and start new trials.

Protocol: ``strategy.ask(study, n) -> list[Trial]`` creates ``n`` trials (status ``running``;
re-queued ones first) and returns them; the caller trains each and calls ``study.tell``,
``study.prune`` or ``study.fail``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Protocol

from nago_pl.errors import NagoError
from nago_pl.search.strategies.bohb import BOHB
from nago_pl.search.strategies.evolution import Evolution
from nago_pl.search.strategies.graphpnas import GraphPNAS
from nago_pl.search.strategies.mobo import MOBO
from nago_pl.search.strategies.random_search import RandomSearch
from nago_pl.search.study import Study, Trial


class Strategy(Protocol):
    """What every search strategy provides."""

    def ask(self, study: Study, n: int = 1) -> list[Trial]:
        """Start ``n`` trials in ``study`` and return them."""
        ...


STRATEGIES: dict[str, type] = {"mobo": MOBO, "bohb": BOHB, "random": RandomSearch,
                               "evolution": Evolution, "graphpnas": GraphPNAS}


def make_strategy(name: str, context: Mapping[str, Any] | None = None, **kwargs: Any) -> Strategy:
    """Build the strategy registered as ``name`` (``space``, ``objectives``, ``seed`` and its
    options as keyword arguments); unknown names and options raise :class:`NagoError`.
    ``context`` holds what the search knows that a strategy may use (e.g. MOBO's ``known``
    objectives): each entry goes to the strategies that take it, unless an option sets it."""
    if name not in STRATEGIES:
        raise NagoError(f"unknown search strategy {name!r}; allowed: "
                        f"{', '.join(sorted(STRATEGIES))}")
    cls = STRATEGIES[name]
    params = inspect.signature(cls).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise NagoError(f"search strategy {name!r} has no option(s) {unknown}; allowed: "
                        f"{', '.join(params)}")
    missing = [p for p in ("space", "objectives") if p not in kwargs]
    if missing:
        raise NagoError(f"search strategy {name!r} needs {missing}")
    usable = {k: v for k, v in (context or {}).items() if k in params and k not in kwargs}
    return cls(**kwargs, **usable)


__all__ = ["BOHB", "MOBO", "STRATEGIES", "Evolution", "GraphPNAS", "RandomSearch", "Strategy",
           "make_strategy"]
