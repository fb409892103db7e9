"""Lightning callbacks of nago-pl."""

from callbacks.model_stats import ModelStats

__all__ = ["ModelStats"]
