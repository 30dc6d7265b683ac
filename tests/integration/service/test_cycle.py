"""The daily cycle in-process: real adapters over HTTP to an emulator thread, a real Redis.

Each test resets the emulator (fresh $100,000 account, clock at 08:00 New York on Monday
2024-03-04, market closed) and uses its own Redis namespace, then drives the simulated clock
through ``/admin`` and calls :meth:`CycleRunner.run` the way the scheduler's wake-ups do.
The process-level versions of the happy path, SIGKILL at each step and two replicas live in
``tests/e2e``; here each scenario looks at what one wake-up stores, sends and alerts.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest
import redis

from regime_trader.service.alerts import Alert
from regime_trader.service.cycle import CycleRunner
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.cycle_record import STEP_ORDER, CycleRecord
from regime_trader.service.dry_run import describe_dry_run
from regime_trader.service.emulator import start_in_thread
from regime_trader.service.marketdata import AlpacaBars, CsvBars
from regime_trader.service.portfolio_config import PortfolioConfig
from tests.integration.service.cycle_fixtures import (
    alerts,
    cycle_context,
    namespace_keys,
    small_portfolio,
    snapshot,
    unique_namespace,
)
from tests.support.emulator import (
    CYCLE_START,
    FAST,
    KEY_ID,
    SECRET_KEY,
    EmulatorDriver,
    emulator_config,
)

P = "core"
SYMBOLS = ("SPY", "TLT", "GLD")
# A strategy without a model fit keeps each cycle at tens of milliseconds; the regime
# strategy itself runs in test_a_session_runs_once_per_day.
FAST_PORTFOLIO = small_portfolio(P, fill_timeout_secs=10)


@dataclass
class World:
    """One test's emulator, Redis clients and namespace."""

    emu: EmulatorDriver
    client: redis.Redis  # decode_responses, for the store
    raw: redis.Redis  # bytes, for byte-exact comparisons
    ns: str

    def context(self, portfolio: PortfolioConfig = FAST_PORTFOLIO, **kwargs: Any) -> CycleContext:
        return cycle_context(self.emu.url, self.client, self.ns, portfolio, **kwargs)

    def runner(self, ctx: CycleContext, owner: str = "test-owner", **kwargs: Any) -> CycleRunner:
        return CycleRunner(ctx, owner=owner, lock_ttl_secs=10, **kwargs)

    def keys(self) -> list[str]:
        return namespace_keys(self.client, self.ns)

    def strategy_bytes(self) -> bytes | None:
        """The strategy key's serialised value (DUMP: byte-exact for a hash as for a string)."""
        return cast(bytes | None, self.raw.dump(f"{self.ns}:{P}:strategy"))

    def alerts(self) -> list[Alert]:
        return alerts(self.client, self.ns, P)

    def coids(self) -> list[str]:
        return [str(o["client_order_id"]) for o in self.emu.orders()]


@pytest.fixture
def world(emu: EmulatorDriver, text_redis: redis.Redis, redis_client: redis.Redis) -> World:
    return World(emu, text_redis, redis_client, unique_namespace())


def _assert_each_order_once(coids: list[str]) -> None:
    twice = [c for c, n in Counter(coids).items() if n > 1]
    assert twice == [], f"orders sent twice: {twice}"


# ----------------------------------------------------------------------------- when to run


@pytest.mark.parametrize(
    ("minutes_after_open", "reason"),
    [(None, "market closed"), (10, "10:00")],  # 09:40, before the 10:00 schedule
    ids=["market-closed", "before-the-schedule-time"],
)
def test_a_cycle_not_due_stores_nothing_and_sends_nothing(
    world: World, minutes_after_open: int | None, reason: str
) -> None:
    session = None
    if minutes_after_open is not None:
        session = world.emu.open_session(minutes_after_open=minutes_after_open)

    outcome = world.runner(world.context()).run()

    assert (outcome.outcome, outcome.session) == ("not_due", session)
    assert reason in outcome.reason
    assert world.keys() == []
    assert world.emu.orders() == []


