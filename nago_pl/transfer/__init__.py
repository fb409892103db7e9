"""Carry a found model to new data: read checkpoints safely, adapt weights, export, load."""

from nago_pl.transfer.adapt import load_adapted, network_for_data
from nago_pl.transfer.checkpoint import TrainedModel, load_trained, read_checkpoint
from nago_pl.transfer.export import ImageClassifier, export_model, load_model

__all__ = [
    "ImageClassifier", "TrainedModel", "export_model", "load_adapted", "load_model",
    "load_trained", "network_for_data", "read_checkpoint",
]
