"""SNAS (and a DARTS control) as a LightningModule: supernet weights θ and architecture
logits α trained together."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nago_pl.errors import NagoError
from nago_pl.oneshot import METHODS
from nago_pl.oneshot.supernet import CellCost, Supernet, derived_cell, one_hot
from nago_pl.space.nb201 import Nb201Cell

#: How τ moves from ``tau_start`` to ``tau_end`` over the epochs.
TAU_SCHEDULES = ("linear", "exponential")


@dataclass(frozen=True)
class OneShotSettings:
    """The search's hyper-parameters (defaults: SNAS's shipped settings, METHODS.md)."""

    method: str = "snas"
    epochs: int = 150
    tau_start: float = 1.0
    tau_end: float = 0.03
    tau_schedule: str = "linear"
    cost_weight: float = 1.5e-3
    cost: str = "flops"
    weight_lr: float = 0.025
    weight_lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    alpha_lr: float = 3e-4
    alpha_beta1: float = 0.5
    alpha_weight_decay: float = 1e-3

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise NagoError(f"one-shot method {self.method!r}: allowed: {', '.join(METHODS)}")
        if self.tau_schedule not in TAU_SCHEDULES:
            raise NagoError(f"search.options.tau_schedule={self.tau_schedule!r}: allowed: "
                            f"{', '.join(TAU_SCHEDULES)}")
        for name in ("tau_start", "tau_end", "weight_lr", "alpha_lr"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise NagoError(f"search.options.{name}={value!r}: expected a number > 0")
        if self.tau_end > self.tau_start:
            raise NagoError(f"search.options.tau_end={self.tau_end} is above tau_start="
                            f"{self.tau_start}: τ anneals downwards")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise NagoError(f"search.options.epochs={self.epochs!r}: expected an integer >= 1")
        if not (math.isfinite(self.cost_weight) and self.cost_weight >= 0):
            raise NagoError(f"search.options.cost_weight={self.cost_weight!r}: expected a "
                            "number >= 0")

    def tau(self, epoch: int) -> float:
        """τ in ``epoch`` (0-based): ``tau_start`` in the first, ``tau_end`` in the last."""
        progress = epoch / (self.epochs - 1) if self.epochs > 1 else 1.0
        progress = min(max(progress, 0.0), 1.0)
        if self.tau_schedule == "linear":
            return self.tau_start + (self.tau_end - self.tau_start) * progress
        return self.tau_start * (self.tau_end / self.tau_start) ** progress


def relaxed_sample(logits: Tensor, tau: float, generator: torch.Generator | None = None
                   ) -> Tensor:
    """Per row, softmax((logits + Gumbel noise) / τ): a relaxed one-hot sample that becomes
    one-hot as τ → 0 (entries of -inf logits stay exactly 0)."""
    uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype,
                         device=logits.device if generator is None else "cpu").to(logits.device)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
    return F.softmax((logits + gumbel) / tau, dim=-1)


class OneShotSearch(L.LightningModule):
    """The supernet's θ (SGD, cosine learning rate, gradient clipping) and the architecture
    logits α (Adam), one row per edge, excluded ops masked out.

    * ``snas``: per batch one relaxed sample Z ~ Gumbel-softmax(α, τ); loss = cross-entropy +
      ``cost_weight`` · log(cost of the sampled cell); one backward pass updates θ and α.
    * ``darts``: softmax(α) mixes the ops; α steps on a batch of the held-out half (with the
      same cost term), then θ on a training batch (first-order DARTS).

    Validation runs the derived (argmax) cell inside the supernet: ``val/acc``, ``val/loss``.
    """

    def __init__(self, supernet: Supernet, mask: Tensor, cost: CellCost,
                 settings: OneShotSettings) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.supernet = supernet
        self.settings = settings
        self.cost = cost
        self.register_buffer("mask", mask.clone())
        self.alpha = nn.Parameter(1e-3 * torch.randn(mask.shape))
        self.tau = settings.tau(0)

    # ------------------------------------------------------------------ the distribution
    def logits(self) -> Tensor:
        """α with excluded ops at -inf."""
        return self.alpha.masked_fill(~self.mask, float("-inf"))

    def probabilities(self) -> Tensor:
        """softmax(α) per edge (excluded ops: 0)."""
        return F.softmax(self.logits(), dim=-1)

    def entropy(self) -> float:
        """Mean entropy (nats) of the per-edge op distributions."""
        p = self.probabilities().detach()
        return float(-(p * torch.log(p.clamp_min(1e-30))).sum(dim=-1).mean())

    def cell(self) -> Nb201Cell:
        """The derived cell: each edge's most probable op."""
        return derived_cell(self.probabilities().detach())

    def penalty(self, weights: Tensor) -> Tensor:
        """``cost_weight`` · log(cost of the cell weighted by ``weights``)."""
        return self.settings.cost_weight * torch.log(self.cost(weights))

    # ------------------------------------------------------------------ training
    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return self.supernet(x, weights)

    def on_train_epoch_start(self) -> None:
        self.tau = self.settings.tau(self.current_epoch)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        weight_opt, alpha_opt = self.optimizers()
        x, y = batch["train"]
        if self.settings.method == "snas":
            weights = relaxed_sample(self.logits(), self.tau)
            ce = F.cross_entropy(self(x, weights), y)
            loss = ce + self.penalty(weights)
            self._check_finite(loss)
            weight_opt.zero_grad()
            alpha_opt.zero_grad()
            self.manual_backward(loss)
            self.clip_gradients(weight_opt, self.settings.grad_clip, "norm")
            weight_opt.step()
            alpha_opt.step()
        else:
            xa, ya = batch["arch"]
            weights = self.probabilities()
            arch_loss = F.cross_entropy(self(xa, weights), ya) + self.penalty(weights)
            self._check_finite(arch_loss)
            alpha_opt.zero_grad()
            self.manual_backward(arch_loss)
            alpha_opt.step()
            ce = F.cross_entropy(self(x, self.probabilities().detach()), y)
            loss = ce
            self._check_finite(loss)
            weight_opt.zero_grad()
            self.manual_backward(loss)
            self.clip_gradients(weight_opt, self.settings.grad_clip, "norm")
            weight_opt.step()
        self.log("train/loss", ce, on_step=True, on_epoch=True, prog_bar=True,
                 batch_size=y.shape[0])
        return loss

    def _check_finite(self, loss: Tensor) -> None:
        if not torch.isfinite(loss):
            raise NagoError(f"one-shot search diverged: the loss is {float(loss.detach())} in epoch "
                            f"{self.current_epoch + 1} (a lower search.options.weight_lr or "
                            "alpha_lr may help)")

    def on_train_epoch_end(self) -> None:
        self.lr_schedulers().step()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x, one_hot(self.cell()).to(x))
        self.log("val/loss", F.cross_entropy(logits, y), batch_size=y.shape[0])
        self.log("val/acc", (logits.argmax(dim=1) == y).float().mean(), prog_bar=True,
                 batch_size=y.shape[0])

    def configure_optimizers(self):  # noqa: ANN201 (Lightning accepts several return shapes)
        s = self.settings
        weight_opt = torch.optim.SGD(self.supernet.parameters(), lr=s.weight_lr,
                                     momentum=s.momentum, weight_decay=s.weight_decay)
        alpha_opt = torch.optim.Adam([self.alpha], lr=s.alpha_lr, betas=(s.alpha_beta1, 0.999),
                                     weight_decay=s.alpha_weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(weight_opt, s.epochs,
                                                              eta_min=s.weight_lr_min)
        return [weight_opt, alpha_opt], [schedule]
