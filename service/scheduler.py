"""APScheduler wiring: when to *wake up*; whether a cycle is due is the broker's answer.

Per portfolio, two jobs call the same :meth:`CycleRunner.run`:

- a ``CronTrigger`` at the portfolio's schedule time, Monday to Friday, America/New_York;
- an ``IntervalTrigger`` every ``wake_interval_secs``, first fired at start-up: it catches up a
  cycle missed earlier in a session that is still open (restart, missed cron, a failed attempt)
  and is how tests drive the service through an emulator whose clock jumps.

Both run with ``coalesce=True``, ``max_instances=1`` and an explicit ``misfire_grace_time``
(APScheduler's default of 1 s silently drops a late job). Holidays and early closes need no
cron rules: the runner asks the broker's clock and calendar.

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
from regime_trader.service.emulator.admin_client import EmulatorAdmin, minutes_after_open
from regime_trader.service.logs import get_logger

__all__ = ["CycleScheduler"]

NEW_YORK = ZoneInfo("America/New_York")
log = get_logger(__name__)


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
        self._stuck_ticks = 0
        # The cron and the interval job of one portfolio may overlap: count under a lock.
        self._wakes: Counter[str] = Counter()
        self._wakes_lock = threading.Lock()
        self._demo: EmulatorAdmin | None = None
        if demo_secs_per_session and service.emulator is not None:
            self._demo = EmulatorAdmin(service.emulator.url)
            self._scheduler.add_job(
                self._demo_tick, IntervalTrigger(seconds=demo_secs_per_session), id="demo-clock"
            )

    def start(self) -> CycleScheduler:
        self._scheduler.start()
        log.info("scheduler started", jobs=[j.id for j in self._scheduler.get_jobs()])
        return self

    def shutdown(self) -> None:
        """Stop waking up; wait for a running cycle, which stops at its next step boundary."""
        self._scheduler.shutdown(wait=True)
        if self._demo is not None:
            self._demo.close()

    def _wake(self, name: str, job: str) -> None:
        """Ask the runner for a cycle; log one ``wake-up`` line with what it found.

        ``job`` (``cron`` or ``interval``) names the trigger: wake-ups of one job never overlap
        (``max_instances=1``), so the second ``interval`` line logged after an event comes
        from a wake-up that began after it.
        """
        if self.stop.is_set():
            return
        with self._wakes_lock:
            self._wakes[name] += 1
            wake = self._wakes[name]
        found: dict[str, str | None]
        try:
            outcome = self.service.runner(name).run()
            found = {
                "outcome": outcome.outcome,
                "session": outcome.session,
                "reason": outcome.reason,
            }
        except Exception as e:
            log.exception("cycle attempt crashed", portfolio=name, wake=wake)
            found = {"outcome": "crashed", "reason": type(e).__name__}
        log.info("wake-up", portfolio=name, wake=wake, job=job, **found)

    def _heartbeat(self) -> None:
        try:
            self.service.store.heartbeat(
                self.service.owner, {"portfolios": list(self.service.contexts)}
            )
        except Exception as e:
            log.warning("heartbeat failed", error=type(e).__name__)

    def _demo_tick(self) -> None:
        """Embedded demo: one simulated session per tick, once every cycle of it is done."""
        assert self._demo is not None  # nosec B101 - the job exists only with the client
        clock = self._demo.clock()
        minutes = minutes_after_open(
            min(ctx.portfolio.schedule_time for ctx in self.service.contexts.values())
        )
        done = clock.session is not None and all(
            (record := self.service.store.cycle(name, clock.session)) is not None
            and record.finished
            for name in self.service.contexts
        )
        # A session whose cycle keeps failing is left after three ticks, as a real day ends.
        self._stuck_ticks = 0 if done else self._stuck_ticks + 1
        if not clock.is_open or done or self._stuck_ticks > 3:
            self._stuck_ticks = 0
            self._demo.next_session(minutes)
