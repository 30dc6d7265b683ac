"""A cycle's write-ahead plans, their orders and the rows of what the broker did with them.

Part of the typed cycle record (:mod:`regime_trader.service.cycle_record`, which re-exports these):
each class has its ``to_json``/``from_json`` here, in the JSON shape the previous, untyped version
stored (same keys in the same order, decimals as strings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from regime_trader.service.alpaca_parsing import BrokerOrder
from regime_trader.service.order_status import (
    SUBMIT_REFUSED,
    UNCONFIRMED,
    OrderPhase,
    OrderStatus,
    parse_order_status,
    phase_of,
)
from regime_trader.service.orders import AccountSnapshot, OrderIntent

# The planner's order side (regime_trader.service.orders.Side), spelled here: this is the stored
# form.
Side = Literal["buy", "sell"]

__all__ = [
    "JsonObject",
    "JsonValue",
    "OrderRow",
    "Plan",
    "PlannedOrder",
    "Side",
    "decimals",
    "json_object",
    "texts",
]

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject = dict[str, JsonValue]


def json_object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a JSON object, got {value!r}")
    return value


def decimals(value: object, what: str) -> dict[str, Decimal]:
    return {str(k): Decimal(str(v)) for k, v in json_object(value, what).items()}


def texts(values: Mapping[str, Decimal]) -> JsonObject:
    return {k: str(v) for k, v in values.items()}


@dataclass(frozen=True)
class PlannedOrder:
    """One order of a stored plan, written before it is sent (the write-ahead entry)."""

    symbol: str
    side: Side
    qty: Decimal
    client_order_id: str
    estimated_notional: Decimal

    @classmethod
    def from_intent(cls, intent: OrderIntent) -> PlannedOrder:
        """The stored form of the planner's :class:`~regime_trader.service.orders.OrderIntent`."""
        return cls(
            intent.symbol,
            intent.side,
            intent.qty,
            intent.client_order_id,
            intent.estimated_notional,
        )

    def to_json(self) -> JsonObject:
        return {
            "symbol": self.symbol,
            "side": self.side,
            "qty": str(self.qty),
            "client_order_id": self.client_order_id,
            "estimated_notional": str(self.estimated_notional),
        }

    @classmethod
    def from_json(cls, data: object) -> PlannedOrder:
        d = json_object(data, "planned order")
        return cls(
            symbol=str(d["symbol"]),
            side=_side(d["side"]),
            qty=Decimal(str(d["qty"])),
            client_order_id=str(d["client_order_id"]),
            estimated_notional=Decimal(str(d["estimated_notional"])),
        )


