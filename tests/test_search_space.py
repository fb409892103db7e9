"""Search space: validation, unit-cube encoding, integer bins, sampling."""

import math

import pytest
import torch

from nago_pl.errors import NagoError
from nago_pl.search.space import NAGO_SPACE, Param, SearchSpace


@pytest.fixture
def nago() -> SearchSpace:
    return SearchSpace.from_config(NAGO_SPACE)


def test_nago_space_shape(nago: SearchSpace) -> None:
    assert nago.dim == 8
    assert nago.names == list(NAGO_SPACE)
    assert nago.to_config()["G2_nodes"] == {"type": "int", "low": 1, "high": 10, "log": False}
    assert SearchSpace.from_config(nago.to_config()).to_config() == nago.to_config()


def test_random_unit_points_decode_to_valid_configs(nago: SearchSpace) -> None:
    X = torch.rand(5000, nago.dim, generator=torch.Generator().manual_seed(0),
                   dtype=torch.float64)
    X[:10] = 0.0
    X[10:20] = 1.0
    for config in nago.from_unit(X):
        for p in nago.params:
            v = config[p.name]
            assert p.low <= v <= p.high
            assert type(v) is (int if p.kind == "int" else float)


def test_reencoding_lands_in_bin_centre_and_round_trips(nago: SearchSpace) -> None:
    X = torch.rand(500, nago.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    configs = nago.from_unit(X)
    U = nago.to_unit(configs)
    for j, p in enumerate(nago.params):
        if p.kind == "int":
            n = p.n_values
            centre = (torch.floor(X[:, j] * n).clamp(max=n - 1) + 0.5) / n
            assert torch.allclose(U[:, j], centre)
        else:
            assert torch.allclose(U[:, j], X[:, j])
    for again, config in zip(nago.from_unit(U), configs, strict=True):  # same values back
        assert again == pytest.approx(config, rel=1e-12)
        assert all(again[p.name] == config[p.name] for p in nago.params if p.kind == "int")


def test_every_integer_reachable_with_equal_share(nago: SearchSpace) -> None:
    grid = torch.linspace(0, 1, 100_001, dtype=torch.float64)
    for p in nago.params:
        if p.kind != "int":
            continue
        values = torch.tensor(p.decode(grid))
        counts = torch.bincount(values - p.low)
        assert counts.numel() == p.n_values and (counts > 0).all()
        shares = counts / grid.numel()
        assert torch.allclose(shares, torch.full_like(shares, 1 / p.n_values), atol=1e-4)


def test_log_int_bins() -> None:
    p = Param("width", "int", 1, 100, log=True)
    grid = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    assert set(p.decode(grid)) == set(range(1, 101))
    edges = p.bin_edges()
    widths = edges[1:] - edges[:-1]
    assert (widths[1:] < widths[:-1]).all()  # log scale: small integers own more of [0, 1]
    for k in (1, 2, 10, 57, 100):
        u = p.encode(k)
        assert u == pytest.approx(float(edges[k - 1] + edges[k]) / 2)
        assert p.decode(torch.tensor([u])) == [k]


@pytest.mark.parametrize("log", [False, True])
def test_int_bins_agree_with_their_edges_and_scale_to_billions(log: bool) -> None:
    """Decoding finds the bin whose edges hold u (checked against a search of the edges, at
    the edges themselves too), and a range of billions decodes without listing its bins."""
    p = Param("n", "int", 1, 5000, log=log)
    edges = p.bin_edges()
    u = torch.cat([torch.rand(50_000, dtype=torch.float64), edges,
                   edges.nextafter(torch.tensor(-1.0, dtype=torch.float64)).clamp(0, 1)])
    expected = (torch.searchsorted(edges, u, right=True) - 1).clamp(0, p.n_values - 1) + 1
    assert p.decode(u) == expected.tolist()
    huge = Param("n", "int", 1, 4_000_000_000, log=log)
    for k in (1, 2, 123_456_789, 4_000_000_000):
        assert huge.decode(torch.tensor([huge.encode(k)], dtype=torch.float64)) == [k]


def test_log_float_round_trip() -> None:
    space = SearchSpace.from_config({"lr": {"type": "float", "low": 1e-4, "high": 1e-1,
                                            "log": True}})
    assert space.to_unit([{"lr": 1e-4}, {"lr": 1e-2}, {"lr": 1e-1}]).flatten().tolist() == \
        pytest.approx([0.0, 2 / 3, 1.0])
    (config,) = space.from_unit(torch.tensor([[0.5]], dtype=torch.float64))
    assert config["lr"] == pytest.approx(math.sqrt(1e-4 * 1e-1))


def test_fixed_values_merged() -> None:
    space = SearchSpace.from_config({"a": {"type": "int", "low": 0, "high": 3},
                                     "family": {"value": "ws"}})
    assert space.dim == 1 and space.fixed == {"family": "ws"}
    assert space.from_unit(torch.tensor([[0.99]])) == [{"a": 3, "family": "ws"}]
    assert space.uniform(3, seed=0)[0]["family"] == "ws"


def test_sampling_is_seeded(nago: SearchSpace) -> None:
    assert nago.sobol(8, seed=3) == nago.sobol(8, seed=3)
    assert nago.sobol(8, seed=3)[:5] == nago.sobol(5, seed=3)
    assert nago.sobol(8, seed=3) != nago.sobol(8, seed=4)
    assert nago.uniform(8, seed=3) == nago.uniform(8, seed=3)
    assert nago.uniform(8, seed=3) != nago.uniform(8, seed=4)
    assert len({c["G1_nodes"] for c in nago.sobol(64, seed=0)}) == 8  # Sobol covers every bin


@pytest.mark.parametrize(("config", "fragment"), [
    ({"a": {"type": "int", "low": 5, "high": 5}}, "low must be < high"),
    ({"a": {"type": "float", "low": 1.0, "high": 0.5}}, "low must be < high"),
    ({"a": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "log scale needs low > 0"),
    ({"a": {"type": "int", "low": 1.5, "high": 4}}, "integral bounds"),
    ({"a": {"type": "int", "low": 1, "high": 4, "step": 2}}, "unknown key(s) ['step']"),
    ({"a": {"type": "int", "low": 1}}, "missing key(s) ['high']"),
    ({"a": {"type": "categorical", "low": 1, "high": 4}}, "type must be 'int', 'float' or 'choice'"),
    ({"a": {"type": "float", "low": "0", "high": 1}}, "finite numbers"),
    ({"a": {"type": "float", "low": True, "high": 3}}, "finite numbers"),
    ({"a": {"type": "float", "low": 0, "high": 1, "log": "yes"}}, "log must be true or false"),
    ({"a": {"value": 3, "low": 1}}, "only 'value'"),
    ({"a": [1, 2]}, "expected a mapping"),
    ({"a": {"value": 3}}, "at least one searched parameter"),
    ([1, 2], "expected a mapping of parameter names"),
])
def test_bad_configs(config: object, fragment: str) -> None:
    with pytest.raises(NagoError) as err:
        SearchSpace.from_config(config)  # type: ignore[arg-type]
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_configs_to_encode(nago: SearchSpace) -> None:
    good = nago.sobol(1, seed=0)[0]
    with pytest.raises(NagoError, match="outside"):
        nago.to_unit([{**good, "G1_nodes": 11}])
    with pytest.raises(NagoError, match="is an int"):
        nago.to_unit([{**good, "G1_nodes": 4.5}])
    with pytest.raises(NagoError, match="lacks searched parameter"):
        nago.to_unit([{k: v for k, v in good.items() if k != "G3_P"}])
    assert nago.to_unit([{**good, "G1_nodes": 4.0}])[0, 0] == pytest.approx(1.5 / 8)
