"""The Redis schema on a real Redis: lock semantics, fenced writes, atomic completion, caps.

Each test gets its own namespace on the conftest's database (flushed around every test), so
nothing it writes can collide with another test's keys.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from regime_trader.service.cycle_record import (
    OrderRow,
    Outcome,
    Plan,
    PlannedOrder,
    SignalSummary,
    Step,
)
from regime_trader.service.order_status import OrderStatus
from regime_trader.service.store import LockLostError, Store, StoreUnavailableError
from tests.integration.service.cycle_fixtures import namespace_keys, unique_namespace

P = "core"
DAY = "2024-03-04"
SIGNAL = SignalSummary(
    date="2024-03-01", weights={"SPY": 0.5, "TLT": 0.5}, cash=0.0, ready=True, regime_label="calm"
)
EMPTY_PLAN = Plan((), {}, {}, {}, Decimal("1000"))
SPY_BUY = PlannedOrder("SPY", "buy", Decimal(2), "rt-core-SPY-buy", Decimal(140))
ROW = OrderRow("SPY", "buy", Decimal(2), "rt-core-SPY-buy", OrderStatus.NEW, broker_id="b-1")
STATE = {"strategy": "equal_weight", "symbols": ["SPY", "TLT"], "last_date": "2024-03-01"}


@pytest.fixture
def make_store(text_redis: redis.Redis) -> Callable[..., Store]:
    def make(**caps: Any) -> Store:
        return Store(text_redis, unique_namespace(), **caps)

    return make


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store()


def _complete(store: Store, owner: str, session: str = DAY, **overrides: Any) -> None:
    kwargs: dict[str, Any] = {
        "outcome": Outcome.REBALANCED,
        "strategy_state": STATE,
        "signal": SIGNAL,
        "status": {"last_outcome": "rebalanced", "last_session": session, "orders": 2},
    }
    store.complete_cycle(P, session, owner, **{**kwargs, **overrides})


def _started(store: Store, owner: str, session: str = DAY) -> None:
    assert store.acquire_lock(P, owner, 30)
    store.begin_cycle(P, session, owner, "cycle-1")


def _cycles_by_a(store: Store, sessions: list[str], *, complete: bool = False) -> None:
    """Owner ``a`` takes the lock and begins a cycle of each session in turn (and completes it)."""
    assert store.acquire_lock(P, "a", 30)
    for session in sessions:
        store.begin_cycle(P, session, "a", f"id-{session}")
        if complete:
            _complete(store, "a", session)


def _take_over(store: Store, loser: str, winner: str) -> None:
    """``loser``'s lock expires (a long pause) and ``winner`` takes the portfolio."""
    store.redis.delete(store.key(P, "lock"))  # what the TTL does, without the wait
    assert store.acquire_lock(P, winner, 30)
    assert store.lock_owner(P) == winner != loser


# ----------------------------------------------------------------------------- lock


def test_a_held_lock_refuses_a_second_owner(store: Store) -> None:
    assert store.acquire_lock(P, "a", 30)

    assert not store.acquire_lock(P, "b", 30)
    assert not store.acquire_lock(P, "a", 30)  # not re-entrant either
    assert store.lock_owner(P) == "a"


def test_locks_of_different_portfolios_are_independent(store: Store) -> None:
    assert store.acquire_lock("core", "a", 30)

    assert store.acquire_lock("growth", "b", 30)


def test_only_the_owner_renews_the_lock(store: Store) -> None:
    assert store.acquire_lock(P, "a", 1)
    lock = store.key(P, "lock")

    assert not store.renew_lock(P, "b", 60)
    assert store.redis.pttl(lock) <= 1000
    assert store.renew_lock(P, "a", 60)
    assert 1000 < store.redis.pttl(lock) <= 60_000
    assert store.lock_owner(P) == "a"


def test_a_release_by_a_non_owner_does_nothing(store: Store) -> None:
    assert store.acquire_lock(P, "a", 30)

    assert not store.release_lock(P, "b")
    assert store.lock_owner(P) == "a"
    assert not store.acquire_lock(P, "b", 30)

    assert store.release_lock(P, "a")
    assert store.lock_owner(P) is None
    assert store.acquire_lock(P, "b", 30)


def test_an_expired_lock_lets_another_owner_in_and_the_old_owner_cannot_renew(
    store: Store,
) -> None:
    assert store.acquire_lock(P, "a", 0.1)
    time.sleep(0.2)

    assert store.lock_owner(P) is None
    assert store.acquire_lock(P, "b", 30)
    assert not store.renew_lock(P, "a", 30)
    assert not store.release_lock(P, "a")
    assert store.lock_owner(P) == "b"


# ----------------------------------------------------------------------------- fenced writes


