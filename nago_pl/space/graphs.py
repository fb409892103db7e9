"""Seeded random-graph families and their orientation into DAGs.

Every graph is drawn from a seed derived from a *path* of integers (generator seed, level,
node path, ...), so the same path always yields the same graph, whatever was drawn before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from nago_pl.errors import NagoError

FAMILIES = ("ws", "er", "ba", "chain")
#: A bottom-level family whose graph is given edge by edge (a learned model's sample).
LEARNED = "learned"
MAX_RESAMPLES = 10_000


@dataclass(frozen=True)
class DAG:
    """A directed acyclic graph on nodes ``0..num_nodes-1``; every edge goes low -> high label."""

    num_nodes: int
    edges: tuple[tuple[int, int], ...]

    def predecessors(self, node: int) -> list[int]:
        """Nodes with an edge into ``node``, in increasing label order."""
        return sorted(u for u, v in self.edges if v == node)

    @property
    def inputs(self) -> list[int]:
        """Nodes with no lower-labelled neighbour: they receive the level's input."""
        has_pred = {v for _, v in self.edges}
        return [n for n in range(self.num_nodes) if n not in has_pred]

    @property
    def outputs(self) -> list[int]:
        """Nodes with no higher-labelled neighbour: the level's result is their mean."""
        has_succ = {u for u, _ in self.edges}
        return [n for n in range(self.num_nodes) if n not in has_succ]


def pair_order(num_nodes: int) -> list[tuple[int, int]]:
    """Every pair ``u < v`` of ``num_nodes`` nodes, by target, then source: (0,1), (0,2),
    (1,2), (0,3), ... (the NAS-Bench-201 cell's edge order, and a learned cell's)."""
    return [(u, v) for v in range(1, num_nodes) for u in range(v)]


def dag_from_bits(num_nodes: int, bits: Sequence[int]) -> DAG:
    """The DAG whose edge :func:`pair_order` ``k`` exists iff ``bits[k]`` is 1."""
    pairs = pair_order(num_nodes)
    if len(bits) != len(pairs) or any(b not in (0, 1) or isinstance(b, bool) for b in bits):
        raise NagoError(f"a learned {num_nodes}-node cell needs {len(pairs)} edge values, each "
                        f"0 or 1 (pairs (0,1), (0,2), (1,2), (0,3), ...), got {list(bits)}")
    return DAG(num_nodes, tuple(sorted(p for p, b in zip(pairs, bits, strict=True) if b)))


def derive_seed(path: Sequence[int]) -> int:
    """A 32-bit seed that depends only on ``path`` (stable across processes and platforms)."""
    return int(np.random.SeedSequence([int(p) for p in path]).generate_state(1)[0])


def _draw(family: str, nodes: int, k: int, p: float, seed: int) -> nx.Graph:
    if family == "ws":
        if nodes == 2:  # a 2-node ring lattice has no neighbour per side: its one edge instead
            return nx.path_graph(2)
        # The ring lattice needs at least one neighbour per side and at most n-1 neighbours.
        return nx.watts_strogatz_graph(nodes, min(max(k, 2), nodes - 1), p, seed=seed)
    if family == "er":
        return nx.erdos_renyi_graph(nodes, p, seed=seed)
    if family == "ba":
        return nx.barabasi_albert_graph(nodes, min(max(k, 1), nodes - 1), seed=seed)
    if family == "chain":
        # Feed-forward chain: node i takes the k nodes before it (DARTS-like when k=2).
        return nx.Graph((i - d, i) for i in range(nodes) for d in range(1, max(k, 1) + 1) if i >= d)
    raise NagoError(f"graph family {family!r} is unknown; allowed: {', '.join(FAMILIES)}")


def sample_dag(family: str, nodes: int, k: int, p: float, path: Sequence[int]) -> DAG:
    """Draw a connected graph of ``family`` and orient it low -> high.

    ``k`` is WS's neighbour count, BA's attachment count or the chain's look-back (ignored by ER);
    ``p`` is WS's rewiring or ER's edge probability (ignored by BA and chain). Disconnected
    draws are resampled with the next derived seed, so the result is deterministic in ``path``.
    """
    if nodes == 1:
        return DAG(1, ())
    for attempt in range(MAX_RESAMPLES):
        graph = _draw(family, nodes, k, p, derive_seed([*path, attempt]))
        if nx.is_connected(graph):
            edges = sorted((min(u, v), max(u, v)) for u, v in graph.edges)
            return DAG(nodes, tuple(edges))
    raise NagoError(
        f"no connected {family.upper()} graph with nodes={nodes}, k={k}, p={p} in "
        f"{MAX_RESAMPLES} draws; raise the edge probability"
    )
