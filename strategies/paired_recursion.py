"""What both feature engines share: one bar's checks, the stock-bond pair and its correlation.

:class:`PairedRecursion` is the base of :class:`~regime_trader.strategies.features.FeatureEngine`
(the HMM's features) and :class:`~regime_trader.strategies.jump_features.JumpFeatureEngine` (the
jump models'): the universe, which two symbols are the equity and the bond (the first two by
default, or named), the causal EWMA stock-bond correlation (:class:`EwmaCorrelation`), the last
bar's log returns and the JSON state envelope; each engine adds its own recursions.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from functools import cached_property
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import numpy as np

from regime_trader.strategies.params import record_from_dict

__all__ = [
    "EwmaCorrelation",
    "PairedRecursion",
    "check_closes",
    "correlation_name",
    "decay",
    "pair_symbols",
    "stock_bond_pair",
]


def decay(halflife: float) -> float:
    """EWMA decay factor for a half-life in days."""
    return math.exp(-math.log(2.0) / halflife)


def check_closes(closes: np.ndarray, n_assets: int) -> np.ndarray:
    """One bar of closes as floats, or an error: shape (n_assets,), finite and positive."""
    closes = np.asarray(closes, dtype=float)
    if closes.shape != (n_assets,) or not np.all(np.isfinite(closes) & (closes > 0)):
        raise ValueError(f"closes must be {n_assets} positive numbers, got {closes}")
    return closes


class EwmaCorrelation:
    """The stock-bond correlation as a causal EWMA recursion (shared by both feature engines).

    Parameters
    ----------
    halflife : float
        Half-life in days of the EWMA sums.
    """

    def __init__(self, halflife: float) -> None:
        self.lam = decay(halflife)
        # EWMA of r_e^2, r_b^2, r_e r_b, as Python floats: the same operations as NumPy's
        # elementwise ones (one product and one sum each), without an array per bar.
        self._num = [0.0, 0.0, 0.0]
        self.den = 0.0

    @property
    def num(self) -> np.ndarray:
        """The EWMA sums of r_e^2, r_b^2 and r_e r_b, shape (3,)."""
        return np.array(self._num)

    def update(self, r_equity: float, r_bond: float) -> float:
        """Add today's returns; return the correlation in [-1, 1] (0 while a variance is 0)."""
        lam = self.lam
        e2, b2, eb = self._num
        self._num = [lam * e2 + r_equity**2, lam * b2 + r_bond**2, lam * eb + r_equity * r_bond]
        self.den = lam * self.den + 1.0
        var_e, var_b, cov = (x / self.den for x in self._num)
        if var_e <= 0 or var_b <= 0:
            return 0.0
        return min(max(cov / math.sqrt(var_e * var_b), -1.0), 1.0)

    def state_dict(self) -> dict[str, Any]:
        """The sums, under the keys both engines' states have always used."""
        return {"corr_num": self.num, "corr_den": self.den}

    def load(self, state: dict[str, Any]) -> None:
        """Restore the sums from :meth:`state_dict` (or an engine state holding its keys)."""
        self._num = [float(x) for x in np.asarray(state["corr_num"], dtype=float)]
        self.den = float(state["corr_den"])


def stock_bond_pair(
    symbols: Sequence[str], equity: str | None = None, bond: str | None = None
) -> tuple[int, int] | None:
    """Positions of the equity and bond assets of the correlation feature.

    Parameters
    ----------
    symbols : sequence of str
    equity, bond : str, optional
        Default: the first and the second symbol.

    Returns
    -------
    (int, int) or None
        None for a single symbol (no pair).

    Raises
    ------
    ValueError
        If a named symbol is not in ``symbols``, or both name the same one.
    """
    for name, value in (("equity_symbol", equity), ("bond_symbol", bond)):
        if value is not None and value not in symbols:
            raise ValueError(f"{name} {value!r} is not one of the symbols {list(symbols)}")
    if len(symbols) < 2:
        if bond is not None:
            raise ValueError(f"bond_symbol {bond!r} needs a second symbol besides the equity")
        return None
    i = list(symbols).index(equity) if equity is not None else 0
    j = list(symbols).index(bond) if bond is not None else (1 if i == 0 else 0)
    if i == j:
        raise ValueError(f"equity_symbol and bond_symbol are both {symbols[i]!r}")
    return i, j