def test_fenced_writes_after_a_takeover_raise_and_write_nothing(store: Store) -> None:
    _started(store, "a")
    store.advance(P, DAY, "a", Step.SIGNAL, pending_state=STATE, signal=SIGNAL)
    before = store.redis.hgetall(store.key(P, "cycle", DAY))
    _take_over(store, "a", "b")

    with pytest.raises(LockLostError):
        store.advance(P, DAY, "a", Step.PLANNED, plan=EMPTY_PLAN)
    with pytest.raises(LockLostError):
        store.record_orders(P, DAY, "a", {ROW.client_order_id: ROW}, [{"event": "order"}])
    with pytest.raises(LockLostError):
        store.begin_cycle(P, DAY, "a", "cycle-1")
    with pytest.raises(LockLostError):
        _complete(store, "a")

    assert store.redis.hgetall(store.key(P, "cycle", DAY)) == before
    assert store.ledger(P) == []
    assert store.strategy_state(P) is None
    assert store.history(P) == []
    assert store.status(P) == {}
    # The new owner's writes go through.
    store.advance(P, DAY, "b", Step.PLANNED, plan=EMPTY_PLAN)
    record = store.cycle(P, DAY)
    assert record is not None
    assert record.step == "planned"


def test_fenced_writes_without_any_lock_raise(store: Store) -> None:
    with pytest.raises(LockLostError):
        store.begin_cycle(P, DAY, "a", "cycle-1")

    assert store.cycle(P, DAY) is None
    assert store.sessions(P) == []


def test_begin_cycle_again_counts_an_attempt_and_keeps_the_cycle_id(store: Store) -> None:
    _started(store, "a")
    plan = Plan((SPY_BUY,), {"SPY": Decimal("70.00")}, {"SPY": Decimal("0.5")}, {}, Decimal(1000))
    store.advance(P, DAY, "a", Step.PLANNED, plan=plan)

    record = store.begin_cycle(P, DAY, "a", "another-id")

    assert (record.cycle_id, record.attempts, record.step) == ("cycle-1", 2, "planned")
    assert record.plan == plan
    assert store.sessions(P) == [DAY]


# ----------------------------------------------------------------------------- completion


def test_complete_cycle_writes_done_state_history_and_status_together(store: Store) -> None:
    _started(store, "a")
    store.advance(P, DAY, "a", Step.SIGNAL, pending_state=STATE, signal=SIGNAL)

    _complete(store, "a")

    record = store.cycle(P, DAY)
    assert record is not None
    assert (record.step, record.outcome, record.finished) == ("done", "rebalanced", True)
    assert record.signal == SIGNAL
    assert record.pending_state is None  # it became the strategy key
    assert store.strategy_state(P) == STATE
    assert store.history(P) == [{"session": DAY, **SIGNAL.to_json()}]
    status = store.status(P)
    assert (status["last_outcome"], status["last_session"], status["orders"]) == (
        "rebalanced",
        DAY,
        2,
    )


def test_complete_cycle_without_a_signal_leaves_state_and_history_alone(store: Store) -> None:
    _started(store, "a")
    _complete(store, "a")
    store.begin_cycle(P, "2024-03-05", "a", "cycle-2")

    _complete(store, "a", "2024-03-05", strategy_state=None, signal=None, outcome=Outcome.NO_TRADE)

    assert store.strategy_state(P) == STATE
    assert [h["session"] for h in store.history(P)] == [DAY]
    assert store.status(P)["last_session"] == "2024-03-05"


def test_complete_cycle_when_fenced_out_writes_none_of_it(store: Store) -> None:
    _started(store, "a")
    store.advance(P, DAY, "a", Step.FILLED)
    _take_over(store, "a", "b")

    with pytest.raises(LockLostError):
        _complete(store, "a")

    record = store.cycle(P, DAY)
    assert record is not None
    assert (record.step, record.outcome) == ("filled", None)
    assert store.strategy_state(P) is None
    assert store.history(P) == []
    assert store.status(P) == {}


# ----------------------------------------------------------------------------- caps and TTL


def test_history_keeps_only_the_newest_history_max_signals(
    make_store: Callable[..., Store],
) -> None:
    store = make_store(history_max=3)
    sessions = [f"2024-03-{d:02d}" for d in range(4, 9)]
    _cycles_by_a(store, sessions, complete=True)

    assert [h["session"] for h in store.history(P, count=100)] == sessions[::-1][:3]


