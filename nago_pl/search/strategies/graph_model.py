"""A GRAN-style autoregressive model of DAGs with labelled edges, plus graph-level values.

A graph on ``num_nodes`` nodes is built one node at a time. At step ``t`` a gated
message-passing GNN runs over the graph built so far plus node ``t`` joined to its *candidate*
edges (the edges ``s -> t``, ``s < t``, that the layout has), and every candidate edge gets a
label (an operation; the ``none`` label means no edge). The labels of one step follow a mixture
of ``mixtures`` products of categoricals whose weights the step shares (GRAN's mixture of
Bernoullis, for several labels). Edges always run low -> high, so every sample is acyclic.
After the last node, *tail* values (searched values that are not edges) follow one more mixture,
conditioned on the finished graph's embedding.

Teacher forcing batches every step of every training graph into one GNN call, and sampling
draws a batch of graphs step by step, so a small model trains in a fraction of a second on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

#: Edge-feature ids: no edge, a candidate edge of the current step, then one id per label.
NO_EDGE, CANDIDATE, FIRST_LABEL = 0, 1, 2


@dataclass(frozen=True)
class Layout:
    """What the model generates: ``edges[i] = (source, target)`` with ``edge_labels`` labels
    (label ``none_label``, if not None, is no edge), then one value of ``tail_sizes[j]``
    categories per tail position. Tokens: the edge labels in edge order, then the tail values."""

    num_nodes: int
    edges: tuple[tuple[int, int], ...]
    edge_labels: int
    none_label: int | None
    tail_sizes: tuple[int, ...]

    @property
    def steps(self) -> list[int]:
        """Nodes that have candidate edges, in generation order."""
        return sorted({v for _, v in self.edges})


class TeacherInputs(NamedTuple):
    """Training graphs as tokens, and their partial graphs at every step (stacked step by step:
    edge-feature ids and live nodes) and as finished graphs, for the tail."""

    tokens: Tensor
    step_features: Tensor | None
    step_alive: Tensor | None
    tail_features: Tensor | None


class GraphModel(nn.Module):
    """The generator: log-likelihood of token batches and batched sampling."""

    def __init__(self, layout: Layout, hidden: int = 24, layers: int = 3,
                 mixtures: int = 5) -> None:
        super().__init__()
        self.layout = layout
        self.layers = layers
        self.mixtures = mixtures
        n = max(layout.num_nodes, 1)
        self.position = nn.Embedding(n, hidden)
        self.edge_feature = nn.Embedding(FIRST_LABEL + max(layout.edge_labels, 1), hidden)
        self.direction = nn.Embedding(2, hidden)
        self.message = nn.ModuleList(nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(),
                                                   nn.Linear(hidden, hidden))
                                     for _ in range(layers))
        self.gate = nn.ModuleList(nn.Linear(2 * hidden, 1) for _ in range(layers))
        self.update = nn.GRUCell(hidden, hidden)
        self.edge_head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(),
                                       nn.Linear(hidden, mixtures * max(layout.edge_labels, 1)))
        self.edge_mix = nn.Linear(hidden, mixtures)
        self.empty_graph = nn.Parameter(torch.zeros(hidden))
        tail_total = sum(layout.tail_sizes)
        self.tail_head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(),
                                       nn.Linear(hidden, mixtures * max(tail_total, 1)))
        self.tail_mix = nn.Linear(hidden, mixtures)
        steps = layout.steps
        self.register_buffer("edge_step", torch.tensor([steps.index(v) for _, v in layout.edges],
                                                       dtype=torch.long), persistent=False)
        self.register_buffer("edge_source", torch.tensor([u for u, _ in layout.edges],
                                                         dtype=torch.long), persistent=False)
        self.register_buffer("edge_target", torch.tensor([v for _, v in layout.edges],
                                                         dtype=torch.long), persistent=False)
        self.register_buffer("step_edges", torch.tensor(
            [sum(v == node for _, v in layout.edges) for node in steps], dtype=torch.float32),
            persistent=False)

    # ------------------------------------------------------------------ the GNN
    def propagate(self, features: Tensor, alive: Tensor) -> Tensor:
        """Node states ``G x n x h`` after message passing over edge-feature ids ``features``
        (``G x n x n``, entry ``[u, v]`` for the edge ``u -> v``, ``u < v``) on the nodes
        ``alive`` (``G x n``, bool)."""
        G, n, _ = features.shape
        both = features + features.transpose(1, 2)  # messages flow both ways
        connected = (both != NO_EDGE).unsqueeze(-1).to(torch.float32)
        forward = torch.ones(n, n, dtype=torch.long).triu(1)  # [u, v], u < v: a message forward
        edge = self.edge_feature(both) + self.direction(forward)
        h = self.position.weight[:n].expand(G, n, -1) * alive.unsqueeze(-1)
        for layer in range(self.layers):
            pair = torch.cat([h.unsqueeze(2) - h.unsqueeze(1), edge], dim=-1)  # [G, u, v, 2h]
            msg = self.message[layer](pair) * torch.sigmoid(self.gate[layer](pair)) * connected
            incoming = msg.sum(dim=1)  # into v
            h = self.update(incoming.reshape(G * n, -1), h.reshape(G * n, -1)).reshape(G, n, -1)
            h = h * alive.unsqueeze(-1)
        return h

    def _edge_logits(self, h: Tensor, node: int,
                     sources: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Per-mixture label log-probabilities ``G x k x e x L`` of the candidate edges
        ``sources -> node`` and the mixture log-weights ``G x k``, from node states ``h``."""
        diff = h[:, list(sources)] - h[:, node:node + 1]  # [G, e, h]
        L = self.layout.edge_labels
        logits = self.edge_head(diff).reshape(diff.shape[0], len(sources), self.mixtures, L)
        mix = self.edge_mix(diff.mean(dim=1))
        return logits.transpose(1, 2).log_softmax(-1), mix.log_softmax(-1)

    def _tail_logits(self, features: Tensor) -> tuple[list[Tensor], Tensor]:
        """Per-mixture log-probabilities ``G x k x size`` of every tail value, and the mixture
        log-weights ``G x k``, given the finished graphs."""
        G = features.shape[0]
        if self.layout.num_nodes:
            alive = torch.ones(G, self.layout.num_nodes, dtype=torch.bool)
            graph = self.propagate(features, alive).sum(dim=1)
        else:
            graph = self.empty_graph.expand(G, -1)
        raw = self.tail_head(graph).reshape(G, self.mixtures, -1)
        parts, start = [], 0
        for size in self.layout.tail_sizes:
            parts.append(raw[..., start:start + size].log_softmax(-1))
            start += size
        return parts, self.tail_mix(graph).log_softmax(-1)

    # ------------------------------------------------------------------ likelihood
    def _features(self, tokens: Tensor, upto: int, candidates_of: int | None) -> Tensor:
        """Edge-feature ids of graphs ``tokens`` (``G x tokens``) with the edges into nodes below
        ``upto`` decided and, if given, node ``candidates_of``'s edges as candidates."""
        G = tokens.shape[0]
        n = self.layout.num_nodes
        features = torch.zeros(G, n, n, dtype=torch.long)
        for i, (u, v) in enumerate(self.layout.edges):
            if v < upto:
                label = tokens[:, i]
                real = label != self.layout.none_label if self.layout.none_label is not None \
                    else torch.ones(G, dtype=torch.bool)
                features[:, u, v] = torch.where(real, FIRST_LABEL + label, NO_EDGE)
            elif v == candidates_of:
                features[:, u, v] = CANDIDATE
        return features

    def teacher_inputs(self, tokens: Tensor) -> TeacherInputs:
        """Every generation step of graphs ``tokens`` stacked into one batch of partial graphs
        (the inputs of :meth:`log_prob`, built once per training set)."""
        layout, n, G = self.layout, self.layout.num_nodes, tokens.shape[0]
        features = [self._features(tokens, node, node) for node in layout.steps]
        alive = [(torch.arange(n) <= node).expand(G, n) for node in layout.steps]
        return TeacherInputs(tokens, torch.cat(features) if features else None,
                             torch.cat(alive) if alive else None,
                             self._features(tokens, n, None) if layout.tail_sizes else None)

    def log_prob(self, inputs: TeacherInputs) -> Tensor:
        """Log-likelihood of each graph of ``inputs`` (:meth:`teacher_inputs`)."""
        layout, tokens = self.layout, inputs.tokens
        G = tokens.shape[0]
        total = torch.zeros(G)
        if inputs.step_features is not None:
            h = self.propagate(inputs.step_features, inputs.step_alive)  # [S * G, n, h]
            rows = self.edge_step * G + torch.arange(G)[:, None]  # [G, E]: each edge's step
            diff = h[rows, self.edge_source] - h[rows, self.edge_target]  # [G, E, h]
            logp = self.edge_head(diff).reshape(G, len(layout.edges), self.mixtures, -1)
            picked = logp.log_softmax(-1).gather(
                -1, tokens[:, :len(layout.edges), None, None].expand(-1, -1, self.mixtures, 1))
            S = len(layout.steps)
            per_step = torch.zeros(G, S, self.mixtures).index_add(1, self.edge_step,
                                                                  picked.squeeze(-1))
            mean_diff = torch.zeros(G, S, diff.shape[-1]).index_add(1, self.edge_step, diff) \
                / self.step_edges[:, None]
            mix = self.edge_mix(mean_diff).log_softmax(-1)
            total = total + torch.logsumexp(mix + per_step, dim=-1).sum(-1)
        if inputs.tail_features is not None:
            parts, mix = self._tail_logits(inputs.tail_features)
            tail = tokens[:, len(layout.edges):]
            per_mix = sum(part.gather(-1, tail[:, None, j:j + 1].expand(-1, self.mixtures, 1))
                          .squeeze(-1) for j, part in enumerate(parts))
            total = total + torch.logsumexp(mix + per_mix, dim=-1)
        return total

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, count: int, gen: torch.Generator, temperature: float = 1.0,
               smoothing: float = 0.0) -> Tensor:
        """``count`` graphs as tokens (``count x tokens``), labels drawn at ``temperature``;
        each edge's label is uniform with probability ``smoothing``."""
        layout = self.layout
        tokens = torch.zeros(count, len(layout.edges) + len(layout.tail_sizes), dtype=torch.long)
        n = layout.num_nodes
        for node in layout.steps:
            index = [i for i, (_, v) in enumerate(layout.edges) if v == node]
            sources = [layout.edges[i][0] for i in index]
            alive = (torch.arange(n) <= node).expand(count, n)
            h = self.propagate(self._features(tokens, node, node), alive)
            logp, mix = self._edge_logits(h, node, sources)
            k = torch.multinomial((mix / temperature).softmax(-1), 1, generator=gen)  # [G, 1]
            chosen = logp[torch.arange(count), k.squeeze(-1)]  # [G, e, L]
            probs = (chosen / temperature).softmax(-1).reshape(-1, layout.edge_labels)
            probs = (1 - smoothing) * probs + smoothing / layout.edge_labels
            tokens[:, index] = torch.multinomial(probs, 1, generator=gen).reshape(count, -1)
        if layout.tail_sizes:
            parts, mix = self._tail_logits(self._features(tokens, n, None))
            k = torch.multinomial((mix / temperature).softmax(-1), 1, generator=gen).squeeze(-1)
            for j, part in enumerate(parts):
                probs = (part[torch.arange(count), k] / temperature).softmax(-1)
                tokens[:, len(layout.edges) + j] = torch.multinomial(probs, 1,
                                                                     generator=gen).squeeze(-1)
        return tokens


def fit(model: GraphModel, tokens: Tensor, weights: Tensor, steps: int, lr: float) -> None:
    """Train ``model`` by weighted maximum likelihood of ``tokens`` (each graph's negative
    log-likelihood per token, weighted by ``weights``, which sum to 1) with Adam, full batch."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    per_token = 1.0 / max(tokens.shape[1], 1)
    inputs = model.teacher_inputs(tokens)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = -(weights * model.log_prob(inputs) * per_token).sum()
        loss.backward()
        optimiser.step()