def test_a_session_runs_once_per_day(world: World) -> None:
    # The real strategy (a Gaussian HMM fit on the emulator's history) on this one; the
    # portfolio calls GLD an equity, and its alert groups the risk so.
    portfolio = small_portfolio(P, "regime_erc", asset_classes={"GLD": "equity"})
    session = world.emu.open_session()
    runner = world.runner(world.context(portfolio))
    posts = world.emu.count_requests("POST", "/v2/orders")

    first = runner.run()
    sent = world.emu.orders()
    second = runner.run()

    assert (first.outcome, first.session) == ("rebalanced", session)
    assert first.orders == len(sent) > 0
    assert (second.outcome, second.session, second.orders) == ("already_done", session, 0)
    assert world.emu.orders() == sent  # nothing new, nothing changed
    assert world.emu.hits(posts) == len(sent)  # not even a refused duplicate
    assert all(o["status"] == "filled" for o in sent)
    store = runner.ctx.store
    record = store.cycle(P, session)
    assert record is not None
    assert (record.step, record.outcome, record.attempts) == ("done", "rebalanced", 1)
    assert set(record.orders) == {o["client_order_id"] for o in sent}
    state = store.strategy_state(P)
    assert state is not None
    assert pd.Timestamp(state["last_date"]).date() == date(2024, 3, 1)  # the last complete bar
    assert [h["session"] for h in store.history(P)] == [session]
    assert store.status(P)["last_outcome"] == "rebalanced"
    assert store.lock_owner(P) is None
    (alert,) = world.alerts()
    assert re.fullmatch(
        r"\d+% of today's risk is in (equities \(SPY, GLD\)|bonds \(TLT\)); "
        r"in stress it would be \d+%",
        str(alert.details["risk"]),
    )
    # What this version wrote is what its typed record writes back, field by field.
    raw = cast(dict[str, str], world.client.hgetall(store.key(P, "cycle", session)))
    assert CycleRecord.from_hash(P, session, raw).to_hash() == raw


def test_a_portfolio_locked_by_another_process_is_left_alone(world: World) -> None:
    world.emu.open_session()
    ctx = world.context()
    assert ctx.store.acquire_lock(P, "the-other-replica", 30)

    outcome = world.runner(ctx).run()

    assert outcome.outcome == "locked"
    assert world.keys() == [f"{world.ns}:{P}:lock"]
    assert ctx.store.lock_owner(P) == "the-other-replica"
    assert world.emu.orders() == []


# ----------------------------------------------------------------------------- alerts


def test_the_alert_of_a_done_cycle_is_published_exactly_once(world: World) -> None:
    session = world.emu.open_session()
    runner = world.runner(world.context())

    outcomes = [runner.run().outcome for _ in range(3)]
    world.emu.advance(minutes=30)
    outcomes.append(runner.run().outcome)

    assert outcomes == ["rebalanced", "already_done", "already_done", "already_done"]
    (alert,) = world.alerts()
    assert (alert.kind, alert.session, alert.severity) == ("rebalanced", session, "info")
    assert len(alert.details["orders"]) == 3


class _CrashError(Exception):
    """The process dies right after a step is stored (SIGKILL, power loss)."""


def test_a_crash_between_done_and_the_alert_publishes_it_once_on_the_next_run(
    world: World,
) -> None:
    session = world.emu.open_session()
    ctx = world.context()

    def crash_at_done(step: str) -> None:
        if step == "done":
            raise _CrashError(step)

    with pytest.raises(_CrashError):
        world.runner(ctx, step_hook=crash_at_done).run()
    assert world.alerts() == []

    survivor = world.runner(ctx, owner="after-restart")
    outcomes = [survivor.run().outcome for _ in range(3)]

    assert outcomes == ["already_done"] * 3
    (alert,) = world.alerts()
    assert (alert.kind, alert.session) == ("rebalanced", session)
    record = ctx.store.cycle(P, session)
    assert record is not None
    assert record.alerted


# ----------------------------------------------------------------------------- halt


