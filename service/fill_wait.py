"""A cycle's order rows and the bounded, rate-friendly wait for their fills.

Rows are what the cycle record stores per planned order (``client_order_id`` -> row): the
broker's order as last seen, or why there is none. What an order's status means comes from
:mod:`service.order_status` only.

The wait asks the broker once per round for every order since the cycle's first submission
(``GET /v2/orders?status=all&after=...``, paged) and matches them by client order id, rounds
``interval_secs`` apart with the first right away: its cost is one request per round, not one
per order per round, so a cycle stays far below Alpaca's 200 requests/min per account even
with several replicas sharing it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from service.alpaca_parsing import NEW_YORK, BrokerOrder
from service.order_status import SUBMIT_REFUSED, UNCONFIRMED, OrderPhase, phase_of

__all__ = [
    "FillWait",
    "describe_row",
    "order_row",
    "orders_since",
    "row_phase",
    "unknown_state",
    "wait_for_fills",
]

Row = Mapping[str, Any]


class OrderLister(Protocol):
    """What the wait needs of the broker (:meth:`service.broker.AlpacaBroker.orders`)."""

    def orders(self, *, after: datetime | None = None, status: Any = "all") -> list[BrokerOrder]:
        """Orders submitted after ``after``, oldest first."""
        ...


def order_row(
    order: BrokerOrder | None,
    intent: Mapping[str, Any],
    error: str = "",
    status: str = SUBMIT_REFUSED,
) -> dict[str, Any]:
    """The stored row of one planned order: the broker's order, or why there is none.

    ``status`` applies only without an order: :data:`~service.order_status.SUBMIT_REFUSED`
    (the broker refused the request) or :data:`~service.order_status.UNCONFIRMED`.
    """
    row = {
        "symbol": intent["symbol"],
        "side": intent["side"],
        "qty": intent["qty"],
        "client_order_id": intent["client_order_id"],
    }
    if order is None:
        return {**row, "status": status, "error": error, "filled_qty": "0"}
    return {
        **row,
        "status": order.status,
        "broker_id": order.id,
        "filled_qty": str(order.filled_qty),
        "filled_avg_price": None if order.filled_avg_price is None else str(order.filled_avg_price),
        "submitted_at": None if order.submitted_at is None else order.submitted_at.isoformat(),
    }


def row_phase(row: Row | None) -> OrderPhase | None:
    """The phase of a stored order row (None: no row, the order was never sent)."""
    return None if row is None else phase_of(str(row.get("status", "")))


def describe_row(row: Row) -> str:
    """``SYMBOL side client_order_id`` of a row, for messages."""
    return f"{row.get('symbol', '?')} {row.get('side', '?')} {row.get('client_order_id', '?')}"


def orders_since(rows: Mapping[str, Row], session: date) -> datetime:
    """Where an order list must start to include every order of these rows.

    One second before the earliest submission among them, or the session's midnight in New
    York when a sent row lacks its submission time (all orders of a cycle are sent that day).
    """
    stamps = [r.get("submitted_at") for r in rows.values() if r.get("broker_id")]
    texts = [s for s in stamps if isinstance(s, str)]
    if not texts or len(texts) != len(stamps):
        return datetime.combine(session, datetime.min.time(), NEW_YORK)
    return min(datetime.fromisoformat(s) for s in texts) - timedelta(seconds=1)


def unknown_state(row: Row) -> str | None:
    """Why the cycle cannot tell what this row's order is doing, or None if it can."""
    if row.get("status") == UNCONFIRMED:
        return str(row.get("error") or "never found at the broker")
    if row_phase(row) is OrderPhase.UNKNOWN:
        return f"status {row.get('status')!r} is not one Alpaca documents"
    return None


@dataclass(frozen=True)
class FillWait:
    """How a wait ended: orders still open at the deadline, orders in an unknown state."""

    pending: tuple[str, ...]  # client order ids
    unknown: Mapping[str, str]  # client order id -> why


def wait_for_fills(
    broker: OrderLister,
    rows: Mapping[str, Row],
    waiting: Iterable[str],
    session: date,
    *,
    timeout_secs: float,
    interval_secs: float,
    note: Callable[[str, BrokerOrder], None],
) -> FillWait:
    """Poll until every order of ``waiting`` is final (or unknown), or ``timeout_secs`` passed.

    Parameters
    ----------
    broker : OrderLister
        Lists the account's orders.
    rows : mapping of str to row
        The cycle's rows by client order id; read for each round (``note`` updates them).
    waiting : iterable of str
        Client order ids whose rows are not final yet.
    session : date
        The cycle's session (see :func:`orders_since`).
    timeout_secs, interval_secs : float
        Bound of the whole wait; time from one round's start to the next one's.
    note : callable(client_order_id, order)
        Records an order whose status changed (partial fills are recorded as they come).
    """
    deadline = time.monotonic() + timeout_secs
    pending = set(waiting)
    unknown: dict[str, str] = {}
    while pending:
        began = time.monotonic()
        listed = broker.orders(after=orders_since(rows, session), status="all")
        found = {o.client_order_id: o for o in listed if o.client_order_id in pending}
        for coid, order in found.items():
            if order.status != rows.get(coid, {}).get("status"):
                note(coid, order)
            if order.phase is OrderPhase.UNKNOWN:
                unknown[coid] = f"status {order.status!r} is not one Alpaca documents"
            if order.phase is not OrderPhase.OPEN:
                pending.discard(coid)
        for coid in sorted(pending - set(found)):
            if rows[coid].get("status") == UNCONFIRMED:  # not in a complete listing either
                unknown[coid] = unknown_state(rows[coid]) or UNCONFIRMED
                pending.discard(coid)
        if not pending or time.monotonic() >= deadline:
            break
        next_round = min(began + interval_secs, deadline)
        time.sleep(max(0.0, next_round - time.monotonic()))
    return FillWait(tuple(sorted(pending)), unknown)
