"""Shadow benchmarks: what a reference strategy would have earned, advanced one bar at a time.

The live service compares its paper account with what static ERC and buy-and-hold would have
earned from the portfolio's first session on the same bars. :class:`ShadowBook` is that
comparison's arithmetic, exactly the backtest's (:func:`regime_trader.strategies.backtest.simulate`
with ``lag=1``): the decision taken at the close of bar t is executed at that close, from the
holdings drifted since the previous execution, pays ``cost_bps`` per unit of one-way turnover and
earns the return from t to t + 1. Fed the same closes in any number of pieces, with its state
saved and restored between them, a book's growth is :func:`simulate`'s equity bit for bit
(``tests/unit/strategies/test_shadow.py``).

Prices. Each piece of closes must repeat the last bar the book saw (an overlap of one row): the
return into the first new bar is taken inside the piece, so every return comes from one query of
the bar source, whatever adjustment basis that query was served on. The strategy inside the book
stays on the basis it started on: a piece is fed multiplied, per symbol, by the book's last close
over the piece's close of the same bar -- exactly 1.0 when the past was served unchanged, the
inverse of the factor after a split or a dividend re-adjusted it (the live strategy's own rule,
:mod:`regime_trader.service.bar_history`; every strategy's weights depend on returns only, the
scale-invariance contract of :class:`~regime_trader.strategies.base.Strategy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from regime_trader.strategies.base import Strategy
from regime_trader.strategies.registry import strategy_from_state

__all__ = ["ShadowBook", "ShadowBookState", "ShadowStep"]


@dataclass(frozen=True)
class ShadowStep:
    """One bar of a book after its start.

    Attributes
    ----------
    date : Timestamp
        The bar's session.
    growth : float
        Value of 1 unit invested at the start bar's close, at this bar's close.
    turnover : float
        One-way turnover of the execution that earned this bar's return.
    closes : tuple of float
        The bar's closes as fed to the strategy (the basis the book started on).
    """

    date: pd.Timestamp
    growth: float
    turnover: float
    closes: tuple[float, ...]


@dataclass(frozen=True)
class ShadowBookState:
    """Everything a :class:`ShadowBook` needs to continue exactly (JSON values only).

    Attributes
    ----------
    strategy : mapping
        The reference strategy's own versioned state (:meth:`Strategy.state_dict`).
    growth : float
        Value of 1 unit invested at the start, at the last bar's close.
    held : tuple of float
        Holdings' weights before the pending execution (drifted since the last one).
    target : tuple of float
        The pending decision, executed at the next bar's return.
    closes : tuple of float
        The last bar's closes as fed to the strategy (the basis the book started on).
    last_date : str
        The last bar's session, ISO format.
    cost_bps : float
    """

    strategy: Mapping[str, Any]
    growth: float
    held: tuple[float, ...]
    target: tuple[float, ...]
    closes: tuple[float, ...]
    last_date: str
    cost_bps: float


class ShadowBook:
    """A reference strategy's value path, bar by bar (see the module docstring).

    Parameters
    ----------
    strategy : Strategy
        A fresh reference strategy (e.g. ``erc_static``, ``buy_hold``); the book owns it.
    cost_bps : float, default 0
        Cost per unit of one-way turnover, in basis points (the backtest's ``cost_bps``).

    Attributes
    ----------
    growth_ : float
        Value of 1 unit invested at the start bar's close, at ``last_date_``'s close.
    last_date_ : Timestamp or None
        The last bar seen; None before :meth:`start`.
    target_ : ndarray of shape (n_assets,)
        The decision at ``last_date_``'s close (executed against the next bar's return).
    """

    def __init__(self, strategy: Strategy, *, cost_bps: float = 0.0) -> None:
        if not np.isfinite(cost_bps) or cost_bps < 0:
            raise ValueError(f"cost_bps must be a finite number >= 0, got {cost_bps!r}")
        if strategy.last_date is not None:
            raise ValueError(
                f"strategy {strategy.name!r} has already seen bars to {strategy.last_date}"
            )
        self.strategy = strategy
        self.cost_bps = float(cost_bps)
        n = len(strategy.symbols)
        self.growth_ = 1.0
        self.last_date_: pd.Timestamp | None = None
        self.target_ = np.zeros(n)
        self._held = np.zeros(n)
        self._closes = np.full(n, np.nan)

    @property
    def symbols(self) -> list[str]:
        return self.strategy.symbols

    def start(self, closes: pd.DataFrame) -> Self:
        """Warm the strategy up on ``closes``; the book starts at its last row's close.

        Parameters
        ----------
        closes : DataFrame of shape (n_bars, n_assets)
            Validated daily closes, oldest first, a column per symbol. Every row is history the
            strategy learns from; its decision at the last row is the first one executed.

        Returns
        -------
        ShadowBook
            ``self``, with ``growth_`` 1.

        Raises
        ------
        ValueError
            If the book has started already or ``closes`` is empty.
        """
        if self.last_date_ is not None:
            raise ValueError(f"the book started already (last bar {self.last_date_.date()})")
        if closes.empty:
            raise ValueError("start needs at least one bar")
        signal = self.strategy.update(closes)
        self._closes = closes.loc[:, self.symbols].to_numpy(dtype=float)[-1]
        self.target_ = self._weights(signal.weights)
        self.last_date_ = pd.Timestamp(closes.index[-1])
        return self

    def advance(self, closes: pd.DataFrame) -> list[ShadowStep]:
        """Execute the pending decision against each new bar, then decide on it.

        Parameters
        ----------
        closes : DataFrame of shape (n_bars, n_assets)
            Validated daily closes whose rows include the last bar the book saw (the overlap)
            and then the new bars, oldest first. Rows before the overlap are ignored.

        Returns
        -------
        list of ShadowStep
            One per new bar, in order; empty if ``closes`` has no bar after ``last_date_``.

        Raises
        ------
        ValueError
            Before :meth:`start`, or if ``closes`` lacks the overlap row while it has new bars.
        """
        if self.last_date_ is None:
            raise ValueError("advance before start: call start() with the warm-up history")
        index = pd.DatetimeIndex(closes.index)
        new = index > self.last_date_
        if not new.any():
            return []
        if self.last_date_ not in index:
            raise ValueError(
                f"closes from {index[0].date()} do not repeat the book's last bar "
                f"{self.last_date_.date()}: the return into the first new bar is unknown"
            )
        at = int(index.searchsorted(self.last_date_))  # unique and sorted: its position
        values = closes.loc[:, self.symbols].to_numpy(dtype=float)[at:]
        fed = values * (self._closes / values[0])  # on the book's basis (x 1.0 if unchanged)
        steps = []
        cost = self.cost_bps / 1e4
        for i in range(1, len(values)):
            # The backtest's pct_change: this query's close over its previous one.
            day = values[i] / values[i - 1] - 1.0
            turnover = float(np.abs(self.target_ - self._held).sum())
            gross = float(self.target_ @ day)
            self.growth_ *= 1.0 + ((1.0 - cost * turnover) * (1.0 + gross) - 1.0)
            self._held = self.target_ * (1.0 + day) / (1.0 + gross)
            date = pd.Timestamp(index[at + i])
            row = pd.DataFrame(fed[i : i + 1], index=pd.DatetimeIndex([date]), columns=self.symbols)
            self.target_ = self._weights(self.strategy.update(row).weights)
            self.last_date_ = date
            steps.append(ShadowStep(date, self.growth_, turnover, tuple(fed[i].tolist())))
        self._closes = fed[-1]
        return steps

    @property
    def closes_(self) -> dict[str, float]:
        """The last bar's closes on the book's basis (the one its first bars were served on)."""
        return dict(zip(self.symbols, self._closes.tolist(), strict=True))

    def state(self) -> ShadowBookState:
        """The book's state after the last bar (see :class:`ShadowBookState`).

        Raises
        ------
        ValueError
            Before :meth:`start` (a book without a bar has nothing to continue).
        """
        if self.last_date_ is None:
            raise ValueError("a book that has not started has no state")
        return ShadowBookState(
            strategy=self.strategy.state_dict(),
            growth=self.growth_,
            held=tuple(self._held.tolist()),
            target=tuple(self.target_.tolist()),
            closes=tuple(self._closes.tolist()),
            last_date=self.last_date_.isoformat(),
            cost_bps=self.cost_bps,
        )

    @classmethod
    def from_state(cls, state: ShadowBookState) -> ShadowBook:
        """Rebuild a book that continues exactly as the one that saved ``state`` would.

        Raises
        ------
        ValueError
            If a vector does not have one value per symbol of the strategy.
        """
        strategy = strategy_from_state(state.strategy)
        n = len(strategy.symbols)
        for name in ("held", "target", "closes"):
            if len(getattr(state, name)) != n:
                raise ValueError(
                    f"shadow book {name}: {len(getattr(state, name))} values for {n} symbols"
                )
        book = cls.__new__(cls)
        book.strategy = strategy
        book.cost_bps = float(state.cost_bps)
        book.growth_ = float(state.growth)
        book.last_date_ = pd.Timestamp(state.last_date)
        book.target_ = np.asarray(state.target, dtype=float)
        book._held = np.asarray(state.held, dtype=float)
        book._closes = np.asarray(state.closes, dtype=float)
        return book

    def _weights(self, weights: Mapping[str, float]) -> np.ndarray:
        return np.array([weights[s] for s in self.symbols], dtype=float)