def test_a_halted_portfolio_refuses_alerts_once_and_trades_after_resume(world: World) -> None:
    session = world.emu.open_session()
    ctx = world.context()
    ctx.store.halt(P, "earnings week", by="ops")
    runner = world.runner(ctx)

    wake_ups = []
    for _ in range(3):
        wake_ups.append(runner.run())
        world.emu.advance(minutes=5)

    assert [o.outcome for o in wake_ups] == ["halted"] * 3
    assert all("earnings week" in o.reason for o in wake_ups)
    assert world.emu.orders() == []
    # Only the refusal is stored: the cycle record and its index, the status, the alert.
    assert world.keys() == sorted(
        f"{world.ns}:{k}"
        for k in ("alerts", f"{P}:cycle:{session}", f"{P}:cycles", f"{P}:halt", f"{P}:status")
    )
    record = ctx.store.cycle(P, session)
    assert record is not None
    assert (record.step, record.plan, record.signal, record.orders) == ("started", None, None, {})
    assert "earnings week" in (record.error or "")
    assert ctx.store.status(P)["last_outcome"] == "halted"
    (halted,) = world.alerts()
    assert (halted.kind, halted.session) == ("halted", session)
    assert "earnings week" in halted.summary

    assert ctx.store.resume(P)
    resumed = runner.run()

    assert (resumed.outcome, resumed.session) == ("rebalanced", session)
    assert len(world.emu.orders()) == resumed.orders == 3
    assert [a.kind for a in world.alerts()] == ["halted", "rebalanced"]
    assert ctx.store.status(P)["last_outcome"] == "rebalanced"


def test_the_status_after_a_resumed_cycle_shows_no_stale_refusal(world: World) -> None:
    world.emu.open_session()
    ctx = world.context()
    ctx.store.halt(P, "earnings week", by="ops")
    runner = world.runner(ctx)
    assert runner.run().outcome == "halted"
    ctx.store.resume(P)

    assert runner.run().outcome == "rebalanced"

    status = ctx.store.status(P)
    assert status["last_outcome"] == "rebalanced"
    assert "earnings week" not in json.dumps(status)


def test_a_halt_during_a_cycle_takes_effect_at_the_next_step_boundary(world: World) -> None:
    # `regime-trader halt`: "persisted; takes effect at the next step boundary", and it
    # promises "no new order will be sent until 'regime-trader resume'".
    session = world.emu.open_session()
    ctx = world.context()

    def operator_halts(step: str) -> None:
        if step == "planned":
            ctx.store.halt(P, "operator pressed halt", by="ops")

    outcome = world.runner(ctx, step_hook=operator_halts).run()

    assert world.emu.orders() == []
    assert (outcome.outcome, outcome.session) == ("halted", session)


# ----------------------------------------------------------------------------- reconciliation


