"""Lightning callbacks of nago-pl."""

from callbacks.divergence import Diverged, DivergenceCheck
from callbacks.model_stats import ModelStats

__all__ = ["DivergenceCheck", "Diverged", "ModelStats"]
