"""What a network costs to run: FLOPs, inference latency, training memory."""

from __future__ import annotations

import copy
import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nago_pl.network.model import Network


def count_flops(net: nn.Module) -> int:
    """FLOPs of one forward pass on one image (2 per multiply-add), counted on the meta device;
    ``net`` is a :class:`Network` or another network with a ``spec`` of the data shape."""
    spec = net.spec
    with torch.device("meta"):
        shadow = Network(net.arch, spec, initialize=False) if isinstance(net, Network) \
            else copy.deepcopy(net).to("meta")
        x = torch.empty(1, spec.in_channels, spec.image_size, spec.image_size)
    counter = FlopCounterMode(display=False)
    with counter:
        shadow.eval()(x)
    return int(counter.get_total_flops())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency_ms(net: nn.Module, repeats: int = 10, warmup: int = 2) -> float:
    """Median wall time (ms) of an eval-mode forward pass on one image, on the net's device."""
    spec = net.spec
    device = next(net.parameters()).device
    x = torch.randn(1, spec.in_channels, spec.image_size, spec.image_size, device=device)
    was_training = net.training
    net.eval()
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            _synchronize(device)
            start = time.perf_counter()
            net(x)
            _synchronize(device)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    net.train(was_training)
    return statistics.median(times)


def training_memory_mb(net: nn.Module, batch_size: int, optimizer_states: int = 1) -> float:
    """Memory (MiB) one training step holds at its peak: weights, gradients, ``optimizer_states``
    buffers per weight (1 for SGD with momentum, 2 for Adam) and every tensor autograd saves for
    the backward pass of one batch (measured on a copy of the net, on its device)."""
    spec = net.spec
    device = next(net.parameters()).device
    shadow = copy.deepcopy(net).train()
    weights = sum(p.numel() * p.element_size() for p in shadow.parameters())
    saved: dict[int, int] = {}

    def keep(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return t

    x = torch.randn(batch_size, spec.in_channels, spec.image_size, spec.image_size, device=device)
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        shadow(x).sum()
    del shadow
    total = weights * (2 + optimizer_states) + sum(saved.values())
    return total / 2**20
