"""The signal step across corporate actions, corrections and thin symbols.

Bars come from :class:`AdjustingBars`, pure data in the test: raw closes on the emulator's
XNYS sessions, adjusted backward (as Alpaca's ``adjustment=all``) for the actions known on the
day asked for. The emulator thread answers the calendar, a real Redis holds the strategy state
between cycles. Every expected signal is computed directly: a fresh strategy fed the adjusted
history as of that day from the portfolio's first bar, which is what a backtest sees.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time

import numpy as np
import pandas as pd
import pytest
import redis

from regime_trader.service.bar_history import BASIS_KEY, PastChange, PastChangeKind
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.exceptions import BadMarketDataError
from regime_trader.service.signal_step import SignalResult, compute_signal
from regime_trader.strategies.base import Strategy
from regime_trader.strategies.missing_bars import CarriedClose
from regime_trader.strategies.reference import EqualWeight, StaticERC
from regime_trader.strategies.synthetic import generate_market
from tests.integration.service.cycle_fixtures import (
    cycle_context,
    small_portfolio,
    unique_namespace,
)
from tests.support.emulator import NY, EmulatorDriver

P = "adjust"
SYMBOLS = ("SPY", "TLT", "GLD")
PORTFOLIO = small_portfolio(P, "erc_static", strategy_params={"min_obs": 20})


@dataclass
class AdjustingBars:
    """Closes adjusted as of the last day asked for; raw closes, actions and gaps editable."""

    raw: pd.DataFrame
    actions: list[tuple[str, date, str, float]] = field(default_factory=list)
    missing: set[tuple[str, date]] = field(default_factory=set)

    def adjusted(self, as_of: date) -> pd.DataFrame:
        out = self.raw.loc[: pd.Timestamp(as_of)].copy()
        for symbol, ex_date, kind, value in self.actions:
            if ex_date > as_of:
                continue  # not known yet
            before = out.index < pd.Timestamp(ex_date)
            previous = float(self.raw[symbol].to_numpy()[: int(before.sum())][-1])  # raw
            out.loc[before, symbol] *= 1.0 / value if kind == "split" else 1.0 - value / previous
        return out

    def halve_without_action(self, symbol: str, day: date) -> None:
        """Raw closes from ``day`` on scaled so that ``day`` closes at 49% of the day before."""
        column = self.raw[symbol].to_numpy()
        i = int(pd.DatetimeIndex(self.raw.index).searchsorted(pd.Timestamp(day)))
        self.scale_from(symbol, day, 0.49 * column[i - 1] / column[i])

    def scale_from(self, symbol: str, day: date, factor: float) -> None:
        column = self.raw[symbol].to_numpy().copy()
        column[self.raw.index >= pd.Timestamp(day)] *= factor
        self.raw[symbol] = column

    def split(self, symbol: str, ex_date: date, ratio: float) -> None:
        """A split: raw closes from the ex-date on are divided by ``ratio``."""
        self.scale_from(symbol, ex_date, 1.0 / ratio)
        self.actions.append((symbol, ex_date, "split", ratio))

    def dividend(self, symbol: str, ex_date: date, yield_: float) -> None:
        """A cash dividend of ``yield_`` times the raw close before the ex-date."""
        previous = float(self.raw[symbol].to_numpy()[self.raw.index < pd.Timestamp(ex_date)][-1])
        self.scale_from(symbol, ex_date, 1.0 - yield_)
        self.actions.append((symbol, ex_date, "cash_dividend", yield_ * previous))

    def daily_closes(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        frame = self.adjusted(end).loc[pd.Timestamp(start) :, list(symbols)]
        for symbol, day in self.missing:
            if pd.Timestamp(day) in frame.index and symbol in frame.columns:
                frame.loc[pd.Timestamp(day), symbol] = np.nan
        return frame


@dataclass
class Desk:
    ctx: CycleContext
    bars: AdjustingBars
    client: redis.Redis
    sessions: list[date]

    def day(self, n: int) -> date:
        """The n-th session from 2024-03-04 (0), negative before."""
        return self.sessions[self.sessions.index(date(2024, 3, 4)) + n]

    def cycle(self, n: int, *, save: bool = True) -> SignalResult:
        day = self.day(n)
        result = compute_signal(self.ctx, day, datetime.combine(day, time(17), NY))
        if save:
            self.save(result.state)
        return result

    def save(self, state: dict[str, object]) -> None:
        self.client.set(self.ctx.store.key(P, "strategy"), json.dumps(state, allow_nan=False))

    def state(self) -> dict[str, object]:
        state = self.ctx.store.strategy_state(P)
        assert state is not None
        return state

    def expected_weights(self, n: int, frame: pd.DataFrame | None = None) -> dict[str, float]:
        """A fresh strategy on the adjusted history as of day n, from the first bar."""
        first = pd.Timestamp(str(self.state()[BASIS_KEY]["first_date"]))  # type: ignore[index]
        closes = self.bars.adjusted(self.day(n)) if frame is None else frame
        strategy = StaticERC(list(SYMBOLS), min_obs=20)
        return strategy.update(closes.loc[first:, list(SYMBOLS)]).weights


@pytest.fixture
def desk(emu: EmulatorDriver, text_redis: redis.Redis) -> Desk:
    ctx = cycle_context(emu.url, text_redis, unique_namespace(), PORTFOLIO)
    sessions = [s.date for s in ctx.broker.calendar(date(2022, 6, 1), date(2024, 4, 30))]
    index = pd.DatetimeIndex(sessions, name="date")
    raw = generate_market(len(sessions), list(SYMBOLS), seed=5).prices.set_axis(index)
    bars = AdjustingBars(raw)
    ctx.bars = bars
    return Desk(ctx, bars, text_redis, sessions)


def _close(got: dict[str, float], expected: dict[str, float], atol: float = 1e-12) -> bool:
    return all(abs(got[s] - expected[s]) <= atol for s in SYMBOLS)


def test_a_split_then_a_dividend_are_rescaled_reported_and_match_a_fresh_backtest(
    desk: Desk,
) -> None:
    first = desk.cycle(0)
    assert first.past_changes == () and first.signal.ready
    desk.bars.split("SPY", desk.day(1), 2.0)
    desk.bars.dividend("TLT", desk.day(2), 0.01)

    split = desk.cycle(1)
    dividend = desk.cycle(2)

    assert split.past_changes == (PastChange("SPY", desk.day(0), 0.5, PastChangeKind.READJUSTED),)
    (change,) = dividend.past_changes
    assert (change.symbol, change.date, change.kind) == (
        "TLT",
        desk.day(1),
        PastChangeKind.READJUSTED,
    )
    assert change.factor == pytest.approx(0.99, rel=1e-12)
    assert _close(split.signal.weights, desk.expected_weights(1))
    assert _close(dividend.signal.weights, desk.expected_weights(2))
    # Planning prices stay as served: the split halves SPY's price, it is not rescaled back.
    served = desk.bars.adjusted(desk.day(2))
    assert float(dividend.prices["SPY"]) == pytest.approx(served["SPY"].iloc[-1], rel=1e-15)


def test_a_corrected_past_close_rebuilds_the_strategy_from_the_whole_history(
    desk: Desk,
) -> None:
    desk.cycle(0)
    first_date = desk.state()[BASIS_KEY]["first_date"]  # type: ignore[index]
    corrected = desk.day(-2)
    column = desk.bars.raw["GLD"].to_numpy().copy()
    column[list(desk.bars.raw.index).index(pd.Timestamp(corrected))] *= 1.01
    desk.bars.raw["GLD"] = column

    result = desk.cycle(1)

    assert result.past_changes == (
        PastChange("GLD", corrected, pytest.approx(1.01, rel=1e-12), PastChangeKind.REBUILT),  # type: ignore[arg-type]
    )
    assert result.signal.weights == desk.expected_weights(1)  # a fresh feed: bit for bit
    assert desk.state()[BASIS_KEY]["first_date"] == first_date  # type: ignore[index]


def test_an_unadjusted_halving_after_the_last_seen_close_is_refused(desk: Desk) -> None:
    desk.cycle(0)
    state = desk.ctx.store.strategy_state(P)
    desk.bars.halve_without_action("SPY", desk.day(1))  # 49 after 100, the past unadjusted

    with pytest.raises(BadMarketDataError, match=rf"SPY on {desk.day(1)}: close .* moved 51%"):
        desk.cycle(1)

    assert desk.ctx.store.strategy_state(P) == state


def test_the_same_halving_with_its_split_passes(desk: Desk) -> None:
    """The control of the test above: a split explains the drop, and the guard sees that."""
    desk.cycle(0)
    desk.bars.halve_without_action("SPY", desk.day(1))
    desk.bars.actions.append(("SPY", desk.day(1), "split", 2.0))  # 49 after an adjusted 50

    result = desk.cycle(1)

    assert [c.kind for c in result.past_changes] == [PastChangeKind.READJUSTED]
    assert _close(result.signal.weights, desk.expected_weights(1))


def test_a_state_saved_without_a_bar_basis_is_rebuilt_from_the_backfill_window(
    desk: Desk,
) -> None:
    desk.cycle(0)
    legacy = {k: v for k, v in desk.state().items() if k != BASIS_KEY}
    desk.save(legacy)

    result = desk.cycle(1)

    kinds = {(c.symbol, c.kind) for c in result.past_changes}
    assert kinds == {(s, PastChangeKind.BASIS_UNKNOWN) for s in SYMBOLS}
    assert result.signal.weights == desk.expected_weights(1)
    assert BASIS_KEY in result.state


def test_a_thin_symbols_missing_bar_is_carried_and_reported(desk: Desk) -> None:
    desk.cycle(0)
    desk.bars.missing.add(("GLD", desk.day(1)))

    result = desk.cycle(1)

    assert result.carried == (
        CarriedClose("GLD", pd.Timestamp(desk.day(1)), pd.Timestamp(desk.day(0))),
    )
    filled = desk.bars.adjusted(desk.day(1))
    column = filled["GLD"].to_numpy().copy()
    column[-1] = column[-2]
    filled["GLD"] = column
    assert _close(result.signal.weights, desk.expected_weights(1, filled))
    # The next cycle still sees the gap in its overlap: carried again, compared equal, no rebuild.
    second = desk.cycle(2)
    assert second.past_changes == () and second.carried == ()


def test_a_carried_close_at_the_start_of_the_overlap_does_not_block_the_next_cycle(
    desk: Desk,
) -> None:
    """The overlap's first session was carried: the refetch must reach the close it came from."""
    desk.bars.missing.add(("GLD", desk.day(-4)))  # the oldest session the basis will remember
    first = desk.cycle(0)
    assert [c.session.date() for c in first.carried] == [desk.day(-4)]
    assert desk.state()[BASIS_KEY]["dates"][0] == desk.day(-4).isoformat()  # type: ignore[index]

    result = desk.cycle(1)

    assert result.past_changes == () and result.carried == ()
    assert _close(result.signal.weights, desk.expected_weights(1, _carried(desk, 1, -4)))


