"""HNAG: the hierarchical neural architecture generator of NAGO (three levels of random graphs).

A :class:`GeneratorConfig` holds the generator's hyper-parameters θ (the 8 searched ones plus
fixed choices); :func:`sample` turns θ and a seed into an :class:`Architecture`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nago_pl.errors import NagoError
from nago_pl.space.architecture import OPS, Architecture, BottomGraph, Cell
from nago_pl.space.graphs import DAG, FAMILIES, LEARNED, dag_from_bits, derive_seed, sample_dag

SEARCHED = ("G1_nodes", "G1_K", "G1_P", "G2_nodes", "G2_P", "G3_nodes", "G3_K", "G3_P")
MAX_NODES = 64
MAX_RATIO = 1000.0  # stage / channel ratios: larger ones overflow widths and stage shares
MAX_OPS = 4096  # op nodes of a whole network (G1 x G2 x G3): a few seconds to build
TOP, MID, BOTTOM, OP_CHOICE = range(4)


@dataclass
class GeneratorConfig:
    """Hyper-parameters of the generator: per level a graph family, node count, K and P.

    Defaults are the paper's best CIFAR-10 generator WS(8,5,0.6) / ER(1,0.7) / WS(5,4,0.2).
    ``K`` is WS's neighbour count, BA's attachment count or the chain's look-back; ``P`` is WS's
    rewiring or ER's edge probability. ``G2_K`` is not searched (the mid level is ER).
    ``bottom_family="learned"`` takes every bottom cell's graph from ``G3_edges`` instead: one
    0/1 per node pair in :func:`~nago_pl.space.graphs.pair_order` (a learned model's sample;
    searched as ``G3_edge_<k>``).
    """

    G1_nodes: int = 8
    G1_K: int = 5
    G1_P: float = 0.6
    G2_nodes: int = 1
    G2_P: float = 0.7
    G3_nodes: int = 5
    G3_K: int = 4
    G3_P: float = 0.2
    G2_K: int = 2
    top_family: str = "ws"
    mid_family: str = "er"
    bottom_family: str = "ws"
    stage_ratios: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    channel_ratios: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0])
    ops: list[str] = field(default_factory=lambda: ["conv3x3"])
    G3_edges: list[int] = field(default_factory=list)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> GeneratorConfig:
        """Build from a plain mapping (e.g. a config node), rejecting unknown names."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise NagoError(
                f"unknown generator parameter(s) {', '.join(unknown)}; allowed: {', '.join(known)}"
            )
        config = cls(**{k: (list(v) if isinstance(v, list | tuple) else v) for k, v in values.items()})
        config.validate()
        return config

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        """Raise :class:`NagoError` naming the first parameter that is out of range or ill-typed."""
        for level in ("G1", "G2", "G3"):
            _check_int(f"{level}_nodes", getattr(self, f"{level}_nodes"), 1, MAX_NODES)
            _check_int(f"{level}_K", getattr(self, f"{level}_K"), 1, MAX_NODES - 1)
            if level != "G2" or self.mid_family in ("ws", "er"):
                _check_float(f"{level}_P", getattr(self, f"{level}_P"), 0.0, 1.0)
        ops = self.G1_nodes * self.G2_nodes * self.G3_nodes
        if ops > MAX_OPS:
            raise NagoError(f"G1_nodes x G2_nodes x G3_nodes = {self.G1_nodes} x {self.G2_nodes} x "
                            f"{self.G3_nodes} = {ops} op nodes; at most {MAX_OPS}")
        for name in ("top_family", "mid_family", "bottom_family"):
            allowed = (*FAMILIES, LEARNED) if name == "bottom_family" else FAMILIES
            if getattr(self, name) not in allowed:
                raise NagoError(f"{name}={getattr(self, name)!r}; allowed: {', '.join(allowed)}")
        if self.bottom_family == LEARNED:
            dag_from_bits(self.G3_nodes, self.G3_edges)
        elif self.G3_edges:
            raise NagoError(f"G3_edges={self.G3_edges!r}: only bottom_family={LEARNED} takes "
                            f"its graph from G3_edges (bottom_family={self.bottom_family!r})")
        _check_ratios("stage_ratios", self.stage_ratios)
        _check_ratios("channel_ratios", self.channel_ratios)
        if len(self.stage_ratios) != len(self.channel_ratios):
            raise NagoError(
                f"stage_ratios has {len(self.stage_ratios)} entries but channel_ratios has "
                f"{len(self.channel_ratios)}; give one channel ratio per stage"
            )
        if not _is_list(self.ops) or not self.ops or any(
                op not in OPS for op in self.ops):
            raise NagoError(f"ops={self.ops!r}; allowed: a non-empty list of {', '.join(OPS)}")


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise NagoError(f"{name}={value!r}: must be an integer in {low}..{high}")


