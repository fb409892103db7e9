"""The Architecture: three levels of DAGs as pure data, with a deterministic JSON form.

It is the contract between the search space and the network builder: saved next to every
trained model, it rebuilds the identical network anywhere. Widths are in *ratio units*; the
network builder multiplies them by the channel multiplier chosen from the parameter budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nago_pl.errors import NagoError
from nago_pl.space.graphs import DAG

FORMAT_VERSION = 1
OPS = ("conv3x3", "conv5x5", "conv1x1", "conv3x1", "conv1x3", "avgpool3x3", "avgpool5x5")


@dataclass(frozen=True)
class BottomGraph:
    """The operations inside one mid-level node: a DAG whose nodes are ops."""

    dag: DAG
    ops: tuple[str, ...]


@dataclass(frozen=True)
class Cell:
    """One top-level node: its stage, its width (ratio units), its mid graph and their bottoms."""

    stage: int
    width: float
    mid: DAG
    bottoms: tuple[BottomGraph, ...]


@dataclass(frozen=True)
class Architecture:
    """A sampled network: the top DAG of cells, each cell a mid DAG of bottom op-graphs.

    ``generator`` records where it came from (hyper-parameters and seed); it is informational
    and does not affect the network.
    """

    top: DAG
    cells: tuple[Cell, ...]
    generator: dict[str, Any]

    @property
    def num_stages(self) -> int:
        return max(cell.stage for cell in self.cells) + 1

    @property
    def num_ops(self) -> int:
        return sum(len(b.ops) for cell in self.cells for b in cell.bottoms)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, node roles included for readers (they are re-derived and checked on load)."""
        return {
            "format_version": FORMAT_VERSION,
            "generator": self.generator,
            "top": _dag_to_dict(self.top),
            "cells": [
                {
                    "stage": cell.stage,
                    "width": cell.width,
                    "mid": _dag_to_dict(cell.mid),
                    "bottoms": [{**_dag_to_dict(b.dag), "ops": list(b.ops)} for b in cell.bottoms],
                }
                for cell in self.cells
            ],
        }

    def to_json(self) -> str:
        """Canonical JSON: the same architecture always gives byte-identical text."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        """Rebuild from :meth:`to_dict` output; malformed data raises :class:`NagoError`."""
        try:
            if data.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version must be {FORMAT_VERSION}")
            top = _dag_from_dict(data["top"], "top")
            cells = tuple(_cell_from_dict(c, f"cells[{i}]") for i, c in enumerate(data["cells"]))
            if len(cells) != top.num_nodes:
                raise ValueError(f"{len(cells)} cells for a top graph of {top.num_nodes} nodes")
            stages = [c.stage for c in cells]
            if stages != sorted(stages) or stages[0] != 0:
                raise ValueError(f"cell stages must start at 0 and never decrease, got {stages}")
            return cls(top=top, cells=cells, generator=dict(data.get("generator", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise NagoError(f"not a valid Architecture: {_describe(err)}") from None

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise NagoError(f"not a valid Architecture: invalid JSON ({err})") from None
        if not isinstance(data, dict):
            raise NagoError("not a valid Architecture: the JSON top level must be an object")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Architecture:
        path = Path(path)
        if not path.is_file():
            raise NagoError(f"arch={path}: no such file; expected an architecture.json")
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except NagoError as err:
            raise NagoError(f"arch={path}: {err}") from None
        except (OSError, UnicodeDecodeError) as err:
            raise NagoError(f"arch={path}: cannot read it as an architecture.json (a UTF-8 "
                            f"JSON text file): {err}") from None


def _describe(err: Exception) -> str:
    return f"missing key {err}" if isinstance(err, KeyError) else str(err)


def _dag_to_dict(dag: DAG) -> dict[str, Any]:
    return {
        "num_nodes": dag.num_nodes,
        "edges": [list(e) for e in dag.edges],
        "inputs": dag.inputs,
        "outputs": dag.outputs,
    }


def _dag_from_dict(data: dict[str, Any], where: str) -> DAG:
    n = int(data["num_nodes"])
    edges = tuple(sorted((int(u), int(v)) for u, v in data["edges"]))
    if n < 1:
        raise ValueError(f"{where}: num_nodes must be >= 1")
    for u, v in edges:
        if not 0 <= u < v < n:
            raise ValueError(f"{where}: edge ({u}, {v}) must go from a lower to a higher node < {n}")
    dag = DAG(n, edges)
    for role in ("inputs", "outputs"):
        if role in data and list(data[role]) != getattr(dag, role):
            raise ValueError(f"{where}: {role} {data[role]} do not match the edges")
    return dag


def _cell_from_dict(data: dict[str, Any], where: str) -> Cell:
    mid = _dag_from_dict(data["mid"], f"{where}.mid")
    bottoms = []
    for j, b in enumerate(data["bottoms"]):
        dag = _dag_from_dict(b, f"{where}.bottoms[{j}]")
        ops = tuple(str(op) for op in b["ops"])
        unknown = [op for op in ops if op not in OPS]
        if unknown or len(ops) != dag.num_nodes:
            raise ValueError(f"{where}.bottoms[{j}]: need one op per node from {', '.join(OPS)}")
        bottoms.append(BottomGraph(dag, ops))
    if len(bottoms) != mid.num_nodes:
        raise ValueError(f"{where}: {len(bottoms)} bottom graphs for {mid.num_nodes} mid nodes")
    width = float(data["width"])
    if width <= 0:
        raise ValueError(f"{where}: width must be > 0")
    return Cell(stage=int(data["stage"]), width=width, mid=mid, bottoms=tuple(bottoms))
