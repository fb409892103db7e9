"""A disposable copy of a network to score, so the caller's weights, buffers and mode stay as
they were; and the layers the pruning-based proxies read."""

from __future__ import annotations

import copy

from torch import nn

from nago_pl.proxies.registry import Unscorable


def scratch_copy(net: nn.Module) -> nn.Module:
    """A deep copy in training mode (BatchNorm on batch statistics, as at initialisation) with
    dropout off, so every score is a deterministic function of weights and batch."""
    shadow = copy.deepcopy(net).train()
    for module in shadow.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()
    shadow.zero_grad(set_to_none=True)
    return shadow


def weight_layers(net: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    """The conv and linear layers, the ones whose weights the saliency proxies score."""
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    if not layers:
        raise Unscorable("the network has no Conv2d or Linear layer")
    return layers