def _check_float(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NagoError(f"{name}={value!r}: must be a number in [{low}, {high}]")
    if not (math.isfinite(value) and low <= value <= high):
        raise NagoError(f"{name}={value!r}: must be a number in [{low}, {high}]")


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _check_ratios(name: str, values: list[float]) -> None:
    if not _is_list(values) or not values or any(
            isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= MAX_RATIO
            for v in values):
        raise NagoError(f"{name}={values!r}: must be a non-empty list of numbers in "
                        f"(0, {MAX_RATIO}]")


def assign_stages(num_nodes: int, ratios: list[float]) -> list[int]:
    """Split nodes ``0..num_nodes-1`` into consecutive stages in proportion to ``ratios``.

    Each stage gets the floor of its share; the nodes left over go to the stages with the
    largest fractional share, the earliest first. Thirds: 3 -> [0,1,2],
    8 -> [0,0,0,1,1,1,2,2], 10 -> [0,0,0,0,1,1,1,2,2,2].
    """
    total = float(sum(ratios))
    shares = [num_nodes * r / total for r in ratios]
    counts = [math.floor(s + 1e-9) for s in shares]
    by_remainder = sorted(range(len(ratios)), key=lambda i: (-(shares[i] - counts[i]), i))
    for i in by_remainder[: num_nodes - sum(counts)]:
        counts[i] += 1
    return [stage for stage, count in enumerate(counts) for _ in range(count)]


def _level_dag(level: str, family: str, nodes: int, k: int, p: float,
               path: list[int]) -> DAG:
    """:func:`sample_dag`, its errors naming the level's parameters (``G1_*``, ...)."""
    try:
        return sample_dag(family, nodes, k, p, path)
    except NagoError as err:
        raise NagoError(f"{level}_nodes={nodes}, {level}_K={k}, {level}_P={p}: {err}") from None


def sample(config: GeneratorConfig, seed: int) -> Architecture:
    """Sample one architecture from the generator, deterministically in (config, seed).

    Every graph is drawn from a seed derived from (seed, level, node path), so the result does not
    depend on anything sampled before, in this process or another.
    """
    config.validate()
    _check_int("seed", seed, 0, 2**63 - 1)
    top = _level_dag("G1", config.top_family, config.G1_nodes, config.G1_K, config.G1_P,
                     [seed, TOP])
    stages = assign_stages(top.num_nodes, config.stage_ratios)
    # Stages left empty by extreme ratios are skipped, so stage indices stay consecutive.
    used = sorted(set(stages))
    widths = [float(config.channel_ratios[s]) for s in stages]
    stages = [used.index(s) for s in stages]
    cells = []
    for i in range(top.num_nodes):
        mid = _level_dag("G2", config.mid_family, config.G2_nodes, config.G2_K, config.G2_P,
                         [seed, MID, i])
        bottoms = []
        for j in range(mid.num_nodes):
            dag = dag_from_bits(config.G3_nodes, config.G3_edges) \
                if config.bottom_family == LEARNED else \
                _level_dag("G3", config.bottom_family, config.G3_nodes, config.G3_K,
                           config.G3_P, [seed, BOTTOM, i, j])
            rng = random.Random(derive_seed([seed, OP_CHOICE, i, j]))
            ops = tuple(rng.choice(config.ops) for _ in range(dag.num_nodes))
            bottoms.append(BottomGraph(dag, ops))
        cells.append(Cell(stage=stages[i], width=widths[i], mid=mid, bottoms=tuple(bottoms)))
    return Architecture(top=top, cells=tuple(cells), generator={**config.as_dict(), "seed": seed})
