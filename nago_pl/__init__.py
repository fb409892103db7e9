"""nago-pl: neural architecture search over random-graph architecture generators (NAGO)."""

from nago_pl.transfer.export import load_model

__all__ = ["load_model"]
