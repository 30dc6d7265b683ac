"""The signal step: fetch and validate bars, join them to the strategy's history, update it.

The strategy is restored from the store (or built fresh on a portfolio's first cycle) and fed
the validated closes of completed sessions it has not seen. Because Alpaca adjusts past bars
for splits and dividends at query time, each cycle refetches the last sessions the strategy saw
too and :mod:`regime_trader.service.bar_history` decides how the new bars join the old ones: on the
same basis, rescaled after a re-adjustment (reported as a
:class:`~regime_trader.service.bar_history.PastChange`), or by rebuilding the strategy from the
whole adjusted history after a correction. A thin symbol's missing bar is carried by the policy of
:mod:`regime_trader.strategies.missing_bars` (``max_carry_sessions``). Nothing is stored here:
:mod:`regime_trader.service.cycle` writes the result (a state document: the fields of the
compact state that changed since the stored one, with the bar basis under
:data:`~regime_trader.service.bar_history.BASIS_KEY`, see
:mod:`regime_trader.service.saved_strategy`) into the cycle record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import structlog
from threadpoolctl import threadpool_limits

from regime_trader.service.alpaca_parsing import SessionDay
from regime_trader.service.bar_history import (
    BASIS_KEY,
    BarBasis,
    PastChange,
    PastChangeKind,
    rebase,
)
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.exceptions import BadMarketDataError, ReconciliationError
from regime_trader.service.macro_source import load_macro
from regime_trader.service.marketdata import ValidatedBars, check_bars
from regime_trader.service.portfolio_config import PortfolioConfig
from regime_trader.service.saved_strategy import SavedStrategy, state_document
from regime_trader.strategies.base import BarsError, Signal, Strategy
from regime_trader.strategies.macro import join_macro
from regime_trader.strategies.missing_bars import CarriedClose
from regime_trader.strategies.registry import build_strategy, strategy_from_state

__all__ = [
    "FetchedBars",
    "SignalResult",
    "backfill_start",
    "compute_signal",
    "fetch_checked_bars",
    "strategy_change",
]

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SignalResult:
    """The strategy's decision and what it is based on.

    Attributes
    ----------
    state : dict
        The state document of the strategy after the update (JSON: the changed fields of its
        compact state and the bar basis under ``BASIS_KEY``), for the cycle record.
    prices : dict of str to str
        Planning prices (Decimal strings): the current partial bar if any, as served now.
    reason : str
        Why the signal is not ready, if it is not.
    past_changes : tuple of PastChange
        Prices already seen that the bar source now serves differently: re-adjustments
        (split or dividend, the strategy continued on its own basis) and rebuilds (past
        returns changed, or no basis was saved). Empty on an ordinary day.
    carried : tuple of CarriedClose
        The new sessions where a thin symbol's last close was carried.
    notes : tuple of str
        Other facts for the alert: a configured strategy (profile) that differs from the stored
        one, which was therefore rebuilt from the adjusted history.
    """

    signal: Signal
    state: dict[str, Any]
    prices: dict[str, str]
    reason: str = ""
    past_changes: tuple[PastChange, ...] = ()
    carried: tuple[CarriedClose, ...] = ()
    notes: tuple[str, ...] = ()

    def data_notes(self) -> list[str]:
        """One line per strategy change, re-adjustment, rebuild or carried bar (alert, record)."""
        changes = [c.describe() for c in self.past_changes]
        return [*self.notes, *changes, *(c.describe() for c in self.carried)]


@dataclass(frozen=True)
class FetchedBars:
    """Bars as served and as checked, for the signal step and the shadow benchmarks."""

    raw: pd.DataFrame  # as served, partial bar included
    bars: ValidatedBars  # completed sessions, thin symbols' gaps carried


@dataclass(frozen=True)
class _Feed:
    strategy: Strategy
    fed: pd.DataFrame  # what the strategy is fed now (its own basis)
    basis: BarBasis  # what the state will remember
    fetched: FetchedBars
    changes: tuple[PastChange, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. the strategy changed and was rebuilt


def max_carry_sessions(portfolio: PortfolioConfig) -> int:
    """The portfolio's carry limit for a thin symbol's missing bars."""
    return portfolio.max_carry_sessions


def fetch_checked_bars(
    ctx: CycleContext, start: date, session: date, now: datetime, keep: date | None = None
) -> FetchedBars:
    """Fetch and check the bars from ``start``; rows before ``keep`` are only context.

    A window can open on a thin symbol's missing bar whose carried close lies before it; such
    leading rows are dropped (up to ``keep``, the first session that must be in the answer),
    so a gap at the edge of a window never blocks every later cycle.
    """
    p = ctx.portfolio
    sessions: list[SessionDay] = ctx.broker.calendar(start - timedelta(days=10), session)
    raw = ctx.bars.daily_closes(list(p.symbols), start, session)
    if raw.empty:
        raise BadMarketDataError(f"{', '.join(p.symbols)}: no bars since {start}")
    raw = _without_leading_gaps(raw, keep)
    bars = check_bars(raw, sessions, as_of=now, max_carry_sessions=max_carry_sessions(p))
    return FetchedBars(raw, bars)


def _without_leading_gaps(raw: pd.DataFrame, keep: date | None) -> pd.DataFrame:
    complete = raw.notna().all(axis=1).to_numpy()
    if not complete.any():
        return raw  # a symbol without any bar: check_bars names it
    first = int(complete.argmax())
    if keep is not None:
        first = min(first, int((pd.DatetimeIndex(raw.index) < pd.Timestamp(keep)).sum()))
    return raw.iloc[first:]


def _overlap_start(ctx: CycleContext, basis: BarBasis) -> date:
    """A few sessions before the overlap: the closes a carried bar in it may come from."""
    # max_carry sessions span at most 7/5 as many calendar days, plus a few holidays.
    return basis.dates[0] - timedelta(days=2 * max_carry_sessions(ctx.portfolio) + 5)


def _restored(saved: SavedStrategy, portfolio: PortfolioConfig) -> Strategy:
    strategy = strategy_from_state(saved.state())
    if strategy.symbols != list(portfolio.symbols):
        raise ReconciliationError(
            f"stored strategy trades {strategy.symbols}, configuration says "
            f"{list(portfolio.symbols)}: clear the strategy state to start over"
        )
    return strategy


def _fresh(ctx: CycleContext) -> Strategy:
    p = ctx.portfolio
    return build_strategy(p.strategy, p.symbols, p.strategy_params)


def _from_history(ctx: CycleContext, start: date, session: date, now: datetime) -> _Feed:
    """A fresh strategy fed every completed session from ``start``: what a backtest sees."""
    fetched = fetch_checked_bars(ctx, start, session, now)
    closes = fetched.bars.closes
    return _Feed(_fresh(ctx), closes, BarBasis.start(closes, closes), fetched)


def backfill_start(ctx: CycleContext, session: date) -> date:
    """The first calendar day fetched for a strategy built from history (a fresh one)."""
    return session - timedelta(days=int(ctx.portfolio.history_sessions * 1.5) + 10)


def strategy_change(restored: Strategy, configured: Strategy) -> str:
    """Why the configured strategy is not the restored one ("" if it is the same)."""
    if restored.name != configured.name:
        what = f"{restored.name} -> {configured.name}"
    else:
        was, now = restored.settings(), configured.settings()
        changed = [k for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)]
        if not changed:
            return ""
        what = f"{configured.name} {', '.join(changed)}"
    return f"strategy changed ({what}): rebuilt from the adjusted history"


def _continued(ctx: CycleContext, saved: SavedStrategy, session: date, now: datetime) -> _Feed:
    p = ctx.portfolio
    strategy = _restored(saved, p)
    changed = strategy_change(strategy, _fresh(ctx))
    if changed:
        # A new profile (or edited parameters) decides from the whole adjusted history, as its
        # backtest does, never from the state another strategy left.
        _log.warning("configured strategy differs from the stored one; rebuilding", detail=changed)
        feed = _from_history(ctx, backfill_start(ctx, session), session, now)
        return replace(feed, notes=(changed,))
    try:
        if saved.basis is None:
            raise KeyError(BASIS_KEY)
        basis = BarBasis.from_dict(saved.basis)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        # A state saved before the basis existed (or a damaged one): the history is the truth.
        _log.warning("no usable bar basis in the strategy state; rebuilding", error=str(e))
        feed = _from_history(ctx, backfill_start(ctx, session), session, now)
        change = (
            PastChange(s, feed.basis.first_date, 1.0, PastChangeKind.BASIS_UNKNOWN)
            for s in p.symbols
        )
        return _Feed(feed.strategy, feed.fed, feed.basis, feed.fetched, tuple(change))
    if strategy.last_date is None or strategy.last_date.date() != basis.dates[-1]:
        raise ReconciliationError(
            f"stored strategy last saw {strategy.last_date}, its bar basis "
            f"{basis.dates[-1]}: clear the strategy state to start over"
        )
    fetched = fetch_checked_bars(ctx, _overlap_start(ctx, basis), session, now, keep=basis.dates[0])
    rebasing = rebase(basis, fetched.bars.closes, p.symbols)
    if rebasing.rebuild:
        feed = _from_history(ctx, basis.first_date, session, now)
        return _Feed(feed.strategy, feed.fed, feed.basis, feed.fetched, rebasing.changes)
    served = fetched.bars.closes
    new = served.loc[pd.DatetimeIndex(served.index) > strategy.last_date]
    # The strategy's basis: each return from its last close into the new bars is the served one.
    fed = new.mul(pd.Series(rebasing.factors), axis=1)
    basis = basis.advance(fed, new) if len(new) else basis
    return _Feed(strategy, fed, basis, fetched, rebasing.changes)


def _with_macro(portfolio: PortfolioConfig, strategy: Strategy, fed: pd.DataFrame) -> pd.DataFrame:
    """The closes with the true macro series beside them, if the strategy reads them.

    The file is read afresh each cycle and joined as the backtest joins its ``--macro`` file
    (:func:`~regime_trader.strategies.macro.join_macro`: each bar takes the latest row on or
    before its session, so rows the file holds beyond the last bar are never read).
    """
    if not strategy.extra_inputs:
        return fed
    if portfolio.macro_file is None:
        raise BadMarketDataError(
            f"the strategy reads {list(strategy.extra_inputs)}: the portfolio names no macro_file"
        )
    try:
        return join_macro(fed, load_macro(portfolio.macro_file))
    except ValueError as e:  # MacroFileError is one
        raise BadMarketDataError(f"macro series: {e}") from e


def compute_signal(ctx: CycleContext, session: date, now: datetime) -> SignalResult:
    """Fetch and validate bars, join them to the strategy's history, update it.

    Raises
    ------
    BadMarketDataError
        On any bar problem (nothing is stored; the strategy state stays as it was).
    ReconciliationError
        The stored state belongs to another universe or is inconsistent.
    """
    p = ctx.portfolio
    saved = ctx.store.saved_strategy(p.name)
    if saved is None:
        feed = _from_history(ctx, backfill_start(ctx, session), session, now)
    else:
        feed = _continued(ctx, saved, session, now)
    seen = None if saved is None else saved.last_date
    previous = None if seen is None else pd.Timestamp(seen)
    try:
        # One thread, as the backtest runs (service/backtest_cli.py): the same arithmetic, and
        # no OpenMP/BLAS oversubscription on a shared machine (hmmlearn's k-means start took
        # 0.09 s on one thread against 7 s unlimited on this 2-core machine under load).
        with threadpool_limits(limits=1):
            signal = feed.strategy.update(_with_macro(p, feed.strategy, feed.fed))
    except BarsError as e:
        raise BadMarketDataError(str(e)) from e
    for change in feed.changes:
        _log.warning(
            "past prices changed",
            symbol=change.symbol,
            kind=change.kind.value,
            date=change.date.isoformat(),
            factor=change.factor,
            detail=change.describe(),
        )
    carried = tuple(
        c for c in feed.fetched.bars.carried if previous is None or c.session > previous
    )
    for c in carried:
        _log.warning(
            "missing bar carried",
            symbol=c.symbol,
            session=str(c.session.date()),
            carried_from=str(c.source.date()),
        )
    raw, served = feed.fetched.raw, feed.fetched.bars.closes
    today = raw.loc[pd.DatetimeIndex(raw.index).date == session]  # the partial bar, if any
    source = today if len(today) and bool((today.to_numpy() > 0).all()) else served
    prices = {s: str(Decimal(repr(float(source[s].iloc[-1])))) for s in p.symbols}
    reason = "" if signal.ready else str(signal.diagnostics.get("reason", "strategy not ready"))
    state_out = state_document(feed.strategy.save_state(), feed.basis.to_dict(), saved)
    return SignalResult(signal, state_out, prices, reason, feed.changes, carried, feed.notes)
