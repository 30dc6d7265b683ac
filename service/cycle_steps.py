"""The work of each cycle step: signal, reconcile and plan, submit, wait, re-plan buys.

:mod:`regime_trader.service.cycle` decides *whether* and *from where* a cycle runs; this module
does the steps. Every step stores its result in the cycle record before the next one starts, and
every order is looked up at the broker by its ``client_order_id`` before it is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Unpack

from regime_trader.service.alpaca_parsing import BrokerOrder
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.cycle_record import (
    AFTER_PLAN,
    STEP_ORDER,
    Boundary,
    CycleRecord,
    OrderRow,
    Plan,
    PlannedOrder,
    RecordParts,
    SignalSummary,
    Step,
)
from regime_trader.service.exceptions import (
    BrokerRejectedError,
    DuplicateClientOrderError,
    OrderStateUnknownError,
    ReconciliationError,
)
from regime_trader.service.fill_wait import wait_for_fills
from regime_trader.service.order_status import SUBMIT_REFUSED, UNCONFIRMED, OrderPhase
from regime_trader.service.orders import plan_orders
from regime_trader.service.signal_step import SignalResult

__all__ = ["AFTER_PLAN", "STEP_ORDER", "Execution", "TradeSteps"]

# Lookups by client_order_id after the broker called one a duplicate: the earlier attempt's
# order may take a moment to become visible. Then it is recorded as unconfirmed.
DUPLICATE_LOOKUPS = 3


@dataclass(frozen=True)
class Execution:
    """What carrying a plan through did: the order rows, and notes on orders that fell short."""

    orders: Mapping[str, OrderRow]
    notes: tuple[str, ...] = ()

    @property
    def sent_any(self) -> bool:
        """Whether any order reached the broker (a refused POST sent nothing)."""
        return any(r.status != SUBMIT_REFUSED for r in self.orders.values())


@dataclass
class TradeSteps:
    """Reconcile, plan, submit and wait — resumable from any stored step.

    Each step stores its result before the next one starts and returns what it did; the
    caller (:class:`regime_trader.service.cycle.CycleRunner`) turns that into the outcome, alert
    and status.
    """

    ctx: CycleContext
    session: date
    owner: str
    boundary: Callable[[str], None]
    orders: dict[str, OrderRow] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def _name(self) -> str:
        return self.ctx.portfolio.name

    def _advance(self, step: Step, **parts: Unpack[RecordParts]) -> None:
        began = time.perf_counter()
        self.ctx.store.advance(self._name, self.session.isoformat(), self.owner, step, **parts)
        self.boundary(step)
        self.ctx.metrics.cycle_step_seconds.labels(portfolio=self._name, step=step).observe(
            time.perf_counter() - began
        )

    # ------------------------------------------------------------------ signal and plan

    def store_signal(self, result: SignalResult) -> SignalSummary:
        """Store the signal, the pending strategy state and the planning prices."""
        summary = SignalSummary.from_json(
            {**result.signal.to_dict(), "data_notes": result.data_notes()}
        )
        self._advance(
            Step.SIGNAL,
            signal=summary,
            pending_state=result.state,
            prices={s: Decimal(v) for s, v in result.prices.items()},
        )
        return summary

    def plan(self, result: SignalResult) -> Plan:
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
        weights = dict(result.signal.weights)
        planned = plan_orders(
            snapshot,
            weights,
            portfolio=self._name,
            session=self.session,
            settings=self.ctx.planning,
        )
        plan = Plan.of(planned.orders, snapshot, weights)
        self._advance(Step.PLANNED, plan=plan)
        return plan

    # ------------------------------------------------------------------ execution

    def execute(self, record: CycleRecord) -> Execution:
        """Carry the stored plan through to ``filled`` from the step ``record`` reached."""
        self.orders = dict(record.orders)
        step = STEP_ORDER.index(record.step)
        plan = record.plan or Plan((), {}, {}, {}, Decimal(0))
        if step <= STEP_ORDER.index(Step.PLANNED):
            self._submit(plan.side("sell"))
            self._advance(Step.SELLS_SUBMITTED)
        if step <= STEP_ORDER.index(Step.SELLS_SUBMITTED):
            self._wait(plan.side("sell"))
            self._advance(Step.SELLS_FILLED)
        buys = record.buys
        if step <= STEP_ORDER.index(Step.SELLS_FILLED):
            buys = self._plan_buys(plan)
            self._advance(Step.BUYS_PLANNED, buys=buys)
        buy_orders = buys.side("buy") if buys else ()
        if step <= STEP_ORDER.index(Step.BUYS_PLANNED):
            self._submit(buy_orders)
            self._advance(Step.BUYS_SUBMITTED)
        if step <= STEP_ORDER.index(Step.BUYS_SUBMITTED):
            self._wait(buy_orders)
            self._advance(Step.FILLED)
        return Execution(dict(self.orders), tuple(self.notes))

    def _submit(self, planned: tuple[PlannedOrder, ...]) -> None:
        for intent in planned:
            coid = intent.client_order_id
            order = self.ctx.broker.order_by_client_id(coid)
            error, status = "", SUBMIT_REFUSED
            if order is None:
                try:
                    order = self.ctx.broker.submit_market_order(
                        intent.symbol, intent.side, intent.qty, coid
                    )
                    self.ctx.metrics.orders_submitted_total.labels(
                        portfolio=self._name, side=intent.side
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
            self._note(OrderRow.of(intent, order, error, status))
            self.boundary(Boundary.ORDER_SENT)  # a halt, a stop or a lost lock ends sending here

    def _find_duplicate(self, coid: str) -> BrokerOrder | None:
        """Look up an order the broker calls a duplicate, a few times, a poll interval apart."""
        for attempt in range(DUPLICATE_LOOKUPS):
            if attempt:
                time.sleep(self.ctx.poll_interval_secs)
            order = self.ctx.broker.order_by_client_id(coid)
            if order is not None:
                return order
        return None

    def _note(self, row: OrderRow) -> None:
        """Record what the broker did with one planned order (the table and the ledger)."""
        self.orders[row.client_order_id] = row
        self.ctx.store.record_orders(
            self._name,
            self.session.isoformat(),
            self.owner,
            self.orders,
            [{"event": "order", **row.to_json()}],
        )

    def _wait(self, planned: tuple[PlannedOrder, ...]) -> None:
        """Wait (bounded) until every sent order is final; see :func:`wait_for_fills`.

        Raises
        ------
        OrderStateUnknownError
            An order has a status Alpaca does not document, or the broker called it a
            duplicate and it never appeared: nothing more is traded in this cycle.
        """
        self.boundary(Boundary.WAITING_FILLS)
        by_id = {i.client_order_id: i for i in planned}
        waiting = [
            c for c in by_id if (row := self.orders.get(c)) is not None and not row.phase.is_final
        ]
        wait = self.ctx.portfolio.fill_timeout_secs
        result = wait_for_fills(
            self.ctx.broker,
            self.orders,
            waiting,
            self.session,
            timeout_secs=wait,
            interval_secs=self.ctx.poll_interval_secs,
            note=lambda coid, order: self._note(OrderRow.of(by_id[coid], order)),
        )
        if result.unknown:
            named = "; ".join(
                f"{self.orders[c].describe()}: {why}" for c, why in result.unknown.items()
            )
            raise OrderStateUnknownError(
                f"{len(result.unknown)} orders in an unknown state, nothing more is sent: {named}"
            )
        if result.pending:
            self.notes.append(f"{len(result.pending)} orders not filled within {wait:g} s")
        failed = [
            r
            for c in by_id
            if (r := self.orders.get(c)) is not None and r.sent and r.phase is OrderPhase.FAILED
        ]
        if failed:
            ended = ", ".join(
                f"{r.symbol} {r.side} {r.status} (filled {r.filled_qty} of {r.qty})" for r in failed
            )
            self.notes.append(f"{len(failed)} orders ended before filling fully: {ended}")

    def _plan_buys(self, plan: Plan) -> Plan:
        """Re-size the buys to the buying power the filled sells actually left."""
        snapshot = self.ctx.broker.snapshot(list(self.ctx.portfolio.symbols), dict(plan.prices))
        fresh = plan_orders(
            snapshot,
            plan.target,
            portfolio=self._name,
            session=self.session,
            settings=self.ctx.planning,
        )
        buys = tuple(o for o in fresh.orders if o.side == "buy")
        return Plan.of(buys, snapshot, plan.target)
