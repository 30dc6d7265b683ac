"""The overlap comparison of regime_trader.service.bar_history: rescale after a re-adjustment,
rebuild after a correction, and the persisted basis."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from regime_trader.service.bar_history import (
    ADJUSTMENT_RTOL,
    OVERLAP_SESSIONS,
    BarBasis,
    PastChange,
    PastChangeKind,
    rebase,
)
from regime_trader.service.exceptions import BadMarketDataError

SYMBOLS = ("SPY", "TLT")
DAYS = pd.DatetimeIndex(pd.bdate_range("2024-03-01", periods=12), name="date")


def served(first: int, last: int, spy: float = 1.0, tlt: float = 1.0) -> pd.DataFrame:
    """Closes of sessions ``first..last`` as served, the past scaled by ``spy`` and ``tlt``."""
    rows = np.arange(first, last + 1, dtype=float)
    frame = pd.DataFrame(
        {"SPY": 100.0 + rows, "TLT": 50.0 - 0.5 * rows}, index=DAYS[first : last + 1]
    )
    frame["SPY"] *= spy
    frame["TLT"] *= tlt
    return frame


def scaled(frame: pd.DataFrame, day: int, symbol: str, factor: float) -> pd.DataFrame:
    """``frame`` with the close of ``symbol`` on ``DAYS[day]`` multiplied by ``factor``."""
    out = frame.copy()
    column = out[symbol].to_numpy().copy()
    column[list(out.index).index(DAYS[day])] *= factor
    out[symbol] = column
    return out


def basis_after_first_feed() -> BarBasis:
    first = served(0, 7)
    return BarBasis.start(first, first)


def test_the_basis_keeps_the_last_sessions_fed_and_round_trips_through_json() -> None:
    basis = basis_after_first_feed()

    assert basis.first_date == date(2024, 3, 1)
    assert basis.dates == tuple(d.date() for d in DAYS[8 - OVERLAP_SESSIONS : 8])
    assert basis.closes["SPY"] == tuple(100.0 + np.arange(8 - OVERLAP_SESSIONS, 8))
    assert basis.factors == {"SPY": 1.0, "TLT": 1.0}
    assert BarBasis.from_dict(json.loads(json.dumps(basis.to_dict()))) == basis


def test_unchanged_bars_join_on_the_same_basis_with_nothing_reported() -> None:
    result = rebase(basis_after_first_feed(), served(3, 9), SYMBOLS)
    assert result == type(result)({"SPY": 1.0, "TLT": 1.0}, (), False)


def test_a_split_is_a_readjustment_whose_factor_rescales_the_new_bars() -> None:
    basis = basis_after_first_feed()
    after_split = served(3, 9, spy=0.5)
    after_split.loc[DAYS[8:10], "SPY"] = served(8, 9)["SPY"] * 0.5  # traded on the new basis

    result = rebase(basis, after_split, SYMBOLS)

    assert not result.rebuild
    assert result.factors == {"SPY": 2.0, "TLT": 1.0}
    assert result.changes == (PastChange("SPY", date(2024, 3, 12), 0.5, PastChangeKind.READJUSTED),)
    assert result.changes[0].describe() == (
        "SPY: past prices re-adjusted x0.5 on/before 2024-03-12 (split or dividend)"
    )
    fed = after_split.loc[DAYS[8:10]].mul(pd.Series(result.factors), axis=1)
    # the strategy's return into the new bar is the served one
    assert fed["SPY"].iloc[0] / basis.closes["SPY"][-1] == pytest.approx(
        after_split["SPY"].iloc[5] / after_split["SPY"].iloc[4], rel=1e-15
    )
    advanced = basis.advance(fed, after_split.loc[DAYS[8:10]])
    assert advanced.factors["SPY"] == 2.0
    assert advanced.dates[-1] == date(2024, 3, 14) and len(advanced.dates) == OVERLAP_SESSIONS
    assert advanced.first_date == basis.first_date


def test_a_second_readjustment_is_reported_against_the_stored_factor_not_the_first() -> None:
    basis = BarBasis.from_dict(
        {**basis_after_first_feed().to_dict(), "factors": {"SPY": 2.0, "TLT": 1.0}}
    )
    now = served(3, 9, spy=0.5 * 0.99)  # the split known before, and now a 1% dividend

    result = rebase(basis, now, SYMBOLS)

    (change,) = result.changes
    assert (change.symbol, change.kind) == ("SPY", PastChangeKind.READJUSTED)
    assert change.factor == pytest.approx(0.99, rel=1e-12)


def test_a_changed_past_return_asks_for_a_rebuild_naming_the_first_changed_session() -> None:
    corrected = scaled(served(3, 9), 5, "TLT", 1.01)  # a data correction of one close

    result = rebase(basis_after_first_feed(), corrected, SYMBOLS)

    assert result.rebuild
    (change,) = result.changes
    assert (change.symbol, change.date, change.kind) == (
        "TLT",
        date(2024, 3, 8),
        PastChangeKind.REBUILT,
    )
    assert change.factor == pytest.approx(1.01, rel=1e-12)
    assert "past returns changed from 2024-03-08" in change.describe()


def test_rounding_of_adjusted_prices_within_the_tolerance_is_not_a_correction() -> None:
    rounded = served(3, 9, spy=0.5).round(4)
    jitter = scaled(served(3, 9), 4, "TLT", 1 + ADJUSTMENT_RTOL / 2)
    assert not rebase(basis_after_first_feed(), rounded, SYMBOLS).rebuild
    assert rebase(basis_after_first_feed(), jitter, SYMBOLS).changes == ()


def test_a_session_of_the_overlap_missing_from_the_refetch_is_bad_market_data() -> None:
    with pytest.raises(
        BadMarketDataError, match="SPY, TLT on 2024-03-06: a session the strategy saw"
    ):
        rebase(basis_after_first_feed(), served(4, 9), SYMBOLS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 9}, "bar basis version 9 is not 1"),
        ({"dates": ["2024-03-02", "2024-03-01"]}, "dates must increase"),
        ({"factors": {"SPY": 1.0}}, "symbols differ"),
        ({"closes": None}, "field .* missing or malformed"),
    ],
)
def test_a_malformed_basis_is_refused_naming_the_field(
    change: dict[str, object], message: str
) -> None:
    data = {**basis_after_first_feed().to_dict(), **change}
    with pytest.raises(ValueError, match=message):
        BarBasis.from_dict(data)
