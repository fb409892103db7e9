"""The search space: random-graph generators and the Architecture they sample."""

from nago_pl.space.architecture import Architecture, BottomGraph, Cell
from nago_pl.space.generator import SEARCHED, GeneratorConfig, assign_stages, sample
from nago_pl.space.graphs import DAG

__all__ = [
    "DAG", "SEARCHED", "Architecture", "BottomGraph", "Cell", "GeneratorConfig",
    "assign_stages", "sample",
]
