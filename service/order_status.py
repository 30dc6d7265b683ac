"""Alpaca's order statuses and the one decision the cycle takes on each.

Every place that asks "may this order still fill?" (the parsed :class:`BrokerOrder`, the order
rows of a cycle, the fill wait, the sweep of interrupted cycles) asks :func:`phase_of`, so the
answer cannot differ between them.

The service sends market, time-in-force ``day`` orders only, and never cancels or replaces
them itself. For such an order the phases are:

``OPEN``
    It may still fill this session: keep waiting (within the bounded fill wait).
``FINAL``
    It will not fill any further this session and it did what we sent it to do.
``FAILED``
    It will not fill any further this session and it did not execute as sent (nothing or only
    part filled, or someone else ended it). ``filled_qty`` says what did fill; the buys are
    re-sized from the account afterwards, so a failed sell never over-spends.
``UNKNOWN``
    Not a status Alpaca documents. Fail closed: the cycle stops waiting and planning on it,
    records it, alerts naming the order and the status, and sends nothing on top of it.

Sources: Alpaca's "Orders at Alpaca" order-lifecycle table and alpaca-py's ``OrderStatus``
(0.44), which lists the same 18 values.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "PHASES",
    "SUBMIT_REFUSED",
    "UNCONFIRMED",
    "OrderPhase",
    "OrderStatus",
    "parse_order_status",
    "phase_of",
]

# Statuses of a cycle's order rows that no broker order carries:
# the broker refused the POST itself (HTTP 4xx): nothing exists at the broker. Spelled as
# Alpaca's own "rejected" so that rows and alerts read the same whichever side refused.
SUBMIT_REFUSED = "rejected"
# The broker called the client_order_id a duplicate, but no lookup found the order: it may
# exist. Not an Alpaca status, so its phase is UNKNOWN and the cycle fails closed on it.
UNCONFIRMED = "unconfirmed"


class OrderStatus(StrEnum):
    """Every order status Alpaca's trading API sends (``order.status``)."""

    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    DONE_FOR_DAY = "done_for_day"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    PENDING_REVIEW = "pending_review"
    ACCEPTED = "accepted"
    PENDING_NEW = "pending_new"
    ACCEPTED_FOR_BIDDING = "accepted_for_bidding"
    STOPPED = "stopped"
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    CALCULATED = "calculated"
    HELD = "held"


class OrderPhase(StrEnum):
    """What the cycle does next with an order in a given status (see the module docstring)."""

    OPEN = "open"
    FINAL = "final"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        """No further fill this session (FINAL or FAILED)."""
        return self in (OrderPhase.FINAL, OrderPhase.FAILED)


_S, _P = OrderStatus, OrderPhase
PHASES: dict[OrderStatus, OrderPhase] = {
    # Routed and working at the venue: the usual state before a fill.
    _S.NEW: _P.OPEN,
    # Some filled, the rest is still working.
    _S.PARTIALLY_FILLED: _P.OPEN,
    # Received by Alpaca, not yet routed (common outside market hours): will be routed.
    _S.ACCEPTED: _P.OPEN,
    # Routed, not yet accepted by the venue.
    _S.PENDING_NEW: _P.OPEN,
    # Received by the venue and being priced.
    _S.ACCEPTED_FOR_BIDDING: _P.OPEN,
    # "A trade is guaranteed for the order ... but has not yet occurred": a fill is coming.
    _S.STOPPED: _P.OPEN,
    # A cancel or replace is pending but not done: the order can still fill until it is.
    _S.PENDING_CANCEL: _P.OPEN,
    _S.PENDING_REPLACE: _P.OPEN,
    # Held for review (compliance) or held until routed (e.g. a leg waiting on its parent):
    # not dead, it may still be released and fill.
    _S.PENDING_REVIEW: _P.OPEN,
    _S.HELD: _P.OPEN,
    # Completely filled; no further updates.
    _S.FILLED: _P.FINAL,
    # "Completed for the day (either filled or done for day), settlement calculations
    # pending": no further fill this session; filled_qty says how much filled.
    _S.CALCULATED: _P.FINAL,
    # "Done executing for the day, no further updates until the next trading day": a day
    # order that did not fully fill.
    _S.DONE_FOR_DAY: _P.FAILED,
    # We never cancel or replace: someone else (an operator, the venue) ended it.
    _S.CANCELED: _P.FAILED,
    _S.REPLACED: _P.FAILED,
    # A day order that reached the end of its time in force unfilled (or partly filled).
    _S.EXPIRED: _P.FAILED,
    # Refused by Alpaca or the venue; no further updates.
    _S.REJECTED: _P.FAILED,
    # "Not eligible for trading": nothing will fill this session.
    _S.SUSPENDED: _P.FAILED,
}


def parse_order_status(text: str) -> OrderStatus | None:
    """Return the :class:`OrderStatus` named ``text``, or None if Alpaca documents no such."""
    try:
        return OrderStatus(text)
    except ValueError:
        return None


def phase_of(status: str | OrderStatus) -> OrderPhase:
    """Return what the cycle does next with an order in ``status`` (UNKNOWN if undocumented)."""
    known = status if isinstance(status, OrderStatus) else parse_order_status(status)
    return OrderPhase.UNKNOWN if known is None else PHASES[known]
