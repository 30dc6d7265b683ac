"""Filling orders: whole or in parts, and the status scripts of
:mod:`regime_trader.service.emulator.lifecycle`.

Functions over the account's :class:`Book` -- its cash, its positions and what a buy may spend --
which the :class:`~regime_trader.service.emulator.book.Exchange` is; kept out of it so the
account rules and the order life read separately, and so this module needs nothing of the
exchange's. A fill moves cash and shares at one price; a partial fill adds to the order's filled
quantity and averages its price.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Protocol

from regime_trader.service.emulator.lifecycle import OrderScript
from regime_trader.service.emulator.records import (
    OPEN_STATUSES,
    MarketView,
    Order,
    Position,
    floor_qty,
    money,
    require,
)

__all__ = ["Book", "advance_script", "fill_qty", "start_script"]

_AVG_STEP = Decimal("0.000000001")


class Book(Protocol):
    """What a fill changes and asks: the account's cash, its positions, a buy's spending limit."""

    cash: Decimal
    positions: dict[str, Position]

    def spend_limit(self, order: Order, view: MarketView) -> Decimal:
        """Dollars a buy ``order`` may spend when it fills."""
        ...


def fill_qty(
    book: Book, order: Order, qty: Decimal, price: Decimal, at: datetime, limit: Decimal
) -> Decimal:
    """Fill ``qty`` more shares of ``order`` at ``price``; return the quantity filled.

    A sell is capped by the position; a buy costing more than ``limit`` dollars fills nothing
    (0 is returned and nothing changes).
    """
    position = book.positions.get(order.symbol)
    if order.side == "sell":
        qty = min(qty, position.qty if position else Decimal(0))
    value = money(qty * price)
    if qty <= 0 or (order.side == "buy" and value > limit):
        return Decimal(0)
    if order.side == "buy":
        book.cash -= value
        if position is None:
            book.positions[order.symbol] = Position(order.symbol, qty, value)
        else:
            position.qty += qty
            position.cost_basis += value
        order.reserved_cash = max(order.reserved_cash - value, Decimal(0))
    else:
        # qty > 0 implies a position (type narrowing of an invariant checked above)
        assert position is not None  # nosec B101
        book.cash += value
        remaining = position.qty - qty
        if remaining <= 0:
            del book.positions[order.symbol]
        else:
            position.cost_basis = position.cost_basis * remaining / position.qty
            position.qty = remaining
        order.held_qty = max(order.held_qty - qty, Decimal(0))
    before = order.filled_qty
    order.filled_qty = before + qty
    if before == 0 or order.filled_avg_price is None:
        order.filled_avg_price = price
    else:
        total = before * order.filled_avg_price + qty * price
        order.filled_avg_price = (total / order.filled_qty).quantize(_AVG_STEP)
    order.filled_at = order.updated_at = at
    return qty


def start_script(
    book: Book, order: Order, script: OrderScript, view: MarketView, wall_secs: float
) -> None:
    """Put a just-placed order under ``script``: its first status (or the final one)."""
    order.script_steps = script.statuses
    order.script_final = script.final
    order.script_fraction = script.filled_fraction
    order.script_advance = script.advance.value
    order.script_every = script.every
    order.script_pos = 0
    order.script_polls = 0
    order.script_since = wall_secs
    _enter(book, order, view)


def advance_script(
    book: Book, order: Order, view: MarketView, wall_secs: float, *, polled: bool
) -> None:
    """Move a scripted order on by one poll (``polled``) and by the wall time elapsed."""
    if order.script_pos >= len(order.script_steps) or not order.is_open:
        return  # final status reached, or cancelled / expired meanwhile
    steps = 0
    if order.script_advance == "poll":
        if polled:
            order.script_polls += 1
            if order.script_polls >= order.script_every:
                order.script_polls, steps = 0, 1
    else:
        steps = math.floor((wall_secs - order.script_since) / order.script_every)
        order.script_since += steps * order.script_every
    for _ in range(steps):
        if order.script_pos >= len(order.script_steps) or not order.is_open:
            break
        order.script_pos += 1
        _enter(book, order, view)


def _enter(book: Book, order: Order, view: MarketView) -> None:
    """Enter the status at ``script_pos`` (past the steps: the final one), filling as it says."""
    final = order.script_pos >= len(order.script_steps)
    status = _require_text(order.script_final) if final else order.script_steps[order.script_pos]
    target: Decimal | None = None
    if final:
        target = order.script_fraction
    elif status == "partially_filled":
        target = order.script_fraction / 2
    now = view.now
    if target is not None and target > 0:
        price = view.price(order.symbol)
        whole = order.qty if order.qty is not None else require(order.notional) / price
        want = floor_qty(whole * target)
        if order.qty is not None and order.qty == order.qty.to_integral_value() and target < 1:
            want = want.to_integral_value(rounding=ROUND_FLOOR)  # whole-share order
        more = want - order.filled_qty
        if more > 0:
            limit = book.spend_limit(order, view)
            if fill_qty(book, order, more, price, now, limit) <= 0 and order.filled_qty == 0:
                status, final = "rejected", True
                order.script_pos = len(order.script_steps)
    order.status, order.updated_at = status, now
    if final and status not in OPEN_STATUSES:
        order.reserved_cash = order.held_qty = Decimal(0)
        if status == "canceled":
            order.canceled_at = now
        elif status == "expired":
            order.expired_at = now
        elif status == "rejected":
            order.failed_at = now


def _require_text(value: str | None) -> str:
    """Return ``value``; a scripted order always has a final status."""
    if value is None:
        raise ValueError("a scripted order has no final status")
    return value
