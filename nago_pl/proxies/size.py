"""Size proxies: parameter count and FLOPs of one forward pass."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nago_pl.network.cost import count_flops
from nago_pl.proxies.registry import Batch, proxy
from nago_pl.proxies.scratch import scratch_copy


@proxy("params")
def params(net: nn.Module, batch: Batch) -> float:
    """The number of trainable parameters (``batch`` is unused: the signature of every proxy)."""
    return float(sum(p.numel() for p in net.parameters() if p.requires_grad))


@proxy("flops")
def flops(net: nn.Module, batch: Batch) -> float:
    """FLOPs of one forward pass on one image: the project's meta-device counter when the net
    carries a ``spec`` of its data shape, else counted on the batch's first image."""
    if hasattr(net, "spec"):
        return float(count_flops(net))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        scratch_copy(net).eval()(batch[0][:1])
    return float(counter.get_total_flops())
