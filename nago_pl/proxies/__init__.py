"""Zero-cost proxies: plain functions of (network, batch[, loss]) that score an untrained
network; higher is better; NaN (with a logged reason) when a network cannot be scored."""

from nago_pl.proxies.activations import jacov, nwot, zen
from nago_pl.proxies.ranking import best_first, nan_last, spearman
from nago_pl.proxies.registry import PROXIES, Batch, score
from nago_pl.proxies.saliency import fisher, grad_norm, grasp, snip, synflow
from nago_pl.proxies.size import flops, params

__all__ = [
    "PROXIES", "Batch", "best_first", "fisher", "flops", "grad_norm", "grasp", "jacov",
    "nan_last", "nwot", "params", "score", "snip", "spearman", "synflow", "zen",
]
