"""The daily cycle of one portfolio, as a state machine persisted in Redis.

Steps (``CycleRecord.step``) and what is stored on entering each::

    started          lock taken, record created (or another attempt counted)
    signal           bars validated, strategy updated: the signal and the *pending* strategy
                     state are stored (the strategy key itself changes only at ``done``)
    planned          the sell plan and the first buy plan, written BEFORE any order is sent
    sells_submitted  every sell is at the broker (an id it already knows is never re-sent)
    sells_filled     sells filled or the bounded wait ran out
    buys_planned     buys re-sized to the buying power actually available, written before
                     any buy is sent
    buys_submitted   every buy is at the broker
    filled           buys filled or the bounded wait ran out
    done             outcome, strategy state, history and status, in one transaction

A crash anywhere, followed by a restart, resumes from the stored step: before ``planned``
nothing was sent and everything is recomputed (deterministically, from the same stored state
and the same bars); from ``planned`` on, the stored plans are replayed and every order is
first looked up at the broker by its deterministic ``client_order_id``. The Redis lock keeps a
second replica out, and every write is fenced on it.

Not trading is a decision too: a closed market, a cycle already done, a halted portfolio,
bad data or a failed reconciliation each end the attempt with a clear reason, a log line and
(once per session and reason) an alert; the strategy state is left as it was.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from service.alerts import Alert
from service.alpaca_parsing import BrokerClock
from service.config import PortfolioConfig
from service.cycle_context import CycleContext
from service.cycle_steps import AFTER_PLAN, TradeSteps
from service.exceptions import (
    BrokerRejectedError,
    InvalidInputError,
    OperationalError,
    RegimeTraderError,
    TemporaryBrokerError,
)
from service.fill_wait import order_row, orders_since, row_phase, unknown_state
from service.logs import bind_cycle, get_logger
from service.order_status import OrderPhase
from service.signal_step import compute_signal
from service.store import CycleRecord, LockLostError, Store, StoreUnavailableError

__all__ = ["CycleOutcome", "CycleRunner"]

NEW_YORK = ZoneInfo("America/New_York")
log = get_logger(__name__)
AlertKind = Literal["rebalanced", "no_trade", "skipped", "failed", "halted", "resumed"]
Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class CycleOutcome:
    """What one call of :meth:`CycleRunner.run` did."""

    portfolio: str
    session: str | None
    # rebalanced | no_trade | already_done | not_due | locked | halted | refused | failed
    # | lost_lock | stopped
    outcome: str
    reason: str = ""
    orders: int = 0


class _LockKeeper:
    """Renews the portfolio lock in the background; ``lost`` turns True if renewal fails."""

    def __init__(self, store: Store, portfolio: str, owner: str, ttl_secs: float) -> None:
        self._store, self._portfolio, self._owner, self._ttl = store, portfolio, owner, ttl_secs
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"lock-{portfolio}")

    def __enter__(self) -> _LockKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._ttl / 3):
            try:
                if not self._store.renew_lock(self._portfolio, self._owner, self._ttl):
                    self.lost = True
                    return
            except StoreUnavailableError:
                continue  # the TTL still protects us for a while; fenced writes will tell


class CycleRunner:
    """Runs (or resumes) today's cycle of one portfolio.

    Parameters
    ----------
    ctx : CycleContext
        The portfolio's configuration and its broker, bars, store, alerts and metrics.
    owner : str
        This process's identity in the lock (host/pid/uuid).
    lock_ttl_secs : float
        Lock lifetime; renewed every third of it while the cycle runs.
    step_hook : callable(step), optional
        Called at every step boundary after the step is stored (fault injection in tests).
    stop_requested : callable() -> bool, optional
        Polled at step boundaries: True (SIGTERM) ends the attempt cleanly there.
    """

    def __init__(
        self,
        ctx: CycleContext,
        *,
        owner: str,
        lock_ttl_secs: float = 60.0,
        step_hook: Callable[[str], None] | None = None,
        stop_requested: Callable[[], bool] | None = None,
    ) -> None:
        self.ctx = ctx
        self.owner = owner
        self.lock_ttl_secs = lock_ttl_secs
        self._hook = step_hook or (lambda step: None)
        self._refusals: dict[str, str] = {}  # session -> reason key last alerted
        self._stop_requested = stop_requested or (lambda: False)
        # The last clock the broker gave, with our monotonic time then: when the broker is
        # unreachable, "today" is that reading moved on by the time since (the broker's day,
        # as everywhere else in the cycle, never the machine's).
        self._last_clock: tuple[BrokerClock, float] | None = None

    @property
    def portfolio(self) -> PortfolioConfig:
        return self.ctx.portfolio

    def run(self, *, force: bool = False) -> CycleOutcome:
        """One attempt: due-check, lock, resume or start, and finish or stop with a reason."""
        name = self.portfolio.name
        try:
            clock = self.ctx.broker.clock()
        except RegimeTraderError as e:
            return self._unreachable(f"broker clock unavailable: {e}")
        self._last_clock = (clock, time.monotonic())
        now = clock.timestamp.astimezone(NEW_YORK)
        session = now.date().isoformat()
        self._close_interrupted(session, include_today=not clock.is_open)
        if not clock.is_open:
            return CycleOutcome(name, None, "not_due", f"market closed at {now:%Y-%m-%d %H:%M} NY")
        if not force and now.time() < self.portfolio.schedule_time:
            return CycleOutcome(name, session, "not_due", f"before {self.portfolio.schedule_time}")
        record = self.ctx.store.cycle(name, session)
        if record is not None and record.finished:
            self._alert_if_missing(record)
            return CycleOutcome(name, session, "already_done", record.outcome or "")
        if not self.ctx.store.acquire_lock(name, self.owner, self.lock_ttl_secs):
            return CycleOutcome(name, session, "locked", "another process runs this cycle")
        try:
            # Read again under the lock: another replica may have finished the cycle and
            # released the lock between the first read and our acquisition.
            record = self.ctx.store.cycle(name, session)
            if record is not None and record.finished:
                return CycleOutcome(name, session, "already_done", record.outcome or "")
            with _LockKeeper(self.ctx.store, name, self.owner, self.lock_ttl_secs) as keeper:
                cycle_id = record.cycle_id if record else uuid.uuid4().hex[:12]
                with bind_cycle(name, session, cycle_id):
                    return self._attempt(session, now, cycle_id, keeper)
        finally:
            with contextlib.suppress(StoreUnavailableError):  # else the TTL releases it
                self.ctx.store.release_lock(name, self.owner)

    def broker_day(self) -> str:
        """The broker's New York date now, from its last clock reading moved on since.

        Before any reading (the broker was never reached) there is no broker time to go by:
        the machine's New York date is the only estimate.
        """
        if self._last_clock is None:
            return datetime.now(NEW_YORK).date().isoformat()
        clock, read_at = self._last_clock
        elapsed = timedelta(seconds=max(0.0, time.monotonic() - read_at))
        return (clock.timestamp + elapsed).astimezone(NEW_YORK).date().isoformat()

    def _unreachable(self, reason: str) -> CycleOutcome:
        """The broker cannot even tell the time: alert once per broker day and reason."""
        name = self.portfolio.name
        day = self.broker_day()
        log.error("not trading", outcome="failed", reason=reason)
        key = _reason_key(reason)
        if self._refusals.get(day) != key:
            self._refusals[day] = key
            self._publish(
                Alert(
                    portfolio=name,
                    session=day,
                    kind="failed",
                    severity="error",
                    summary=f"{name} {day}: {reason}",
                    details={"reason": reason, "outcome": "failed"},
                )
            )
        return CycleOutcome(name, None, "failed", reason)

    def _close_interrupted(self, session: str, *, include_today: bool) -> None:
        """End cycles a crash left unfinished in a session that is over; never re-trade them.

        Their orders are refreshed from the broker (what filled is recorded), the cycle is
        marked done with outcome ``interrupted``, the strategy keeps the state it computed, and
        a ``failed`` alert says what was left unsent.
        """
        name, store = self.portfolio.name, self.ctx.store
        for past in store.sessions(name, 3):
            if past > session or (past == session and not include_today):
                continue
            record = store.cycle(name, past)
            if record is None or record.finished:
                continue
            if not store.acquire_lock(name, self.owner, self.lock_ttl_secs):
                return
            try:
                self._expire(record)
            except RegimeTraderError as e:
                log.error("could not close an interrupted cycle", session=past, error=str(e))
            finally:
                with contextlib.suppress(StoreUnavailableError):
                    store.release_lock(name, self.owner)

    def _expire(self, record: CycleRecord) -> None:
        name, store, broker = self.portfolio.name, self.ctx.store, self.ctx.broker
        orders = dict(record.orders)
        intents = [*(record.plan or {}).get("orders", []), *(record.buys or {}).get("orders", [])]
        session = date.fromisoformat(record.session)
        # One order list for the whole sweep (not one lookup per order): rate limits.
        listed = {o.client_order_id: o for o in broker.orders(after=orders_since(orders, session))}
        for intent in intents:
            order = listed.get(intent["client_order_id"])
            if order is not None:
                orders[intent["client_order_id"]] = order_row(order, intent)
        unsent = [i["client_order_id"] for i in intents if i["client_order_id"] not in orders]
        store.record_orders(
            name,
            record.session,
            self.owner,
            orders,
            [{"event": "cycle_interrupted", "unsent": unsent}],
        )
        phases = [row_phase(row) for row in orders.values()]
        odd = [
            f"{row['client_order_id']}: {why}"
            for row in orders.values()
            if (why := unknown_state(row))
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
            self.owner,
            outcome="interrupted",
            strategy_state=record.pending_state,
            signal=record.signal,
            status={"last_outcome": "interrupted", "last_reason": reason},
        )
        store.mark_alerted(name, record.session)
        log.error("cycle interrupted", session=record.session, reason=reason)
        self._publish(
            Alert(
                portfolio=name,
                session=record.session,
                kind="failed",
                severity="error",
                summary=f"{name} {record.session}: {reason}",
                details={"reason": reason, "orders": list(orders.values()), "unsent": unsent},
            )
        )

    def _attempt(
        self, session: str, now: datetime, cycle_id: str, keeper: _LockKeeper
    ) -> CycleOutcome:
        name, store = self.portfolio.name, self.ctx.store
        began = time.perf_counter()
        try:
            record = store.begin_cycle(name, session, self.owner, cycle_id)
            halt = store.halted(name)
            self.ctx.metrics.halted.labels(portfolio=name).set(1 if halt else 0)
            if halt is not None:
                return self._refuse(session, record.step, "halted", f"halted: {halt['reason']}")
            self._boundary("started", keeper)
            day = date.fromisoformat(session)
            steps = TradeSteps(
                self.ctx,
                session=day,
                owner=self.owner,
                boundary=lambda step: self._boundary(step, keeper),
            )
            if record.step not in AFTER_PLAN:
                result = compute_signal(self.ctx, day, now)
                steps.store_signal(result)
                if not result.signal.ready:
                    return self._finish(session, "no_trade", steps, result.reason, began)
                steps.plan(result)
            steps.execute()
            outcome = "rebalanced" if steps.sent_any else "no_trade"
            return self._finish(session, outcome, steps, steps.reason, began)
        except _HaltedError as e:
            return self._refuse(session, None, "halted", str(e))
        except (LockLostError, _StopRequestedError) as e:
            log.warning("cycle attempt stopped", reason=str(e))
            return CycleOutcome(
                name, session, "lost_lock" if isinstance(e, LockLostError) else "stopped", str(e)
            )
        except InvalidInputError as e:
            return self._refuse(session, None, "refused", f"bad input, not trading: {e}")
        except BrokerRejectedError as e:
            return self._refuse(session, None, "failed", f"broker rejected: {e}")
        except (OperationalError, TemporaryBrokerError, StoreUnavailableError) as e:
            return self._refuse(session, None, "failed", f"{type(e).__name__}: {e}")

    def _boundary(self, step: str, keeper: _LockKeeper) -> None:
        """Between two stored steps (and between two orders): may we go on?"""
        self._hook(step)
        if keeper.lost:
            raise LockLostError(f"{self.portfolio.name}: lock renewal failed at {step}")
        if self._stop_requested():
            raise _StopRequestedError(f"stop requested at step {step}")
        halt = self.ctx.store.halted(self.portfolio.name)
        if halt is not None:  # an operator's halt mid-cycle: nothing new is sent after it
            raise _HaltedError(f"halted: {halt['reason']} (seen at step {step})")

    def _finish(
        self, session: str, outcome: str, steps: TradeSteps, reason: str, began: float
    ) -> CycleOutcome:
        name = self.portfolio.name
        status = steps.status_fields(outcome)
        details = steps.alert_details(reason)  # before completion: it compares with history
        self.ctx.store.complete_cycle(
            name,
            session,
            self.owner,
            outcome=outcome,
            strategy_state=steps.pending_state(),
            signal=steps.signal_dict(),
            status=status,
        )
        self._hook("done")
        self._observe(outcome, status, details, time.perf_counter() - began)
        record = self.ctx.store.cycle(name, session)
        if record is None:  # deleted under us (operator, eviction): the trade stands, say so
            raise StoreUnavailableError(f"{name} {session}: the cycle record vanished after done")
        self._alert_if_missing(record, details)
        log.info("cycle done", outcome=outcome, orders=steps.order_count, reason=reason)
        return CycleOutcome(name, session, outcome, reason, steps.order_count)

    def _observe(
        self, outcome: str, status: dict[str, Any], details: dict[str, Any], secs: float
    ) -> None:
        """Prometheus: outcome, duration, regime probabilities, exposure, equity, data age."""
        m, name = self.ctx.metrics, self.portfolio.name
        m.cycles_total.labels(portfolio=name, outcome=outcome).inc()
        m.last_success_timestamp_seconds.labels(portfolio=name).set(time.time())
        m.cycle_step_seconds.labels(portfolio=name, step="total").observe(secs)
        m.halted.labels(portfolio=name).set(0)
        for label, p in (details.get("regime_probs") or {}).items():
            m.regime_probability.labels(portfolio=name, state=label).set(p)
        if details.get("exposure") is not None:
            m.exposure_ratio.labels(portfolio=name).set(float(details["exposure"]))
        if status.get("equity") is not None:
            m.equity_usd.labels(portfolio=name).set(float(status["equity"]))
        if details.get("bar_date"):
            close = datetime.combine(
                date.fromisoformat(details["bar_date"]), dt_time(16, 0), tzinfo=NEW_YORK
            )  # an early close makes the age a bit high
            m.set_last_bar_close(name, close.timestamp())

    def _alert_if_missing(self, record: CycleRecord, details: dict[str, Any] | None = None) -> None:
        """Publish the done cycle's alert once, even if a crash came right after ``done``."""
        if record.alerted:
            return
        try:
            if not self.ctx.store.claim_alert(record.portfolio, record.session):
                return  # another replica is publishing it
        except StoreUnavailableError:
            return  # the next wake-up retries
        signal = record.signal or {}
        details = details or {
            "reason": "alert sent after a restart",
            "regime": signal.get("regime_label"),
            "target_weights": signal.get("weights"),
            "orders": list(record.orders.values()),
            "data_notes": signal.get("data_notes") or [],
        }
        kind: AlertKind = "rebalanced" if record.outcome == "rebalanced" else "no_trade"
        self._publish(
            Alert(
                portfolio=record.portfolio,
                session=record.session,
                kind=kind,
                severity="info",
                summary=_summary(record.portfolio, record.session, kind, details),
                details=details,
            )
        )
        try:
            self.ctx.store.mark_alerted(record.portfolio, record.session)
        except StoreUnavailableError:
            log.warning("could not mark the alert as sent; it may be repeated")

    def _refuse(self, session: str, step: str | None, outcome: str, reason: str) -> CycleOutcome:
        """Record why this attempt did not trade; alert once per session and kind of reason.

        Reasons are compared with their numbers masked, so the wake-ups of one outage
        ("failed after 4 attempts in 2.1 s", then "... 3.4 s") make one alert, not one each;
        the last alerted reason is also remembered in memory for when Redis itself is down.
        """
        name = self.portfolio.name
        severity: Severity = "warning" if outcome in ("halted", "refused") else "error"
        log.warning("not trading", outcome=outcome, reason=reason)
        self.ctx.metrics.cycles_total.labels(portfolio=name, outcome=outcome).inc()
        key = _reason_key(reason)
        known = {self._refusals.get(session)}
        try:
            record = self.ctx.store.cycle(name, session)
            if record is not None and record.error:
                known.add(_reason_key(record.error))
            if key not in known:
                stored_step = step or (record.step if record else "started")
                self.ctx.store.advance(name, session, self.owner, stored_step, error=reason)
            self.ctx.store.set_status(
                name,
                {"last_outcome": outcome, "last_reason": reason, "last_attempt_session": session},
            )
        except RegimeTraderError as e:
            log.error("could not record the refusal", error=str(e))
        if key not in known:
            self._refusals[session] = key
            kind: AlertKind = (
                "halted" if outcome == "halted" else "failed" if outcome == "failed" else "skipped"
            )
            self._publish(
                Alert(
                    portfolio=name,
                    session=session,
                    kind=kind,
                    severity=severity,
                    summary=f"{name} {session}: {reason}",
                    details={"reason": reason, "outcome": outcome},
                )
            )
        return CycleOutcome(name, session, outcome, reason)

    def _publish(self, alert: Alert) -> None:
        try:
            self.ctx.alerts.publish(alert)
        except Exception as e:
            log.error("alert publishing failed", error=type(e).__name__)


class _StopRequestedError(Exception):
    """SIGTERM was seen at a step boundary."""


class _HaltedError(Exception):
    """The portfolio was halted while its cycle ran."""


def _reason_key(reason: str) -> str:
    """A reason with its numbers masked: attempts, seconds and amounts vary between wake-ups."""
    return re.sub(r"\d+(?:\.\d+)?", "#", reason)


def _summary(name: str, session: str, kind: str, details: dict[str, Any]) -> str:
    regime = details.get("regime_label") or details.get("regime") or "?"
    n = len([o for o in details.get("orders", []) if o.get("status") != "skipped"])
    # Re-adjusted history and carried bars are said in the one line people read.
    notes = "".join(f"; {note}" for note in details.get("data_notes") or [])
    if kind == "rebalanced":
        return f"{name} {session}: rebalanced with {n} orders, regime {regime}{notes}"
    reason = details.get("reason") or "within bands"
    return f"{name} {session}: no trade ({reason}), regime {regime}{notes}"
