"""The HNAG generator: determinism, connectivity, node roles, stages, presets, bad input."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import networkx as nx
import pytest

from nago_pl.config import compose
from nago_pl.errors import NagoError
from nago_pl.space import DAG, Architecture, GeneratorConfig, assign_stages, sample

THETA = dict(G1_nodes=6, G1_K=4, G1_P=0.5, G2_nodes=4, G2_P=0.4, G3_nodes=5, G3_K=3, G3_P=0.3)


def all_dags(arch: Architecture) -> list[DAG]:
    return [arch.top] + [c.mid for c in arch.cells] + [b.dag for c in arch.cells for b in c.bottoms]


def test_same_theta_and_seed_give_identical_json_whatever_was_sampled_before() -> None:
    first = sample(GeneratorConfig(**THETA), seed=7).to_json()
    for other_seed in range(3):  # sampling other things in between must not matter
        sample(GeneratorConfig(G1_nodes=10, G2_nodes=10, G2_P=0.2), seed=other_seed)
    assert sample(GeneratorConfig(**THETA), seed=7).to_json() == first


def test_json_is_identical_across_processes() -> None:
    code = (
        "import hashlib; from nago_pl.space import GeneratorConfig, sample; "
        f"print(hashlib.sha256(sample(GeneratorConfig(**{THETA!r}), 7).to_json().encode())"
        ".hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = hashlib.sha256(sample(GeneratorConfig(**THETA), 7).to_json().encode()).hexdigest()
    assert out.stdout.strip() == here


def test_different_seeds_give_different_architectures() -> None:
    jsons = {sample(GeneratorConfig(**THETA), seed).to_json() for seed in range(5)}
    assert len(jsons) == 5


def test_cells_get_independent_graphs() -> None:
    arch = sample(GeneratorConfig(**THETA), 0)
    assert len({c.mid for c in arch.cells}) > 1  # upstream NAGO gave every cell the same graph


def test_every_graph_is_connected_and_oriented_low_to_high() -> None:
    config = GeneratorConfig(G1_nodes=10, G2_nodes=10, G2_P=0.2, G3_nodes=8, G3_K=2, G3_P=1.0)
    for seed in range(3):
        for dag in all_dags(sample(config, seed)):
            graph = nx.Graph(list(dag.edges))
            graph.add_nodes_from(range(dag.num_nodes))
            assert nx.is_connected(graph)
            assert all(u < v for u, v in dag.edges)


def test_node_roles_follow_the_edges() -> None:
    dag = DAG(5, ((0, 2), (1, 2), (2, 3), (2, 4)))
    assert dag.inputs == [0, 1]
    assert dag.outputs == [3, 4]
    assert dag.predecessors(2) == [0, 1]
    single = DAG(1, ())
    assert single.inputs == single.outputs == [0]
    arch = sample(GeneratorConfig(**THETA), 3)
    for d in all_dags(arch):
        assert all(not d.predecessors(n) for n in d.inputs)
        assert all(all(u != n for u, _ in d.edges) for n in d.outputs)


@pytest.mark.parametrize(
    ("nodes", "stages"),
    [(3, [0, 1, 2]), (8, [0, 0, 0, 1, 1, 1, 2, 2]), (10, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])],
)
def test_stage_assignment_in_thirds(nodes: int, stages: list[int]) -> None:
    assert assign_stages(nodes, [1, 1, 1]) == stages
    arch = sample(GeneratorConfig(**{**THETA, "G1_nodes": nodes}), 0)
    assert [c.stage for c in arch.cells] == stages
    assert [c.width for c in arch.cells] == [[1.0, 2.0, 4.0][s] for s in stages]


def test_json_round_trip_and_tampering_is_detected(tmp_path) -> None:
    arch = sample(GeneratorConfig(**THETA), 1)
    path = arch.save(tmp_path / "architecture.json")
    assert Architecture.load(path) == arch
    tampered = arch.to_dict()
    tampered["top"]["inputs"] = [1]
    with pytest.raises(NagoError, match="top: inputs"):
        Architecture.from_dict(tampered)
    with pytest.raises(NagoError, match="edge"):
        Architecture.from_dict({**arch.to_dict(), "top": {"num_nodes": 2, "edges": [[1, 0]]}})
    with pytest.raises(NagoError, match="no such file"):
        Architecture.load(tmp_path / "missing.json")


def test_other_families_and_ops() -> None:
    config = GeneratorConfig(**{**THETA, "top_family": "ba", "bottom_family": "er",
                                "ops": ["conv3x3", "conv5x5", "avgpool3x3"]})
    arch = sample(config, 0)
    ops = {op for c in arch.cells for b in c.bottoms for op in b.ops}
    assert ops == {"conv3x3", "conv5x5", "avgpool3x3"}


def test_presets_compose_to_their_shapes() -> None:
    randwire = sample(GeneratorConfig(**compose("train", ["generator=randwire"]).generator), 0)
    assert randwire.top.edges == ((0, 1), (1, 2))
    assert [c.stage for c in randwire.cells] == [0, 1, 2]
    assert all(b.dag.num_nodes == 32 for c in randwire.cells for b in c.bottoms)
    darts = sample(GeneratorConfig(**compose("train", ["generator=darts_like"]).generator), 0)
    assert darts.top.num_nodes == 20
    assert all(darts.top.predecessors(i) == [i - 2, i - 1] for i in range(2, 20))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"G1_nodes": 0}, r"G1_nodes=0: must be an integer in 1\.\.64"),
        ({"G1_nodes": 4.5}, r"G1_nodes=4\.5: must be an integer"),
        ({"G3_P": 1.5}, r"G3_P=1\.5: must be a number in \[0\.0, 1\.0\]"),
        ({"G2_P": "high"}, r"G2_P='high'"),
        ({"top_family": "xx"}, r"top_family='xx'; allowed: ws, er, ba, chain"),
        ({"channel_ratios": [1, 2]}, r"one channel ratio per stage"),
        ({"ops": ["conv7x7"]}, r"allowed: a non-empty list of conv3x3"),
    ],
)
def test_bad_hyper_parameters_name_the_parameter_and_range(override: dict, message: str) -> None:
    with pytest.raises(NagoError, match=message):
        sample(GeneratorConfig(**{**THETA, **override}), 0)


def test_unknown_generator_parameter() -> None:
    with pytest.raises(NagoError, match="unknown generator parameter.*G4_nodes.*allowed"):
        GeneratorConfig.from_mapping({"G4_nodes": 3})


def test_two_node_ws_levels_sample_their_one_connected_graph() -> None:
    # The 2-node ring lattice has no edge: every WS draw was disconnected (10,000 draws, an error).
    arch = sample(GeneratorConfig(G1_nodes=2, G3_nodes=2), 0)
    assert arch.top.edges == ((0, 1),)
    assert all(b.dag.edges == ((0, 1),) for c in arch.cells for b in c.bottoms)


def test_networks_of_more_than_max_ops_op_nodes_are_refused() -> None:
    with pytest.raises(NagoError, match=r"64 x 64 x 64 = 262144 op nodes; at most 4096"):
        GeneratorConfig(G1_nodes=64, G2_nodes=64, G3_nodes=64).validate()