def test_a_foreign_open_order_at_the_broker_fails_reconciliation(
    tmp_path: Path, world: World
) -> None:
    """An order nobody in this service placed is open: plan nothing, send nothing.

    The emulator fills every order at once while the market is open and fills queued orders
    at the open, so a resting order during a session exists only in a saved state: an order
    queued after the close, with the state file's clock then moved past the next open without
    replaying that open (what an order held at Alpaca, e.g. a limit order, looks like).
    """
    state = tmp_path / "emulator.json"
    first = start_in_thread(emulator_config(state_file=state))
    emu = EmulatorDriver.attach(first)
    try:
        emu.reset(timestamp=CYCLE_START)
        emu.open_session()
        ctx = cycle_context(emu.url, world.client, world.ns, FAST_PORTFOLIO)
        assert world.runner(ctx).run().outcome == "rebalanced"
        ours = [o["client_order_id"] for o in emu.orders()]
        emu.advance(to="next_close")
        emu.submit("SPY", "buy", "1", "operator-manual-buy")
    finally:
        emu.http.close()
        first.stop()
    saved = json.loads(state.read_text(encoding="utf-8"))
    saved["now"] = "2024-03-05T15:01:00+00:00"  # 10:01 New York, next session, open
    state.write_text(json.dumps(saved), encoding="utf-8")

    second = start_in_thread(emulator_config(state_file=state))
    emu = EmulatorDriver.attach(second)
    try:
        assert emu.clock().is_open
        (foreign,) = [o for o in emu.orders() if o["client_order_id"] == "operator-manual-buy"]
        assert foreign["status"] == "accepted"
        ctx = cycle_context(emu.url, world.client, world.ns, FAST_PORTFOLIO)
        state_before = world.strategy_bytes()
        assert state_before is not None

        outcome = world.runner(ctx).run()

        assert (outcome.outcome, outcome.session) == ("failed", "2024-03-05")
        assert "open orders at the broker" in outcome.reason
        assert "operator-manual-buy" in outcome.reason
        assert sorted(o["client_order_id"] for o in emu.orders()) == sorted(
            [*ours, "operator-manual-buy"]
        )
        assert world.strategy_bytes() == state_before
        record = ctx.store.cycle(P, "2024-03-05")
        assert record is not None
        assert record.plan is None
        assert record.step == "signal"
        failed = [a for a in world.alerts() if a.session == "2024-03-05"]
        assert [(a.kind, a.severity) for a in failed] == [("failed", "error")]
        assert "operator-manual-buy" in failed[0].summary
    finally:
        emu.http.close()
        second.stop()


def test_an_order_queued_while_closed_is_filled_at_the_open(world: World) -> None:
    """Why the test above needs a saved state: opening the market fills queued orders."""
    world.emu.submit("SPY", "buy", "1", "operator-manual-buy")

    world.emu.open_session()

    (order,) = world.emu.orders()
    assert order["status"] == "filled"
    assert world.runner(world.context()).run().outcome == "rebalanced"


# ----------------------------------------------------------------------------- bad data

CORRUPT_DAY = "2024-03-06"


def _corrupt(frame: pd.DataFrame, how: str) -> pd.DataFrame:
    day = pd.Timestamp(CORRUPT_DAY)
    out = frame.copy()
    if how == "gap":
        return out.drop(index=day)
    if how == "nan":
        out.loc[day, "SPY"] = float("nan")
    elif how == "jump":
        previous = out.index[list(out.index).index(day) - 1]
        out.loc[day, "TLT"] = out.loc[previous, "TLT"] * 1.6  # +60% in one session
    elif how == "stale":
        return out.loc[:day]  # the last complete session (2024-03-07) is missing
    return out


@pytest.mark.parametrize(
    ("how", "named"),
    [
        ("gap", "SPY"),
        ("nan", "SPY"),
        ("jump", "TLT"),
        ("stale", "SPY"),
    ],
)
def test_bad_market_data_is_refused_and_the_strategy_state_is_kept(
    tmp_path: Path, world: World, how: str, named: str
) -> None:
    world.emu.open_session()
    assert world.runner(world.context()).run().outcome == "rebalanced"
    for _ in range(4):
        session = world.emu.next_session()  # 2024-03-08: 03-04 .. 03-07 are new bars
    complete = AlpacaBars(KEY_ID, SECRET_KEY, url_override=world.emu.url, policy=FAST)
    good = complete.daily_closes(list(SYMBOLS), date(2023, 1, 3), date(2024, 3, 7))
    prices = tmp_path / "bars.csv"
    _corrupt(good, how).to_csv(prices, index_label="date", date_format="%Y-%m-%d")
    ctx = world.context(bars=CsvBars(prices))
    state_before = world.strategy_bytes()
    orders_before = world.emu.orders()

    outcome = world.runner(ctx).run()

    assert (outcome.outcome, outcome.session) == ("refused", session)
    assert world.strategy_bytes() == state_before is not None
    assert world.emu.orders() == orders_before
    record = ctx.store.cycle(P, session)
    assert record is not None
    assert (record.step, record.plan, record.pending_state) == ("started", None, None)
    (alert,) = [a for a in world.alerts() if a.session == session]
    assert (alert.kind, alert.severity) == ("skipped", "warning")
    assert named in alert.summary
    assert CORRUPT_DAY in alert.summary  # the stale case: the last bar there is on that day


