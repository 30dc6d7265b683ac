"""The signal step: fetch and validate the bars the strategy has not seen, update it.

The strategy is restored from the store (or built fresh on a portfolio's first cycle), fed the
validated closes of completed sessions, and its decision is returned with the planning prices.
Nothing is stored here: :mod:`service.cycle` writes the result into the cycle record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from service.alpaca_parsing import SessionDay
from service.cycle_context import CycleContext
from service.exceptions import BadMarketDataError, ReconciliationError
from service.marketdata import validate_bars
from service.strategy_factory import build_strategy
from strategies.base import BarsError, Signal, Strategy
from strategies.registry import strategy_from_state

__all__ = ["SignalResult", "compute_signal"]


@dataclass(frozen=True)
class SignalResult:
    """The strategy's decision and what it is based on."""

    signal: Signal
    state: dict[str, Any]
    prices: dict[str, str]  # planning prices (Decimal strings): the current partial bar if any
    reason: str = ""


def _fresh_or_restored(ctx: CycleContext) -> Strategy:
    state = ctx.store.strategy_state(ctx.portfolio.name)
    if state is None:
        p = ctx.portfolio
        return build_strategy(p.strategy, p.symbols, p.strategy_params)
    strategy = strategy_from_state(state)
    if strategy.symbols != list(ctx.portfolio.symbols):
        raise ReconciliationError(
            f"stored strategy trades {strategy.symbols}, configuration says "
            f"{list(ctx.portfolio.symbols)}: clear the strategy state to start over"
        )
    return strategy


def _check_continuity(strategy: Strategy, closes: pd.DataFrame, sessions: list[SessionDay]) -> None:
    """The first new bar must be the session right after the last one the strategy saw."""
    if strategy.last_date is None:
        return
    last = strategy.last_date.date()
    following = [s.date for s in sessions if s.date > last]
    first_new = closes.index[0].date()
    if following and first_new != following[0]:
        raise BadMarketDataError(
            f"{', '.join(closes.columns)} on {following[0]}: session missing (the strategy last "
            f"saw {last}, the next bar is {first_new})"
        )


def compute_signal(ctx: CycleContext, session: date, now: datetime) -> SignalResult:
    """Fetch and validate the bars the strategy has not seen, update it, keep the prices.

    Raises
    ------
    BadMarketDataError
        On any bar problem (nothing is stored; the strategy state stays as it was).
    """
    p = ctx.portfolio
    strategy = _fresh_or_restored(ctx)
    if strategy.last_date is not None:
        start = strategy.last_date.date() + timedelta(days=1)
    else:
        start = session - timedelta(days=int(p.history_sessions * 1.5) + 10)
    sessions = ctx.broker.calendar(start - timedelta(days=10), session)
    raw = ctx.bars.daily_closes(list(p.symbols), start, session)
    if raw.empty:
        raise BadMarketDataError(f"{', '.join(p.symbols)}: no bars since {start}")
    closes = validate_bars(raw, sessions, as_of=now)
    _check_continuity(strategy, closes, sessions)
    try:
        signal = strategy.update(closes)
    except BarsError as e:
        raise BadMarketDataError(str(e)) from e
    today = raw.loc[pd.DatetimeIndex(raw.index).date == session]  # the partial bar, if any
    source = today if len(today) and bool((today.to_numpy() > 0).all()) else closes
    prices = {s: str(Decimal(repr(float(source[s].iloc[-1])))) for s in p.symbols}
    reason = "" if signal.ready else str(signal.diagnostics.get("reason", "strategy not ready"))
    return SignalResult(signal, strategy.state_dict(), prices, reason)
