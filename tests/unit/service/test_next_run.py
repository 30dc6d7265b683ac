"""The next scheduled run: the broker calendar's sessions at the portfolio's New York time."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from regime_trader.service.alpaca_parsing import SessionDay
from regime_trader.service.next_run import NEW_YORK, NextRun, next_scheduled_run

TEN = time(10, 0)


def _day(d: str, close: str = "16:00") -> SessionDay:
    day = date.fromisoformat(d)
    return SessionDay(
        day,
        datetime.combine(day, time(9, 30), tzinfo=NEW_YORK),
        datetime.combine(day, time.fromisoformat(close), tzinfo=NEW_YORK),
    )


def _ny(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


# Friday 2024-11-29 closes at 13:00 (day after Thanksgiving); Thursday 11-28 is a holiday.
WEEK = [_day("2024-11-27"), _day("2024-11-29", "13:00"), _day("2024-12-02")]


@pytest.mark.parametrize(
    ("now", "done_today", "schedule", "expected", "due_now"),
    [
        ("2024-11-27 08:00", False, TEN, "2024-11-27 10:00", False),  # today, later
        ("2024-11-27 11:00", False, TEN, "2024-11-27 11:00", True),  # due and not done: now
        ("2024-11-27 11:00", True, TEN, "2024-11-29 10:00", False),  # done: the next session
        ("2024-11-27 17:00", False, TEN, "2024-11-29 10:00", False),  # after the close
        ("2024-11-28 12:00", False, TEN, "2024-11-29 10:00", False),  # a holiday
        ("2024-11-27 17:00", False, time(14, 0), "2024-12-02 14:00", False),  # early close
        ("2024-11-27 08:00", False, time(9, 0), "2024-11-27 09:30", False),  # before the open
    ],
)
def test_next_run_follows_the_calendar(
    now: str, done_today: bool, schedule: time, expected: str, due_now: bool
) -> None:
    found = next_scheduled_run(_ny(now), WEEK, schedule, done_today=done_today)
    assert found is not None
    at, session, due = found
    assert at == _ny(expected) and session == expected[:10] and due is due_now


def test_no_session_left_in_the_calendar_is_none() -> None:
    assert next_scheduled_run(_ny("2024-12-02 17:00"), WEEK, TEN, done_today=False) is None


def test_the_shown_time_names_its_timezone_and_a_simulated_clock() -> None:
    run = NextRun(_ny("2024-07-01 10:00"), "2024-07-01", due_now=False, simulated=True)
    assert (
        run.text() == "2024-07-01 10:00 EDT (America/New_York, simulated clock; session 2024-07-01)"
    )
    assert run.to_json()["at"] == "2024-07-01T10:00-04:00"
    assert run.to_json()["timezone"] == "America/New_York"
