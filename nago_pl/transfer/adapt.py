"""Put a trained network's weights into a network for another dataset.

Rules: the classifier (the head's final linear layer) is always new when the class count
differs; the stem is kept when both datasets use the same stem kind (images < 40 px, or not)
and re-initialised otherwise; when the channel count differs (e.g. 1-channel digits -> RGB),
each new input channel's filter is the mean of the old channels' filters, scaled by
old/new, so a grey image copied into every channel gives the same activations as before
(3 -> 1 therefore sums the filters). Every other tensor must match exactly.
"""

from __future__ import annotations

import torch

from nago_pl.errors import NagoError
from nago_pl.network.layers import SMALL_IMAGE_LIMIT
from nago_pl.network.model import Network
from nago_pl.transfer.checkpoint import TrainedModel

CLASSIFIER = "head.7."  # the Linear at the end of make_head's Sequential


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


def load_adapted(net: Network, trained: TrainedModel) -> list[str]:
    """Load ``trained``'s weights into ``net`` by the rules above; returns the names of the
    tensors left freshly initialised."""
    old_small = int(trained.spec["image_size"]) < SMALL_IMAGE_LIMIT
    new_small = net.spec.image_size < SMALL_IMAGE_LIMIT
    old_channels, new_channels = int(trained.spec["in_channels"]), net.spec.in_channels
    axes = _stem_channel_axes(new_small)
    target = net.state_dict()
    chosen: dict[str, torch.Tensor] = {}
    for name, value in trained.state_dict.items():
        if name.startswith(CLASSIFIER) and name in target and value.shape != target[name].shape:
            continue
        if name.startswith("stem.") and old_small != new_small:
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
