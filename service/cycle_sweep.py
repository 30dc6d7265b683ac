"""The sweep of interrupted cycles: a crash left a cycle unfinished and its session is over.

Such a cycle is never re-traded. Its orders are refreshed from the broker (what filled is
recorded), the cycle is marked done with outcome ``interrupted``, the strategy keeps the state
it computed, and a ``failed`` alert says what was left unsent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date

from regime_trader.service.alerts import Alert
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.cycle_record import CycleRecord, OrderRow, Outcome
from regime_trader.service.cycle_report import interrupted_status, refusal_alert
from regime_trader.service.exceptions import RegimeTraderError
from regime_trader.service.fill_wait import orders_since
from regime_trader.service.logs import get_logger
from regime_trader.service.order_status import OrderPhase
from regime_trader.service.store import StoreUnavailableError

__all__ = ["close_interrupted"]

log = get_logger(__name__)


def close_interrupted(
    ctx: CycleContext,
    owner: str,
    lock_ttl_secs: float,
    session: str,
    *,
    include_today: bool,
    publish: Callable[[Alert], None],
) -> None:
    """End the portfolio's unfinished cycles of sessions that are over (the last three).

    ``session`` is the broker's today; it is swept too when ``include_today`` (the market is
    closed). Each is closed under the portfolio's lock; if another process holds it, the sweep
    stops and the next wake-up retries.
    """
    name, store = ctx.portfolio.name, ctx.store
    for past in store.sessions(name, 3):
        if past > session or (past == session and not include_today):
            continue
        record = store.cycle(name, past)
        if record is None or record.finished:
            continue
        if not store.acquire_lock(name, owner, lock_ttl_secs):
            return
        try:
            _expire(ctx, owner, record, publish)
        except RegimeTraderError as e:
            log.error("could not close an interrupted cycle", session=past, error=str(e))
        finally:
            with contextlib.suppress(StoreUnavailableError):
                store.release_lock(name, owner)


def _expire(
    ctx: CycleContext, owner: str, record: CycleRecord, publish: Callable[[Alert], None]
) -> None:
    name, store = ctx.portfolio.name, ctx.store
    orders: dict[str, OrderRow] = dict(record.orders)
    planned = [
        *(record.plan.orders if record.plan else ()),
        *(record.buys.orders if record.buys else ()),
    ]
    session = date.fromisoformat(record.session)
    # One order list for the whole sweep (not one lookup per order): rate limits.
    after = orders_since(orders, session)
    listed = {o.client_order_id: o for o in ctx.broker.orders(after=after)}
    for intent in planned:
        order = listed.get(intent.client_order_id)
        if order is not None:
            orders[intent.client_order_id] = OrderRow.of(intent, order)
    unsent = [i.client_order_id for i in planned if i.client_order_id not in orders]
    events: list[dict[str, object]] = [{"event": "cycle_interrupted", "unsent": unsent}]
    store.record_orders(name, record.session, owner, orders, events)
    phases = [row.phase for row in orders.values()]
    odd = [
        f"{row.client_order_id}: {why}" for row in orders.values() if (why := row.unknown_reason)
    ]
    reason = (
        f"cycle interrupted at step {record.step} and the session is over: "
        f"{len(orders)} orders at the broker, {len(unsent)} never sent"
        + (f", {phases.count(OrderPhase.OPEN)} still open" if OrderPhase.OPEN in phases else "")
        + (f"; in an unknown state: {', '.join(odd)}" if odd else "")
    )
    store.complete_cycle(
        name,
        record.session,
        owner,
        outcome=Outcome.INTERRUPTED,
        strategy_state=record.pending_state,
        signal=record.signal,
        status=interrupted_status(reason),
    )
    store.mark_alerted(name, record.session)
    log.error("cycle interrupted", session=record.session, reason=reason)
    rows = [row.to_json() for row in orders.values()]
    publish(
        refusal_alert(name, record.session, Outcome.INTERRUPTED, reason, orders=rows, unsent=unsent)
    )
