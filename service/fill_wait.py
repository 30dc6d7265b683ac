"""A cycle's order rows and the bounded, rate-friendly wait for their fills.

Rows (:class:`~regime_trader.service.cycle_record.OrderRow`) are what the cycle record stores per
planned order (``client_order_id`` -> row): the broker's order as last seen, or why there is none.
What an order's status means comes from :mod:`regime_trader.service.order_status` only.

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

from regime_trader.service.alpaca_parsing import NEW_YORK, BrokerOrder
from regime_trader.service.cycle_record import OrderRow
from regime_trader.service.order_status import UNCONFIRMED, OrderPhase

__all__ = ["FillWait", "OrderLister", "orders_since", "wait_for_fills"]


class OrderLister(Protocol):
    """What the wait needs of the broker.

    See :meth:`regime_trader.service.broker.AlpacaBroker.orders`.
    """

    def orders(self, *, after: datetime | None = None, status: Any = "all") -> list[BrokerOrder]:
        """Orders submitted after ``after``, oldest first."""
        ...


def orders_since(rows: Mapping[str, OrderRow], session: date) -> datetime:
    """Where an order list must start to include every order of these rows.

    One second before the earliest submission among them, or the session's midnight in New
    York when a sent row lacks its submission time (all orders of a cycle are sent that day).
    """
    stamps = [r.submitted_at for r in rows.values() if r.sent]
    known = [s for s in stamps if s is not None]
    if not known or len(known) != len(stamps):
        return datetime.combine(session, datetime.min.time(), NEW_YORK)
    return min(known) - timedelta(seconds=1)


@dataclass(frozen=True)
class FillWait:
    """How a wait ended: orders still open at the deadline, orders in an unknown state."""

    pending: tuple[str, ...]  # client order ids
    unknown: Mapping[str, str]  # client order id -> why


def wait_for_fills(
    broker: OrderLister,
    rows: Mapping[str, OrderRow],
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
    rows : mapping of str to OrderRow
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
            row = rows.get(coid)
            if row is None or order.status != str(row.status):
                note(coid, order)
            if order.phase is OrderPhase.UNKNOWN:
                unknown[coid] = f"status {order.status!r} is not one Alpaca documents"
            if order.phase is not OrderPhase.OPEN:
                pending.discard(coid)
        for coid in sorted(pending - set(found)):
            if rows[coid].status == UNCONFIRMED:  # not in a complete listing either
                unknown[coid] = rows[coid].unknown_reason or UNCONFIRMED
                pending.discard(coid)
        if not pending or time.monotonic() >= deadline:
            break
        next_round = min(began + interval_secs, deadline)
        time.sleep(max(0.0, next_round - time.monotonic()))
    return FillWait(tuple(sorted(pending)), unknown)