def test_a_thin_symbol_missing_on_the_first_backfill_session_starts_the_history_later(
    desk: Desk,
) -> None:
    start = desk.cycle(0, save=False)
    first = pd.Timestamp(str(start.state[BASIS_KEY]["first_date"])).date()
    desk.bars.missing.add(("GLD", first))  # nothing earlier in the window to carry

    result = desk.cycle(0)

    assert result.state[BASIS_KEY]["first_date"] > first.isoformat()
    assert result.carried == ()


def _carried(desk: Desk, n: int, missing: int) -> pd.DataFrame:
    """The adjusted history as of day n with GLD's close of day ``missing`` carried."""
    frame = desk.bars.adjusted(desk.day(n))
    column = frame["GLD"].to_numpy().copy()
    i = list(frame.index).index(pd.Timestamp(desk.day(missing)))
    column[i] = column[i - 1]
    frame["GLD"] = column
    return frame


def _fresh_weights(desk: Desk, n: int, strategy: Strategy) -> dict[str, float]:
    """``strategy`` fed the adjusted history as of day n from the stored basis's first bar."""
    first = pd.Timestamp(str(desk.state()[BASIS_KEY]["first_date"]))  # type: ignore[index]
    return strategy.update(desk.bars.adjusted(desk.day(n)).loc[first:, list(SYMBOLS)]).weights


