"""Batched, device-side augmentation and normalisation of uint8 image batches."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def random_crop(x: Tensor, padding: int) -> Tensor:
    """Zero-pad ``x`` ``[N, C, H, W]`` by ``padding`` and take one random H x W crop per sample."""
    n, c, h, w = x.shape
    padded = nn.functional.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)  # [N, H]
    cols = dx[:, None] + torch.arange(w, device=x.device)  # [N, W]
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * padding))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def random_hflip(x: Tensor) -> Tensor:
    """Mirror each sample of ``x`` ``[N, C, H, W]`` left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: Tensor, size: int) -> Tensor:
    """Zero one ``size`` x ``size`` square per sample, centred uniformly, clipped at the border."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1), device=x.device)
    cx = torch.randint(0, w, (n, 1), device=x.device)
    top, left = cy - size // 2, cx - size // 2
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows >= top) & (rows < top + size)  # [N, H]
    in_cols = (cols >= left) & (cols < left + size)  # [N, W]
    mask = in_rows[:, :, None] & in_cols[:, None, :]
    return x.masked_fill(mask[:, None], 0.0)


class BatchTransform(nn.Module):
    """uint8 batch ``[N, C, H, W]`` -> normalised float batch, with optional training augmentation.

    Training order: random crop with zero padding and horizontal flip on the raw pixels,
    then ``(x / 255 - mean) / std``, then cutout (zeroes in normalised space, as in the
    original cutout). Randomness comes from the global torch RNG of the batch's device.
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        crop_padding: int = 0,
        hflip: bool = False,
        cutout: int = 0,
    ) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.cutout = cutout

    def forward(self, x: Tensor, train: bool) -> Tensor:
        """Return the float32 normalised batch; augment only when ``train`` is true."""
        if x.dtype != torch.uint8:
            raise TypeError(f"BatchTransform expects a uint8 batch, got {x.dtype}")
        if self.mean.device != x.device:
            self.to(x.device)
        if train and self.crop_padding > 0:
            x = random_crop(x, self.crop_padding)
        if train and self.hflip:
            x = random_hflip(x)
        out = x.to(torch.float32).div_(255.0).sub_(self.mean).div_(self.std)
        if train and self.cutout > 0:
            out = cutout(out, self.cutout)
        return out

    def extra_repr(self) -> str:
        return f"crop_padding={self.crop_padding}, hflip={self.hflip}, cutout={self.cutout}"
