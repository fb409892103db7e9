"""From an Architecture to an ``nn.Module`` whose width fits a parameter budget exactly."""

from nago_pl.network.budget import build_network, choose_multiplier, count_parameters
from nago_pl.network.cost import count_flops, measure_latency_ms, training_memory_mb
from nago_pl.network.model import Network, NetworkSpec

__all__ = [
    "Network", "NetworkSpec", "build_network", "choose_multiplier", "count_flops",
    "count_parameters", "measure_latency_ms", "training_memory_mb",
]