def test_the_same_configuration_continues_the_stored_strategy_without_a_note(desk: Desk) -> None:
    desk.cycle(0)
    result = desk.cycle(1)
    assert result.notes == () and result.data_notes() == []


def test_edited_parameters_rebuild_the_strategy_from_the_adjusted_history(desk: Desk) -> None:
    desk.cycle(0)
    desk.ctx.portfolio = small_portfolio(P, "erc_static", strategy_params={"min_obs": 30})

    result = desk.cycle(1)

    (note,) = result.notes
    assert "erc_static min_obs" in note and "rebuilt" in note
    assert note in result.data_notes()
    assert result.signal.weights == _fresh_weights(desk, 1, StaticERC(list(SYMBOLS), min_obs=30))
    assert desk.cycle(2).notes == ()  # the rebuilt state is the configured strategy's


def test_another_strategy_in_the_configuration_replaces_the_stored_one(desk: Desk) -> None:
    desk.cycle(0)
    desk.ctx.portfolio = small_portfolio(P, "equal_weight")

    result = desk.cycle(1)

    assert result.notes == (
        "strategy changed (erc_static -> equal_weight): rebuilt from the adjusted history",
    )
    expected = EqualWeight(list(SYMBOLS))
    assert result.signal.weights == _fresh_weights(desk, 1, expected)
    assert desk.state()["strategy"] == "equal_weight"
