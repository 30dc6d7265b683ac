"""When a portfolio's next cycle is due, with its timezone: the broker's calendar decides.

The cycle runs at the portfolio's ``schedule_time`` (America/New_York) on each trading session
the broker's calendar lists: not on a holiday, not after an early close (a schedule after the
close has no cycle that day), not before the open (a schedule before 09:30 runs at the open).
Today's session still counts while it is open and its cycle is not done; a cycle that is due
and not done yet is due *now*. Against the embedded emulator the broker's clock is the
simulated one, which is said (``clock: simulated``), and a running ``run`` that paces it says
how fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dt_time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from regime_trader.service.alpaca_parsing import SessionDay
from regime_trader.service.exceptions import RegimeTraderError
from regime_trader.service.store import StoreUnavailableError

if TYPE_CHECKING:
    from regime_trader.service.app import Service

__all__ = ["NEW_YORK", "NextRun", "next_runs", "next_scheduled_run"]

NEW_YORK = ZoneInfo("America/New_York")
TIMEZONE = "America/New_York"
# Far enough to cross any run of holidays (the longest market closure since 1900 is 4 months,
# but the calendar's own holidays never span more than a long weekend plus a day).
CALENDAR_LOOKAHEAD_DAYS = 14


@dataclass(frozen=True)
class NextRun:
    """The next scheduled cycle of one portfolio.

    ``at`` is an aware New York time; ``due_now`` says the cycle is due and not done yet (``at``
    is then the broker's time now); ``simulated`` that the broker is the embedded emulator.
    """

    at: datetime
    session: str
    due_now: bool
    simulated: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(timespec="minutes"),
            "timezone": TIMEZONE,
            "session": self.session,
            "due_now": self.due_now,
            "clock": "simulated" if self.simulated else "broker",
        }

    def text(self) -> str:
        when = "now" if self.due_now else f"{self.at:%Y-%m-%d %H:%M %Z}"
        clock = ", simulated clock" if self.simulated else ""
        return f"{when} ({TIMEZONE}{clock}; session {self.session})"


def next_scheduled_run(
    now: datetime, sessions: Sequence[SessionDay], schedule: dt_time, *, done_today: bool
) -> tuple[datetime, str, bool] | None:
    """The next time a cycle scheduled at ``schedule`` runs, its session, and whether it is now.

    Parameters
    ----------
    now : datetime
        The broker's time, aware.
    sessions : sequence of SessionDay
        The broker calendar from ``now``'s date on (open and close are aware New York times).
    schedule : time
        The portfolio's schedule time, New York.
    done_today : bool
        Whether today's cycle is already done.

    Returns
    -------
    (at, session, due_now) or None
        None when no listed session has a cycle left.
    """
    local = now.astimezone(NEW_YORK)
    for day in sorted(sessions, key=lambda d: d.date):
        at = max(datetime.combine(day.date, schedule, tzinfo=NEW_YORK), day.open)
        if at >= day.close or day.date < local.date():
            continue
        if day.date == local.date():
            if done_today or local >= day.close:
                continue
            if local >= at:
                return local, day.date.isoformat(), True
        return at, day.date.isoformat(), False
    return None


def next_runs(service: Service, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each portfolio's next run as ``/status`` shows it (or the error that prevented it)."""
    pace = _demo_pace(service)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        ctx = service.contexts[name]
        try:
            clock = ctx.broker.clock()
            today = clock.timestamp.astimezone(NEW_YORK).date()
            sessions = ctx.broker.calendar(today, today + timedelta(days=CALENDAR_LOOKAHEAD_DAYS))
            record = service.store.cycle(name, today.isoformat())
        except (RegimeTraderError, StoreUnavailableError) as e:
            out[name] = {"error": f"{type(e).__name__}: {e}", "timezone": TIMEZONE}
            continue
        found = next_scheduled_run(
            clock.timestamp,
            sessions,
            ctx.portfolio.schedule_time,
            done_today=record is not None and record.finished,
        )
        if found is None:
            out[name] = {"at": None, "timezone": TIMEZONE, "reason": "no session in the calendar"}
            continue
        at, session, due = found
        run = NextRun(at, session, due, simulated=service.emulator is not None)
        out[name] = {**run.to_json(), "text": run.text(), **pace}
    return out


def _demo_pace(service: Service) -> dict[str, Any]:
    """How fast a running ``run`` moves the embedded emulator's clock, from its heartbeat."""
    if service.emulator is None:
        return {}
    try:
        instances = service.store.instances()
    except StoreUnavailableError:
        return {}
    paces = [i["demo_secs_per_session"] for i in instances if i.get("demo_secs_per_session")]
    return {"simulated_session_every_secs": paces[0]} if paces else {}
