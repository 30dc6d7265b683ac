"""The persisted state of one cycle, typed: steps, outcomes, planned orders, order rows, plans.

Every value the cycle stores in its Redis hash (``ns:p:cycle:s``, see :mod:`service.store`) is
one of the frozen dataclasses here, and each has its ``to_json``/``from_json`` in this module
only. The JSON shapes are those the previous, untyped version wrote, byte for byte (same keys,
same key order, decimals as strings), so a hash written before this module existed is read
into a :class:`CycleRecord` and written back identically
(``tests/unit/service/test_cycle_record.py`` checks it on hashes captured from real runs).

Values that are not the cycle's own schema stay JSON: the strategy's pending state (versioned
by the strategy itself) and the strategy's free-form signal diagnostics.

For callers that still read the old dict shape (``plan.get("orders")``, ``order["side"]``,
``signal["weights"]``: the reliability tests and the soak), :class:`_JsonView` answers item
reads from ``to_json()``; new code uses the attributes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

from service.alpaca_parsing import BrokerOrder
from service.order_status import (
    SUBMIT_REFUSED,
    UNCONFIRMED,
    OrderPhase,
    OrderStatus,
    parse_order_status,
    phase_of,
)
from service.orders import AccountSnapshot, OrderIntent

__all__ = [
    "AFTER_PLAN",
    "STEP_ORDER",
    "Boundary",
    "CycleRecord",
    "JsonObject",
    "JsonValue",
    "OrderRow",
    "Outcome",
    "Plan",
    "PlannedOrder",
    "SignalSummary",
    "Step",
]

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject = dict[str, JsonValue]


class Step(StrEnum):
    """The stored steps of a cycle, in order (see :mod:`service.cycle`)."""

    STARTED = "started"
    SIGNAL = "signal"
    PLANNED = "planned"
    SELLS_SUBMITTED = "sells_submitted"
    SELLS_FILLED = "sells_filled"
    BUYS_PLANNED = "buys_planned"
    BUYS_SUBMITTED = "buys_submitted"
    FILLED = "filled"
    DONE = "done"


STEP_ORDER: tuple[Step, ...] = tuple(Step)
# Steps from which a restart replays the stored plans instead of recomputing the signal.
AFTER_PLAN = frozenset(STEP_ORDER[2:-1])


class Boundary(StrEnum):
    """Points inside a step where the cycle also checks lock, stop and halt; never stored."""

    ORDER_SENT = "order_sent"
    WAITING_FILLS = "waiting_fills"


class Outcome(StrEnum):
    """How one attempt of a cycle ended (:class:`service.cycle.CycleOutcome`).

    Stored in the record (``outcome``) only for a finished cycle: ``rebalanced``,
    ``no_trade`` or ``interrupted``; the others describe an attempt.
    """

    REBALANCED = "rebalanced"
    NO_TRADE = "no_trade"
    INTERRUPTED = "interrupted"
    REFUSED = "refused"
    FAILED = "failed"
    HALTED = "halted"
    NOT_DUE = "not_due"
    ALREADY_DONE = "already_done"
    LOCKED = "locked"
    LOST_LOCK = "lost_lock"
    STOPPED = "stopped"


class _JsonView:
    """Read-only item access to a record's stored JSON form (the pre-typed callers' view)."""

    def to_json(self) -> JsonObject:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __getitem__(self, key: str) -> JsonValue:
        return self.to_json()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The stored JSON value under ``key``, or ``default``."""
        return self.to_json().get(key, default)


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a JSON object, got {value!r}")
    return value


def _decimals(value: object, what: str) -> dict[str, Decimal]:
    return {str(k): Decimal(str(v)) for k, v in _object(value, what).items()}


def _texts(values: Mapping[str, Decimal]) -> JsonObject:
    return {k: str(v) for k, v in values.items()}