def test_the_same_csv_without_corruption_trades(tmp_path: Path, world: World) -> None:
    """The control for the test above: its CSV round trip itself is not what is refused."""
    world.emu.open_session()
    assert world.runner(world.context()).run().outcome == "rebalanced"
    for _ in range(4):
        session = world.emu.next_session()
    complete = AlpacaBars(KEY_ID, SECRET_KEY, url_override=world.emu.url, policy=FAST)
    good = complete.daily_closes(list(SYMBOLS), date(2023, 1, 3), date(2024, 3, 7))
    prices = tmp_path / "bars.csv"
    good.to_csv(prices, index_label="date", date_format="%Y-%m-%d")
    ctx = world.context(bars=CsvBars(prices))

    outcome = world.runner(ctx).run()

    assert (outcome.outcome, outcome.session) in {("rebalanced", session), ("no_trade", session)}
    state = ctx.store.strategy_state(P)
    assert state is not None
    assert pd.Timestamp(state["last_date"]).date() == date(2024, 3, 7)


# ----------------------------------------------------------------------------- broker faults


def test_a_503_burst_on_the_account_fails_the_attempt_and_the_next_wake_up_completes(
    world: World,
) -> None:
    session = world.emu.open_session()
    ctx = world.context()
    runner = world.runner(ctx)
    world.emu.add_fault(path="/v2/account", method="GET", status=503, count=FAST.retry_attempts + 5)

    failed = runner.run()

    assert (failed.outcome, failed.session) == ("failed", session)
    assert "/v2/account" in failed.reason
    assert world.emu.orders() == []
    assert world.strategy_bytes() is None
    (alert,) = world.alerts()
    assert (alert.kind, alert.severity) == ("failed", "error")
    assert "/v2/account" in alert.summary

    world.emu.clear_faults()
    world.emu.advance(minutes=5)
    recovered = runner.run()

    assert (recovered.outcome, recovered.session) == ("rebalanced", session)
    assert len(world.emu.orders()) == recovered.orders == 3
    assert world.strategy_bytes() is not None
    assert [a.kind for a in world.alerts()] == ["failed", "rebalanced"]
    record = ctx.store.cycle(P, session)
    assert record is not None
    assert (record.step, record.attempts) == ("done", 2)


@pytest.mark.parametrize("restarts", [False, True], ids=["one-process", "restart-each-time"])
def test_a_persisting_broker_outage_alerts_once_per_session(world: World, restarts: bool) -> None:
    session = world.emu.open_session()
    ctx = world.context()
    runner = world.runner(ctx)
    outcomes: list[str] = []
    # The same outage seen by three wake-ups; only how long the retries took differs (the
    # reason says "failed after 4 attempts in 0.0 s", then "in 0.5 s").
    for latency_ms in (0, 150, 0):
        world.emu.clear_faults()
        world.emu.add_fault(path="/v2/account", method="GET", status=503, latency_ms=latency_ms)
        if restarts:  # a new process (or the other replica) remembers only what Redis holds
            runner = world.runner(ctx, owner=f"process-{latency_ms}-{len(outcomes)}")
        outcomes.append(runner.run().outcome)
        world.emu.advance(minutes=5)

    assert outcomes == ["failed"] * 3
    assert [(a.kind, a.session) for a in world.alerts()] == [("failed", session)]