def correlation_name(symbols: Sequence[str], pair: tuple[int, int] | None) -> list[str]:
    """The correlation column's name, ``corr_<EQUITY>_<BOND>``, or none without a pair."""
    return [] if pair is None else [f"corr_{symbols[pair[0]]}_{symbols[pair[1]]}"]


def pair_symbols(symbols: Sequence[str], saved: list[int] | None) -> tuple[str | None, str | None]:
    """The equity and bond symbols of a saved ``pair`` (a state from before it: the default)."""
    if saved is None:
        return None, None
    return symbols[saved[0]], symbols[saved[1]]


class _CorrelationSpec(Protocol):
    """A feature spec: a dataclass with the correlation's half-life."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def corr_halflife(self) -> float: ...


SpecT = TypeVar("SpecT", bound=_CorrelationSpec)


class PairedRecursion(ABC, Generic[SpecT]):
    """What both feature engines share: the universe, the stock-bond pair and its correlation.

    Subclasses give their spec's default (:meth:`default_spec`) and allocate their own
    recursions (:meth:`_allocate`).

    Parameters
    ----------
    symbols : sequence of str
        Asset names, in column order.
    spec : optional
        Recursion parameters (the subclass's spec, with a ``corr_halflife``).
    equity, bond : str, optional
        The assets of the stock-bond correlation; default the first and the second symbol.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        spec: SpecT | None = None,
        *,
        equity: str | None = None,
        bond: str | None = None,
    ) -> None:
        if len(symbols) == 0:
            raise ValueError("symbols must not be empty")
        self.symbols = list(symbols)
        self.spec: SpecT = spec if spec is not None else self.default_spec()
        self.pair = stock_bond_pair(self.symbols, equity, bond)
        self.returns = np.full(len(self.symbols), np.nan)  # the last bar's log returns
        self.n_bars = 0
        self._corr = EwmaCorrelation(self.spec.corr_halflife)
        self._allocate()

    @classmethod
    @abstractmethod
    def default_spec(cls) -> SpecT:
        """The spec used when none is given."""

    @abstractmethod
    def _allocate(self) -> None:
        """Set up the subclass's recursions (``symbols`` and ``spec`` are set)."""

    @property
    @abstractmethod
    def names(self) -> list[str]:
        """Feature column names, in row order."""

    @cached_property
    def n_features(self) -> int:
        """Length of a feature row (the universe and the spec are fixed at construction)."""
        return len(self.names)

    def _correlation(self, returns: np.ndarray) -> float | None:
        """Update the stock-bond correlation with the day's returns (None without a pair)."""
        if self.pair is None:
            return None
        return self._corr.update(float(returns[self.pair[0]]), float(returns[self.pair[1]]))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the recursions exactly (JSON values and arrays)."""
        return {
            "symbols": self.symbols,
            "pair": None if self.pair is None else list(self.pair),
            "spec": asdict(self.spec),
            "n_bars": self.n_bars,
            **self._corr.state_dict(),
            **self._own_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """Rebuild an engine from :meth:`state_dict`.

        A state saved before the equity and bond were named has the first two symbols.
        """
        symbols = state["symbols"]
        equity, bond = pair_symbols(symbols, state.get("pair"))
        spec = record_from_dict(type(cls.default_spec()), state["spec"])
        engine = cls(symbols, spec, equity=equity, bond=bond)
        engine.n_bars = int(state["n_bars"])
        engine._corr.load(state)
        engine._load(state)
        return engine

    @abstractmethod
    def _own_state(self) -> dict[str, Any]:
        """The subclass's recursions, JSON-serialisable."""

    @abstractmethod
    def _load(self, state: dict[str, Any]) -> None:
        """Load what :meth:`_own_state` saved."""