@dataclass(frozen=True)
class PlannedOrder(_JsonView):
    """One order of a stored plan, written before it is sent (the write-ahead entry)."""

    symbol: str
    side: str  # "buy" | "sell"
    qty: Decimal
    client_order_id: str
    estimated_notional: Decimal

    @classmethod
    def from_intent(cls, intent: OrderIntent) -> PlannedOrder:
        """The stored form of the planner's :class:`~service.orders.OrderIntent`."""
        return cls(
            intent.symbol,
            str(intent.side),
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
        d = _object(data, "planned order")
        return cls(
            symbol=str(d["symbol"]),
            side=str(d["side"]),
            qty=Decimal(str(d["qty"])),
            client_order_id=str(d["client_order_id"]),
            estimated_notional=Decimal(str(d["estimated_notional"])),
        )


@dataclass(frozen=True)
class OrderRow(_JsonView):
    """What the cycle knows of one planned order: the broker's order as last seen, or why none.

    ``status`` is an :class:`OrderStatus`, or the raw text for a status Alpaca does not
    document (kept, so the alert can name it) and for ``unconfirmed``
    (:data:`~service.order_status.UNCONFIRMED`). ``broker_id`` is None for an order the broker
    never accepted; ``error`` then says why.
    """

    symbol: str
    side: str
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

        ``status`` applies only without an order: :data:`~service.order_status.SUBMIT_REFUSED`
        (the broker refused the request) or :data:`~service.order_status.UNCONFIRMED`.
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
        """What the cycle does next with this order (:func:`~service.order_status.phase_of`)."""
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
        d = _object(data, "order row")
        price, submitted = d.get("filled_avg_price"), d.get("submitted_at")
        return cls(
            symbol=str(d["symbol"]),
            side=str(d["side"]),
            qty=Decimal(str(d["qty"])),
            client_order_id=str(d["client_order_id"]),
            status=_status(str(d.get("status", ""))),
            filled_qty=Decimal(str(d.get("filled_qty", "0"))),
            error=str(d.get("error") or ""),
            broker_id=None if d.get("broker_id") is None else str(d["broker_id"]),
            filled_avg_price=None if price is None else Decimal(str(price)),
            submitted_at=None if submitted is None else datetime.fromisoformat(str(submitted)),
        )


def _status(text: str) -> OrderStatus | str:
    return parse_order_status(text) or text


def _text_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Plan(_JsonView):
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
            "prices": _texts(self.prices),
            "target": _texts(self.target),
            "current_weights": _texts(self.current_weights),
            "equity": str(self.equity),
        }

    @classmethod
    def from_json(cls, data: object) -> Plan:
        d = _object(data, "plan")
        return cls(
            orders=tuple(PlannedOrder.from_json(o) for o in d.get("orders", [])),
            prices=_decimals(d.get("prices", {}), "plan.prices"),
            target=_decimals(d.get("target", {}), "plan.target"),
            current_weights=_decimals(d.get("current_weights", {}), "plan.current_weights"),
            equity=Decimal(str(d.get("equity", "0"))),
        )


_SIGNAL_KEYS = (
    "date",
    "weights",
    "cash",
    "ready",
    "regime",
    "regime_label",
    "regime_probs",
    "diagnostics",
    "data_notes",
)


@dataclass(frozen=True)
class SignalSummary(_JsonView):
    """The signal as the cycle stores it (record, history): ``Signal.to_dict()`` + data notes.

    ``data_notes`` is None in records written before notes existed (the key is then absent);
    ``extra`` keeps keys this version does not know, so a newer writer's fields survive.
    """

    date: str  # the bar date, YYYY-MM-DD
    weights: Mapping[str, float]
    cash: float
    ready: bool
    regime: int | None = None
    regime_label: str | None = None
    regime_probs: tuple[float, ...] | None = None
    diagnostics: Mapping[str, JsonValue] = field(default_factory=dict)
    data_notes: tuple[str, ...] | None = ()
    extra: Mapping[str, JsonValue] = field(default_factory=dict)

    @property
    def exposure(self) -> float | None:
        """The strategy's gross exposure, when its diagnostics report one."""
        value = self.diagnostics.get("exposure")
        return float(value) if isinstance(value, int | float) else None

    def to_json(self) -> JsonObject:
        out: JsonObject = {
            "date": self.date,
            "weights": dict(self.weights),
            "cash": self.cash,
            "ready": self.ready,
            "regime": self.regime,
            "regime_label": self.regime_label,
            "regime_probs": None if self.regime_probs is None else list(self.regime_probs),
            "diagnostics": dict(self.diagnostics),
        }
        if self.data_notes is not None:
            out["data_notes"] = list(self.data_notes)
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, data: object) -> SignalSummary:
        d = _object(data, "signal")
        probs, notes = d.get("regime_probs"), d.get("data_notes")
        return cls(
            date=str(d["date"]),
            weights=dict(_object(d.get("weights", {}), "signal.weights")),
            cash=d.get("cash", 0.0),
            ready=bool(d.get("ready", False)),
            regime=d.get("regime"),
            regime_label=d.get("regime_label"),
            regime_probs=None if probs is None else tuple(probs),
            diagnostics=dict(_object(d.get("diagnostics") or {}, "signal.diagnostics")),
            data_notes=None if notes is None else tuple(str(n) for n in notes),
            extra={k: v for k, v in d.items() if k not in _SIGNAL_KEYS},
        )


def _dumps(value: JsonValue) -> str:
    return json.dumps(value)


