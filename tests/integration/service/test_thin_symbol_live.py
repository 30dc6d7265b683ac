"""A thin symbol's missing IEX bar against the emulator: carried up to 3 sessions, then refused.

The emulator lists GLD sessions without a ``feed=iex`` daily bar (as when IEX printed no trade);
the signal step fetches through alpaca-py's IEX feed, carries GLD's last close into them with a
warning on the result, and refuses a longer run naming the symbol and the dates.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import pandas as pd
import pytest
import redis

from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.exceptions import BadMarketDataError
from regime_trader.service.signal_step import SignalResult, compute_signal
from regime_trader.strategies.missing_bars import CarriedClose
from tests.integration.service.cycle_fixtures import (
    cycle_context,
    small_portfolio,
    unique_namespace,
)
from tests.support.emulator import START, EmulatorDriver, emulator_config
from tests.support.fixtures import shared_emulator_fixture

P = "thin"
GAP = (date(2024, 1, 3), date(2024, 1, 4))  # carried: two sessions
LONG_GAP = (date(2024, 1, 8), date(2024, 1, 9), date(2024, 1, 10), date(2024, 1, 11))
PORTFOLIO = small_portfolio(P, "erc_static")


# The clock: 08:00 New York on Tuesday 2024-01-02 (START), for every test of the module.
shared_emulator = shared_emulator_fixture(
    emulator_config(iex_missing=tuple(("GLD", d) for d in (*GAP, *LONG_GAP)))
)


@pytest.fixture
def emulator_start() -> datetime:
    return START


@pytest.fixture
def ctx(emu: EmulatorDriver, text_redis: redis.Redis) -> CycleContext:
    return cycle_context(emu.url, text_redis, unique_namespace(), PORTFOLIO)


def _cycle(ctx: CycleContext, session: str) -> SignalResult:
    clock = ctx.broker.clock()
    assert str(clock.timestamp.date()) == session
    result = compute_signal(ctx, clock.timestamp.date(), clock.timestamp)
    key = ctx.store.key(P, "strategy")
    ctx.store.redis.set(key, json.dumps(result.state, allow_nan=False))  # as a done cycle
    return result


def test_a_missing_iex_bar_carries_the_last_close_and_a_long_run_is_refused(
    ctx: CycleContext, emu: EmulatorDriver
) -> None:
    _cycle(ctx, emu.open_session())  # 2024-01-02: history up to 2023-12-29
    for _ in range(3):
        session = emu.next_session()  # 2024-01-05: bars of the 2nd, 3rd and 4th are new

    result = _cycle(ctx, session)

    second = pd.Timestamp("2024-01-02")
    assert result.carried == tuple(CarriedClose("GLD", pd.Timestamp(d), second) for d in GAP)
    served = ctx.bars.daily_closes(["GLD"], date(2024, 1, 2), date(2024, 1, 2))
    state = ctx.store.strategy_state(P)  # the state as one JSON document
    assert state is not None
    assert state["last_close"][2] == float(served["GLD"].iloc[0])  # fed the carried close

    for _ in range(5):
        session = emu.next_session()  # 2024-01-12: four sessions without a GLD bar
    state = ctx.store.strategy_state(P)
    with pytest.raises(
        BadMarketDataError,
        match="GLD on 2024-01-08 to 2024-01-11: no bar for 4 sessions \\(at most 3",
    ):
        _cycle(ctx, session)
    assert ctx.store.strategy_state(P) == state
