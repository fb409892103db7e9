"""Building blocks of a generated network: merge, op node, stems and head (NAGO.md §2)."""

from __future__ import annotations

import torch
from torch import nn

SMALL_IMAGE_LIMIT = 40  # images smaller than this get the stride-1 stem


class Merge(nn.Module):
    """Sum of incoming tensors, each scaled by sigmoid(w) (w initialised to 1) when there are
    several; a tensor whose width differs from ``out_channels`` first goes through a 1x1 conv."""

    def __init__(self, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        self.projections = nn.ModuleList(
            nn.Identity() if c == out_channels else nn.Conv2d(c, out_channels, 1, bias=False)
            for c in in_channels
        )
        self.weights = nn.Parameter(torch.ones(len(in_channels))) if len(in_channels) > 1 else None

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if self.weights is None:
            return self.projections[0](inputs[0])
        gates = torch.sigmoid(self.weights)
        out = gates[0] * self.projections[0](inputs[0])
        for i in range(1, len(inputs)):
            out = out + gates[i] * self.projections[i](inputs[i])
        return out


def _op(op: str, in_channels: int, out_channels: int) -> nn.Module:
    kind, size = op[:-3], op[-3:]
    kh, kw = int(size[0]), int(size[2])
    if kind == "conv":
        return nn.Conv2d(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2), bias=False)
    pool = nn.AvgPool2d((kh, kw), stride=1, padding=(kh // 2, kw // 2), count_include_pad=False)
    if in_channels == out_channels:
        return pool
    return nn.Sequential(pool, nn.Conv2d(in_channels, out_channels, 1, bias=False))


class OpNode(nn.Module):
    """A bottom-level node: merge its inputs -> ReLU -> op (stride 1, same padding) -> BN."""

    def __init__(self, op: str, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        merged = in_channels[-1]  # the width of the highest-labelled predecessor
        self.merge = Merge(in_channels, merged)
        self.body = nn.Sequential(nn.ReLU(), _op(op, merged, out_channels),
                                  nn.BatchNorm2d(out_channels))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.body(self.merge(inputs))


def make_stem(in_channels: int, out_channels: int, image_size: int) -> nn.Sequential:
    """Small images: two stride-1 3x3 convs; large ones: two stride-2 separable convs (x4 down)."""
    if image_size < SMALL_IMAGE_LIMIT:
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def separable(c_in: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_in, 3, stride=2, padding=1, groups=c_in, bias=False),
            nn.Conv2d(c_in, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]

    return nn.Sequential(*separable(in_channels), nn.ReLU(), *separable(out_channels))


def stage_resolution(image_size: int, stage: int) -> int:
    """Feature-map side of a stage: 32 px -> 32/16/8, 224 px -> 56/28/14."""
    base = image_size if image_size < SMALL_IMAGE_LIMIT else image_size // 4
    return max(1, base // 2**stage)


def make_head(in_channels: int, head_channels: int, num_classes: int, dropout: float) -> nn.Module:
    """ReLU -> 1x1 conv -> BN -> ReLU -> global average pool -> dropout -> linear."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(in_channels, head_channels, 1, bias=False),
        nn.BatchNorm2d(head_channels),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(head_channels, num_classes),
    )
