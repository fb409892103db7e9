"""A shrunk space: a union of disjoint pockets of good architectures: edit-distance balls
around good centres, or (spaces of choices only) explicit sets of architectures.

A strategy searches the union through two things: :meth:`ShrunkSpace.search_space`, a
:class:`PocketSpace` whose random draws and initial design come from the pockets (random search,
evolution's and GraphPNAS's random starts, BOHB's random trials, MOBO's Sobol design and
acquisition starts), and membership AND-ed into its ``feasible(seed, config)`` check
(:meth:`ShrunkSpace.restrict`), which rejects model-guided proposals that leave the union
(evolution's mutants, GraphPNAS's samples, MOBO's candidates). The space is saved as readable
JSON (``shrunk_space.json``) and draws uniformly from the union (:meth:`sample`).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nago_pl.errors import NagoError
from nago_pl.jsonfile import write_json
from nago_pl.search.shrink.distance import EPS, EditDistance
from nago_pl.search.space import SearchSpace
from nago_pl.search.study import trial_seed

#: The file a shrunk space is saved as (in the search directory).
FILE_NAME = "shrunk_space.json"
#: Most choice combinations one pocket may enumerate (a smaller radius is needed beyond).
MAX_COMBOS = 200_000
#: Draws per sample before giving up on a pocket that rounding keeps leaving.
MAX_DRAWS = 1000


@dataclass
class Pocket:
    """One pocket: the ball of edit radius ``radius`` around ``centre``, or, when ``members``
    is given (spaces of choices only), exactly those architectures (``radius`` is then the
    farthest one's distance from the centre); ``value`` is the centre's observed objective
    value (a surrogate's prediction when nothing inside was observed), ``observed`` every value
    observed inside (best first), ``size`` the architectures inside (spaces of choices only,
    else None) and ``share`` its share of the whole space (of the unit cube's measure)."""

    centre: dict[str, Any]
    radius: float
    value: float
    observed: list[float] = field(default_factory=list)
    size: int | None = None
    share: float = 0.0
    members: list[dict[str, Any]] | None = None


class ShrunkSpace:
    """The union of ``pockets`` (disjoint) in ``space``, distances by ``metric``;
    ``objective`` names the value the pockets were ranked by, ``locality`` is the measured
    curve (JSON-ready) the radius was chosen from."""

    def __init__(self, space: SearchSpace, pockets: list[Pocket], metric: EditDistance,
                 objective: str = "val_acc", locality: dict[str, Any] | None = None) -> None:
        if not pockets:
            raise NagoError("a shrunk space needs at least one pocket")
        self.space = space
        self.metric = metric
        self.pockets = pockets
        self.objective = objective
        self.locality = locality or {}
        self.centres = metric.unit([p.centre for p in pockets])
        self.radii = torch.tensor([p.radius for p in pockets], dtype=torch.float64)
        self._combos: dict[int, tuple[Tensor, Tensor]] = {}
        if any(p.members is not None for p in pockets) and not self.finite:
            raise NagoError("shrunk space: a pocket listing its members needs a space of "
                            "choice parameters only")
        self._lookup = self._member_lookup() if self.finite else None
        if not self.finite:
            gaps = metric.pairwise(self.centres, self.centres)
            reach = self.radii[:, None] + self.radii[None, :]
            clash = (gaps <= reach + EPS) & ~torch.eye(len(pockets), dtype=torch.bool)
            if clash.any():
                i, j = (int(k) for k in clash.nonzero()[0])
                raise NagoError(f"shrunk space: pockets {i} and {j} overlap (centres "
                                f"{gaps[i, j]:.3g} edits apart, radii {pockets[i].radius:g} "
                                f"and {pockets[j].radius:g}); pockets must be disjoint")
        for k, pocket in enumerate(pockets):
            pocket.size, pocket.share = self._measure(k)

    def _member_lookup(self) -> dict[tuple[int, ...], int]:
        """Every architecture of the union (its choice indices) and its pocket; two pockets
        sharing one raise the overlap error."""
        lookup: dict[tuple[int, ...], int] = {}
        for k in range(len(self.pockets)):
            for row in self.space.bin_indices(self.choice_ball(k)[0]).tolist():
                other = lookup.setdefault(tuple(row), k)
                if other != k:
                    raise NagoError(f"shrunk space: pockets {other} and {k} overlap (an "
                                    "architecture lies in both); pockets must be disjoint")
        return lookup

    # ------------------------------------------------------------------ membership
    @property
    def finite(self) -> bool:
        """Whether every searched parameter is a choice (pockets are then counted exactly)."""
        return bool(self.metric.choice.all())

    def pocket_of(self, config: Mapping[str, Any]) -> int | None:
        """The index of the pocket holding ``config``, or None."""
        if self._lookup is not None:
            key = tuple(self.space.bin_indices(self.metric.unit([config]))[0].tolist())
            return self._lookup.get(key)
        d = self.metric.pairwise(self.metric.unit([config]), self.centres)[0]
        inside = (d <= self.radii + EPS).nonzero()
        return int(inside[0]) if len(inside) else None

    def contains(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` lies in one of the pockets."""
        return self.pocket_of(config) is not None

    def restrict(self, feasible: Callable[[int, dict[str, Any]], bool] | None
                 ) -> Callable[[int, dict[str, Any]], bool]:
        """``feasible`` AND membership: the check a strategy confined to this space gets."""
        if feasible is None:
            return lambda seed, config: self.contains(config)
        return lambda seed, config: self.contains(config) and feasible(seed, config)

    def explain(self, err: NagoError) -> NagoError:
        """``err`` with a hint when a strategy found no feasible member of this space (the
        constraints may leave little of a small union)."""
        if "no feasible configuration" not in str(err):
            return err
        return NagoError(f"{err}; the strategy searches a shrunk space of "
                         f"{100 * self.share:.3g} % of the space: a larger "
                         "search.shrink_options.min_share gives it more room")

    @property
    def share(self) -> float:
        """The union's share of the whole space."""
        return sum(p.share for p in self.pockets)

    @property
    def size(self) -> int | None:
        """Architectures in the union (spaces of choices only, else None)."""
        return sum(p.size for p in self.pockets) if self.finite else None  # type: ignore[misc]

    # ------------------------------------------------------------------ geometry
    def choice_ball(self, k: int) -> tuple[Tensor, Tensor]:
        """Unit points that change at most ``floor(radius)`` choices of pocket ``k``'s centre
        (numbers at the centre's) and how many choices each changes; a pocket listing its
        members: those, and their distances from the centre."""
        members = self.pockets[k].members
        if k not in self._combos and members is not None:
            X = self.metric.unit(members)
            self._combos[k] = (X, self.metric.pairwise(X, self.centres[k:k + 1])[:, 0])
        if k not in self._combos:
            centre = self.centres[k]
            budget = int(math.floor(self.pockets[k].radius + EPS))
            dims = [j for j in range(self.space.dim) if bool(self.metric.choice[j])]
            rows, edits = [], []
            for h in range(min(budget, len(dims)) + 1):
                for subset in itertools.combinations(dims, h):
                    others = [[c for c in self.space.choice_centres(j)
                               if abs(c - float(centre[j])) > EPS] for j in subset]
                    for values in itertools.product(*others):
                        row = centre.clone()
                        for j, v in zip(subset, values, strict=True):
                            row[j] = v
                        rows.append(row)
                        edits.append(h)
                        if len(rows) > MAX_COMBOS:
                            raise NagoError(f"shrunk space: a pocket of radius "
                                            f"{self.pockets[k].radius:g} holds over "
                                            f"{MAX_COMBOS:,} choice combinations; use a "
                                            "smaller search.shrink_options.max_radius")
            self._combos[k] = (torch.stack(rows), torch.tensor(edits, dtype=torch.float64))
        return self._combos[k]

    def _boxes(self, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """Pocket ``k`` as boxes: per choice combination of :meth:`choice_ball`, the low and
        high unit bounds of its numeric coordinates (half-width: the edits left, times
        ``numeric_edit``, clipped to the cube) and its volume."""
        combos, edits = self.choice_ball(k)
        half = (self.pockets[k].radius - edits)[:, None] * self.metric.numeric_edit
        centre = self.centres[k][self.metric.numeric][None, :]
        low, high = (centre - half).clamp(0, 1), (centre + half).clamp(0, 1)
        return low, high, torch.prod(high - low, dim=-1)

    def draw_in(self, k: int, n: int, gen: torch.Generator) -> Tensor:
        """``n`` uniform unit points of pocket ``k`` (a choice combination by its box's
        volume, numbers uniform in that box), rounded to what they decode to and kept only
        when still inside (rounding an int may leave a box narrower than its bin)."""
        combos, _ = self.choice_ball(k)
        if not bool(self.metric.numeric.any()):
            return combos[torch.randint(len(combos), (n,), generator=gen)].clone()
        low, high, volume = self._boxes(k)
        picks = torch.multinomial(volume, n, replacement=True, generator=gen)
        X = combos[picks].clone()
        u = torch.rand(n, int(self.metric.numeric.sum()), generator=gen, dtype=torch.float64)
        X[:, self.metric.numeric] = low[picks] + u * (high[picks] - low[picks])
        X = self.space.round_unit(X)
        d = self.metric.pairwise(X, self.centres[k:k + 1])[:, 0]
        return X[d <= self.pockets[k].radius + EPS]

    def _measure(self, k: int) -> tuple[int | None, float]:
        """Pocket ``k``'s size (spaces of choices only) and share of the space (exact: its
        boxes' volume)."""
        combos, _ = self.choice_ball(k)
        total = math.prod(p.n_values for p in self.space.params if p.kind == "choice")
        if self.finite:
            return len(combos), len(combos) / total
        return None, float(self._boxes(k)[2].sum()) / total

    def members(self) -> set[tuple[float, ...]]:
        """Every configuration of the union as unit-coordinate tuples (choices only)."""
        if not self.finite:
            raise ValueError("members() needs a space of choice parameters only")
        return {tuple(row.tolist()) for k in range(len(self.pockets))
                for row in self.choice_ball(k)[0]}

    def member_configs(self) -> list[dict[str, Any]]:
        """Every configuration of the union (choices only), in a fixed order."""
        return self.space.from_unit(torch.tensor(sorted(self.members()), dtype=torch.float64))

    def member_values(self) -> dict[str, set[Any]]:
        """Per parameter, the values it takes in some configuration of the union (choices
        only): what a method that restricts each parameter on its own may keep."""
        configs = self.member_configs()
        return {name: {c[name] for c in configs} for name in self.space.names}

    def sample_unit(self, n: int, gen: torch.Generator) -> Tensor:
        """``n`` unit points drawn uniformly from the union (pockets in proportion to their
        share, each uniformly within), snapped to what they decode to, grouped by pocket."""
        weights = torch.tensor([p.share for p in self.pockets], dtype=torch.float64)
        picks = torch.multinomial(weights, n, replacement=True, generator=gen)
        rows = [torch.empty(0, self.space.dim, dtype=torch.float64)]
        for k, wanted in enumerate(torch.bincount(picks, minlength=len(self.pockets)).tolist()):
            for _ in range(MAX_DRAWS):  # a pocket's draws at once, redrawing what rounding lost
                if wanted == 0:
                    break
                X = self.draw_in(k, wanted, gen)
                rows.append(X)
                wanted -= len(X)
            else:
                raise NagoError(f"shrunk space: no draw landed in pocket {k} in {MAX_DRAWS} "
                                "tries; use a larger search.shrink_options.numeric_edit")
        return torch.cat(rows)

    def sample(self, n: int, gen: torch.Generator) -> list[dict[str, Any]]:
        """``n`` configurations drawn uniformly from the union (:meth:`sample_unit`)."""
        return self.space.from_unit(self.sample_unit(n, gen)) if n else []

    def search_space(self) -> PocketSpace:
        """The space a strategy confined to the union searches (see :class:`PocketSpace`)."""
        return PocketSpace(self)

    # ------------------------------------------------------------------ files
    def to_json(self) -> dict[str, Any]:
        """The readable form saved as ``shrunk_space.json``."""
        return {"objective": self.objective, "numeric_edit": self.metric.numeric_edit,
                "pockets_count": len(self.pockets), "size": self.size, "share": self.share,
                "space": self.space.to_config(), "locality": self.locality,
                "pockets": [asdict(p) for p in self.pockets]}

    def save(self, path: Path) -> None:
        """Write :meth:`to_json` to ``path`` (atomically)."""
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path, space: SearchSpace,
             where: str = "search.space_from") -> ShrunkSpace:
        """Read a saved shrunk space (``path``: the file or a search directory holding
        ``shrunk_space.json``) for a search over ``space``; a missing or damaged file or one
        saved for another space is a one-line NagoError naming ``where``."""
        file = Path(path)
        if file.is_dir():
            file = file / FILE_NAME
        try:
            data = json.loads(file.read_text())
            saved = SearchSpace.from_config(data["space"])
            pockets = [Pocket(**p) for p in data["pockets"]]
            metric = EditDistance(space, float(data["numeric_edit"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise NagoError(f"{where}={path}: not a readable {FILE_NAME} ({err}); allowed: a "
                            f"search directory with a {FILE_NAME}, or the file itself") from None
        if saved.to_config() != space.to_config():
            raise NagoError(f"{where}={path}: it shrinks another search space "
                            f"({', '.join(saved.names)}); allowed: a shrunk space saved by a "
                            "search over this search.space")
        return cls(space, pockets, metric, str(data.get("objective", "val_acc")),
                   data.get("locality"))


class PocketSpace(SearchSpace):
    """The parameters of ``shrunk.space`` (same coordinates, same configs), but its random
    draws (:meth:`random_unit`) and initial design (:meth:`design_point`) come from the
    pockets: a strategy given it starts and explores inside the union directly, instead of
    finding members by rejection from the whole space (hopeless for a union of 0.1 %: a
    thousand uniform draws miss it 37 % of the time). Model-guided proposals may still leave
    the union; :meth:`ShrunkSpace.restrict` rejects those."""

    def __init__(self, shrunk: ShrunkSpace) -> None:
        base = shrunk.space
        super().__init__(base.params, base.fixed, base.conditions)
        self.shrunk = shrunk

    def random_unit(self, n: int, gen: torch.Generator) -> Tensor:
        """``n`` uniform points of the union."""
        return self.shrunk.sample_unit(n, gen)

    def design_point(self, index: int, seed: int) -> Tensor:
        """Point ``index`` of design ``seed``: a uniform point of the union, from its own
        random stream (so it does not depend on the points before it)."""
        gen = torch.Generator().manual_seed(trial_seed(seed, index, stream=3))
        return self.shrunk.sample_unit(1, gen)[0]
