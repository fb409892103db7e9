"""Width from the parameter budget: the largest multiplier whose exact count fits the limit."""

from __future__ import annotations

from dataclasses import replace

from nago_pl.errors import NagoError
from nago_pl.network.layers import SMALL_IMAGE_LIMIT
from nago_pl.network.model import Network, NetworkSpec
from nago_pl.space.architecture import Architecture, BottomGraph, Cell
from nago_pl.space.graphs import DAG

MULTIPLIER_STEPS = 8
MAX_UNITS = MULTIPLIER_STEPS << 14


def _conv_kernel(op: str) -> int:
    """Weights per (input, output) channel pair of an op's convolution; 0 for a pooling op."""
    return int(op[-3]) * int(op[-1]) if op.startswith("conv") else 0


def _merge_parameters(in_channels: list[int], out_channels: int) -> int:
    """Parameters of :class:`~nago_pl.network.layers.Merge`: 1x1 projections and the gates."""
    projections = sum(c * out_channels for c in in_channels if c != out_channels)
    return projections + (len(in_channels) if len(in_channels) > 1 else 0)


def _predecessor_counts(dag: DAG) -> list[int]:
    counts = [0] * dag.num_nodes
    for _, v in dag.edges:
        counts[v] += 1
    return counts


def _block_parameters(bottom: BottomGraph, in_channels: int, channels: int) -> int:
    """Parameters of one bottom op graph whose input ops read ``in_channels``."""
    total = 0
    for op, preds in zip(bottom.ops, _predecessor_counts(bottom.dag), strict=True):
        merged = channels if preds else in_channels
        kernel = _conv_kernel(op)
        if kernel:
            body = kernel * merged * channels
        else:  # average pooling, plus a 1x1 projection when the width changes
            body = 0 if merged == channels else merged * channels
        total += (preds if preds > 1 else 0) + body + 2 * channels  # gates, op, batch norm
    return total


def _cell_parameters(cell: Cell, in_channels: list[int], channels: int) -> int:
    """Parameters of :class:`~nago_pl.network.model.CellModule`."""
    cell_in = in_channels[-1]
    total = _merge_parameters(in_channels, cell_in)
    for bottom, preds in zip(cell.bottoms, _predecessor_counts(cell.mid), strict=True):
        total += preds if preds > 1 else 0  # the mid node's merge of equal-width inputs
        total += _block_parameters(bottom, channels if preds else cell_in, channels)
    return total


def count_parameters(arch: Architecture, spec: NetworkSpec) -> int:
    """Exact parameter count of ``Network(arch, spec)``, computed from the widths alone (no module
    is built; a test checks it against the meta-device count over many random architectures)."""
    widths = [spec.channels(cell.width) for cell in arch.cells]
    stem = widths[0]
    if spec.image_size < SMALL_IMAGE_LIMIT:  # two 3x3 convs, each with batch norm
        total = 9 * spec.in_channels * stem + 9 * stem * stem + 4 * stem
    else:  # two separable stride-2 convs (depthwise 3x3, pointwise 1x1, batch norm)
        total = 9 * spec.in_channels + spec.in_channels * stem + 9 * stem + stem * stem + 4 * stem
    preds: list[list[int]] = [[] for _ in arch.cells]
    for u, v in arch.top.edges:
        preds[v].append(u)
    for i, cell in enumerate(arch.cells):
        in_channels = [widths[p] for p in sorted(preds[i])] or [stem]
        total += _cell_parameters(cell, in_channels, widths[i])
    out_widths = [widths[o] for o in arch.top.outputs]
    out_width = max(out_widths)
    total += sum(w * out_width for w in out_widths if w != out_width)
    head = spec.head_channels
    return total + out_width * head + 2 * head + head * spec.num_classes + spec.num_classes


def choose_multiplier(arch: Architecture, spec: NetworkSpec, param_limit: int) -> float:
    """The largest channel multiplier (a multiple of 1/MULTIPLIER_STEPS, at most
    MAX_UNITS/MULTIPLIER_STEPS) whose network has at most ``param_limit`` parameters.

    Each stage's width is round(ratio x multiplier), so fractional multipliers widen the stages
    one at a time and the count tracks the limit closely. The count grows with the multiplier,
    so a bisection over the width units finds it in at most log2(MAX_UNITS) exact counts,
    whatever the channel ratios.
    """

    def count(units: int) -> int:
        return count_parameters(arch, replace(spec, multiplier=units / MULTIPLIER_STEPS))

    smallest = count(1)
    if smallest > param_limit:
        raise NagoError(
            f"network.param_limit={param_limit} is below this architecture's smallest network "
            f"({smallest} parameters at width 1); raise the limit"
        )
    if count(MAX_UNITS) <= param_limit:
        return MAX_UNITS / MULTIPLIER_STEPS
    fits, too_big = 1, MAX_UNITS  # count(fits) <= param_limit < count(too_big)
    while too_big - fits > 1:
        middle = (fits + too_big) // 2
        if count(middle) <= param_limit:
            fits = middle
        else:
            too_big = middle
    return fits / MULTIPLIER_STEPS


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
