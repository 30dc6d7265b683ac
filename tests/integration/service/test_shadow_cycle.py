"""Shadow benchmarks in the cycle: real Redis, the emulator over HTTP, the real alpaca-py clients.

Each done cycle advances static ERC and buy-and-hold over the bars it decided on. The tests
compare what was stored with a backtest of the same bars computed here, check that a crash right
after ``done`` neither loses nor double-counts a session, and that repeating an update changes
not one byte.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pandas as pd
import pytest
import redis

from regime_trader.service.cycle import CycleRunner
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.cycle_record import Step
from regime_trader.service.shadow import SHADOW_BENCHMARKS, ShadowBenchmarks, ShadowStore
from regime_trader.strategies.backtest import run_backtest
from regime_trader.strategies.registry import build_strategy
from tests.integration.service.cycle_fixtures import (
    cycle_context,
    small_portfolio,
    snapshot,
    unique_namespace,
)
from tests.support.emulator import CYCLE_START, EmulatorDriver

P = "core"
PORTFOLIO = small_portfolio(P, fill_timeout_secs=10)
SESSIONS = 8


class _Crash(BaseException):
    """A process dying at a step boundary: nothing in the cycle catches it."""


def _context(emu: EmulatorDriver, client: redis.Redis, ns: str) -> CycleContext:
    return cycle_context(emu.url, client, ns, PORTFOLIO)


def _trade(
    emu: EmulatorDriver, runner: CycleRunner, crash_on: frozenset[int] = frozenset()
) -> list[str]:
    """Open SESSIONS sessions; in those numbered in ``crash_on`` the first attempt dies at done."""
    sessions = []
    for i in range(SESSIONS):
        sessions.append(emu.open_session())
        if i in crash_on:
            with pytest.raises(_Crash):
                runner.run()
        assert runner.run().outcome in ("rebalanced", "no_trade", "already_done")
    return sessions


def _crash_at_done(step: str) -> None:
    if step == Step.DONE:
        raise _Crash(step)


def test_each_done_cycle_advances_the_books_as_a_backtest_of_the_same_bars(
    emu: EmulatorDriver, text_redis: redis.Redis
) -> None:
    ctx = _context(emu, text_redis, unique_namespace())
    sessions = _trade(emu, CycleRunner(ctx, owner="test", lock_ttl_secs=10))

    shadows = ShadowStore(ctx.store)
    ledger = shadows.ledger(P)
    assert ledger is not None
    assert (ledger.start_session, ledger.last_session) == (sessions[0], sessions[-1])
    assert ledger.equity_symbol == "SPY"
    first = ctx.store.cycle(P, sessions[0])
    assert first is not None and first.plan is not None and first.signal is not None
    assert ledger.start_equity == first.plan.equity == 100_000
    assert ledger.start_date == first.signal.date  # the bar the first cycle decided on

    # The same bars, fetched here without the service's code, and a backtest of them.
    start = date.fromisoformat(sessions[0]) - timedelta(days=int(300 * 1.5) + 10)
    last = ctx.store.cycle(P, sessions[-1])
    assert last is not None and last.signal is not None
    closes = ctx.bars.daily_closes(list(PORTFOLIO.symbols), start, date.fromisoformat(sessions[-1]))
    closes = closes.loc[: pd.Timestamp(last.signal.date)]
    points = {p.date: p for p in shadows.points(P)}
    tracked = sorted(d for d, p in points.items() if p.growth)
    assert tracked[0] == ledger.start_date and tracked[-1] == last.signal.date
    assert len(tracked) == SESSIONS  # one bar per session, none twice
    for name in SHADOW_BENCHMARKS:
        equity = run_backtest(
            closes,
            build_strategy(name, list(closes.columns), {}),
            start=ledger.start_date,
            cost_bps=0,
        ).strategy.equity
        assert [points[str(t.date())].growth[name] for t in equity.index] == equity.tolist()
        assert points[ledger.start_date].growth[name] == 1.0
    for day in tracked:
        assert points[day].closes == closes.loc[pd.Timestamp(day)].to_dict()
    # The paper account's equity of every session, as each cycle planned it.
    equities = shadows.paper_equity(P)
    assert [e.session for e in equities] == sessions
    for e in equities:
        record = ctx.store.cycle(P, e.session)
        assert record is not None and record.plan is not None
        assert e.equity == record.plan.equity
    exported = ctx.metrics.registry.get_sample_value(
        "regime_trader_shadow_equity_usd", {"portfolio": P, "benchmark": "buy_hold"}
    )
    assert exported == pytest.approx(100_000 * ledger.books["buy_hold"].growth)


def test_a_crash_right_after_done_neither_loses_nor_double_counts_a_session(
    emu: EmulatorDriver, text_redis: redis.Redis
) -> None:
    plain_ctx = _context(emu, text_redis, unique_namespace())
    _trade(emu, CycleRunner(plain_ctx, owner="test", lock_ttl_secs=10))
    emu.reset(timestamp=CYCLE_START)  # the same market again, a fresh account

    crashed_ctx = _context(emu, text_redis, unique_namespace())
    crashed = CycleRunner(crashed_ctx, owner="test", lock_ttl_secs=10, step_hook=_crash_at_done)
    restarted = CycleRunner(crashed_ctx, owner="restarted", lock_ttl_secs=10)
    # The first session (the start) and two later ones die at done; a new process goes on.
    sessions: list[str] = []
    for i in range(SESSIONS):
        sessions.append(emu.open_session())
        runner = crashed if i in (0, 3, 4) else restarted
        if runner is crashed:
            with pytest.raises(_Crash):
                runner.run()
            ledger = ShadowStore(crashed_ctx.store).ledger(P)
            assert ledger is None or ledger.last_session < sessions[-1]  # not yet advanced
        assert restarted.run().outcome in ("rebalanced", "no_trade", "already_done")

    plain, after_crashes = ShadowStore(plain_ctx.store), ShadowStore(crashed_ctx.store)
    assert after_crashes.ledger(P) == plain.ledger(P)
    assert after_crashes.points(P) == plain.points(P)
    assert [e.session for e in after_crashes.paper_equity(P)] == sessions


def test_repeating_an_update_changes_nothing(
    emu: EmulatorDriver, text_redis: redis.Redis, redis_client: redis.Redis
) -> None:
    ns = unique_namespace()
    ctx = _context(emu, text_redis, ns)
    sessions = _trade(emu, CycleRunner(ctx, owner="test", lock_ttl_secs=10))
    before = snapshot(redis_client, ns)
    shadow = ShadowBenchmarks(ctx)
    now = emu.clock().timestamp
    for session in sessions:  # every done cycle again, the last one included
        record = ctx.store.cycle(P, session)
        assert record is not None
        assert shadow.after_done(record, now).status == "up_to_date"
    assert snapshot(redis_client, ns) == before


def test_a_changed_universe_is_refused_naming_the_key(
    emu: EmulatorDriver, text_redis: redis.Redis
) -> None:
    ns = unique_namespace()
    ctx = _context(emu, text_redis, ns)
    sessions = _trade(emu, CycleRunner(ctx, owner="test", lock_ttl_secs=10))
    other = cycle_context(emu.url, text_redis, ns, small_portfolio(P, symbols=("SPY", "TLT")))
    record = ctx.store.cycle(P, sessions[-1])
    assert record is not None
    later = replace(record, session="2099-01-02")  # a later session of the same portfolio
    with pytest.raises(
        ValueError, match=rf"configuration says \['SPY', 'TLT'\]: delete {ns}:{P}:shadow"
    ):
        ShadowBenchmarks(other).after_done(later, emu.clock().timestamp)