def test_a_lost_lock_stops_the_attempt_and_the_new_owner_finishes_without_duplicates(
    world: World,
) -> None:
    session = world.emu.open_session()
    ctx = world.context()
    lock = ctx.store.key(P, "lock")

    def paused_past_the_ttl(step: str) -> None:
        if step == "buys_planned":  # another replica takes over while this one stalls
            world.client.set(lock, "replica-b", px=30_000)

    posts = world.emu.count_requests("POST", "/v2/orders")

    lost = world.runner(ctx, owner="replica-a", step_hook=paused_past_the_ttl).run()

    assert (lost.outcome, lost.session) == ("lost_lock", session)
    assert ctx.store.lock_owner(P) == "replica-b"  # replica-a did not release b's lock
    record = ctx.store.cycle(P, session)
    assert record is not None
    assert record.step == "buys_planned"  # nothing written after the takeover
    assert len(world.coids()) <= 1  # at most the order in flight when the write was fenced
    assert world.alerts() == []

    world.client.delete(lock)  # replica-b's attempt, resumed from the stored step
    finished = world.runner(ctx, owner="replica-b").run()

    assert (finished.outcome, finished.session) == ("rebalanced", session)
    coids = world.coids()
    _assert_each_order_once(coids)
    assert len(coids) == 3
    assert world.emu.hits(posts) == 3  # replica-b looked up the order in flight first
    done = ctx.store.cycle(P, session)
    assert done is not None
    assert set(done.orders) == set(coids)


# ----------------------------------------------------------------------------- stop and resume


@pytest.mark.parametrize("stop_at", ["signal", "planned", "buys_planned", "buys_submitted"])
def test_a_stop_request_ends_the_attempt_and_the_next_run_resumes_without_resending(
    world: World, stop_at: str
) -> None:
    session = world.emu.open_session()
    ctx = world.context()
    reached: list[str] = []

    def note(step: str) -> None:
        reached.append(step)

    stopping = world.runner(
        ctx, owner="sigterm", step_hook=note, stop_requested=lambda: stop_at in reached
    )
    posts = world.emu.count_requests("POST", "/v2/orders")

    stopped = stopping.run()

    assert (stopped.outcome, stopped.session) == ("stopped", session)
    assert reached[-1] == stop_at
    record = ctx.store.cycle(P, session)
    assert record is not None
    assert record.step == stop_at
    assert ctx.store.lock_owner(P) is None  # released at once, not left to the TTL
    assert world.strategy_bytes() is None
    sent_before = world.coids()
    submitted = STEP_ORDER.index(stop_at) >= STEP_ORDER.index("buys_submitted")
    assert len(sent_before) == (3 if submitted else 0)
    assert world.alerts() == []
    plan_before = record.plan

    resumed = world.runner(ctx, owner="after-restart").run()

    assert (resumed.outcome, resumed.session) == ("rebalanced", session)
    coids = world.coids()
    _assert_each_order_once(coids)
    assert len(coids) == 3
    assert world.emu.hits(posts) == 3  # each order was sent once, across both attempts
    assert set(sent_before) <= set(coids)
    after = ctx.store.cycle(P, session)
    assert after is not None
    assert (after.step, after.attempts, after.cycle_id) == ("done", 2, record.cycle_id)
    if plan_before is not None:
        assert after.plan == plan_before  # replayed, not recomputed
    assert set(after.orders) == set(coids)
    assert [a.kind for a in world.alerts()] == ["rebalanced"]


# ----------------------------------------------------------------------------- dry run


def test_a_dry_run_sends_nothing_and_stores_nothing(world: World) -> None:
    world.emu.open_session()
    ctx = world.context()
    assert world.runner(ctx).run().outcome == "rebalanced"
    session = world.emu.next_session()
    keys_before = snapshot(world.raw, world.ns)
    orders_before = world.emu.orders()

    text = describe_dry_run(ctx)

    assert f"{P} {session}" in text
    assert "dry run" in text
    assert snapshot(world.raw, world.ns) == keys_before
    assert world.emu.orders() == orders_before
    assert ctx.store.cycle(P, session) is None


def test_a_dry_run_of_a_new_portfolio_shows_the_orders_it_would_send(world: World) -> None:
    world.emu.open_session()
    ctx = world.context()

    text = describe_dry_run(ctx)

    buys = [line.split()[3] for line in text.splitlines() if line.strip().startswith("would buy")]
    assert sorted(buys) == sorted(SYMBOLS)
    assert world.keys() == []
    assert world.emu.orders() == []
