"""The persisted state of one cycle, typed: steps, outcomes, planned orders, order rows, plans.

Every value the cycle stores in its Redis hash (``ns:p:cycle:s``, see
:mod:`regime_trader.service.store`) is one of the frozen dataclasses here or in
:mod:`regime_trader.service.cycle_plan` (plans, planned orders, order rows; re-exported here), and
each has its ``to_json``/``from_json`` in those two modules only. The JSON shapes are those the
previous, untyped version wrote, byte for byte (same keys, same key order, decimals as strings), so
a hash written before this module existed is read into a :class:`CycleRecord` and written back
identically (``tests/unit/service/test_cycle_record.py`` checks it on hashes captured from real
runs).

Values that are not the cycle's own schema stay JSON: the strategy's pending state (versioned
by the strategy itself) and the strategy's free-form signal diagnostics.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypedDict, Unpack, cast

from regime_trader.service.cycle_plan import (
    JsonObject,
    JsonValue,
    OrderRow,
    Plan,
    PlannedOrder,
    decimals,
    json_object,
    texts,
)

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
    "RecordParts",
    "SignalSummary",
    "Step",
]


class Step(StrEnum):
    """The stored steps of a cycle, in order (see :mod:`regime_trader.service.cycle`)."""

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
    """How one attempt of a cycle ended (:class:`regime_trader.service.cycle.CycleOutcome`).

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
class SignalSummary:
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
        d = json_object(data, "signal")
        probs, notes = d.get("regime_probs"), d.get("data_notes")
        return cls(
            date=str(d["date"]),
            weights=dict(json_object(d.get("weights", {}), "signal.weights")),
            cash=d.get("cash", 0.0),
            ready=bool(d.get("ready", False)),
            regime=d.get("regime"),
            regime_label=d.get("regime_label"),
            regime_probs=None if probs is None else tuple(probs),
            diagnostics=dict(json_object(d.get("diagnostics") or {}, "signal.diagnostics")),
            data_notes=None if notes is None else tuple(str(n) for n in notes),
            extra={k: v for k, v in d.items() if k not in _SIGNAL_KEYS},
        )


def _dumps(value: JsonValue) -> str:
    return json.dumps(value)


class RecordParts(TypedDict, total=False):
    """Parts of a cycle record a step stores, each one a hash field (None: not stored)."""

    signal: SignalSummary | None
    pending_state: Mapping[str, Any] | None
    prices: Mapping[str, Decimal] | None
    plan: Plan | None
    buys: Plan | None
    orders: Mapping[str, OrderRow] | None
    error: str | None


# Each part's hash field, in the order they are written.
_ENCODERS: dict[str, Callable[[Any], str]] = {
    "signal": lambda signal: _dumps(signal.to_json()),
    "pending_state": lambda state: _dumps(cast(JsonValue, dict(state))),
    "prices": lambda prices: _dumps(texts(prices)),
    "plan": lambda plan: _dumps(plan.to_json()),
    "buys": lambda buys: _dumps(buys.to_json()),
    "orders": lambda rows: _dumps({c: r.to_json() for c, r in rows.items()}),
    "error": str,
}


def encode_fields(**parts: Unpack[RecordParts]) -> dict[str, str]:
    """The hash fields of the given parts of a record, as :class:`CycleRecord` stores them."""
    given: Mapping[str, Any] = parts
    return {
        name: encode(given[name])
        for name, encode in _ENCODERS.items()
        if given.get(name) is not None
    }


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
            prices=None if prices is None else decimals(prices, "prices"),
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
