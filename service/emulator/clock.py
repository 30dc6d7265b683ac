"""A simulated market clock over the XNYS session calendar.

The emulator's time never drifts with the wall clock: it moves only when somebody asks it to
(the admin routes), so a test or a demo can drive many sessions in seconds and get the same
answers every run. :class:`TradingCalendar` answers calendar questions (is the market open at
``t``, when is the next open or close, which sessions lie between two dates) from the schedule
of ``exchange_calendars`` — holidays and early closes (13:00 New York) included.

All instants are timezone-aware :class:`datetime.datetime` in UTC; internally the schedule is
kept as int64 nanoseconds so lookups are binary searches.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars as xcals  # type: ignore[import-untyped]
import numpy as np
import pandas as pd

__all__ = [
    "NEW_YORK",
    "CalendarError",
    "Session",
    "TradingCalendar",
    "from_ns",
    "to_ns",
]

NEW_YORK = ZoneInfo("America/New_York")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class CalendarError(ValueError):
    """A date or instant lies outside what the calendar covers."""


def to_ns(t: datetime) -> int:
    """Return nanoseconds since the epoch of an aware datetime."""
    if t.tzinfo is None:
        raise CalendarError(f"naive datetime {t.isoformat()!r}; give a timezone")
    return (t - _EPOCH) // _MICROSECOND * 1000


def from_ns(ns: int) -> datetime:
    """Return the aware UTC datetime of nanoseconds since the epoch (microsecond precision)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


@dataclass(frozen=True)
class Session:
    """One trading session: its date and its open and close instants (UTC)."""

    date: date
    open: datetime
    close: datetime


class TradingCalendar:
    """Sessions with their open and close instants, in increasing order.

    Parameters
    ----------
    dates : sequence of date
        Session dates, strictly increasing.
    opens_ns, closes_ns : ndarray of int64 of shape (n_sessions,)
        Open and close instants in nanoseconds since the epoch (UTC).
    """

    def __init__(self, dates: list[date], opens_ns: np.ndarray, closes_ns: np.ndarray) -> None:
        if not dates:
            raise CalendarError("a calendar needs at least one session")
        if not (len(dates) == len(opens_ns) == len(closes_ns)):
            raise CalendarError("dates, opens and closes must have the same length")
        self.dates = list(dates)
        self.opens_ns = np.asarray(opens_ns, dtype=np.int64)
        self.closes_ns = np.asarray(closes_ns, dtype=np.int64)
        if np.any(self.closes_ns <= self.opens_ns) or np.any(
            self.opens_ns[1:] <= self.closes_ns[:-1]
        ):
            raise CalendarError("sessions must be increasing and not overlap")
        self._index = {d: i for i, d in enumerate(self.dates)}
        self._ordinals = np.fromiter(
            (d.toordinal() for d in self.dates), dtype=np.int64, count=len(self.dates)
        )

    @classmethod
    def xnys(cls, first: date, last: date) -> TradingCalendar:
        """Return the XNYS sessions from ``first`` to ``last`` inclusive."""
        with warnings.catch_warnings():
            # exchange_calendars 4.13 calls Series.values on tz-aware data (a pandas 3.1
            # deprecation inside the library, harmless for the schedule we read).
            warnings.filterwarnings("ignore", message="Series.values", module="pandas")
            calendar = xcals.get_calendar(
                "XNYS",
                start=pd.Timestamp(first) - pd.Timedelta(days=7),
                end=pd.Timestamp(last) + pd.Timedelta(days=7),
            )
        schedule = calendar.schedule.loc[pd.Timestamp(first) : pd.Timestamp(last)]
        if schedule.empty:
            raise CalendarError(f"no XNYS sessions between {first} and {last}")
        dates = [ts.date() for ts in schedule.index]
        opens = pd.DatetimeIndex(schedule["open"]).as_unit("ns").asi8
        closes = pd.DatetimeIndex(schedule["close"]).as_unit("ns").asi8
        return cls(dates, opens, closes)

    def __len__(self) -> int:
        return len(self.dates)

    def session(self, i: int) -> Session:
        """Return session number ``i``."""
        return Session(
            self.dates[i], from_ns(int(self.opens_ns[i])), from_ns(int(self.closes_ns[i]))
        )

    def index_of(self, day: date) -> int | None:
        """Return the position of ``day`` if it is a session, else None."""
        return self._index.get(day)

    def last_opened(self, t: datetime) -> int:
        """Return the index of the last session that opened at or before ``t``, or -1."""
        return int(np.searchsorted(self.opens_ns, to_ns(t), side="right")) - 1

    def is_open(self, t: datetime) -> bool:
        """Return whether ``t`` lies in a session (open inclusive, close exclusive)."""
        i = self.last_opened(t)
        return i >= 0 and to_ns(t) < int(self.closes_ns[i])

    def next_open(self, t: datetime) -> datetime:
        """Return the first open strictly after ``t``."""
        i = int(np.searchsorted(self.opens_ns, to_ns(t), side="right"))
        if i >= len(self):
            raise CalendarError(f"no session opens after {t.isoformat()} in the calendar")
        return from_ns(int(self.opens_ns[i]))

    def next_close(self, t: datetime) -> datetime:
        """Return the first close strictly after ``t``."""
        i = int(np.searchsorted(self.closes_ns, to_ns(t), side="right"))
        if i >= len(self):
            raise CalendarError(f"no session closes after {t.isoformat()} in the calendar")
        return from_ns(int(self.closes_ns[i]))

    def next_session_open(self, t: datetime) -> datetime:
        """Return the open of the first session dated after the New York date of ``t``."""
        day = t.astimezone(NEW_YORK).date()
        end_of_day = datetime.combine(day, time(23, 59, 59), NEW_YORK)
        return self.next_open(end_of_day)

    def indices_between(self, first: date | None, last: date | None) -> range:
        """Return the indices of the sessions dated from ``first`` to ``last`` inclusive
        (None: unbounded)."""
        lo = 0 if first is None else int(np.searchsorted(self._ordinals, first.toordinal()))
        hi = (
            len(self)
            if last is None
            else int(np.searchsorted(self._ordinals, last.toordinal(), side="right"))
        )
        return range(lo, hi)

    def events_between(self, start: datetime, end: datetime) -> list[tuple[datetime, str, int]]:
        """Return the opens and closes in ``(start, end]`` as ``(instant, kind, session)``.

        ``kind`` is ``"open"`` or ``"close"``; the list is in time order.
        """
        a, b = to_ns(start), to_ns(end)
        events: list[tuple[int, str, int]] = []
        for kind, values in (("open", self.opens_ns), ("close", self.closes_ns)):
            lo = int(np.searchsorted(values, a, side="right"))
            hi = int(np.searchsorted(values, b, side="right"))
            events.extend((int(values[i]), kind, i) for i in range(lo, hi))
        events.sort()
        return [(from_ns(ns), kind, i) for ns, kind, i in events]

    def settlement_date(self, i: int) -> date:
        """Return the T+1 settlement date of session ``i`` (the next session's date)."""
        if i + 1 < len(self):
            return self.dates[i + 1]
        return self.dates[i] + timedelta(days=1)
