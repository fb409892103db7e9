"""Put a trained network's weights into a network for another dataset.

Rules: the classifier (the head's final linear layer) is always new when the class count
differs; an HNAG stem is kept when both datasets use the same stem kind (images < 40 px, or
not) and re-initialised otherwise (an nb201 stem is one 3x3 convolution at any size: kept);
when the channel count differs (e.g. 1-channel digits -> RGB), each new input channel's filter
is the mean of the old channels' filters, scaled by old/new, so a grey image copied into every
channel gives the same activations as before (3 -> 1 therefore sums the filters). Every other
tensor must match exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from nago_pl.errors import NagoError
from nago_pl.network.budget import build_network
from nago_pl.network.layers import SMALL_IMAGE_LIMIT
from nago_pl.network.model import Network
from nago_pl.network.nb201 import Nb201Network, Nb201Spec
from nago_pl.space.nb201 import Nb201Cell
from nago_pl.transfer.checkpoint import TrainedModel

#: The classifier (final Linear) of each network kind's head Sequential.
CLASSIFIER = {Network: "head.7.", Nb201Network: "head.4."}


def adapt_input_channels(weight: torch.Tensor, axis: int, channels: int, rescale: bool
                         ) -> torch.Tensor:
    """``weight`` with ``channels`` entries along ``axis``, each the mean of the old ones."""
    old = weight.shape[axis]
    mean = weight.mean(dim=axis, keepdim=True)
    repeats = [1] * weight.dim()
    repeats[axis] = channels
    scale = old / channels if rescale else 1.0
    return (mean * scale).repeat(repeats)


def _stem_channel_axes(small_stem: bool) -> dict[str, tuple[int, bool]]:
    """Stem tensors that read the input image: name -> (channel axis, rescale)."""
    if small_stem:
        return {"stem.0.weight": (1, True)}
    return {"stem.0.weight": (0, False), "stem.1.weight": (1, True)}


def network_for_data(trained: TrainedModel, in_channels: int, num_classes: int,
                     image_size: int, dropout: float) -> nn.Module:
    """``trained``'s network rebuilt for another data shape: the same widths (an HNAG
    multiplier and head, an nb201 width and depth), so its weights fit."""
    if isinstance(trained.architecture, Nb201Cell):
        return Nb201Network(trained.architecture, Nb201Spec(
            in_channels, num_classes, image_size, int(trained.spec["channels"]),
            int(trained.spec["cells_per_stage"])))
    return build_network(trained.architecture, in_channels=in_channels,
                         num_classes=num_classes, image_size=image_size,
                         multiplier=trained.spec["multiplier"],
                         head_channels=trained.spec["head_channels"], dropout=dropout)


def load_adapted(net: Network | Nb201Network, trained: TrainedModel) -> list[str]:
    """Load ``trained``'s weights into ``net`` by the rules above; returns the names of the
    tensors left freshly initialised."""
    hnag = isinstance(net, Network)
    old_small = int(trained.spec["image_size"]) < SMALL_IMAGE_LIMIT
    new_small = net.spec.image_size < SMALL_IMAGE_LIMIT
    stem_changed = hnag and old_small != new_small  # nb201's stem is one 3x3 conv at any size
    old_channels, new_channels = int(trained.spec["in_channels"]), net.spec.in_channels
    axes = _stem_channel_axes(new_small or not hnag)
    classifier = CLASSIFIER[type(net)]
    target = net.state_dict()
    chosen: dict[str, torch.Tensor] = {}
    for name, value in trained.state_dict.items():
        if name.startswith(classifier) and name in target and value.shape != target[name].shape:
            continue
        if name.startswith("stem.") and stem_changed:
            continue
        if name in axes and old_channels != new_channels:
            axis, rescale = axes[name]
            value = adapt_input_channels(value, axis, new_channels, rescale)
        if name not in target or target[name].shape != value.shape:
            have = "missing" if name not in target else tuple(target[name].shape)
            raise NagoError(f"{trained.source}: does not match the architecture being built "
                            f"({name}: checkpoint {tuple(value.shape)}, network {have})")
        chosen[name] = value
    net.load_state_dict(chosen, strict=False)
    return sorted(set(target) - set(chosen))
