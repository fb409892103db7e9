"""The network builder: exact width from the budget, shapes for every image size, merges."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch

from nago_pl.errors import NagoError
from nago_pl.network import (
    NetworkSpec,
    build_network,
    choose_multiplier,
    count_flops,
    count_parameters,
)
from nago_pl.network.layers import Merge, stage_resolution
from nago_pl.space import GeneratorConfig, sample

PAPER_BEST = GeneratorConfig()  # WS(8,5,0.6) / ER(1,0.7) / WS(5,4,0.2)


def random_theta(rng: random.Random) -> GeneratorConfig:
    return GeneratorConfig(
        G1_nodes=rng.randint(3, 10), G1_K=rng.randint(2, 5), G1_P=rng.uniform(0.1, 1.0),
        G2_nodes=rng.randint(1, 10), G2_P=rng.uniform(0.2, 1.0),
        G3_nodes=rng.randint(3, 10), G3_K=rng.randint(2, 5), G3_P=rng.uniform(0.1, 1.0),
    )


def test_width_fits_the_budget_closely_over_30_random_generators() -> None:
    rng = random.Random(2024)
    limit = 4_000_000
    spec = NetworkSpec(in_channels=3, num_classes=10, image_size=32, multiplier=1.0)
    for i in range(30):
        arch = sample(random_theta(rng), i)
        multiplier = choose_multiplier(arch, spec, limit)
        count = count_parameters(arch, replace(spec, multiplier=multiplier))
        assert 0.9 * limit <= count <= limit, (i, multiplier, count)
        # the next width step would break the limit: it is the largest that fits
        assert count_parameters(arch, replace(spec, multiplier=multiplier + 0.125)) > limit


def test_meta_count_equals_the_real_network() -> None:
    arch = sample(PAPER_BEST, 0)
    net = build_network(arch, in_channels=3, num_classes=10, image_size=32, param_limit=4_000_000)
    real = sum(p.numel() for p in net.parameters())
    assert real == count_parameters(arch, net.spec)
    assert 0.95 * 4_000_000 <= real <= 4_000_000
    # the reference estimate lands at multiplier 44 and 4.2M, over the limit
    assert net.spec.channels(1.0) in (43, 44) and net.spec.channels(4.0) <= 4 * 44


@pytest.mark.parametrize(("size", "channels"), [(8, 1), (28, 1), (32, 3), (32, 1), (224, 3)])
def test_forward_shapes(size: int, channels: int) -> None:
    arch = sample(GeneratorConfig(G1_nodes=4, G2_nodes=2, G3_nodes=3), 0)
    net = build_network(arch, in_channels=channels, num_classes=7, image_size=size,
                        param_limit=150_000, head_channels=64)
    out = net(torch.randn(2, channels, size, size))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_stage_resolutions() -> None:
    assert [stage_resolution(32, s) for s in range(3)] == [32, 16, 8]
    assert [stage_resolution(224, s) for s in range(3)] == [56, 28, 14]
    assert [stage_resolution(8, s) for s in range(3)] == [8, 4, 2]


def test_outputs_are_selected_by_node_id() -> None:
    arch = sample(GeneratorConfig(G1_nodes=8, G1_K=2, G1_P=1.0), 5)
    net = build_network(arch, in_channels=3, num_classes=10, image_size=32, multiplier=2)
    assert net.output_ids == arch.top.outputs
    assert net.predecessors == [arch.top.predecessors(i) for i in range(8)]


def test_merge_is_a_sigmoid_weighted_sum_with_projection() -> None:
    merge = Merge([4, 8], 4)
    a, b = torch.randn(1, 4, 3, 3), torch.randn(1, 8, 3, 3)
    gate = torch.sigmoid(torch.tensor(1.0))
    expected = gate * a + gate * merge.projections[1](b)
    assert torch.allclose(merge([a, b]), expected)
    assert isinstance(merge.projections[0], torch.nn.Identity)
    single = Merge([8], 4)
    assert single.weights is None and single([b]).shape == (1, 4, 3, 3)


def test_flops_scale_with_resolution() -> None:
    arch = sample(PAPER_BEST, 0)
    small = build_network(arch, in_channels=3, num_classes=10, image_size=16, multiplier=8)
    large = build_network(arch, in_channels=3, num_classes=10, image_size=32, multiplier=8)
    ratio = count_flops(large) / count_flops(small)
    assert 3.5 < ratio < 4.1  # conv cost ~ pixels; the tiny linear head does not scale


def test_budget_too_small_is_a_clear_error() -> None:
    arch = sample(PAPER_BEST, 0)
    with pytest.raises(NagoError, match=r"param_limit=1000 is below .* raise the limit"):
        build_network(arch, in_channels=3, num_classes=10, image_size=32, param_limit=1000)
    with pytest.raises(NagoError, match="image_size=4"):
        build_network(arch, in_channels=3, num_classes=10, image_size=4, param_limit=10**6)
    with pytest.raises(NagoError, match="exactly one of"):
        build_network(arch, in_channels=3, num_classes=10, image_size=32)


def test_training_memory_counts_weights_buffers_and_activations() -> None:
    from nago_pl.network import measure_latency_ms, training_memory_mb

    arch = sample(PAPER_BEST, 0)
    net = build_network(arch, in_channels=3, num_classes=10, image_size=32, multiplier=4)
    weights_mb = sum(p.numel() * 4 for p in net.parameters()) / 2**20
    small, large = training_memory_mb(net, 8), training_memory_mb(net, 32)
    assert small > 3 * weights_mb  # weights + grads + momentum + activations
    activations_small, activations_large = small - 3 * weights_mb, large - 3 * weights_mb
    assert 3.5 < activations_large / activations_small < 4.5  # activations scale with the batch
    assert training_memory_mb(net, 8, optimizer_states=2) - small == pytest.approx(weights_mb)
    assert net.training  # the measurement ran on a copy
    assert measure_latency_ms(net, repeats=3) > 0 and net.training


def test_optimizer_states() -> None:
    from callbacks.model_stats import optimizer_states

    params = [torch.nn.Parameter(torch.zeros(1))]
    assert optimizer_states(torch.optim.SGD(params, lr=0.1, momentum=0.9)) == 1
    assert optimizer_states(torch.optim.SGD(params, lr=0.1)) == 0
    assert optimizer_states(torch.optim.AdamW(params)) == 2


def meta_count(arch, spec: NetworkSpec) -> int:
    """The reference count: the network built on the meta device (nothing allocated)."""
    from nago_pl.network import Network

    with torch.device("meta"):
        net = Network(arch, spec, initialize=False)
    return sum(p.numel() for p in net.parameters())


def test_analytic_count_equals_the_meta_device_count_over_300_random_architectures() -> None:
    from nago_pl.space.architecture import OPS
    from nago_pl.space.graphs import FAMILIES

    rng = random.Random(7)
    for i in range(300):
        stages = rng.randint(1, 4)
        theta = random_theta(rng)
        theta.G1_nodes, theta.G2_nodes, theta.G3_nodes = (rng.randint(1, 7) for _ in range(3))
        theta.top_family, theta.mid_family, theta.bottom_family = (
            rng.choice(FAMILIES) for _ in range(3))
        theta.stage_ratios = [rng.choice([0.5, 1, 2, 3]) for _ in range(stages)]
        theta.channel_ratios = [rng.choice([0.125, 0.3, 1, 1.5, 2, 4]) for _ in range(stages)]
        theta.ops = rng.sample(OPS, rng.randint(1, len(OPS)))
        arch = sample(theta, i)
        spec = NetworkSpec(in_channels=rng.choice([1, 3, 4]), num_classes=rng.randint(2, 100),
                           image_size=rng.choice([8, 28, 32, 40, 64]),
                           multiplier=rng.randint(1, 200) / 8,
                           head_channels=rng.choice([16, 64, 1280]))
        assert count_parameters(arch, spec) == meta_count(arch, spec), (i, theta, spec)


def test_fractional_channel_ratios_build_with_a_bounded_number_of_counts(monkeypatch) -> None:
    # One stage of ratio 0.125 used to walk the width down one unit at a time from 2**17 units.
    from nago_pl.network import budget

    calls = []

    def counted(arch, spec: NetworkSpec) -> int:
        calls.append(spec.multiplier)
        assert len(calls) <= 40, "the width search is not logarithmic"
        return count_parameters(arch, spec)

    monkeypatch.setattr(budget, "count_parameters", counted)
    arch = sample(GeneratorConfig(stage_ratios=[1.0], channel_ratios=[0.125]), 0)
    net = build_network(arch, in_channels=1, num_classes=10, image_size=8, param_limit=100_000)
    count = sum(p.numel() for p in net.parameters())
    assert 0.9 * 100_000 <= count <= 100_000
    assert count_parameters(arch, replace(net.spec, multiplier=net.spec.multiplier + 0.125)) > 100_000
