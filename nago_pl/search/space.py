"""The search box of generator hyper-parameters and its encoding to the unit cube.

Every searched parameter maps to one coordinate of ``[0, 1]^d``. Floats map linearly (or
linearly in log space). Integers own equal-width bins of the unit interval (equal-width in log
space for ``log`` integers, over ``[low - 0.5, high + 0.5]``): a unit value decodes to the integer
whose bin contains it, and an integer encodes to the centre of its bin, so a decoded-then-encoded
point is exactly the value that was evaluated. A categorical (``choice``) parameter of ``k``
values is the integer index ``0..k-1`` of its value: its bin order means nothing, so models
must treat the coordinate as categorical (:attr:`SearchSpace.choice_dims`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from nago_pl.errors import NagoError

ParamKind = Literal["int", "float", "choice"]

_RANGE_KEYS = {"type", "low", "high", "log"}
_CHOICE_KEYS = {"type", "values"}
_FIXED_KEYS = {"value"}
#: Bound of an int parameter's range: an integer's bin must stay wider than float64 rounding
#: of the unit coordinate, so it decodes back to itself.
MAX_INT = 2**40

#: The NAGO generator space (NAGO.md section 1); the YAML config mirrors it.
NAGO_SPACE: dict[str, dict[str, Any]] = {
    "G1_nodes": {"type": "int", "low": 3, "high": 10},
    "G1_K": {"type": "int", "low": 2, "high": 5},
    "G1_P": {"type": "float", "low": 0.1, "high": 1.0},
    "G2_nodes": {"type": "int", "low": 1, "high": 10},
    "G2_P": {"type": "float", "low": 0.2, "high": 1.0},
    "G3_nodes": {"type": "int", "low": 3, "high": 10},
    "G3_K": {"type": "int", "low": 2, "high": 5},
    "G3_P": {"type": "float", "low": 0.1, "high": 1.0},
}


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _same_value(a: Any, b: Any) -> bool:
    """Equal and of the same type (a choice of 1 is not a choice of True or 1.0)."""
    return type(a) is type(b) and a == b


def _is_scalar(x: Any) -> bool:
    return isinstance(x, str | bool) or _is_number(x)


@dataclass(frozen=True)
class Param:
    """One searched hyper-parameter: an integer or float range, optionally on a log scale, or a
    choice among ``values`` (see :meth:`choice`)."""

    name: str
    kind: ParamKind
    low: float
    high: float
    log: bool = False
    values: tuple[Any, ...] = ()

    @classmethod
    def choice(cls, name: str, values: Any) -> Param:
        """A categorical parameter: one of ``values`` (two or more distinct scalars)."""
        where = f"search space parameter '{name}'"
        if isinstance(values, str) or not isinstance(values, list | tuple) or len(values) < 2:
            raise NagoError(f"{where}: a choice needs a list of two or more values, got "
                            f"{values!r} (use {{value: x}} to fix a parameter)")
        if not all(_is_scalar(v) for v in values):
            raise NagoError(f"{where}: choice values must be strings, numbers or booleans, "
                            f"got {values!r}")
        if len({(type(v), v) for v in values}) != len(values):
            raise NagoError(f"{where}: choice values must be distinct, got {values!r}")
        return cls(name, "choice", 0, len(values) - 1, values=tuple(values))

    def __post_init__(self) -> None:
        where = f"search space parameter '{self.name}'"
        if self.kind not in ("int", "float", "choice"):
            raise NagoError(f"{where}: type must be 'int', 'float' or 'choice', got {self.kind!r}")
        if self.kind == "choice" and len(self.values) != self.high - self.low + 1:
            raise NagoError(f"{where}: build a choice with Param.choice(name, values)")
        if not (_is_number(self.low) and _is_number(self.high)):
            raise NagoError(f"{where}: low and high must be finite numbers, "
                            f"got low={self.low!r}, high={self.high!r}")
        if self.kind == "int" and not (float(self.low).is_integer()
                                       and float(self.high).is_integer()):
            raise NagoError(f"{where}: an int parameter needs integral bounds, "
                            f"got low={self.low!r}, high={self.high!r}")
        if self.kind == "int" and max(abs(self.low), abs(self.high)) > MAX_INT:
            raise NagoError(f"{where}: an int parameter's bounds must lie in [-2**40, 2**40], "
                            f"got low={self.low!r}, high={self.high!r}")
        if not math.isfinite(self.high - self.low):
            raise NagoError(f"{where}: the range is wider than a float holds, got "
                            f"low={self.low!r}, high={self.high!r}")
        if not self.low < self.high:
            raise NagoError(f"{where}: low must be < high, got low={self.low!r}, "
                            f"high={self.high!r} (use {{value: x}} to fix a parameter)")
        if not isinstance(self.log, bool):
            raise NagoError(f"{where}: log must be true or false, got {self.log!r}")
        if self.log and self.low <= 0:
            raise NagoError(f"{where}: log scale needs low > 0, got low={self.low!r}")
        if self.log and not math.log(self.low) < math.log(self.high):
            raise NagoError(f"{where}: low and high are too close to tell apart on a log scale, "
                            f"got low={self.low!r}, high={self.high!r}")
        if self.kind in ("int", "choice"):
            object.__setattr__(self, "low", int(self.low))
            object.__setattr__(self, "high", int(self.high))
        else:
            object.__setattr__(self, "low", float(self.low))
            object.__setattr__(self, "high", float(self.high))

    @property
    def n_values(self) -> int:
        """Number of distinct integers / choices (int and choice parameters only)."""
        return int(self.high - self.low) + 1

    @property
    def binned(self) -> bool:
        """Whether the coordinate is cut into bins (int and choice parameters)."""
        return self.kind != "float"

    def _edges(self) -> tuple[float, float]:
        """The interval the unit coordinate spans, in (log) value space."""
        lo, hi = (self.low - 0.5, self.high + 0.5) if self.binned else (self.low, self.high)
        return (math.log(lo), math.log(hi)) if self.log else (lo, hi)

    def bin_edges(self) -> Tensor:
        """Unit-interval edges of the integer bins (``n_values + 1`` increasing points)."""
        return self._edges_at(torch.arange(self.n_values + 1, dtype=torch.float64))

    def _edges_at(self, i: Tensor) -> Tensor:
        """The unit edges below bins ``i`` (float64 bin indices; ``n_values`` is the top)."""
        a, b = self._edges()
        offsets = i + (self.low - 0.5)
        edges = ((offsets.log() if self.log else offsets) - a) / (b - a)
        return torch.where(i <= 0, 0.0, torch.where(i >= self.n_values, 1.0, edges))

    def _edge(self, k: int) -> float:
        """The unit edge below bin ``k``, in O(1) (a range may hold billions of bins)."""
        if k <= 0 or k >= self.n_values:
            return 0.0 if k <= 0 else 1.0
        a, b = self._edges()
        offset = k + self.low - 0.5
        return ((math.log(offset) if self.log else offset) - a) / (b - a)

    def _bin_centre(self, i: int) -> float:
        return (self._edge(i) + self._edge(i + 1)) / 2

    def encode(self, value: Any) -> float:
        """Unit coordinate of ``value`` (the bin centre for integers and choices)."""
        if self.kind == "choice":
            index = next((i for i, v in enumerate(self.values)
                          if _same_value(v, value)), None)
            if index is None:
                raise NagoError(f"parameter '{self.name}': {value!r} is not one of "
                                f"{list(self.values)}")
            return self._bin_centre(index)
        if not _is_number(value):
            raise NagoError(f"parameter '{self.name}': expected a number, got {value!r}")
        if not self.low <= value <= self.high:
            raise NagoError(f"parameter '{self.name}': {value!r} is outside "
                            f"[{self.low}, {self.high}]")
        if self.kind == "int":
            if not float(value).is_integer():
                raise NagoError(f"parameter '{self.name}' is an int, got {value!r}")
            return self._bin_centre(int(value) - int(self.low))
        a, b = self._edges()
        return ((math.log(value) if self.log else value) - a) / (b - a)

    def bin_index(self, u: Tensor) -> Tensor:
        """The bin (0-based index of the integer or choice, int64) of each unit coordinate in
        ``u`` (any shape; int and choice parameters only)."""
        u = u.to(torch.float64).clamp(0.0, 1.0)
        a, b = self._edges()
        raw = a + u * (b - a)
        guess = ((raw.exp() if self.log else raw) - (self.low - 0.5)).floor()
        guess = guess.clamp(0, self.n_values - 1)
        # the bin whose [lower, upper) edges hold u: the guess, or one off by rounding
        below, above = u < self._edges_at(guess), u >= self._edges_at(guess + 1)
        return (guess - below.double() + above.double()).clamp(0, self.n_values - 1).long()

    def decode(self, u: Tensor) -> list[Any]:
        """Values of the unit coordinates ``u`` (1-D): Python ints, floats or choice values."""
        u = u.to(torch.float64).clamp(0.0, 1.0)
        if self.binned:
            idx = self.bin_index(u).tolist()
            if self.kind == "choice":
                return [self.values[i] for i in idx]
            return [int(self.low) + i for i in idx]
        a, b = self._edges()
        raw = a + u * (b - a)
        vals = raw.exp() if self.log else raw
        return [min(max(float(v), self.low), self.high) for v in vals]


def resting(param: Param) -> Any:
    """The value a conditional parameter holds while its condition is false: its low end, or
    its first choice."""
    return param.values[0] if param.kind == "choice" else param.low


def _parse_when(name: str, when: Any) -> tuple[str, tuple[Any, ...]]:
    """``{parent: [values]}`` (or ``{parent: value}``) as ``(parent, values)``."""
    if not isinstance(when, Mapping) or len(when) != 1:
        raise NagoError(f"search space parameter '{name}': when must be one "
                        f"{{choice_parameter: [values]}}, got {when!r}")
    ((parent, values),) = when.items()
    values = list(values) if isinstance(values, Sequence) and not isinstance(values, str) \
        else [values]
    return str(parent), tuple(values)


class SearchSpace:
    """Searched parameters (the unit-cube coordinates, in order) plus fixed values.

    A parameter may be *conditional*: ``when: {choice_parameter: [values]}`` makes it matter
    only while that choice takes one of the values; otherwise it rests at its low end (or first
    choice), in configs and in the unit cube alike, so the strategies never tell apart configs
    that differ only in it."""

    def __init__(self, params: list[Param], fixed: dict[str, Any] | None = None,
                 conditions: Mapping[str, tuple[str, tuple[Any, ...]]] | None = None) -> None:
        fixed = dict(fixed or {})
        names = [p.name for p in params]
        dupes = sorted({n for n in names if names.count(n) > 1} | (set(names) & set(fixed)))
        if dupes:
            raise NagoError(f"search space: parameter(s) defined more than once: {dupes}")
        if not params:
            raise NagoError("search space: needs at least one searched parameter "
                            "({type: int|float, low: .., high: ..} or {type: choice, values: [..]})")
        self.params = list(params)
        self.fixed = fixed
        self.conditions = dict(conditions or {})
        self._check_conditions()

    def _check_conditions(self) -> None:
        by_name = {p.name: p for p in self.params}
        for name, (parent, values) in self.conditions.items():
            where = f"search space parameter '{name}': when: {{{parent}: {list(values)}}}"
            if name not in by_name:
                raise NagoError(f"{where}: only a searched parameter can be conditional")
            if parent not in by_name or by_name[parent].kind != "choice" or parent == name:
                choices = [p.name for p in self.params if p.kind == "choice" and p.name != name]
                allowed_names = f"one of {choices}" if choices else \
                    "and this space searches none (add one as {type: choice, values: [...]})"
                raise NagoError(f"{where}: the condition must name another searched choice "
                                f"parameter, {allowed_names}")
            if parent in self.conditions:
                raise NagoError(f"{where}: '{parent}' is itself conditional; conditions do not "
                                "nest")
            allowed = by_name[parent].values
            unknown = [v for v in values if not any(_same_value(v, a) for a in allowed)]
            if not values or unknown:
                raise NagoError(f"{where}: needs one or more of {parent}'s values "
                                f"{list(allowed)}, got {list(values)}")

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any]) -> SearchSpace:
        """Build from ``{name: {type, low, high, log}}``, ``{name: {type: choice, values}}`` and
        ``{name: {value}}`` entries (validated)."""
        if not isinstance(mapping, Mapping):
            raise NagoError(f"search space: expected a mapping of parameter names to specs, "
                            f"got {type(mapping).__name__}")
        params, fixed, conditions = [], {}, {}
        for name, spec in mapping.items():
            if not isinstance(name, str) or not name:
                raise NagoError(f"search space: parameter names must be non-empty strings, "
                                f"got {name!r}")
            if not isinstance(spec, Mapping):
                raise NagoError(f"search space parameter '{name}': expected a mapping "
                                f"{{type, low, high[, log]}} or {{value}}, got {spec!r}")
            keys = set(spec)
            if "value" in keys:
                if keys != _FIXED_KEYS:
                    raise NagoError(f"search space parameter '{name}': a fixed parameter takes "
                                    f"only 'value', got keys {sorted(keys)}")
                fixed[name] = spec["value"]
                continue
            if "when" in spec:
                conditions[name] = _parse_when(name, spec["when"])
                keys.discard("when")
            if spec.get("type") == "choice":
                if keys != _CHOICE_KEYS:
                    raise NagoError(f"search space parameter '{name}': a choice takes exactly "
                                    f"type and values, got keys {sorted(keys)}")
                params.append(Param.choice(name, spec["values"]))
                continue
            unknown = keys - _RANGE_KEYS
            if unknown:
                raise NagoError(f"search space parameter '{name}': unknown key(s) "
                                f"{sorted(unknown)}; allowed: type, low, high, log, when "
                                "(or value)")
            missing = {"type", "low", "high"} - keys
            if missing:
                raise NagoError(f"search space parameter '{name}': missing key(s) "
                                f"{sorted(missing)}; a range needs type, low, high[, log]")
            params.append(Param(name, spec["type"], spec["low"], spec["high"],
                                spec.get("log", False)))
        return cls(params, fixed, conditions)

    def to_config(self) -> dict[str, dict[str, Any]]:
        """The canonical mapping form (inverse of :meth:`from_config`)."""
        out: dict[str, dict[str, Any]] = {
            p.name: {"type": "choice", "values": list(p.values)} if p.kind == "choice"
            else {"type": p.kind, "low": p.low, "high": p.high, "log": p.log}
            for p in self.params
        }
        for name, (parent, values) in self.conditions.items():
            out[name]["when"] = {parent: list(values)}
        out.update({k: {"value": v} for k, v in self.fixed.items()})
        return out

    def active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether searched parameter ``name`` matters in ``config`` (its ``when`` holds)."""
        if name not in self.conditions:
            return True
        parent, values = self.conditions[name]
        value = config[parent]
        return any(_same_value(value, v) for v in values)

    def normalise(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with every inactive parameter at its resting value (:func:`resting`), so
        configs that differ only in values that do not matter are equal."""
        if not self.conditions:
            return dict(config)
        return {**config, **{p.name: resting(p) for p in self.params
                             if p.name in self.conditions and not self.active(p.name, config)}}

    def bin_indices(self, X: Tensor) -> Tensor:
        """The bin of every coordinate of unit points ``X`` (``... x d`` -> ``... x d``, int64;
        int and choice parameters only), with each inactive parameter at its resting bin 0:
        what :meth:`from_unit` decodes, as indices and for any batch shape."""
        if any(not p.binned for p in self.params):
            raise ValueError("bin_indices needs a space of int and choice parameters only")
        index = torch.stack([p.bin_index(X[..., j]) for j, p in enumerate(self.params)], dim=-1)
        column = {p.name: j for j, p in enumerate(self.params)}
        for name, (parent, values) in self.conditions.items():
            param = self.params[column[parent]]
            allowed = [i for i, v in enumerate(param.values)
                       if any(_same_value(v, a) for a in values)]
            active = torch.isin(index[..., column[parent]], torch.tensor(allowed))
            index[..., column[name]] = torch.where(active, index[..., column[name]], 0)
        return index

    @property
    def dim(self) -> int:
        """Number of searched parameters (the unit cube's dimension)."""
        return len(self.params)

    @property
    def choice_dims(self) -> list[int]:
        """Coordinates of the categorical (choice) parameters."""
        return [j for j, p in enumerate(self.params) if p.kind == "choice"]

    def choice_centres(self, j: int) -> list[float]:
        """The unit values of coordinate ``j``'s choices (its bin centres), in value order."""
        p = self.params[j]
        return [p.encode(v) for v in p.values]

    @property
    def names(self) -> list[str]:
        """Searched parameter names, in coordinate order."""
        return [p.name for p in self.params]

    def bounds(self) -> Tensor:
        """``2 x d`` bounds of the unit cube (float64)."""
        return torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).to(torch.float64)

    def to_unit(self, configs: list[Mapping[str, Any]]) -> Tensor:
        """Encode configs to an ``n x d`` float64 tensor in the unit cube (fixed keys ignored)."""
        rows = []
        for config in configs:
            missing = [n for n in self.names if n not in config and n not in self.conditions]
            if missing:
                raise NagoError(f"config {dict(config)} lacks searched parameter(s) {missing}")
            rows.append([p.encode(config[p.name]) if self.active(p.name, config)
                         else p.encode(resting(p)) for p in self.params])
        return torch.tensor(rows, dtype=torch.float64).reshape(len(rows), self.dim)

    def from_unit(self, X: Tensor) -> list[dict[str, Any]]:
        """Decode an ``n x d`` tensor of unit points to configs (fixed values merged in)."""
        if X.ndim != 2 or X.shape[-1] != self.dim:
            raise ValueError(f"expected an n x {self.dim} tensor, got shape {tuple(X.shape)}")
        columns = [p.decode(X[:, j]) for j, p in enumerate(self.params)]
        return [{**self.normalise(dict(zip(self.names, row, strict=True))), **self.fixed}
                for row in zip(*columns, strict=True)]

    def round_unit(self, X: Tensor) -> Tensor:
        """Snap unit points to what they decode to (integers and choices to their bin
        centres); in one tensor operation when every parameter is a choice."""
        if any(p.kind != "choice" for p in self.params):
            return self.to_unit(self.from_unit(X))
        index = self.bin_indices(X)
        return torch.stack([torch.tensor(self.choice_centres(j), dtype=torch.float64)[index[:, j]]
                            for j in range(self.dim)], dim=-1)

    def random_unit(self, n: int, gen: torch.Generator) -> Tensor:
        """``n`` unit points drawn uniformly from what the strategies search: here the whole
        cube (a shrunk space's pockets override it; see ``shrink.pockets.PocketSpace``)."""
        return torch.rand(n, self.dim, generator=gen, dtype=torch.float64)

    def design_point(self, index: int, seed: int) -> Tensor:
        """Point ``index`` of the initial design ``seed``: the scrambled Sobol sequence's (a
        shrunk space overrides it with draws from its pockets)."""
        engine = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=seed)
        engine.fast_forward(index)
        return engine.draw(1, dtype=torch.float64)[0]

    def sobol(self, n: int, seed: int) -> list[dict[str, Any]]:
        """``n`` configs from a scrambled Sobol sequence (prefixes agree across ``n``)."""
        engine = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=seed)
        return self.from_unit(engine.draw(n, dtype=torch.float64))

    def uniform(self, n: int, seed: int) -> list[dict[str, Any]]:
        """``n`` configs drawn uniformly at random from the unit cube."""
        gen = torch.Generator().manual_seed(seed)
        return self.from_unit(torch.rand(n, self.dim, generator=gen, dtype=torch.float64))
