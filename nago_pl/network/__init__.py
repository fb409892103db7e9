"""From an Architecture to an ``nn.Module`` whose width fits a parameter budget exactly."""

from nago_pl.network.budget import build_network, choose_multiplier, count_flops, count_parameters
from nago_pl.network.model import Network, NetworkSpec

__all__ = [
    "Network", "NetworkSpec", "build_network", "choose_multiplier", "count_flops",
    "count_parameters",
]
