"""The simulated clock and the XNYS calendar: holidays, early closes, admin moves."""

from __future__ import annotations

import itertools
from datetime import date, datetime

from alpaca.trading.requests import GetCalendarRequest

from tests.support.emulator import NY, START, EmulatorDriver


def test_clock_starts_before_the_first_open_and_does_not_drift(emu: EmulatorDriver) -> None:
    first = emu.trading.get_clock()
    assert first.timestamp == START and first.is_open is False
    assert first.next_open == datetime(2024, 1, 2, 9, 30, tzinfo=NY)
    assert first.next_close == datetime(2024, 1, 2, 16, 0, tzinfo=NY)
    assert emu.trading.get_clock().timestamp == first.timestamp  # no wall-clock drift


def test_advance_to_open_close_and_next_session(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    clock = emu.trading.get_clock()
    assert clock.is_open and clock.timestamp == datetime(2024, 1, 2, 9, 30, tzinfo=NY)
    assert clock.next_open == datetime(2024, 1, 3, 9, 30, tzinfo=NY)
    emu.advance(to="next_close")
    clock = emu.trading.get_clock()
    assert not clock.is_open and clock.timestamp == datetime(2024, 1, 2, 16, 0, tzinfo=NY)
    emu.advance(to="next_session_open")
    assert emu.trading.get_clock().timestamp == datetime(2024, 1, 3, 9, 30, tzinfo=NY)
    emu.advance(minutes=90)
    clock = emu.trading.get_clock()
    assert clock.is_open and clock.timestamp == datetime(2024, 1, 3, 11, 0, tzinfo=NY)


def test_next_session_open_skips_the_rest_of_today(emu: EmulatorDriver) -> None:
    # 08:00 before today's open: next_open is today, next_session_open is tomorrow.
    result = emu.advance(to="next_session_open")
    assert result.timestamp.isoformat() == "2024-01-03T09:30:00-05:00"


def test_holiday_is_not_a_session_and_the_clock_skips_it(emu: EmulatorDriver) -> None:
    # Friday 2024-01-12 after the close; Monday 2024-01-15 is Martin Luther King Jr. Day.
    emu.set_clock(datetime(2024, 1, 12, 17, 0, tzinfo=NY))
    clock = emu.trading.get_clock()
    assert clock.next_open == datetime(2024, 1, 16, 9, 30, tzinfo=NY)
    emu.set_clock(datetime(2024, 1, 15, 12, 0, tzinfo=NY))
    assert emu.trading.get_clock().is_open is False
    days = emu.trading.get_calendar(
        GetCalendarRequest(start=date(2024, 1, 12), end=date(2024, 1, 16))
    )
    assert [d.date for d in days] == [date(2024, 1, 12), date(2024, 1, 16)]


def test_early_close_at_one_pm(emu: EmulatorDriver) -> None:
    # The day after Thanksgiving 2024 closes at 13:00; Thanksgiving itself is closed.
    days = emu.trading.get_calendar(
        GetCalendarRequest(start=date(2024, 11, 25), end=date(2024, 12, 2))
    )
    assert [d.date.isoformat() for d in days] == [
        "2024-11-25",
        "2024-11-26",
        "2024-11-27",
        "2024-11-29",
        "2024-12-02",
    ]
    friday = days[3]
    assert (friday.open.hour, friday.open.minute) == (9, 30)
    assert (friday.close.hour, friday.close.minute) == (13, 0)
    assert all(d.close.hour == 16 for d in days if d is not friday)
    emu.set_clock(datetime(2024, 11, 27, 17, 0, tzinfo=NY))
    clock = emu.trading.get_clock()
    assert clock.next_open == datetime(2024, 11, 29, 9, 30, tzinfo=NY)
    assert clock.next_close == datetime(2024, 11, 29, 13, 0, tzinfo=NY)
    emu.advance(to="next_open")
    emu.advance(minutes=210)  # 13:00
    assert emu.trading.get_clock().is_open is False


def test_calendar_without_bounds_covers_history_and_future(emu: EmulatorDriver) -> None:
    days = emu.trading.get_calendar()
    assert days[0].date < date(2021, 1, 31) and days[-1].date > date(2026, 12, 1)
    assert all(a.date < b.date for a, b in itertools.pairwise(days))


def test_the_clock_only_moves_forward_and_stays_within_the_prices(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    response = emu.http.put("/admin/clock", json={"timestamp": START.isoformat()})
    assert response.status_code == 409 and "forward" in response.json()["message"]
    response = emu.http.put("/admin/clock", json={"timestamp": "2031-01-02T10:00:00-05:00"})
    assert response.status_code == 409 and "no prices after" in response.json()["message"]
    response = emu.http.post("/admin/clock/advance", json={"to": "tomorrow"})
    assert response.status_code == 400
    assert emu.trading.get_clock().timestamp == datetime(2024, 1, 2, 9, 30, tzinfo=NY)


def test_reset_can_move_the_clock_back_with_a_fresh_account(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    emu.http.post("/admin/reset", json={"cash": "5000", "timestamp": START.isoformat()})
    assert emu.trading.get_clock().timestamp == START
    assert emu.trading.get_account().cash == "5000.00"