@dataclass(frozen=True)
class OrderRow:
    """What the cycle knows of one planned order: the broker's order as last seen, or why none.

    ``status`` is an :class:`OrderStatus`, or the raw text for a status Alpaca does not
    document (kept, so the alert can name it) and for ``unconfirmed``
    (:data:`~regime_trader.service.order_status.UNCONFIRMED`). ``broker_id`` is None for an order
    the broker never accepted; ``error`` then says why.
    """

    symbol: str
    side: Side
    qty: Decimal
    client_order_id: str
    status: OrderStatus | str
    filled_qty: Decimal = Decimal(0)
    error: str = ""
    broker_id: str | None = None
    filled_avg_price: Decimal | None = None
    submitted_at: datetime | None = None

    @classmethod
    def of(
        cls,
        planned: PlannedOrder,
        order: BrokerOrder | None,
        error: str = "",
        status: str = SUBMIT_REFUSED,
    ) -> OrderRow:
        """The row of ``planned``: ``order`` as the broker reports it, or none and why.

        ``status`` applies only without an order:
        :data:`~regime_trader.service.order_status.SUBMIT_REFUSED` (the broker refused the request)
        or :data:`~regime_trader.service.order_status.UNCONFIRMED`.
        """
        if order is None:
            return cls(
                planned.symbol,
                planned.side,
                planned.qty,
                planned.client_order_id,
                _status(status),
                error=error,
            )
        return cls(
            planned.symbol,
            planned.side,
            planned.qty,
            planned.client_order_id,
            _status(order.status),
            filled_qty=order.filled_qty,
            broker_id=order.id,
            filled_avg_price=order.filled_avg_price,
            submitted_at=order.submitted_at,
        )

    @property
    def sent(self) -> bool:
        """Whether the broker has (had) this order."""
        return self.broker_id is not None

    @property
    def phase(self) -> OrderPhase:
        """What the cycle does next with this order.

        See :func:`~regime_trader.service.order_status.phase_of`.
        """
        return phase_of(self.status)

    @property
    def unknown_reason(self) -> str | None:
        """Why the cycle cannot tell what this order is doing, or None if it can."""
        if self.status == UNCONFIRMED:
            return self.error or "never found at the broker"
        if self.phase is OrderPhase.UNKNOWN:
            return f"status {str(self.status)!r} is not one Alpaca documents"
        return None

    def describe(self) -> str:
        """``SYMBOL side client_order_id``, for messages."""
        return f"{self.symbol} {self.side} {self.client_order_id}"

    def to_json(self) -> JsonObject:
        head: JsonObject = {
            "symbol": self.symbol,
            "side": self.side,
            "qty": str(self.qty),
            "client_order_id": self.client_order_id,
            "status": str(self.status),
        }
        if self.broker_id is None:
            return {**head, "error": self.error, "filled_qty": str(self.filled_qty)}
        return {
            **head,
            "broker_id": self.broker_id,
            "filled_qty": str(self.filled_qty),
            "filled_avg_price": _text_or_none(self.filled_avg_price),
            "submitted_at": None if self.submitted_at is None else self.submitted_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: object) -> OrderRow:
        d = json_object(data, "order row")
        price, submitted = d.get("filled_avg_price"), d.get("submitted_at")
        return cls(
            symbol=str(d["symbol"]),
            side=_side(d["side"]),
            qty=Decimal(str(d["qty"])),
            client_order_id=str(d["client_order_id"]),
            status=_status(str(d.get("status", ""))),
            filled_qty=Decimal(str(d.get("filled_qty", "0"))),
            error=str(d.get("error") or ""),
            broker_id=None if d.get("broker_id") is None else str(d["broker_id"]),
            filled_avg_price=None if price is None else Decimal(str(price)),
            submitted_at=None if submitted is None else datetime.fromisoformat(str(submitted)),
        )


def _side(value: object) -> Side:
    if value == "buy":
        return "buy"
    if value == "sell":
        return "sell"
    raise ValueError(f"side must be 'buy' or 'sell', got {value!r}")


def _status(text: str) -> OrderStatus | str:
    return parse_order_status(text) or text


def _text_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Plan:
    """A write-ahead plan: its orders and the prices, target and holdings it was sized on.

    ``current_weights`` are the holdings' weights at planning (4 decimals; empty when the
    equity is not positive); ``target`` the strategy's weights, as the text of the floats.
    """

    orders: tuple[PlannedOrder, ...]
    prices: Mapping[str, Decimal]
    target: Mapping[str, Decimal]
    current_weights: Mapping[str, Decimal]
    equity: Decimal

    @classmethod
    def of(
        cls,
        orders: tuple[OrderIntent, ...],
        snapshot: AccountSnapshot,
        weights: Mapping[str, float | Decimal],
    ) -> Plan:
        """The plan of the planner's ``orders`` on ``snapshot`` towards ``weights``."""
        equity = snapshot.equity
        current = {
            s: (snapshot.positions.get(s, Decimal(0)) * snapshot.prices[s] / equity).quantize(
                Decimal("0.0001")
            )
            for s in snapshot.prices
            if equity > 0
        }
        return cls(
            orders=tuple(PlannedOrder.from_intent(o) for o in orders),
            prices=dict(snapshot.prices),
            # str() first: a float's shortest repr, as the previous version stored it.
            target={s: Decimal(str(w)) for s, w in weights.items()},
            current_weights=current,
            equity=equity,
        )

    def side(self, side: str) -> tuple[PlannedOrder, ...]:
        """The orders of one side ("buy" or "sell"), in plan order."""
        return tuple(o for o in self.orders if o.side == side)

    def to_json(self) -> JsonObject:
        return {
            "orders": [o.to_json() for o in self.orders],
            "prices": texts(self.prices),
            "target": texts(self.target),
            "current_weights": texts(self.current_weights),
            "equity": str(self.equity),
        }

    @classmethod
    def from_json(cls, data: object) -> Plan:
        d = json_object(data, "plan")
        return cls(
            orders=tuple(PlannedOrder.from_json(o) for o in d.get("orders", [])),
            prices=decimals(d.get("prices", {}), "plan.prices"),
            target=decimals(d.get("target", {}), "plan.target"),
            current_weights=decimals(d.get("current_weights", {}), "plan.current_weights"),
            equity=Decimal(str(d.get("equity", "0"))),
        )
