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
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo

from regime_trader.service.alerts import Alert
from regime_trader.service.alpaca_parsing import BrokerClock
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.cycle_record import AFTER_PLAN, CycleRecord, Outcome, Step
from regime_trader.service.cycle_report import (
    done_alert,
    done_details,
    done_status,
    labelled,
    refusal_alert,
    refusal_status,
    restart_details,
)
from regime_trader.service.cycle_steps import TradeSteps
from regime_trader.service.cycle_sweep import close_interrupted
from regime_trader.service.exceptions import (
    BrokerRejectedError,
    InvalidInputError,
    OperationalError,
    RegimeTraderError,
    TemporaryBrokerError,
)
from regime_trader.service.logs import bind_cycle, get_logger
from regime_trader.service.portfolio_config import PortfolioConfig
from regime_trader.service.shadow import ShadowBenchmarks
from regime_trader.service.signal_step import compute_signal
from regime_trader.service.store import LockLostError, Store, StoreUnavailableError

__all__ = ["CycleOutcome", "CycleRunner"]

NEW_YORK = ZoneInfo("America/New_York")
log = get_logger(__name__)


@dataclass(frozen=True)
class CycleOutcome:
    """What one call of :meth:`CycleRunner.run` did."""

    portfolio: str
    session: str | None
    outcome: Outcome
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
        try:
            clock = self.ctx.broker.clock()
        except RegimeTraderError as e:
            return self._unreachable(f"broker clock unavailable: {e}")
        self._last_clock = (clock, time.monotonic())
        try:
            return self._run_at(clock, force=force)
        except StoreUnavailableError as e:
            # Before the lock (the sweep, the finished check, the lock itself): a failed
            # attempt with one alert a day, not a traceback on every wake-up.
            return self._unreachable(f"Redis unavailable: {e}")

    def _run_at(self, clock: BrokerClock, *, force: bool) -> CycleOutcome:
        name = self.portfolio.name
        now = clock.timestamp.astimezone(NEW_YORK)
        session = now.date().isoformat()
        close_interrupted(
            self.ctx,
            self.owner,
            self.lock_ttl_secs,
            session,
            include_today=not clock.is_open,
            publish=self._publish,
        )
        if not clock.is_open:
            return CycleOutcome(
                name, None, Outcome.NOT_DUE, f"market closed at {now:%Y-%m-%d %H:%M} NY"
            )
        if not force and now.time() < self.portfolio.schedule_time:
            return CycleOutcome(
                name, session, Outcome.NOT_DUE, f"before {self.portfolio.schedule_time}"
            )
        due = datetime.combine(now.date(), self.portfolio.schedule_time, tzinfo=NEW_YORK)
        if due <= now:  # a forced cycle before its time is not a due one
            self.ctx.metrics.cycle_due_timestamp_seconds.labels(portfolio=name).set(due.timestamp())
        record = self.ctx.store.cycle(name, session)
        if record is not None and record.finished:
            self._alert_if_missing(record)
            self._update_shadow(record, now)  # after a crash that came right after done
            return CycleOutcome(name, session, Outcome.ALREADY_DONE, record.outcome or "")
        if not self.ctx.store.acquire_lock(name, self.owner, self.lock_ttl_secs):
            return CycleOutcome(name, session, Outcome.LOCKED, "another process runs this cycle")
        try:
            # Read again under the lock: another replica may have finished the cycle and
            # released the lock between the first read and our acquisition.
            record = self.ctx.store.cycle(name, session)
            if record is not None and record.finished:
                return CycleOutcome(name, session, Outcome.ALREADY_DONE, record.outcome or "")
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
        """The broker cannot tell the time, or Redis cannot be read before the lock: alert once
        per broker day and reason."""
        name = self.portfolio.name
        day = self.broker_day()
        log.error("not trading", outcome="failed", reason=reason)
        key = _reason_key(reason)
        if self._refusals.get(day) != key:
            self._refusals[day] = key
            self._publish(refusal_alert(name, day, Outcome.FAILED, reason))
        return CycleOutcome(name, None, Outcome.FAILED, reason)

    def _attempt(
        self, session: str, now: datetime, cycle_id: str, keeper: _LockKeeper
    ) -> CycleOutcome:
        name, store = self.portfolio.name, self.ctx.store
        began = time.perf_counter()
        try:
            record = store.begin_cycle(name, session, self.owner, cycle_id)
            halt = store.halted(name)  # the halted gauge reads the key itself (startup_metrics)
            if halt is not None:
                return self._refuse(
                    session, record.step, Outcome.HALTED, f"halted: {halt['reason']}"
                )
            self._boundary(Step.STARTED, keeper)
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
                    return self._finish(session, Outcome.NO_TRADE, result.reason, began, now)
                steps.plan(result)
                record = self._read(session)
            done = steps.execute(record)
            outcome = Outcome.REBALANCED if done.sent_any else Outcome.NO_TRADE
            return self._finish(session, outcome, "; ".join(done.notes), began, now)
        except _HaltedError as e:
            return self._refuse(session, None, Outcome.HALTED, str(e))
        except LockLostError as e:
            log.warning("cycle attempt stopped", reason=str(e))
            return CycleOutcome(name, session, Outcome.LOST_LOCK, str(e))
        except _StopRequestedError as e:
            log.warning("cycle attempt stopped", reason=str(e))
            return CycleOutcome(name, session, Outcome.STOPPED, str(e))
        except InvalidInputError as e:
            return self._refuse(session, None, Outcome.REFUSED, f"bad input, not trading: {e}")
        except BrokerRejectedError as e:
            return self._refuse(session, None, Outcome.FAILED, f"broker rejected: {e}")
        except (OperationalError, TemporaryBrokerError, StoreUnavailableError) as e:
            return self._refuse(session, None, Outcome.FAILED, f"{type(e).__name__}: {e}")

    def _read(self, session: str) -> CycleRecord:
        """The session's record, which exists from step ``started`` unless deleted under us."""
        record = self.ctx.store.cycle(self.portfolio.name, session)
        if record is None:
            raise StoreUnavailableError(
                f"{self.portfolio.name} {session}: the cycle record vanished"
            )
        return record

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
        self, session: str, outcome: Outcome, reason: str, began: float, now: datetime
    ) -> CycleOutcome:
        """Complete the cycle from its record (read once), then observe, alert and shadow."""
        name = self.portfolio.name
        record = self._read(session)
        previous = self.ctx.store.history(name, 1)  # before completion: it becomes this cycle
        status = done_status(outcome, record)
        details = done_details(
            record,
            reason,
            previous[0].get("regime_label") if previous else None,
            self.portfolio.asset_classes,
        )
        self.ctx.store.complete_cycle(
            name,
            session,
            self.owner,
            outcome=outcome,
            strategy_state=record.pending_state,
            signal=record.signal,
            status=status,
        )
        self._hook(Step.DONE)
        self._observe(outcome, record, time.perf_counter() - began)
        # The record as completed: only step and outcome changed (alerted is still unset).
        done = replace(record, step=Step.DONE, outcome=outcome)
        self._alert_if_missing(done, details)
        self._update_shadow(done, now)
        log.info("cycle done", outcome=outcome, orders=len(record.orders), reason=reason)
        return CycleOutcome(name, session, outcome, reason, len(record.orders))

    def _observe(self, outcome: Outcome, record: CycleRecord, secs: float) -> None:
        """Prometheus: outcome, duration, regime probabilities, exposure, equity, data age."""
        m, name, signal = self.ctx.metrics, self.portfolio.name, record.signal
        m.cycles_total.labels(portfolio=name, outcome=outcome).inc()
        m.last_success_timestamp_seconds.labels(portfolio=name).set(time.time())
        m.cycle_step_seconds.labels(portfolio=name, step="total").observe(secs)
        if record.plan is not None:
            m.equity_usd.labels(portfolio=name).set(float(record.plan.equity))
        if signal is None:
            return
        for label, p in (labelled(signal.regime_probs) or {}).items():
            m.regime_probability.labels(portfolio=name, state=label).set(p)
        if signal.exposure is not None:
            m.exposure_ratio.labels(portfolio=name).set(signal.exposure)
        if signal.date:
            close = datetime.combine(
                date.fromisoformat(signal.date), dt_time(16, 0), tzinfo=NEW_YORK
            )  # an early close makes the age a bit high
            m.set_last_bar_close(name, close.timestamp())

    def _alert_if_missing(
        self, record: CycleRecord, details: dict[str, object] | None = None
    ) -> None:
        """Publish the done cycle's alert once, even if a crash came right after ``done``."""
        if record.alerted:
            return
        try:
            if not self.ctx.store.claim_alert(record.portfolio, record.session):
                return  # another replica is publishing it
        except StoreUnavailableError:
            return  # the next wake-up retries
        classes = self.portfolio.asset_classes
        self._publish(done_alert(record, details or restart_details(record, classes)))
        try:
            self.ctx.store.mark_alerted(record.portfolio, record.session)
        except StoreUnavailableError:
            log.warning("could not mark the alert as sent; it may be repeated")

    def _update_shadow(self, record: CycleRecord, now: datetime) -> None:
        """Advance the shadow benchmarks over a done cycle's bars (idempotent by bar date).

        The cycle is done whatever happens here: a failure warns, is counted, and the next
        done cycle or wake-up catches up.
        """
        try:
            update = ShadowBenchmarks(self.ctx).after_done(record, now)
        except (RegimeTraderError, ValueError) as e:
            log.warning("shadow benchmarks not updated", error=str(e))
            self.ctx.metrics.shadow_update_failures_total.labels(portfolio=record.portfolio).inc()
            return
        if update.status != "up_to_date":
            log.info("shadow benchmarks", status=update.status, bars=update.bars)

    def _refuse(
        self, session: str, step: Step | None, outcome: Outcome, reason: str
    ) -> CycleOutcome:
        """Record why this attempt did not trade; alert once per session and kind of reason.

        Reasons are compared with their numbers masked, so the wake-ups of one outage
        ("failed after 4 attempts in 2.1 s", then "... 3.4 s") make one alert, not one each;
        the last alerted reason is also remembered in memory for when Redis itself is down.
        """
        name = self.portfolio.name
        log.warning("not trading", outcome=outcome, reason=reason)
        self.ctx.metrics.cycles_total.labels(portfolio=name, outcome=outcome).inc()
        key = _reason_key(reason)
        known = {self._refusals.get(session)}
        try:
            record = self.ctx.store.cycle(name, session)
            if record is not None and record.error:
                known.add(_reason_key(record.error))
            if key not in known:
                stored_step = step or (record.step if record else Step.STARTED)
                self.ctx.store.advance(name, session, self.owner, stored_step, error=reason)
            self.ctx.store.set_status(name, refusal_status(outcome, reason, session))
        except RegimeTraderError as e:
            log.error("could not record the refusal", error=str(e))
        if key not in known:
            self._refusals[session] = key
            self._publish(refusal_alert(name, session, outcome, reason))
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
