"""APScheduler wiring: when to *wake up*; whether a cycle is due is the broker's answer.

Per portfolio, two jobs call the same :meth:`CycleRunner.run`:

- a ``CronTrigger`` at the portfolio's schedule time, Monday to Friday, America/New_York;
- an ``IntervalTrigger`` every ``wake_interval_secs``, first fired at start-up: it catches up a
  cycle missed earlier in a session that is still open (restart, missed cron, a failed attempt)
  and is how tests drive the service through an emulator whose clock jumps.

Both run with ``coalesce=True``, ``max_instances=1`` and an explicit ``misfire_grace_time``
(APScheduler's default of 1 s silently drops a late job). Holidays and early closes need no
cron rules: the runner asks the broker's clock and calendar.

Offline (the embedded emulator, ``run`` without Alpaca keys) a third job paces a simulated
market: :class:`DemoPacer` runs once at start-up and then every ``demo_secs_per_session``
seconds (default 30). Each tick moves the simulated clock to the scheduled minute of the next
session once every portfolio's cycle of the current one is done, and runs those cycles at once,
so the first cycle comes in the first seconds and then one session follows every N seconds (a
tick is never run twice at once: a cycle slower than N seconds delays the next session, it does
not skip one). A session whose cycle is still not done after ``DEMO_ATTEMPTS_PER_SESSION``
ticks is left behind, never silently: a started cycle is closed as ``interrupted`` by the
runner's sweep (which alerts), and a portfolio whose cycle never started gets a ``skipped``
alert naming the session and the last attempt's reason.

Every wake-up ends with one ``wake-up`` log line (portfolio, a per-portfolio counter ``wake``,
the ``job`` that fired, ``outcome``, ``session``, ``reason``), whatever it found, ``not_due``
and ``crashed`` included. It is the service's proof of life: an operator sees that it keeps
asking, and a test that expects *nothing* to happen waits for wake-ups that began after its
fault before it says so.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from regime_trader.service.app import Service
from regime_trader.service.cycle_report import cycle_alert
from regime_trader.service.emulator.admin_client import EmulatorAdmin, minutes_after_open
from regime_trader.service.logs import get_logger

__all__ = ["DEMO_ATTEMPTS_PER_SESSION", "CycleScheduler", "DemoPacer"]

NEW_YORK = ZoneInfo("America/New_York")
log = get_logger(__name__)
# Ticks a simulated session is given for its cycles before the pacer moves on (and alerts).
DEMO_ATTEMPTS_PER_SESSION = 3
# What one wake-up found: outcome, session and reason (see CycleScheduler.wake).
Found = dict[str, str | None]


class CycleScheduler:
    """Wake-up jobs for every portfolio, a heartbeat, and (embedded emulator) a demo clock.

    ``step_hook`` reaches every portfolio's :class:`~regime_trader.service.cycle.CycleRunner`,
    which calls it at each step boundary; only test builds pass one (fault injection).
    """

    def __init__(
        self,
        service: Service,
        *,
        stop: threading.Event,
        wake_interval_secs: float,
        misfire_grace_secs: float,
        demo_secs_per_session: float | None = None,
        step_hook: Callable[[str], None] | None = None,
    ) -> None:
        self.service = service
        self.stop = stop
        self._scheduler = BackgroundScheduler(
            timezone=NEW_YORK,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(misfire_grace_secs),
            },
        )
        for name, ctx in service.contexts.items():
            service.runner(name, step_hook=step_hook, stop_requested=stop.is_set)
            at = ctx.portfolio.schedule_time
            self._scheduler.add_job(
                self._wake,
                CronTrigger(
                    day_of_week="mon-fri", hour=at.hour, minute=at.minute, timezone=NEW_YORK
                ),
                args=[name, "cron"],
                id=f"cycle-{name}",
            )
            self._scheduler.add_job(
                self._wake,
                IntervalTrigger(seconds=wake_interval_secs),
                args=[name, "interval"],
                id=f"wake-{name}",
                next_run_time=datetime.now(NEW_YORK),
            )
        self._scheduler.add_job(
            self._heartbeat,
            IntervalTrigger(seconds=10),
            id="heartbeat",
            next_run_time=datetime.now(NEW_YORK),
        )
        # The cron and the interval job of one portfolio may overlap: count under a lock.
        self._wakes: Counter[str] = Counter()
        self._wakes_lock = threading.Lock()
        self._demo: DemoPacer | None = None
        if demo_secs_per_session and service.emulator is not None:
            admin = EmulatorAdmin(service.emulator.url)
            self._demo = DemoPacer(self, admin, demo_secs_per_session)
            self._scheduler.add_job(
                self._demo.tick,
                IntervalTrigger(seconds=demo_secs_per_session),
                id="demo-clock",
                next_run_time=datetime.now(NEW_YORK),  # the first session at once
            )

    def start(self) -> CycleScheduler:
        self._scheduler.start()
        log.info("scheduler started", jobs=[j.id for j in self._scheduler.get_jobs()])
        return self

    def shutdown(self) -> None:
        """Stop waking up; wait for a running cycle, which stops at its next step boundary."""
        self._scheduler.shutdown(wait=True)
        if self._demo is not None:
            self._demo.admin.close()

    def _wake(self, name: str, job: str) -> None:
        self.wake(name, job)

    def wake(self, name: str, job: str, *, force: bool = False) -> Found:
        """Ask the runner for a cycle; log one ``wake-up`` line with what it found.

        ``job`` (``cron``, ``interval`` or ``demo``) names the trigger: wake-ups of one job
        never overlap (``max_instances=1``), so the second ``interval`` line logged after an
        event comes from a wake-up that began after it. ``force`` runs the cycle before its
        scheduled minute (the demo pacer's own simulated sessions).
        """
        if self.stop.is_set():
            return {"outcome": "stopped", "session": None, "reason": "stop requested"}
        with self._wakes_lock:
            self._wakes[name] += 1
            wake = self._wakes[name]
        found: Found
        try:
            outcome = self.service.runner(name).run(force=force)
            found = {
                "outcome": outcome.outcome,
                "session": outcome.session,
                "reason": outcome.reason,
            }
        except Exception as e:
            log.exception("cycle attempt crashed", portfolio=name, wake=wake)
            found = {"outcome": "crashed", "session": None, "reason": type(e).__name__}
        log.info("wake-up", portfolio=name, wake=wake, job=job, **found)
        return found

    def _heartbeat(self) -> None:
        info: dict[str, object] = {"portfolios": list(self.service.contexts)}
        if self._demo is not None:
            info["demo_secs_per_session"] = self._demo.secs_per_session
        try:
            self.service.store.heartbeat(self.service.owner, info)
        except Exception as e:
            log.warning("heartbeat failed", error=type(e).__name__)


class DemoPacer:
    """The embedded emulator's simulated market, one session per tick (see the module docstring).

    Parameters
    ----------
    scheduler : CycleScheduler
        Whose :meth:`CycleScheduler.wake` runs the cycles (one ``wake-up`` line each).
    admin : EmulatorAdmin
        The embedded emulator's clock.
    secs_per_session : float
        Seconds between two ticks (for the heartbeat; the job's trigger keeps the time).
    """

    def __init__(
        self, scheduler: CycleScheduler, admin: EmulatorAdmin, secs_per_session: float
    ) -> None:
        self.scheduler = scheduler
        self.admin = admin
        self.secs_per_session = secs_per_session
        self.service = scheduler.service
        self.minutes = minutes_after_open(
            min(ctx.portfolio.schedule_time for ctx in self.service.contexts.values())
        )
        self._session: str | None = None
        self._attempts = 0
        self._last: dict[str, Found] = {}

    def tick(self) -> None:
        """Move on to the next session if this one is over for us, then run its cycles."""
        try:
            session = self._session_to_trade()
        except Exception as e:  # the next tick tries again; say so now
            log.exception("demo clock could not move", error=type(e).__name__)
            return
        self._attempts += 1
        for name in self.service.contexts:
            self._last[name] = self.scheduler.wake(name, "demo", force=True)
        log.info("demo session", session=session, attempt=self._attempts)

    def _session_to_trade(self) -> str:
        clock = self.admin.clock()
        current = clock.session if clock.is_open else None
        if current is not None:
            unfinished = self._unfinished(current)
            if current != self._session and unfinished:
                # At start-up inside a session not finished yet, or a session another process
                # (an offline `rebalance`) opened: trade it before moving on.
                self._session, self._attempts, self._last = current, 0, {}
                return current
            if unfinished and self._attempts < DEMO_ATTEMPTS_PER_SESSION:
                return current  # its cycles once more
            self._leave(current, unfinished)
            session = self.admin.next_session(self.minutes)
        else:
            if self._session is not None:
                self._leave(self._session, self._unfinished(self._session))
            session = self.admin.open_session(self.minutes)
        self._session, self._attempts, self._last = session, 0, {}
        return session

    def _unfinished(self, session: str) -> list[str]:
        names = []
        for name in self.service.contexts:
            record = self.service.store.cycle(name, session)
            if record is None or not record.finished:
                names.append(name)
        return names

    def _leave(self, session: str, unfinished: list[str]) -> None:
        """Alert every portfolio that leaves ``session`` without a cycle record.

        A started cycle (a record exists) is closed as interrupted, with its alert, by the
        runner's sweep at the next attempt; one that never started has nothing to sweep.
        """
        for name in unfinished:
            if self.service.store.cycle(name, session) is not None:
                continue
            last = self._last.get(name, {})
            reason = (
                f"simulated session left without a cycle after {self._attempts} attempts "
                f"(last: {last.get('outcome')}: {last.get('reason') or 'no reason given'})"
            )
            log.warning("demo session skipped", portfolio=name, session=session, reason=reason)
            alert = cycle_alert(
                name,
                session,
                "skipped",
                f"{name} {session}: {reason}",
                {"reason": reason, "attempts": self._attempts, "last_outcome": last.get("outcome")},
            )
            try:
                self.service.alerts.publish(alert)
            except Exception as e:
                log.error("alert publishing failed", error=type(e).__name__)
