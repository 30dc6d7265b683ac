"""The thin-symbol policy: carry the last close for at most N sessions, then refuse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.base import BarsError
from regime_trader.strategies.missing_bars import (
    CarriedClose,
    MissingBarsError,
    carry_missing_closes,
)

NAN = float("nan")
DAYS = pd.DatetimeIndex(pd.bdate_range("2024-01-02", periods=8), name="date")


def frame(thin: list[float]) -> pd.DataFrame:
    """SPY trades every day; THIN has the given closes (NaN = no bar)."""
    spy = 100.0 + np.arange(len(thin))
    return pd.DataFrame({"SPY": spy, "THIN": thin}, index=DAYS[: len(thin)])


def test_a_missing_bar_takes_the_last_close_and_is_reported() -> None:
    closes = frame([10.0, 11.0, NAN, NAN, 12.0])

    result = carry_missing_closes(closes, 3)

    assert result.closes["THIN"].tolist() == [10.0, 11.0, 11.0, 11.0, 12.0]
    assert result.closes["SPY"].tolist() == closes["SPY"].tolist()
    assert result.carried == (
        CarriedClose("THIN", DAYS[2], DAYS[1]),
        CarriedClose("THIN", DAYS[3], DAYS[1]),
    )
    assert result.carried[0].describe() == "THIN on 2024-01-04: close of 2024-01-03 carried"
    assert closes["THIN"].isna().tolist() == [False, False, True, True, False]  # input untouched


def test_a_run_longer_than_the_limit_is_refused_naming_symbol_and_dates() -> None:
    closes = frame([10.0, NAN, NAN, NAN, NAN, 12.0])

    with pytest.raises(
        MissingBarsError,
        match=r"THIN on 2024-01-03 to 2024-01-08: no bar for 4 sessions \(at most 3 .*2024-01-02",
    ):
        carry_missing_closes(closes, 3)


def test_exactly_the_limit_is_carried() -> None:
    result = carry_missing_closes(frame([10.0, NAN, NAN, NAN, 12.0]), 3)
    assert len(result.carried) == 3


def test_separate_runs_are_counted_separately() -> None:
    result = carry_missing_closes(frame([10.0, NAN, NAN, 11.0, NAN, NAN, 12.0]), 2)
    assert result.closes["THIN"].tolist() == [10.0, 10.0, 10.0, 11.0, 11.0, 11.0, 12.0]


def test_zero_refuses_any_missing_bar() -> None:
    with pytest.raises(MissingBarsError, match=r"THIN on 2024-01-04: no bar .*carrying .* is off"):
        carry_missing_closes(frame([10.0, 11.0, NAN, 12.0]), 0)


def test_a_missing_first_bar_has_nothing_to_carry() -> None:
    with pytest.raises(MissingBarsError, match="THIN on 2024-01-02: no bar, and no earlier close"):
        carry_missing_closes(frame([NAN, 11.0, 12.0]), 3)


def test_a_row_without_any_bar_is_left_to_the_callers_missing_session_check() -> None:
    closes = frame([10.0, NAN, 12.0])
    closes.loc[DAYS[1], "SPY"] = NAN

    result = carry_missing_closes(closes, 3)

    assert result.closes.iloc[1].isna().all() and result.carried == ()


def test_complete_closes_come_back_equal_with_nothing_carried() -> None:
    closes = frame([10.0, 11.0, 12.0])
    result = carry_missing_closes(closes, 3)
    pd.testing.assert_frame_equal(result.closes, closes)
    assert result.carried == ()


def test_the_error_is_a_bars_error_and_a_bad_limit_is_refused() -> None:
    assert issubclass(MissingBarsError, BarsError)
    with pytest.raises(ValueError, match="max_sessions must be an int >= 0, got -1"):
        carry_missing_closes(frame([10.0]), -1)
    with pytest.raises(ValueError, match="got True"):
        carry_missing_closes(frame([10.0]), True)
