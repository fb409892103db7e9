"""The NAS-Bench-201 cell as pure data: 4 nodes, 6 edges, one operation per edge.

Edges are listed in the order of the benchmark's string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``:
(0→1), (0→2), (1→2), (0→3), (1→3), (2→3); ``op~j`` in the group of node ``i`` is the edge
j→i. The cell's output is node 3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nago_pl.errors import NagoError

#: The benchmark's operations (NATS-Bench topology search space).
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (source, target) node of each edge, in string order.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
#: NASLib's op indices (``OP_NAMES`` of its nasbench201 space) and edge order.
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
FORMAT = "nb201"


@dataclass(frozen=True)
class Nb201Cell:
    """Six operation names, one per edge in :data:`EDGES` order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        if len(ops) != len(EDGES):
            raise NagoError(f"nb201 cell: needs {len(EDGES)} operations, got {len(ops)}: {ops}")
        unknown = [op for op in ops if op not in OPS]
        if unknown:
            raise NagoError(f"nb201 cell: unknown operation(s) {unknown}; allowed: {', '.join(OPS)}")
        object.__setattr__(self, "ops", ops)

    @classmethod
    def from_string(cls, text: str) -> Nb201Cell:
        """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        groups = str(text).strip().split("+")
        ops: list[str] = []
        if len(groups) != 3:
            raise NagoError(f"nb201 cell string {text!r}: expected 3 '+'-separated node groups")
        for node, group in enumerate(groups, start=1):
            tokens = [t for t in group.split("|") if t]
            if len(tokens) != node:
                raise NagoError(f"nb201 cell string {text!r}: node {node} needs {node} edge(s)")
            for source, token in enumerate(tokens):
                op, _, index = token.partition("~")
                if index != str(source):
                    raise NagoError(f"nb201 cell string {text!r}: expected '{op}~{source}', "
                                    f"got {token!r}")
                ops.append(op)
        return cls(tuple(ops))

    def to_string(self) -> str:
        """The benchmark's string form (inverse of :meth:`from_string`)."""
        groups, k = [], 0
        for node in (1, 2, 3):
            groups.append("|" + "|".join(f"{self.ops[k + j]}~{j}" for j in range(node)) + "|")
            k += node
        return "+".join(groups)

    @classmethod
    def from_naslib(cls, indices: tuple[int, ...]) -> Nb201Cell:
        """From NASLib's op-index tuple (its op and edge order)."""
        by_edge = {edge: NASLIB_OPS[i] for edge, i in zip(NASLIB_EDGES, indices, strict=True)}
        return cls(tuple(by_edge[edge] for edge in EDGES))

    def to_naslib(self) -> tuple[int, ...]:
        """NASLib's op-index tuple of this cell."""
        by_edge = dict(zip(EDGES, self.ops, strict=True))
        return tuple(NASLIB_OPS.index(by_edge[edge]) for edge in NASLIB_EDGES)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "cell": self.to_string()}

    def to_json(self) -> str:
        """Canonical JSON (same cell ⇒ same bytes)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Nb201Cell:
        if data.get("format") != FORMAT or "cell" not in data:
            raise NagoError(f"not an nb201 cell: expected {{format: {FORMAT}, cell: ...}}, "
                            f"got keys {sorted(data)}")
        return cls.from_string(data["cell"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Nb201Cell:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise NagoError(f"cannot read nb201 cell {path}: {err}") from None
