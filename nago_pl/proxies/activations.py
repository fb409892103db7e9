"""Proxies read from activations on one batch: jacov (Jacobian covariance), nwot (NASWOT,
Mellor et al.) and zen (Zen-NAS, Lin et al.)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from nago_pl.proxies.registry import Batch, Unscorable, proxy
from nago_pl.proxies.scratch import scratch_copy

#: the regulariser of jacov's eigenvalues (as in NASLib and the NASWOT v1 paper).
JACOV_EPS = 1e-5
#: the size of zen's input perturbation.
ZEN_MIXUP = 1e-2


@proxy("jacov")
def jacov(net: nn.Module, batch: Batch) -> float:
    """-Σ_i log(λ_i + ε) + 1/(λ_i + ε) over the eigenvalues λ of the correlation matrix of the
    per-image input gradients of the summed output (higher: less correlated images)."""
    shadow = scratch_copy(net)
    inputs = batch[0].detach().clone().requires_grad_(True)
    out = shadow(inputs)
    (jacobian,) = torch.autograd.grad(out, inputs, torch.ones_like(out), allow_unused=True)
    if jacobian is None:
        raise Unscorable("the output does not depend on the input")
    rows = jacobian.reshape(len(inputs), -1).double().cpu().numpy()
    if not np.isfinite(rows).all():
        raise Unscorable("non-finite input Jacobian")
    if (rows.std(axis=1) == 0).any():
        raise Unscorable("an image's input Jacobian is constant (the output does not depend "
                         "on the input, e.g. a cell of only 'none' edges): no correlation")
    eig = np.linalg.eigvalsh(np.corrcoef(rows))
    return float(-np.sum(np.log(eig + JACOV_EPS) + 1.0 / (eig + JACOV_EPS)))


#: Integers below this are exact in float32 (NASWOT's per-ReLU agreement counts).
EXACT_FLOAT32 = 2**24


@proxy("nwot")
def nwot(net: nn.Module, batch: Batch) -> float:
    """NASWOT: log|det K|, K[i, j] the number of ReLUs (over every nn.ReLU and unit) on
    which images i and j agree, active (input > 0) or not."""
    shadow = scratch_copy(net)
    relus = [m for m in shadow.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise Unscorable("the network has no nn.ReLU module to read binary codes from")
    inputs = batch[0]
    kernel = torch.zeros(len(inputs), len(inputs), dtype=torch.float64, device=inputs.device)

    def count(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        nonlocal kernel
        active = args[0].detach().reshape(len(inputs), -1) > 0
        units = active.shape[1]
        # agreements = units - |a_i| - |a_j| + 2 a_i.a_j: one product instead of two, in
        # float32 while its integer sums stay exact (below 2**24), else in float64
        codes = active.to(torch.float32 if units < EXACT_FLOAT32 else torch.float64)
        both = (codes @ codes.T).double()
        ones = active.sum(1).double()
        kernel = kernel + units - ones[:, None] - ones[None, :] + 2 * both

    handles = [relu.register_forward_pre_hook(count) for relu in relus]
    try:
        with torch.no_grad():
            shadow(inputs)
    finally:
        for handle in handles:
            handle.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    if sign <= 0:
        raise Unscorable("the ReLU-code kernel is singular (identical codes for two images)")
    return float(logdet)


@proxy("zen")
def zen(net: nn.Module, batch: Batch, seed: int = 0) -> float:
    """Zen-score: with Gaussian weights and Gaussian inputs x, log E_n Σ|f(x) - f(x + γε)| of the
    pre-global-pooling features f, plus Σ over BatchNorm layers of log √(mean batch variance)
    (the batch statistics Zen-NAS's running variance tracks)."""
    shadow = scratch_copy(net)
    norms = [m for m in shadow.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise Unscorable("zen needs BatchNorm layers (their variance rescales the score)")
    generator = torch.Generator(device=batch[0].device).manual_seed(seed)
    _gaussian_init(shadow, generator)
    pools = [m for m in shadow.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    shape, device = batch[0].shape, batch[0].device
    x = torch.randn(shape, generator=generator, device=device)
    mixed = x + ZEN_MIXUP * torch.randn(shape, generator=generator, device=device)

    features: list[torch.Tensor] = []
    variances: list[torch.Tensor] = []
    handles = [bn.register_forward_pre_hook(
        lambda _m, args: variances.append(args[0].transpose(0, 1).flatten(1).var(1).mean()))
        for bn in norms]
    if pools:
        handles.append(pools[-1].register_forward_pre_hook(lambda _m, args: features.append(args[0])))
    try:
        with torch.no_grad():
            clean = shadow(x)
            bn_variances = list(variances)
            perturbed = shadow(mixed)
    finally:
        for handle in handles:
            handle.remove()
    if pools:
        clean, perturbed = features
    delta = (clean - perturbed).abs().flatten(1).sum(1).mean()
    if not delta > 0:
        raise Unscorable("the features do not change with the input (e.g. a cell of only "
                         "'none' edges)")
    # a BatchNorm on a constant input (a dead branch, e.g. after a 'none' edge) carries no
    # signal and adds nothing (with Zen-NAS's running variance it would add log √0.9 ≈ -0.05)
    return math.log(float(delta)) + sum(0.5 * math.log(float(v)) for v in bn_variances if v > 0)


def _gaussian_init(net: nn.Module, generator: torch.Generator) -> None:
    """Zen-NAS's initialisation: N(0, 1) conv/linear weights, zero biases, identity BatchNorm."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                module.weight.normal_(generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
