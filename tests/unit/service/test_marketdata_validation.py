"""check_bars against a hand-built XNYS calendar, CsvBars, and HttpPolicy checks."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regime_trader.service.alpaca_http import HttpPolicy
from regime_trader.service.alpaca_parsing import NEW_YORK, SessionDay
from regime_trader.service.exceptions import BadMarketDataError
from regime_trader.service.marketdata import CsvBars, check_bars
from regime_trader.service.pricefile import PriceFileError, load_prices_carried
from regime_trader.strategies.missing_bars import CarriedClose

MLK_DAY = date(2024, 1, 15)  # Monday holiday


def sessions_between(first: date, last: date) -> list[SessionDay]:
    """Weekdays except Martin Luther King Day 2024, 09:30-16:00 New York."""
    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    return [
        SessionDay(
            d, datetime.combine(d, time(9, 30), NEW_YORK), datetime.combine(d, time(16), NEW_YORK)
        )
        for d in days
        if d.weekday() < 5 and d != MLK_DAY
    ]


CALENDAR = sessions_between(date(2024, 1, 2), date(2024, 1, 31))


def ny(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NEW_YORK)


def closes(
    first: date, last: date, symbols: tuple[str, ...] = ("SPY", "TLT", "GLD")
) -> pd.DataFrame:
    """A smooth upward series on every session from ``first`` to ``last``."""
    days = [s.date for s in CALENDAR if first <= s.date <= last]
    values = 100.0 * np.cumprod(np.full((len(days), len(symbols)), 1.01), axis=0)
    return pd.DataFrame(values, index=pd.DatetimeIndex(days, name="date"), columns=list(symbols))


GOOD = closes(date(2024, 1, 2), date(2024, 1, 10))  # 7 sessions, Tue 2 .. Wed 10
AFTER_CLOSE = ny(date(2024, 1, 10), 17)


def check(frame: pd.DataFrame, as_of: datetime = AFTER_CLOSE, **kw: float) -> pd.DataFrame:
    return check_bars(frame, CALENDAR, as_of=as_of, **kw).closes  # type: ignore[arg-type]


def test_clean_bars_pass_unchanged() -> None:
    out = check(GOOD)
    pd.testing.assert_frame_equal(out, GOOD)
    assert out.index.name == "date"


def test_partial_bar_of_the_session_in_progress_is_dropped() -> None:
    out = check(GOOD, as_of=ny(date(2024, 1, 10), 11))
    pd.testing.assert_frame_equal(out, GOOD.iloc[:-1])


def test_bar_is_kept_once_its_session_has_closed() -> None:
    assert check(GOOD, as_of=ny(date(2024, 1, 10), 16)).index[-1] == pd.Timestamp("2024-01-10")


def test_only_a_partial_bar_is_not_enough() -> None:
    with pytest.raises(BadMarketDataError, match="no bar of a completed session before"):
        check(GOOD.iloc[-1:], as_of=ny(date(2024, 1, 10), 11))


def test_missing_session_is_named() -> None:
    with pytest.raises(BadMarketDataError, match="SPY, TLT, GLD on 2024-01-05: session missing"):
        check(GOOD.drop(pd.Timestamp("2024-01-05")))


def test_nan_close_is_a_missing_bar_of_that_symbol() -> None:
    bad = GOOD.copy()
    bad.loc["2024-01-05", "TLT"] = np.nan
    with pytest.raises(BadMarketDataError, match="TLT on 2024-01-05: no bar"):
        check(bad)


def test_symbol_without_any_bar_is_named() -> None:
    bad = GOOD.assign(QQQ=np.nan)
    with pytest.raises(BadMarketDataError, match="QQQ: no bars at all"):
        check(bad)


@pytest.mark.parametrize("value", [0.0, -3.5, np.inf])
def test_non_positive_or_infinite_close_is_named(value: float) -> None:
    bad = GOOD.copy()
    bad.loc["2024-01-08", "GLD"] = value
    with pytest.raises(BadMarketDataError, match=f"GLD on 2024-01-08: close {value!r}"):
        check(bad)


def test_duplicate_session_date_is_refused() -> None:
    bad = pd.concat([GOOD.iloc[:4], GOOD.iloc[3:]])
    with pytest.raises(BadMarketDataError, match="on 2024-01-05: duplicate session date"):
        check(bad)


def test_out_of_order_dates_are_refused() -> None:
    bad = GOOD.iloc[[0, 1, 3, 2, 4, 5, 6]]
    with pytest.raises(BadMarketDataError, match="on 2024-01-04: comes after 2024-01-05"):
        check(bad)


def test_stale_last_bar_is_refused() -> None:
    with pytest.raises(
        BadMarketDataError,
        match=r"on 2024-01-08: stale; the last completed session before .* is 2024-01-10 "
        r"\(2 sessions later, at most 0 allowed\)",
    ):
        check(GOOD.loc[:"2024-01-08"])


def test_staleness_allowance_is_counted_in_sessions() -> None:
    assert len(check(GOOD.loc[:"2024-01-08"], max_staleness_sessions=2)) == 5


def test_holiday_is_not_a_missed_session() -> None:
    friday = closes(date(2024, 1, 2), date(2024, 1, 12))
    assert len(check(friday, as_of=ny(date(2024, 1, 16), 9))) == len(friday)  # before Tue open


def test_bar_on_a_holiday_is_refused() -> None:
    bad = closes(date(2024, 1, 2), date(2024, 1, 16))
    bad.index = bad.index.where(bad.index != pd.Timestamp("2024-01-16"), pd.Timestamp(MLK_DAY))
    with pytest.raises(BadMarketDataError, match="on 2024-01-15: not a trading session"):
        check(bad, as_of=ny(date(2024, 1, 17), 17))


def test_bar_of_a_session_that_has_not_opened_is_refused() -> None:
    with pytest.raises(BadMarketDataError, match="on 2024-01-10: bar of a session that opens"):
        check(GOOD, as_of=ny(date(2024, 1, 10), 8))


@pytest.mark.parametrize(("new", "move"), [(160.0, "60%"), (45.0, "55%")])
def test_jump_of_more_than_half_is_suspicious(new: float, move: str) -> None:
    bad = GOOD.copy()
    bad.loc["2024-01-08":, "SPY"] = [100.0, new, new]
    with pytest.raises(
        BadMarketDataError,
        match=rf"SPY on 2024-01-09: close {new!r} moved {move} from 100.0 on 2024-01-08 "
        r"\(more than 50%: suspicious\)",
    ):
        check(bad)


def test_jump_limit_is_a_setting() -> None:
    bad = GOOD.copy()
    bad.loc["2024-01-08":, "SPY"] = [100.0, 160.0, 160.0]
    assert len(check(bad, max_jump_fraction=0.7)) == len(GOOD)


def test_as_of_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="as_of must be timezone-aware"):
        check_bars(GOOD, CALENDAR, as_of=datetime(2024, 1, 10, 17))


# ---------------------------------------------------------------------------- CsvBars


def test_csv_bars_select_symbols_and_an_inclusive_window(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    GOOD.to_csv(path)
    got = CsvBars(path).daily_closes(["GLD", "SPY"], date(2024, 1, 4), date(2024, 1, 8))
    expected = GOOD.loc["2024-01-04":"2024-01-08", ["GLD", "SPY"]]
    pd.testing.assert_frame_equal(got, expected, check_index_type=False)  # datetime unit only


def test_csv_bars_missing_symbol_or_bad_file_is_bad_market_data(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    GOOD.to_csv(path)
    with pytest.raises(BadMarketDataError, match="QQQ: not in"):
        CsvBars(path).daily_closes(["SPY", "QQQ"], date(2024, 1, 2), date(2024, 1, 10))
    path.write_text("date,SPY\n2024-01-02,abc\n")
    with pytest.raises(
        BadMarketDataError, match="line 2: SPY on 2024-01-02 = 'abc' is not a positive price"
    ):
        CsvBars(path).daily_closes(["SPY"], date(2024, 1, 2), date(2024, 1, 10))


# ------------------------------------------------------- a thin symbol's missing bar


def _thin_file(tmp_path: Path, blanks: list[str]) -> Path:
    """GOOD as a wide CSV with TLT blank on ``blanks``: a thin symbol without those bars."""
    frame = GOOD.copy()
    frame.loc[pd.DatetimeIndex(blanks), "TLT"] = np.nan
    path = tmp_path / "thin.csv"
    frame.to_csv(path, index_label="date", date_format="%Y-%m-%d")  # NaN is written blank
    return path


def test_live_and_backtest_carry_the_same_closes_for_a_missing_bar(tmp_path: Path) -> None:
    path = _thin_file(tmp_path, ["2024-01-05", "2024-01-08"])
    live_raw = CsvBars(path, allow_missing=True).daily_closes(
        ["SPY", "TLT", "GLD"], date(2024, 1, 2), date(2024, 1, 10)
    )

    live = check_bars(live_raw, CALENDAR, as_of=AFTER_CLOSE, max_carry_sessions=3)
    backtest = load_prices_carried(path, 3)

    pd.testing.assert_frame_equal(live.closes, backtest.closes, check_index_type=False)
    assert live.carried == backtest.carried
    thursday = pd.Timestamp("2024-01-04")
    assert live.carried == (
        CarriedClose("TLT", pd.Timestamp("2024-01-05"), thursday),
        CarriedClose("TLT", pd.Timestamp("2024-01-08"), thursday),
    )
    expected = GOOD["TLT"].to_numpy().copy()
    expected[3:5] = expected[2]  # Friday and Monday take Thursday's close
    np.testing.assert_array_equal(live.closes["TLT"].to_numpy(), expected)


def test_live_and_backtest_refuse_the_same_run_beyond_the_limit(tmp_path: Path) -> None:
    path = _thin_file(tmp_path, ["2024-01-04", "2024-01-05", "2024-01-08"])
    live_raw = CsvBars(path, allow_missing=True).daily_closes(
        ["SPY", "TLT", "GLD"], date(2024, 1, 2), date(2024, 1, 10)
    )
    named = r"TLT on 2024-01-04 to 2024-01-08: no bar for 3 sessions \(at most 2"

    with pytest.raises(BadMarketDataError, match=named):
        check_bars(live_raw, CALENDAR, as_of=AFTER_CLOSE, max_carry_sessions=2)
    with pytest.raises(PriceFileError, match=named):
        load_prices_carried(path, 2)
    assert len(check_bars(live_raw, CALENDAR, as_of=AFTER_CLOSE, max_carry_sessions=3).carried) == 3


def test_a_thin_symbol_missing_the_last_session_is_carried_not_stale() -> None:
    thin = GOOD.copy()
    thin.loc["2024-01-10", "GLD"] = np.nan

    out = check_bars(thin, CALENDAR, as_of=AFTER_CLOSE, max_carry_sessions=1)

    gld = out.closes["GLD"].to_numpy()
    assert gld[-1] == gld[-2] == GOOD["GLD"].to_numpy()[-2]
    assert [c.session.date() for c in out.carried] == [date(2024, 1, 10)]


def test_csv_bars_refuse_a_blank_close_unless_missing_bars_are_allowed(tmp_path: Path) -> None:
    path = _thin_file(tmp_path, ["2024-01-05"])
    with pytest.raises(BadMarketDataError, match="TLT on 2024-01-05 = '' is not a positive"):
        CsvBars(path).daily_closes(["TLT"], date(2024, 1, 2), date(2024, 1, 10))
    got = CsvBars(path, allow_missing=True).daily_closes(
        ["TLT"], date(2024, 1, 2), date(2024, 1, 10)
    )
    assert got["TLT"].isna().tolist() == [False, False, False, True, False, False, False]


def test_a_price_file_row_without_any_close_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty_row.csv"
    path.write_text("date,SPY,TLT\n2024-01-02,1,2\n2024-01-03,,\n2024-01-04,1,2\n")
    with pytest.raises(PriceFileError, match="no close for any symbol on 2024-01-03"):
        load_prices_carried(path, 3)


def test_the_jump_guard_compares_the_first_new_bar_with_the_bar_before_it() -> None:
    """Passed together with the last seen bar, a new close is judged against it."""
    days = pd.DatetimeIndex(["2024-01-08", "2024-01-09"], name="date")
    seen_and_new = pd.DataFrame({"SPY": [100.0, 49.0]}, index=days)  # no adjustment: -51%
    with pytest.raises(BadMarketDataError, match=r"SPY on 2024-01-09: close 49.0 moved 51%"):
        check_bars(seen_and_new, CALENDAR, as_of=ny(date(2024, 1, 9), 17))
    readjusted = pd.DataFrame({"SPY": [50.0, 49.0]}, index=days)  # after a 2:1 split on the 9th
    out = check_bars(readjusted, CALENDAR, as_of=ny(date(2024, 1, 9), 17))
    assert out.closes["SPY"].tolist() == [50.0, 49.0]


# ---------------------------------------------------------------------------- HttpPolicy


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timeout_secs": 0}, "timeout_secs must be > 0"),
        ({"retry_attempts": 0}, "retry_attempts must be >= 1"),
        ({"retry_attempts": 2.0}, "retry_attempts must be an int"),
        ({"retry_max_secs": -1}, "retry_max_secs must be >= 0"),
        ({"retry_wait_initial_secs": float("nan")}, "retry_wait_initial_secs must be >= 0"),
    ],
)
def test_http_policy_refuses_bad_settings(change: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HttpPolicy(**change)  # type: ignore[arg-type]
