"""Adjusted history, live: keep the strategy on the returns a backtest of the adjusted series sees.

Alpaca computes split- and dividend-adjusted bars (``adjustment=all``) at query time: after an
ex-date every earlier adjusted close is multiplied by the action's factor (a 2:1 split halves
them, a dividend scales them by ``1 - dividend / previous close``). A strategy restored from
the store keeps price *levels* from earlier queries (log closes, the last close), so chaining
today's bars onto them would show a split as a -50 % day and drop every dividend.

The design, chosen over rebuilding the strategy from the whole history every cycle (exact by
construction, but a full walk-forward with its HMM fits every day) and over reading Alpaca's
corporate-actions feed (a second source that must agree with the bars, and misses data
corrections):

1. **Overlap.** Every cycle refetches the last :data:`OVERLAP_SESSIONS` sessions the strategy
   already saw together with the new ones, and :class:`BarBasis` (persisted in the strategy
   state envelope under :data:`BASIS_KEY`, written atomically with the state) remembers the
   closes those sessions were *fed* as, per symbol, and the *basis factor* per symbol: fed
   close / adjusted close as served at the time.
2. **Re-adjustment (returns unchanged).** If, per symbol, fed / refetched is one constant ``k``
   over the overlap (within :data:`ADJUSTMENT_RTOL`), the past was only rescaled: the new bars
   are fed as ``refetched * k`` with ``k`` taken on the last seen session, so the strategy's
   return from its last close to the first new bar is exactly the adjusted return. When ``k``
   moved from the stored factor, the change is reported as a :class:`PastChange` of kind
   ``readjusted`` with the factor ``new adjusted / previously served`` (0.5 for a 2:1 split).
3. **Correction (returns changed).** Otherwise the strategy is rebuilt: a fresh strategy fed
   the full refetched adjusted history since the portfolio's first bar date
   (:attr:`BarBasis.first_date`), which is what a backtest from that date computes.

Why this equals a backtest on the file adjusted after all actions: an action with ex-date ``D``
scales every close before ``D`` by one factor, so the adjusted return of each session is the
same in every query made on or after that session, and two adjusted series of the same
sessions differ per symbol by one constant. The strategies must therefore give the same
weights when a symbol's whole price history is scaled by a constant — true of every registered
strategy (they use log returns, ratios of closes and differences of log closes) and checked by
``tests/unit/strategies/test_scale_invariance.py``; equality is then up to floating point
rounding (1e-9 in the parity test), not bit for bit.

Limits: a correction of a session older than the overlap window is not seen (it would take the
whole fed history in the store); a symbol whose bars are re-served on a new basis *and*
corrected inside the window is rebuilt, which is correct, only slower.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from regime_trader.service.exceptions import BadMarketDataError

__all__ = [
    "ADJUSTMENT_RTOL",
    "BASIS_KEY",
    "OVERLAP_SESSIONS",
    "BarBasis",
    "PastChange",
    "PastChangeKind",
    "Rebasing",
    "rebase",
]

# Sessions already seen that every cycle refetches: several, so a change of the past *returns*
# (a correction) is told apart from a change of scale (a split or a dividend).
OVERLAP_SESSIONS = 5
# Relative tolerance on "one constant factor": adjusted prices served with 4 decimals differ
# from the exact factor by up to 5e-6 relative on a $10 close; any real correction is larger.
ADJUSTMENT_RTOL = 1e-5
BASIS_KEY = "bar_basis"
_BASIS_VERSION = 1


class PastChangeKind(StrEnum):
    """What happened to prices the strategy had already seen."""

    READJUSTED = "readjusted"  # one factor for the whole past: a split or a dividend
    REBUILT = "rebuilt"  # past returns changed: the strategy was rebuilt from the history
    BASIS_UNKNOWN = "basis_unknown"  # a state saved without a basis: rebuilt from the history


@dataclass(frozen=True)
class PastChange:
    """A change of the past noticed by a cycle.

    Attributes
    ----------
    date : date
        ``readjusted``: the last session the factor applies to (its ex-date is later);
        ``rebuilt``: the first session of the overlap whose return changed;
        ``basis_unknown``: the first session of the rebuilt history.
    factor : float
        Adjusted close as served now / as served before, on ``date`` (1.0 for
        ``basis_unknown``).
    """

    symbol: str
    date: date
    factor: float
    kind: PastChangeKind

    def describe(self) -> str:
        """One line for a log or an alert."""
        if self.kind is PastChangeKind.READJUSTED:
            return (
                f"{self.symbol}: past prices re-adjusted x{self.factor:.6g} on/before "
                f"{self.date} (split or dividend)"
            )
        if self.kind is PastChangeKind.REBUILT:
            return (
                f"{self.symbol}: past returns changed from {self.date} (close x{self.factor:.6g},"
                " a data correction): strategy rebuilt from the adjusted history"
            )
        return (
            f"{self.symbol}: no bar basis in the saved state (older version): strategy rebuilt "
            f"from the adjusted history since {self.date}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "date": self.date.isoformat(),
            "factor": self.factor,
            "kind": self.kind.value,
        }


@dataclass(frozen=True)
class BarBasis:
    """What the strategy was fed last: the persisted half of the overlap comparison.

    Attributes
    ----------
    first_date : date
        The portfolio's first bar: a rebuild feeds the history from here.
    dates : tuple of date
        The last sessions fed (at most :data:`OVERLAP_SESSIONS`), increasing.
    closes : mapping of str to tuple of float
        Per symbol, the closes fed on ``dates`` (the strategy's basis).
    factors : mapping of str to float
        Per symbol, fed close / adjusted close as served when last fetched.
    """

    first_date: date
    dates: tuple[date, ...]
    closes: Mapping[str, tuple[float, ...]]
    factors: Mapping[str, float]

    def __post_init__(self) -> None:
        if not self.dates:
            raise ValueError("a bar basis needs at least one session")
        if list(self.dates) != sorted(set(self.dates)):
            raise ValueError(f"bar basis dates must increase: {self.dates}")
        if set(self.closes) != set(self.factors):
            raise ValueError(
                f"bar basis symbols differ: {sorted(self.closes)} {sorted(self.factors)}"
            )
        for symbol, values in self.closes.items():
            if len(values) != len(self.dates):
                raise ValueError(
                    f"bar basis {symbol}: {len(values)} closes for {len(self.dates)} dates"
                )

    @classmethod
    def start(cls, fed: pd.DataFrame, served: pd.DataFrame) -> BarBasis:
        """The basis after a first feed (its first row is the portfolio's first bar)."""
        return _advanced(pd.Timestamp(fed.index[0]).date(), (), {}, fed, served)

    def advance(self, fed: pd.DataFrame, served: pd.DataFrame) -> BarBasis:
        """The basis after also feeding ``fed``, which the bar source served as ``served``.

        Parameters
        ----------
        fed, served : DataFrame of shape (n_new, n_symbols)
            The new closes as fed to the strategy and as served; same index and columns.
        """
        return _advanced(self.first_date, self.dates, self.closes, fed, served)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": _BASIS_VERSION,
            "first_date": self.first_date.isoformat(),
            "dates": [d.isoformat() for d in self.dates],
            "closes": {s: list(v) for s, v in self.closes.items()},
            "factors": dict(self.factors),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BarBasis:
        """Rebuild a basis from :meth:`to_dict`.

        Raises
        ------
        ValueError
            Naming the field that is missing or malformed.
        """
        if data.get("version") != _BASIS_VERSION:
            raise ValueError(f"bar basis version {data.get('version')!r} is not {_BASIS_VERSION}")
        try:
            return cls(
                date.fromisoformat(str(data["first_date"])),
                tuple(date.fromisoformat(str(d)) for d in data["dates"]),
                {str(s): tuple(float(v) for v in vs) for s, vs in data["closes"].items()},
                {str(s): float(v) for s, v in data["factors"].items()},
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"bar basis: field {e} missing or malformed") from e


def _advanced(
    first: date,
    dates: tuple[date, ...],
    closes: Mapping[str, tuple[float, ...]],
    fed: pd.DataFrame,
    served: pd.DataFrame,
) -> BarBasis:
    new_dates = tuple(pd.Timestamp(t).date() for t in fed.index)
    kept: dict[str, tuple[float, ...]] = {}
    for symbol in fed.columns:
        new = tuple(float(v) for v in fed[symbol].to_numpy(dtype=float))
        kept[str(symbol)] = (*closes.get(str(symbol), ()), *new)[-OVERLAP_SESSIONS:]
    factors = {str(s): float(fed[s].iloc[-1]) / float(served[s].iloc[-1]) for s in fed.columns}
    return BarBasis(first, (*dates, *new_dates)[-OVERLAP_SESSIONS:], kept, factors)


@dataclass(frozen=True)
class Rebasing:
    """How the new bars join the strategy's history.

    Attributes
    ----------
    factors : dict of str to float
        Multiply the newly served closes by these to put them on the strategy's basis.
    rebuild : bool
        Past returns changed: feed a fresh strategy the whole history instead.
    """

    factors: dict[str, float]
    changes: tuple[PastChange, ...]
    rebuild: bool


def rebase(basis: BarBasis, served: pd.DataFrame, symbols: Sequence[str]) -> Rebasing:
    """Compare the refetched overlap with what was fed; say how to join the new bars.

    Parameters
    ----------
    basis : BarBasis
        What the strategy was fed last.
    served : DataFrame of shape (n_sessions, n_symbols)
        Validated closes as served now, covering every session of ``basis.dates``.
    symbols : sequence of str

    Raises
    ------
    BadMarketDataError
        A session of the overlap is not in ``served``, or a symbol has no basis.
    """
    index = pd.DatetimeIndex(served.index)
    wanted = pd.DatetimeIndex([pd.Timestamp(d) for d in basis.dates])
    absent = wanted.difference(index)
    if len(absent):
        raise BadMarketDataError(
            f"{', '.join(symbols)} on {absent[0].date()}: a session the strategy saw is missing "
            "from the refetched bars"
        )
    factors: dict[str, float] = {}
    changes: list[PastChange] = []
    rebuild = False
    for symbol in symbols:
        if symbol not in basis.closes:
            raise BadMarketDataError(f"{symbol}: no bar basis stored for this symbol")
        fed = np.asarray(basis.closes[symbol], dtype=float)
        now = served.loc[wanted, symbol].to_numpy(dtype=float)
        ratios = fed / now
        k = float(ratios[-1])
        factors[symbol] = k
        before = basis.factors[symbol]
        off = np.flatnonzero(np.abs(ratios / k - 1.0) > ADJUSTMENT_RTOL)
        if off.size:
            i = int(off[0])
            rebuild = True
            # served now / served then, on the first session whose return no longer matches
            changes.append(
                PastChange(
                    symbol, basis.dates[i], before / float(ratios[i]), PastChangeKind.REBUILT
                )
            )
        elif not math.isclose(k, before, rel_tol=ADJUSTMENT_RTOL):
            changes.append(
                PastChange(symbol, basis.dates[-1], before / k, PastChangeKind.READJUSTED)
            )
    return Rebasing(factors, tuple(changes), rebuild)
