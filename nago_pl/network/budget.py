"""Width from the parameter budget: the largest multiplier whose exact count fits the limit."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from nago_pl.errors import NagoError
from nago_pl.network.model import Network, NetworkSpec
from nago_pl.space.architecture import Architecture

MULTIPLIER_STEPS = 8
MAX_UNITS = MULTIPLIER_STEPS << 14


def count_parameters(arch: Architecture, spec: NetworkSpec) -> int:
    """Exact parameter count of the network, built on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        net = Network(arch, spec, initialize=False)
    return sum(p.numel() for p in net.parameters())


def choose_multiplier(arch: Architecture, spec: NetworkSpec, param_limit: int) -> float:
    """The largest channel multiplier (a multiple of 1/MULTIPLIER_STEPS) whose network has at
    most ``param_limit`` parameters.

    Each stage's width is round(ratio x multiplier), so fractional multipliers widen the stages
    one at a time and the count tracks the limit closely. The count is nearly quadratic in the
    multiplier: three meta builds predict the answer, exact counts around it confirm it (the count
    never decreases as the multiplier grows).
    """

    def count(units: int) -> int:
        return count_parameters(arch, replace(spec, multiplier=units / MULTIPLIER_STEPS))

    c1, c2, c3 = (count(k * MULTIPLIER_STEPS) for k in (1, 2, 3))
    a = (c3 - 2 * c2 + c1) / 2
    b = c2 - c1 - 3 * a
    c = c1 - a - b
    if a > 0:
        guess = (-b + math.sqrt(max(b * b - 4 * a * (c - param_limit), 0.0))) / (2 * a)
    else:
        guess = (param_limit - c) / max(b, 1)
    units = max(1, min(int(guess * MULTIPLIER_STEPS), MAX_UNITS))
    while units > 1 and count(units) > param_limit:
        units -= 1
    if count(units) > param_limit:
        raise NagoError(
            f"network.param_limit={param_limit} is below this architecture's smallest network "
            f"({count(units)} parameters at width 1); raise the limit"
        )
    while units < MAX_UNITS and count(units + 1) <= param_limit:
        units += 1
    return units / MULTIPLIER_STEPS


def build_network(arch: Architecture, *, in_channels: int, num_classes: int, image_size: int,
                  param_limit: int | None = None, multiplier: float | None = None,
                  head_channels: int = 1280, dropout: float = 0.2) -> Network:
    """Build the ``nn.Module`` for ``arch``; width from ``param_limit`` unless ``multiplier`` is set."""
    if image_size < 8:
        raise NagoError(f"image_size={image_size}: must be >= 8 pixels")
    if in_channels < 1 or num_classes < 2:
        raise NagoError(
            f"in_channels={in_channels}, num_classes={num_classes}: need >= 1 channel, >= 2 classes"
        )
    if (param_limit is None) == (multiplier is None):
        raise NagoError("set exactly one of network.param_limit and network.multiplier")
    spec = NetworkSpec(in_channels, num_classes, image_size, multiplier or 1, head_channels, dropout)
    if param_limit is not None:
        spec = replace(spec, multiplier=choose_multiplier(arch, spec, param_limit))
    return Network(arch, spec)