def encode_fields(
    *,
    signal: SignalSummary | None = None,
    plan: Plan | None = None,
    buys: Plan | None = None,
    orders: Mapping[str, OrderRow] | None = None,
    pending_state: Mapping[str, Any] | None = None,
    prices: Mapping[str, Decimal] | None = None,
    error: str | None = None,
) -> dict[str, str]:
    """The hash fields of the given parts of a record, as :class:`CycleRecord` stores them."""
    out: dict[str, str] = {}
    if signal is not None:
        out["signal"] = _dumps(signal.to_json())
    if pending_state is not None:
        out["pending_state"] = _dumps(cast(JsonValue, dict(pending_state)))
    if prices is not None:
        out["prices"] = _dumps(_texts(prices))
    if plan is not None:
        out["plan"] = _dumps(plan.to_json())
    if buys is not None:
        out["buys"] = _dumps(buys.to_json())
    if orders is not None:
        out["orders"] = _dumps({c: r.to_json() for c, r in orders.items()})
    if error is not None:
        out["error"] = error
    return out


@dataclass(frozen=True)
class CycleRecord:
    """The persisted state of one portfolio's cycle for one session (one Redis hash).

    ``orders`` maps client order id to row; ``pending_state`` is the strategy state computed
    at step ``signal``, which becomes the strategy key at ``done``; ``prices`` the planning
    prices of that signal; ``alert_claim`` the epoch time of the last claim to publish the
    done cycle's alert.
    """

    portfolio: str
    session: str
    cycle_id: str
    step: Step
    started_at: str
    updated_at: str
    attempts: int = 1
    outcome: Outcome | None = None
    error: str | None = None
    plan: Plan | None = None
    buys: Plan | None = None
    orders: Mapping[str, OrderRow] = field(default_factory=dict)
    signal: SignalSummary | None = None
    pending_state: JsonObject | None = None
    prices: Mapping[str, Decimal] | None = None
    alerted: bool = False
    alert_claim: str | None = None

    @property
    def finished(self) -> bool:
        return self.step is Step.DONE

    @property
    def planned_orders(self) -> tuple[PlannedOrder, ...]:
        """The sells of the first plan and the buys of the buy plan, in sending order."""
        sells = self.plan.side("sell") if self.plan else ()
        buys = self.buys.side("buy") if self.buys else ()
        return sells + buys

    @classmethod
    def from_hash(cls, portfolio: str, session: str, raw: Mapping[str, str]) -> CycleRecord:
        """Read a cycle hash (``HGETALL`` with ``decode_responses``).

        Raises
        ------
        ValueError
            If a field does not hold what this schema stores; the message names it.
        """

        def loads(name: str) -> Any:
            try:
                return json.loads(raw[name]) if raw.get(name) else None
            except json.JSONDecodeError as e:
                raise ValueError(f"cycle {portfolio} {session}: field {name!r}: {e}") from e

        plan, buys, signal, rows = loads("plan"), loads("buys"), loads("signal"), loads("orders")
        prices = loads("prices")
        return cls(
            portfolio=portfolio,
            session=session,
            cycle_id=raw["cycle_id"],
            step=Step(raw["step"]),
            started_at=raw["started_at"],
            updated_at=raw.get("updated_at", raw["started_at"]),
            attempts=int(raw.get("attempts", "1")),
            outcome=Outcome(raw["outcome"]) if raw.get("outcome") else None,
            error=raw.get("error") or None,
            plan=None if plan is None else Plan.from_json(plan),
            buys=None if buys is None else Plan.from_json(buys),
            orders={c: OrderRow.from_json(r) for c, r in (rows or {}).items()},
            signal=None if signal is None else SignalSummary.from_json(signal),
            pending_state=loads("pending_state"),
            prices=None if prices is None else _decimals(prices, "prices"),
            alerted=raw.get("alerted") == "1",
            alert_claim=raw.get("alert_claim"),
        )

    def to_hash(self) -> dict[str, str]:
        """The hash fields this record is stored as (the inverse of :meth:`from_hash`).

        An empty order table is not written (no table reads as empty).
        """
        out = {
            "cycle_id": self.cycle_id,
            "step": str(self.step),
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "attempts": str(self.attempts),
        }
        if self.outcome is not None:
            out["outcome"] = str(self.outcome)
        out |= encode_fields(
            signal=self.signal,
            plan=self.plan,
            buys=self.buys,
            orders=self.orders or None,
            pending_state=self.pending_state,
            prices=self.prices,
            error=self.error,
        )
        if self.alerted:
            out["alerted"] = "1"
        if self.alert_claim is not None:
            out["alert_claim"] = self.alert_claim
        return out