def test_ledger_is_capped_near_ledger_max(make_store: Callable[..., Store]) -> None:
    store = make_store(ledger_max=50)
    _started(store, "a")
    node = int(str(store.redis.config_get("stream-node-max-entries")["stream-node-max-entries"]))
    total = 50 + 3 * max(node, 1)
    for batch in range(total // 10):
        events = [{"event": "order", "n": batch * 10 + i} for i in range(10)]
        store.record_orders(P, DAY, "a", {}, events)

    length = store.redis.xlen(store.key(P, "ledger"))
    # XADD MAXLEN ~ trims whole stream nodes: at most one node more than asked for.
    assert 50 <= length <= 50 + node
    newest = store.ledger(P, count=100_000)[-1]
    assert (newest["n"], newest["session"]) == (total - 1, DAY)


def test_cycle_index_keeps_the_latest_cycles_max_sessions(
    make_store: Callable[..., Store],
) -> None:
    store = make_store(cycles_max=3)
    # Out of order on purpose: trimming goes by session date, not by insertion.
    _cycles_by_a(store, ["2024-03-06", "2024-03-04", "2024-03-08", "2024-03-05", "2024-03-07"])

    assert store.sessions(P, count=100) == ["2024-03-06", "2024-03-07", "2024-03-08"]


def test_records_of_sessions_trimmed_from_the_index_are_deleted(
    make_store: Callable[..., Store],
) -> None:
    store = make_store(cycles_max=3)
    sessions = [f"2024-03-{d:02d}" for d in range(4, 10)]
    _cycles_by_a(store, sessions)

    kept = store.sessions(P, count=100)
    assert kept == sessions[-3:]
    records = sorted(k.rsplit(":", 1)[1] for k in store.redis.scan_iter(store.key(P, "cycle", "*")))
    assert records == kept


def test_an_older_session_started_late_keeps_index_and_records_consistent(
    make_store: Callable[..., Store],
) -> None:
    store = make_store(cycles_max=3)
    _cycles_by_a(store, ["2024-03-06", "2024-03-07", "2024-03-08"])

    store.begin_cycle(P, "2024-03-05", "a", "late")  # e.g. a rerun of an earlier session

    kept = store.sessions(P, count=100)
    assert all(store.cycle(P, s) is not None for s in kept), "index names a deleted record"
    records = sorted(k.rsplit(":", 1)[1] for k in store.redis.scan_iter(store.key(P, "cycle", "*")))
    assert records == kept


def test_cycle_records_carry_a_ttl_through_every_write(make_store: Callable[..., Store]) -> None:
    store = make_store(cycle_ttl_secs=3600)
    _started(store, "a")
    key = store.key(P, "cycle", DAY)

    writes: list[Callable[[], object]] = [
        lambda: store.advance(P, DAY, "a", Step.SIGNAL, signal=SIGNAL, pending_state=STATE),
        lambda: store.record_orders(P, DAY, "a", {ROW.client_order_id: ROW}, [{"event": "o"}]),
        lambda: store.begin_cycle(P, DAY, "a", "cycle-1"),
        lambda: _complete(store, "a"),
        lambda: store.mark_alerted(P, DAY),
    ]
    assert 3500 < store.redis.ttl(key) <= 3600
    for write in writes:
        write()
        assert 3500 < store.redis.ttl(key) <= 3600
    assert store.redis.ttl(store.key(P, "strategy")) == -1  # the state itself never expires


# ----------------------------------------------------------------------------- halt


def test_halt_and_resume(store: Store) -> None:
    assert store.halted(P) is None

    store.halt(P, "earnings week", by="ops@desk")

    halt = store.halted(P)
    assert halt is not None
    assert (halt["reason"], halt["by"]) == ("earnings week", "ops@desk")
    assert halt["at"]
    assert store.halted("other") is None
    assert store.resume(P) is True
    assert store.halted(P) is None
    assert store.resume(P) is False


# ----------------------------------------------------------------------------- Redis down


@pytest.fixture
def unreachable() -> Iterator[Store]:
    """A store whose client points at a loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = redis.Redis(
        host="127.0.0.1",
        port=port,
        decode_responses=True,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),  # fail at once: redis-py's default retries with backoff
    )
    yield Store(client, unique_namespace())
    client.close()


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("PING", lambda s: s.ping()),
        ("lock", lambda s: s.acquire_lock(P, "a", 30)),
        ("lock renewal", lambda s: s.renew_lock(P, "a", 30)),
        ("lock release", lambda s: s.release_lock(P, "a")),
        ("halt", lambda s: s.halt(P, "why", by="me")),
        ("halt read", lambda s: s.halted(P)),
        ("strategy read", lambda s: s.strategy_state(P)),
        ("cycle read", lambda s: s.cycle(P, DAY)),
        ("step planned", lambda s: s.advance(P, DAY, "a", Step.PLANNED)),
        ("complete cycle", lambda s: _complete(s, "a")),
        ("status", lambda s: s.set_status(P, {"last_outcome": "failed"})),
        ("ledger", lambda s: s.ledger(P)),
    ],
)
def test_an_unreachable_redis_raises_store_unavailable_naming_the_operation(
    unreachable: Store, operation: str, call: Callable[[Store], object]
) -> None:
    with pytest.raises(StoreUnavailableError) as info:
        call(unreachable)

    assert f"during {operation}:" in str(info.value)


def test_nothing_outside_the_namespace_is_written(store: Store, text_redis: redis.Redis) -> None:
    _started(store, "a")
    _complete(store, "a")
    store.halt(P, "x", by="y")
    store.heartbeat("host-1", {"pid": 1})

    assert set(text_redis.keys("*")) == set(namespace_keys(text_redis, store.ns))
