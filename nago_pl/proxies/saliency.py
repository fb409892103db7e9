"""Pruning-at-initialisation saliencies summed over all conv and linear weights (Abdelfattah et
al. 2021, as NASLib computes them): snip, grasp, fisher, grad_norm and synflow."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nago_pl.proxies.registry import Batch, Loss, Unscorable, proxy
from nago_pl.proxies.scratch import scratch_copy, weight_layers


def _checked(grads: list[torch.Tensor | None], what: str) -> list[torch.Tensor]:
    """``grads`` with None as zeros; Unscorable when all are zero or any is not finite."""
    if all(g is None for g in grads):
        raise Unscorable(f"no {what} reaches the conv/linear weights (the output does not "
                         "depend on them, e.g. a cell of only 'none' edges)")
    present = [g for g in grads if g is not None]
    if not all(bool(torch.isfinite(g).all()) for g in present):
        raise Unscorable(f"non-finite {what}")
    if all(not bool(g.any()) for g in present):
        raise Unscorable(f"every {what} is zero (the output does not depend on the weights, "
                         "e.g. a cell of only 'none' edges)")
    return [g if g is not None else torch.zeros(()) for g in grads]


def _weight_grads(net: nn.Module, batch: Batch, loss: Loss,
                  create_graph: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Conv/linear weights of ``net`` and the loss gradient w.r.t. each."""
    weights = [layer.weight for layer in weight_layers(net)]
    inputs, targets = batch
    value = loss(net(inputs), targets)
    if not torch.isfinite(value):
        raise Unscorable(f"the loss is not finite ({value.item()})")
    grads = torch.autograd.grad(value, weights, allow_unused=True, create_graph=create_graph)
    return weights, _checked(list(grads), "gradient")


@proxy("grad_norm", uses_loss=True)
def grad_norm(net: nn.Module, batch: Batch, loss: Loss = F.cross_entropy) -> float:
    """Sum over layers of the L2 norm of the loss gradient of the layer's weight."""
    _, grads = _weight_grads(scratch_copy(net), batch, loss)
    return sum(float(g.norm()) for g in grads)


@proxy("snip", uses_loss=True)
def snip(net: nn.Module, batch: Batch, loss: Loss = F.cross_entropy) -> float:
    """SNIP connection sensitivity: Σ |w · ∂L/∂w| (the gradient w.r.t. a multiplicative mask)."""
    weights, grads = _weight_grads(scratch_copy(net), batch, loss)
    return sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads, strict=True))


@proxy("grasp", uses_loss=True)
def grasp(net: nn.Module, batch: Batch, loss: Loss = F.cross_entropy) -> float:
    """GraSP: Σ -w · (H g), H the loss Hessian and g the loss gradient (NASLib's sign)."""
    weights, grads = _weight_grads(scratch_copy(net), batch, loss, create_graph=True)
    z = sum((g.detach() * g).sum() for g in grads if g.requires_grad)
    if not isinstance(z, torch.Tensor):
        raise Unscorable("the gradient does not depend on the weights (no Hessian)")
    hessian_grad = _checked(list(torch.autograd.grad(z, weights, allow_unused=True)),
                            "Hessian-gradient product")
    return sum(float((-w.detach() * hg).sum()) for w, hg in zip(weights, hessian_grad, strict=True))


@proxy("fisher", uses_loss=True)
def fisher(net: nn.Module, batch: Batch, loss: Loss = F.cross_entropy) -> float:
    """Fisher information of each conv/linear output channel, ½·mean_n(Σ_spatial a·∂L/∂a)²,
    counted once per weight of the channel (as NASLib broadcasts it) and summed."""
    shadow = scratch_copy(net)
    per_channel: dict[nn.Module, torch.Tensor] = {}

    def record(layer: nn.Module, _inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        def on_grad(grad: torch.Tensor) -> None:
            g_nk = out.detach() * grad
            if g_nk.dim() > 2:
                g_nk = g_nk.sum(dim=tuple(range(2, g_nk.dim())))
            info = g_nk.pow(2).mean(0).mul(0.5)
            per_channel[layer] = per_channel[layer] + info if layer in per_channel else info

        if out.requires_grad:
            out.register_hook(on_grad)

    layers = weight_layers(shadow)
    handles = [layer.register_forward_hook(record) for layer in layers]
    try:
        inputs, targets = batch
        value = loss(shadow(inputs), targets)
        if not torch.isfinite(value):
            raise Unscorable(f"the loss is not finite ({value.item()})")
        value.backward()
    finally:
        for handle in handles:
            handle.remove()
    _checked([layer.weight.grad for layer in layers], "gradient")
    infos = [per_channel.get(layer) for layer in layers]
    return sum(float(info.abs().sum()) * math.prod(layer.weight.shape[1:])
               for layer, info in zip(layers, infos, strict=True) if info is not None)


@proxy("synflow")
def synflow(net: nn.Module, batch: Batch) -> float:
    """SynFlow, as log(Σ |w · ∂R/∂w|) with R the summed output of the network with |weights|,
    BatchNorm bypassed, on one all-ones input, in double precision (the log as NASLib reports it)."""
    shadow = scratch_copy(net).double()
    with torch.no_grad():
        for tensor in shadow.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    for module in shadow.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.forward = _identity  # type: ignore[method-assign]
    inputs, _ = batch
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    weights = [layer.weight for layer in weight_layers(shadow)]
    grads = torch.autograd.grad(shadow(ones).sum(), weights, allow_unused=True)
    grads = _checked(list(grads), "synflow gradient")
    total = sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads, strict=True))
    return math.log(total)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x
