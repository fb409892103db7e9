"""Search-space shrinkage: a stage before the strategies that turns a space into a smaller one
made of pockets of good architectures (LISSNAS); any strategy then searches the shrunk space."""

from nago_pl.search.shrink.distance import EditDistance
from nago_pl.search.shrink.lissnas import Lissnas
from nago_pl.search.shrink.pockets import FILE_NAME, Pocket, ShrunkSpace

__all__ = ["FILE_NAME", "EditDistance", "Lissnas", "Pocket", "ShrunkSpace"]
