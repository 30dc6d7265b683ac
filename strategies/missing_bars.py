"""The policy for a missing bar of a thin symbol, shared by the live cycle and the backtest.

A thinly traded symbol sometimes has no daily bar for a session that every other symbol of the
portfolio has (Alpaca's IEX feed prints no bar when IEX saw no trade). The policy:

- the symbol's last close is carried into that session (a zero return that day, as a price that
  did not trade), for at most ``max_sessions`` consecutive sessions;
- every carried close is reported as a :class:`CarriedClose` (symbol, session, and the session
  whose close was carried), so the caller logs a warning and records it on its result;
- a longer run, a symbol with no earlier close in the frame to carry, or ``max_sessions`` = 0
  raises :class:`MissingBarsError` naming the symbol and the dates.

A session that no symbol has is not a row of the frame at all: that is a missing session, which
the live validation refuses and a backtest file cannot show. :func:`carry_missing_closes` is the
one function both paths call (``regime_trader.service.marketdata.validate_bars`` live,
``regime_trader.service.pricefile.load_prices(..., max_carry_sessions=...)`` in a backtest), so
both feed the strategy the same closes from the same bars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from regime_trader.strategies.base import BarsError

__all__ = [
    "DEFAULT_MAX_CARRY_SESSIONS",
    "CarriedClose",
    "CarryResult",
    "MissingBarsError",
    "carry_missing_closes",
]

# Three sessions cover a thin ETF's occasional quiet day (or a long weekend's two) without
# hiding a delisting or a feed that stopped: a week without a trade is refused.
DEFAULT_MAX_CARRY_SESSIONS = 3


class MissingBarsError(BarsError):
    """A symbol's bars are missing beyond what the carry policy allows."""


@dataclass(frozen=True)
class CarriedClose:
    """The close of session ``source`` carried into ``session``, which has no bar of ``symbol``."""

    symbol: str
    session: pd.Timestamp
    source: pd.Timestamp

    def describe(self) -> str:
        return f"{self.symbol} on {self.session.date()}: close of {self.source.date()} carried"


@dataclass(frozen=True)
class CarryResult:
    """Closes with the gaps of thin symbols filled, and what was filled."""

    closes: pd.DataFrame
    carried: tuple[CarriedClose, ...] = ()


def carry_missing_closes(closes: pd.DataFrame, max_sessions: int) -> CarryResult:
    """Carry each symbol's last close into at most ``max_sessions`` sessions it has no bar for.

    Parameters
    ----------
    closes : DataFrame of shape (n_sessions, n_symbols)
        Closes by increasing session date; NaN where a symbol has no bar. Rows where every
        symbol is NaN are left as they are (a missing session is the caller's check).
    max_sessions : int
        Longest run of consecutive sessions one symbol may be carried through; 0 refuses any
        missing bar.

    Returns
    -------
    CarryResult
        A new frame (the input is not modified) and the carried closes in date order, then
        symbol order.

    Raises
    ------
    MissingBarsError
        Naming the symbol and the dates: a run longer than ``max_sessions``, or a missing bar
        with no earlier close in the frame.
    ValueError
        If ``max_sessions`` is not an int >= 0.
    """
    if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 0:
        raise ValueError(f"max_sessions must be an int >= 0, got {max_sessions!r}")
    values = closes.to_numpy(dtype=float, copy=True)
    missing = np.isnan(values)
    some = ~missing.all(axis=1)  # rows with at least one bar: a thin symbol's gap
    dates = pd.DatetimeIndex(closes.index)
    carried: list[CarriedClose] = []
    for col, symbol in enumerate(closes.columns):
        rows = np.flatnonzero(missing[:, col] & some)
        for run in _runs(rows):
            first, last = int(run[0]), int(run[-1])
            span = f"{dates[first].date()}" + (f" to {dates[last].date()}" if last > first else "")
            if first == 0 or np.isnan(values[first - 1, col]):
                raise MissingBarsError(f"{symbol} on {span}: no bar, and no earlier close to carry")
            if max_sessions == 0:
                raise MissingBarsError(
                    f"{symbol} on {span}: no bar (symbol missing; carrying the last close is off)"
                )
            if len(run) > max_sessions:
                raise MissingBarsError(
                    f"{symbol} on {span}: no bar for {len(run)} sessions (at most "
                    f"{max_sessions} may carry the last close, of {dates[first - 1].date()})"
                )
            values[first : last + 1, col] = values[first - 1, col]
            carried.extend(
                CarriedClose(str(symbol), dates[i], dates[first - 1])
                for i in range(first, last + 1)
            )
    carried.sort(key=lambda c: (c.session, list(closes.columns).index(c.symbol)))
    frame = pd.DataFrame(values, index=closes.index, columns=closes.columns)
    return CarryResult(frame, tuple(carried))


def _runs(rows: np.ndarray) -> list[np.ndarray]:
    """Split increasing row numbers into runs of consecutive rows."""
    if rows.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    return list(np.split(rows, breaks))
