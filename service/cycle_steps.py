"""The work of each cycle step: signal, reconcile and plan, submit, wait, re-plan buys.

:mod:`service.cycle` decides *whether* and *from where* a cycle runs; this module does the
steps. Every step stores its result in the cycle record before the next one starts, and every
order is looked up at the broker by its ``client_order_id`` before it is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from service.alpaca_parsing import BrokerOrder
from service.cycle_context import CycleContext
from service.exceptions import (
    BrokerRejectedError,
    DuplicateClientOrderError,
    OrderStateUnknownError,
    ReconciliationError,
)
from service.fill_wait import describe_row, order_row, row_phase, wait_for_fills
from service.order_status import SUBMIT_REFUSED, UNCONFIRMED, OrderPhase
from service.orders import AccountSnapshot, OrderIntent, plan_orders
from service.signal_step import SignalResult
from service.store import CycleRecord, StoreUnavailableError
from strategies.base import regime_labels

__all__ = ["AFTER_PLAN", "STEP_ORDER", "TradeSteps", "order_row"]

# Lookups by client_order_id after the broker called one a duplicate: the earlier attempt's
# order may take a moment to become visible. Then it is recorded as unconfirmed.
DUPLICATE_LOOKUPS = 3

STEP_ORDER = (
    "started",
    "signal",
    "planned",
    "sells_submitted",
    "sells_filled",
    "buys_planned",
    "buys_submitted",
    "filled",
    "done",
)
AFTER_PLAN = frozenset(STEP_ORDER[2:-1])


# A plan as stored in the cycle record: {"orders": [...], "prices", "target", ...}.
StoredPlan = Mapping[str, Any]


def _intents(plan: StoredPlan, side: str) -> list[dict[str, Any]]:
    return [o for o in plan.get("orders", []) if o["side"] == side]


@dataclass
class TradeSteps:
    """Reconcile, plan, submit and wait — resumable from any stored step."""

    ctx: CycleContext
    session: date
    owner: str
    boundary: Callable[[str], None]
    orders: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def _name(self) -> str:
        return self.ctx.portfolio.name

    def _record(self) -> CycleRecord:
        record = self.ctx.store.cycle(self._name, self.session.isoformat())
        if record is None:  # it exists from step 'started' unless deleted under us
            raise StoreUnavailableError(f"{self._name} {self.session}: the cycle record vanished")
        return record

    def _advance(self, step: str, **fields: Any) -> None:
        began = time.perf_counter()
        self.ctx.store.advance(self._name, self.session.isoformat(), self.owner, step, **fields)
        self.boundary(step)
        self.ctx.metrics.cycle_step_seconds.labels(portfolio=self._name, step=step).observe(
            time.perf_counter() - began
        )

    # ------------------------------------------------------------------ signal and plan

    def store_signal(self, result: SignalResult) -> None:
        self._advance(
            "signal",
            signal={**result.signal.to_dict(), "data_notes": result.data_notes()},
            pending_state=result.state,
            prices=result.prices,
        )

    def plan(self, result: SignalResult) -> None:
        """Reconcile with the broker, then write the plan before anything is sent."""
        account = self.ctx.broker.account()
        if account.blocking_flags:
            raise ReconciliationError(
                f"the account forbids trading: {', '.join(account.blocking_flags)} is set"
            )
        if account.status.upper() != "ACTIVE":
            raise ReconciliationError(f"the account status is {account.status!r}, not ACTIVE")
        foreign = [o for o in self.ctx.broker.open_orders()]
        if foreign:
            ids = ", ".join(f"{o.symbol} {o.side} {o.client_order_id}" for o in foreign[:5])
            raise ReconciliationError(
                f"{len(foreign)} open orders at the broker before planning: {ids}"
            )
        prices = {s: Decimal(v) for s, v in result.prices.items()}
        snapshot = self.ctx.broker.snapshot(list(self.ctx.portfolio.symbols), prices)
        weights = {s: w for s, w in result.signal.weights.items()}
        plan = plan_orders(
            snapshot,
            weights,
            portfolio=self._name,
            session=self.session,
            settings=self.ctx.planning,
        )
        self._advance("planned", plan=_plan_json(plan.orders, snapshot, weights))

    # ------------------------------------------------------------------ execution

    def execute(self) -> None:
        """Carry the stored plan through to ``filled`` from whatever step was reached."""
        record = self._record()
        self.orders = dict(record.orders)
        step = STEP_ORDER.index(record.step)
        plan = record.plan or {}
        if step <= STEP_ORDER.index("planned"):
            self._submit(_intents(plan, "sell"))
            self._advance("sells_submitted")
        if step <= STEP_ORDER.index("sells_submitted"):
            self._wait(_intents(plan, "sell"))
            self._advance("sells_filled")
        buys = record.buys
        if step <= STEP_ORDER.index("sells_filled"):
            buys = self._plan_buys(plan)
            self._advance("buys_planned", buys=buys)
        buys = buys or {"orders": []}
        if step <= STEP_ORDER.index("buys_planned"):
            self._submit(_intents(buys, "buy"))
            self._advance("buys_submitted")
        if step <= STEP_ORDER.index("buys_submitted"):
            self._wait(_intents(buys, "buy"))
            self._advance("filled")

    def _submit(self, intents: list[dict[str, Any]]) -> None:
        for intent in intents:
            coid = intent["client_order_id"]
            order = self.ctx.broker.order_by_client_id(coid)
            error, status = "", SUBMIT_REFUSED
            if order is None:
                try:
                    order = self.ctx.broker.submit_market_order(
                        intent["symbol"], intent["side"], Decimal(intent["qty"]), coid
                    )
                    self.ctx.metrics.orders_submitted_total.labels(
                        portfolio=self._name, side=intent["side"]
                    ).inc()
                except DuplicateClientOrderError as e:
                    # An earlier attempt of this POST reached the broker: never resend, find it.
                    order = self._find_duplicate(coid)
                    if order is None:
                        status = UNCONFIRMED
                        error = (
                            f"the broker calls {coid} a duplicate ({e.status} {e.code}: "
                            f"{e.broker_message}) but {DUPLICATE_LOOKUPS} lookups found no order"
                        )
                        self.ctx.metrics.orders_failed_total.labels(
                            portfolio=self._name, reason="duplicate_not_found"
                        ).inc()
                except BrokerRejectedError as e:
                    error = f"{e.status} {e.code}: {e.broker_message}"
                    self.ctx.metrics.orders_failed_total.labels(
                        portfolio=self._name, reason=str(e.code or e.status)
                    ).inc()
            self._note(intent, order, error, status)
            self.boundary("order_sent")  # a halt, a stop or a lost lock ends sending here

    def _find_duplicate(self, coid: str) -> BrokerOrder | None:
        """Look up an order the broker calls a duplicate, a few times, a poll interval apart."""
        for attempt in range(DUPLICATE_LOOKUPS):
            if attempt:
                time.sleep(self.ctx.poll_interval_secs)
            order = self.ctx.broker.order_by_client_id(coid)
            if order is not None:
                return order
        return None

    def _note(
        self,
        intent: Mapping[str, Any],
        order: BrokerOrder | None,
        error: str = "",
        status: str = SUBMIT_REFUSED,
    ) -> None:
        row = order_row(order, intent, error, status)
        self.orders[intent["client_order_id"]] = row
        self.ctx.store.record_orders(
            self._name,
            self.session.isoformat(),
            self.owner,
            self.orders,
            [{"event": "order", **row}],
        )

    def _wait(self, intents: list[dict[str, Any]]) -> None:
        """Wait (bounded) until every sent order is final; see :func:`wait_for_fills`.

        Raises
        ------
        OrderStateUnknownError
            An order has a status Alpaca does not document, or the broker called it a
            duplicate and it never appeared: nothing more is traded in this cycle.
        """
        self.boundary("waiting_fills")
        by_id = {i["client_order_id"]: i for i in intents}
        waiting = [
            c for c in by_id if (p := row_phase(self.orders.get(c))) is not None and not p.is_final
        ]
        wait = self.ctx.portfolio.fill_timeout_secs
        result = wait_for_fills(
            self.ctx.broker,
            self.orders,
            waiting,
            self.session,
            timeout_secs=wait,
            interval_secs=self.ctx.poll_interval_secs,
            note=lambda coid, order: self._note(by_id[coid], order),
        )
        if result.unknown:
            named = "; ".join(
                f"{describe_row(self.orders[c])}: {why}" for c, why in result.unknown.items()
            )
            raise OrderStateUnknownError(
                f"{len(result.unknown)} orders in an unknown state, nothing more is sent: {named}"
            )
        notes = []
        if result.pending:
            notes.append(f"{len(result.pending)} orders not filled within {wait:g} s")
        failed = [
            r
            for c in by_id
            if (r := self.orders.get(c)) is not None
            and r.get("broker_id")
            and row_phase(r) is OrderPhase.FAILED
        ]
        if failed:
            ended = ", ".join(
                f"{r['symbol']} {r['side']} {r['status']} (filled {r['filled_qty']} of {r['qty']})"
                for r in failed
            )
            notes.append(f"{len(failed)} orders ended before filling fully: {ended}")
        if notes:
            self.reason = "; ".join([*([self.reason] if self.reason else []), *notes])

    def _plan_buys(self, plan: StoredPlan) -> dict[str, Any]:
        """Re-size the buys to the buying power the filled sells actually left."""
        prices = {s: Decimal(v) for s, v in plan["prices"].items()}
        weights = {s: Decimal(v) for s, v in plan["target"].items()}
        snapshot = self.ctx.broker.snapshot(list(self.ctx.portfolio.symbols), prices)
        fresh = plan_orders(
            snapshot,
            weights,
            portfolio=self._name,
            session=self.session,
            settings=self.ctx.planning,
        )
        buys = [o for o in fresh.orders if o.side == "buy"]
        return _plan_json(tuple(buys), snapshot, weights)

    # ------------------------------------------------------------------ results

    @property
    def sent_any(self) -> bool:
        return any(o.get("status") != "rejected" for o in self.orders.values())

    @property
    def order_count(self) -> int:
        return len(self.orders)

    def pending_state(self) -> dict[str, Any] | None:
        return self._record().pending_state

    def signal_dict(self) -> dict[str, Any] | None:
        return self._record().signal

    def status_fields(self, outcome: str) -> dict[str, Any]:
        record = self._record()
        signal = record.signal or {}
        plan = record.plan or {}
        return {
            "last_outcome": outcome,
            "last_reason": "",  # a done cycle clears the previous refusal
            "last_session": self.session.isoformat(),
            "last_success_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            "regime": signal.get("regime_label"),
            "regime_probs": _labelled(signal.get("regime_probs")),
            "target_weights": signal.get("weights"),
            "equity": plan.get("equity"),
            "orders": len(self.orders),
        }

    def alert_details(self, reason: str) -> dict[str, Any]:
        record = self._record()
        signal = record.signal or {}
        previous = self.ctx.store.history(self._name, 1)
        prev_regime = previous[0].get("regime_label") if previous else None
        plan = record.plan or {}
        return {
            "regime": signal.get("regime_label"),
            "regime_probs": _labelled(signal.get("regime_probs")),
            "regime_change": (
                {"from": prev_regime, "to": signal.get("regime_label")}
                if prev_regime and prev_regime != signal.get("regime_label")
                else None
            ),
            "target_weights": signal.get("weights"),
            "previous_weights": plan.get("current_weights"),
            "orders": list(self.orders.values()),
            "reason": reason,
            "equity": plan.get("equity"),
            "exposure": (signal.get("diagnostics") or {}).get("exposure"),
            "bar_date": signal.get("date"),
            "data_notes": signal.get("data_notes") or [],
        }


def _labelled(probs: list[float] | None) -> dict[str, float] | None:
    """Filtered probabilities keyed by regime name, for people and dashboards."""
    return None if not probs else dict(zip(regime_labels(len(probs)), probs, strict=True))


def _plan_json(
    orders: tuple[OrderIntent, ...], snapshot: AccountSnapshot, weights: Mapping[str, Any]
) -> dict[str, Any]:
    equity = snapshot.equity
    current = {
        s: str(
            (snapshot.positions.get(s, Decimal(0)) * snapshot.prices[s] / equity).quantize(
                Decimal("0.0001")
            )
        )
        for s in snapshot.prices
        if equity > 0
    }
    return {
        "orders": [
            {
                "symbol": o.symbol,
                "side": o.side,
                "qty": str(o.qty),
                "client_order_id": o.client_order_id,
                "estimated_notional": str(o.estimated_notional),
            }
            for o in orders
        ],
        "prices": {s: str(v) for s, v in snapshot.prices.items()},
        "target": {s: str(w) for s, w in weights.items()},
        "current_weights": current,
        "equity": str(equity),
    }
