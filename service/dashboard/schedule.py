"""When a portfolio's cycle runs next, from the broker's clock and calendar (never the machine's).

The scheduler wakes up at the schedule time on weekdays and every ``wake_interval_secs``; whether
a cycle is due is the broker's answer. So the next run is the schedule time of the first broker
session, from today on, whose cycle is not done yet: today's while it is still ahead (or due
now, if the market is open past it and the cycle has not run), else the next session's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from regime_trader.service.alpaca_parsing import BrokerClock, SessionDay

__all__ = ["NEW_YORK", "NextRun", "next_run"]

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class NextRun:
    """The next scheduled cycle: ``at`` (aware, New York) and whether it is already due."""

    at: datetime
    due_now: bool

    @property
    def timezone(self) -> str:
        return str(self.at.tzinfo)

    def describe(self) -> str:
        """E.g. ``2024-03-05 10:00 America/New_York`` (``due now`` when it is)."""
        text = f"{self.at:%Y-%m-%d %H:%M} {self.timezone}"
        return f"due now (scheduled {text})" if self.due_now else text


def next_run(
    clock: BrokerClock,
    sessions: Sequence[SessionDay],
    schedule_time: time,
    *,
    done_today: bool,
) -> NextRun | None:
    """The next run of a cycle scheduled at ``schedule_time`` New York time.

    Parameters
    ----------
    clock : BrokerClock
        The broker's time (the emulator's simulated time offline).
    sessions : sequence of SessionDay
        The broker calendar from today on (a couple of weeks is plenty).
    schedule_time : time
        The portfolio's schedule time, New York.
    done_today : bool
        Whether the cycle of the session of ``clock``'s day is done.

    Returns
    -------
    NextRun or None
        None if no session in ``sessions`` is left (ask for a longer calendar).
    """
    now = clock.timestamp.astimezone(NEW_YORK)
    for day in sorted(sessions, key=lambda s: s.date):
        if day.date < now.date() or (day.date == now.date() and done_today):
            continue
        at = datetime.combine(day.date, schedule_time, tzinfo=NEW_YORK)
        if day.date == now.date() and at <= now:
            if now < day.close:  # past the time, market still open, not done: due now
                return NextRun(at, due_now=True)
            continue  # today's session closed without its cycle: the next one
        return NextRun(at, due_now=False)
    return None
