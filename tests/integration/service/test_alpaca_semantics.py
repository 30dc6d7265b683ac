"""The cycle reads Alpaca's answers as Alpaca means them: statuses, duplicates, account flags.

Real alpaca-py clients talk over HTTP to an emulator thread through a rewriting proxy
(:mod:`tests.integration.service.alpaca_proxy`), which turns the emulator's answers into the
ones a real account can give and the emulator cannot produce on demand: each of Alpaca's 18
order statuses, an undocumented one, an account flag, a duplicate whose lookup finds nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import redis

from regime_trader.service.alerts import Alert
from regime_trader.service.cycle import CycleRunner
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.order_status import PHASES, UNCONFIRMED, OrderPhase, OrderStatus
from regime_trader.service.portfolio_config import PortfolioConfig
from tests.integration.service.alpaca_proxy import AlpacaProxy, Rewrites, running_proxy
from tests.integration.service.cycle_fixtures import (
    alerts,
    cycle_context,
    small_portfolio,
    unique_namespace,
)
from tests.support.emulator import EmulatorDriver

P = "core"


def _portfolio(fill_timeout_secs: float) -> PortfolioConfig:
    return small_portfolio(P, fill_timeout_secs=fill_timeout_secs)


@dataclass
class World:
    emu: EmulatorDriver
    proxy: AlpacaProxy
    client: redis.Redis
    ns: str

    @property
    def rewrites(self) -> Rewrites:
        return self.proxy.rewrites

    def context(self, fill_timeout_secs: float = 10.0, poll: float = 0.02) -> CycleContext:
        ctx = cycle_context(self.proxy.url, self.client, self.ns, _portfolio(fill_timeout_secs))
        ctx.poll_interval_secs = poll
        return ctx

    def runner(self, ctx: CycleContext) -> CycleRunner:
        return CycleRunner(ctx, owner="test-owner", lock_ttl_secs=10)

    def alerts(self) -> list[Alert]:
        return alerts(self.client, self.ns, P)

    def orders(self, side: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.emu.orders() if side is None or o["side"] == side]


@pytest.fixture
def world(emu: EmulatorDriver, text_redis: redis.Redis) -> Iterator[World]:
    with running_proxy(emu.url) as proxy:
        yield World(emu, proxy, text_redis, unique_namespace())


def _hold_too_much_spy(world: World) -> str:
    """Open a session holding about $68k of SPY bought by hand: the cycle sells SPY first."""
    session = world.emu.open_session()
    world.emu.submit("SPY", "buy", "1000", "operator-setup-buy")
    return session


# ------------------------------------------------------------------ every documented status


@pytest.mark.parametrize("status", list(OrderStatus), ids=str)
def test_each_alpaca_status_decides_the_fill_wait(world: World, status: OrderStatus) -> None:
    world.rewrites.order_status = lambda order: status.value
    world.emu.open_session()
    ctx = world.context(fill_timeout_secs=0.5)
    outcome = world.runner(ctx).run()

    record = ctx.store.cycle(P, str(outcome.session))
    assert record is not None and record.finished, outcome
    rows = list(record.orders.values())
    assert rows and {r.status for r in rows} == {status.value}
    phase = PHASES[status]
    if phase is OrderPhase.OPEN:  # may still fill: waited for the whole bounded wait
        assert f"{len(rows)} orders not filled within 0.5 s" in outcome.reason
    elif phase is OrderPhase.FINAL:  # done as sent: nothing to say
        assert outcome.reason == ""
    else:  # ended without filling as sent: the reason names each order and its status
        assert f"{len(rows)} orders ended before filling fully" in outcome.reason
        assert all(f"{r.symbol} buy {status.value}" in outcome.reason for r in rows)
    assert "not filled within" not in outcome.reason or phase is OrderPhase.OPEN


def test_an_undocumented_status_stops_the_cycle_before_the_buys(world: World) -> None:
    world.rewrites.order_status = lambda order: "zombie" if order["side"] == "sell" else None
    session = _hold_too_much_spy(world)
    ctx = world.context()
    runner = world.runner(ctx)

    outcome = runner.run()
    assert outcome.outcome == "refused", outcome
    (sell,) = world.orders("sell")
    assert f"SPY sell {sell['client_order_id']}" in outcome.reason
    assert "'zombie' is not one Alpaca documents" in outcome.reason
    assert [o["client_order_id"] for o in world.orders("buy")] == ["operator-setup-buy"]
    record = ctx.store.cycle(P, session)
    assert record is not None and not record.finished and record.step == "sells_submitted"
    assert record.orders[sell["client_order_id"]].status == "zombie"
    (alert,) = [a for a in world.alerts() if "zombie" in a.summary]
    assert sell["client_order_id"] in alert.summary

    # The next wake-up sees the same state: refused again, one alert in all, still no buys.
    again = runner.run()
    assert again.outcome == "refused"
    assert len([a for a in world.alerts() if "zombie" in a.summary]) == 1
    assert [o["client_order_id"] for o in world.orders("buy")] == ["operator-setup-buy"]


class CrashError(Exception):
    """The process dies at a step boundary (nothing in the cycle catches it)."""


def test_the_interrupted_cycle_sweep_lists_orders_once_and_names_unknown_states(
    world: World,
) -> None:
    world.rewrites.order_status = lambda order: "zombie" if order["side"] == "sell" else None
    session = _hold_too_much_spy(world)
    ctx = world.context()

    def crash_after_the_sells(step: str) -> None:
        if step == "sells_submitted":
            raise CrashError(step)

    with pytest.raises(CrashError):
        CycleRunner(ctx, owner="killed", lock_ttl_secs=10, step_hook=crash_after_the_sells).run()
    (sell,) = world.orders("sell")
    world.emu.advance(to="next_close")  # the session is over before the restart
    world.rewrites.seen.clear()

    assert world.runner(ctx).run().outcome == "not_due"
    record = ctx.store.cycle(P, session)
    assert record is not None and record.finished and record.outcome == "interrupted"
    assert record.orders[sell["client_order_id"]].status == "zombie"
    (alert,) = [a for a in world.alerts() if "interrupted" in a.summary]
    assert f"in an unknown state: {sell['client_order_id']}: status 'zombie'" in alert.summary
    # Rows refreshed from one order list, not one lookup per planned order.
    paths = [path for _, method, path in world.rewrites.seen if path.startswith("/v2/orders")]
    assert len(paths) == 1 and paths[0].startswith("/v2/orders?status=all")
    assert [o["client_order_id"] for o in world.orders("buy")] == ["operator-setup-buy"]


# ------------------------------------------------------------------ duplicates


@pytest.mark.parametrize("code", [40010001, 42210000])
def test_a_duplicate_answer_for_a_placed_order_is_looked_up_not_rejected(
    world: World, code: int
) -> None:
    # The POST reached the broker but its answer was lost; the retry is told "duplicate".
    world.rewrites.duplicate_post = (code, True)
    world.emu.open_session()
    ctx = world.context()
    outcome = world.runner(ctx).run()

    assert outcome.outcome == "rebalanced", outcome
    record = ctx.store.cycle(P, str(outcome.session))
    assert record is not None
    placed = {o["client_order_id"]: o for o in world.orders()}
    assert set(record.orders) == set(placed) and len(placed) == world.rewrites.posts
    assert {r.status for r in record.orders.values()} == {"filled"}
    assert all(r.broker_id == placed[c]["id"] for c, r in record.orders.items())


def test_a_duplicate_no_lookup_finds_is_unconfirmed_and_fails_closed(world: World) -> None:
    world.rewrites.duplicate_post = (42210000, False)  # nothing reaches the emulator
    session = world.emu.open_session()
    ctx = world.context()
    outcome = world.runner(ctx).run()

    assert outcome.outcome == "refused", outcome
    record = ctx.store.cycle(P, session)
    assert record is not None and record.orders
    statuses = {r.status for r in record.orders.values()}
    assert statuses == {UNCONFIRMED}, "a duplicate answer must never be recorded as rejected"
    for coid, row in record.orders.items():
        assert "42210000" in row.error and "lookups found no order" in row.error
        assert coid in outcome.reason
    assert any("unknown state" in a.summary for a in world.alerts())
    assert world.orders() == []


# ------------------------------------------------------------------ account flags


@pytest.mark.parametrize("flag", ["trading_blocked", "account_blocked", "trade_suspended_by_user"])
def test_an_account_flag_refuses_planning_naming_it(world: World, flag: str) -> None:
    world.rewrites.account = {flag: True}
    session = world.emu.open_session()
    ctx = world.context()
    before = ctx.store.redis.get(f"{world.ns}:{P}:strategy")

    outcome = world.runner(ctx).run()
    assert outcome.outcome == "failed", outcome
    assert f"the account forbids trading: {flag} is set" in outcome.reason
    assert world.orders() == []
    record = ctx.store.cycle(P, session)
    assert record is not None and not record.finished and record.plan is None
    assert ctx.store.redis.get(f"{world.ns}:{P}:strategy") == before
    assert any(flag in a.summary and a.kind == "failed" for a in world.alerts())


# ------------------------------------------------------------------ margin account


def test_a_margin_account_is_invested_with_its_cash_only(world: World) -> None:
    # The emulator's default account is Alpaca paper's: Reg T margin, buying power 2x.
    session = world.emu.open_session()
    before = world.emu.account()
    assert before["multiplier"] == "2"
    assert Decimal(before["buying_power"]) >= 2 * Decimal(before["cash"]) > 0
    ctx = world.context()
    outcome = world.runner(ctx).run()

    assert (outcome.outcome, outcome.session) == ("rebalanced", session)
    after = world.emu.account()
    bought = sum(
        Decimal(o["filled_qty"]) * Decimal(o["filled_avg_price"]) for o in world.orders("buy")
    )
    assert Decimal(after["cash"]) >= 0, "buys borrowed on margin"
    assert bought <= Decimal(before["cash"])
    # All in, less the 1 % cash buffer: the target was reached with own money.
    assert bought >= Decimal("0.95") * Decimal(before["cash"])


# ------------------------------------------------------------------ rate-friendly fill wait


def test_the_fill_wait_lists_orders_once_per_round_a_second_apart(world: World) -> None:
    world.rewrites.order_status = lambda order: "new"  # never fills: the wait runs to its end
    world.emu.open_session()
    ctx = world.context(fill_timeout_secs=3.5, poll=1.0)
    outcome = world.runner(ctx).run()

    seen = world.rewrites.seen
    posts = [t for t, method, path in seen if method == "POST"]
    lookups = [t for t, method, path in seen if path.startswith("/v2/orders:by_client_order_id")]
    rounds = [t for t, method, path in seen if path.startswith("/v2/orders?status=all")]
    assert len(posts) >= 2 and "not filled within 3.5 s" in outcome.reason
    # One lookup per order before it is sent, none while waiting (not one per order per round).
    assert len(lookups) == len(posts) and max(lookups) < min(rounds)
    # The first round right after sending, then one list per second; the last at the deadline.
    # (rounds at 0, 1, 2, 3 s and 3.5 s; a slow machine may end the wait one round early)
    gaps = [b - a for a, b in itertools.pairwise(rounds)]
    assert 4 <= len(rounds) <= 5 and all(g >= 0.99 for g in gaps[:-1]), gaps
    assert rounds[-1] - rounds[0] >= 2.99
    assert rounds[0] - max(posts) < 0.5


# ------------------------------------------------------------------ broker day


def test_the_unreachable_alert_is_keyed_on_the_broker_day(world: World) -> None:
    ctx = world.context()
    runner = world.runner(ctx)
    assert runner.run().outcome == "not_due"  # 08:00 on 2024-03-04: the clock was read
    assert runner.broker_day() == "2024-03-04"

    world.emu.add_fault(path="/v2/clock", status=503)
    first, second = runner.run(), runner.run()
    assert (first.outcome, second.outcome) == ("failed", "failed")
    failed = [a for a in world.alerts() if a.kind == "failed"]
    # The simulated broker day, not the machine's, and once for the day.
    assert [a.session for a in failed] == ["2024-03-04"]
