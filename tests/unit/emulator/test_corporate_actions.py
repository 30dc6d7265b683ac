"""Backward adjustment as of a date, checked against a direct loop; the file's validation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regime_trader.service.emulator.corporate_actions import (
    ActionKind,
    CorporateAction,
    CorporateActionError,
    adjust_closes,
    load_corporate_actions,
)

DATES = [date(2024, 3, d) for d in (4, 5, 6, 7, 8, 11, 12, 13)]
RAW = pd.DataFrame(
    {
        "AAA": [100.0, 102.0, 101.0, 51.0, 52.0, 51.5, 53.0, 54.0],  # 2:1 split on the 7th
        "BBB": [40.0, 41.0, 42.0, 43.0, 44.0, 43.0, 44.0, 45.0],
    },
    index=pd.DatetimeIndex(DATES),
)
SPLIT = CorporateAction("AAA", date(2024, 3, 7), ActionKind.SPLIT, 2.0)
DIV_AAA = CorporateAction("AAA", date(2024, 3, 12), ActionKind.CASH_DIVIDEND, 0.5)
DIV_BBB = CorporateAction("BBB", date(2024, 3, 6), ActionKind.CASH_DIVIDEND, 1.0)
ACTIONS = (SPLIT, DIV_AAA, DIV_BBB)


def direct(
    raw: pd.DataFrame, actions: tuple[CorporateAction, ...], as_of: date, kinds: set[str]
) -> pd.DataFrame:
    """The definition, one close at a time: multiply every close before each known ex-date."""
    values = {str(c): [float(x) for x in raw[c]] for c in raw.columns}
    for a in actions:
        if a.ex_date > as_of or a.kind.value not in kinds:
            continue
        column = values[a.symbol]
        before = max(i for i, d in enumerate(DATES) if d < a.ex_date)
        raw_before = float(raw[a.symbol].iloc[before])
        for k, day in enumerate(DATES):
            if day >= a.ex_date:
                continue
            if a.kind is ActionKind.SPLIT:
                column[k] /= a.value
            else:
                column[k] *= 1 - a.value / raw_before
    return pd.DataFrame(values, index=raw.index)


@pytest.mark.parametrize(
    ("adjustment", "kinds"),
    [
        ("raw", set()),
        ("split", {"split"}),
        ("dividend", {"cash_dividend"}),
        ("all", {"split", "cash_dividend"}),
        ("split,dividend", {"split", "cash_dividend"}),
    ],
)
@pytest.mark.parametrize("as_of", [date(2024, 3, 5), date(2024, 3, 7), date(2024, 3, 13)])
def test_adjusted_closes_equal_the_direct_computation(
    adjustment: str, kinds: set[str], as_of: date
) -> None:
    got = adjust_closes(RAW, ACTIONS, as_of, adjustment)
    pd.testing.assert_frame_equal(got, direct(RAW, ACTIONS, as_of, kinds), rtol=1e-12)


def test_actions_after_the_as_of_date_change_nothing() -> None:
    got = adjust_closes(RAW, ACTIONS, date(2024, 3, 5), "all")
    pd.testing.assert_frame_equal(got, RAW)


def test_all_adjusted_series_has_no_jump_at_the_split_and_keeps_recent_closes_raw() -> None:
    got = adjust_closes(RAW, ACTIONS, date(2024, 3, 13), "all")
    # Raw: 101 -> 51 across the 2:1 split (-49 %); adjusted: the true move 101/2 -> 51 (+1 %).
    ratio = got["AAA"].iloc[3] / got["AAA"].iloc[2]
    assert ratio == pytest.approx(51.0 / (101.0 / 2.0))
    assert got["AAA"].iloc[-2:].tolist() == RAW["AAA"].iloc[-2:].tolist()
    # The dividend's factor is 1 - D / (raw close before the ex-date), on every earlier close.
    factor = 1 - 0.5 / 51.5
    assert got["AAA"].iloc[4] == pytest.approx(52.0 * factor)
    assert got["AAA"].iloc[0] == pytest.approx(100.0 / 2 * factor)


def test_a_dividend_not_below_the_previous_close_is_refused() -> None:
    huge = CorporateAction("BBB", date(2024, 3, 6), ActionKind.CASH_DIVIDEND, 41.0)
    with pytest.raises(CorporateActionError, match=r"dividend 41\.0 on 2024-03-06"):
        adjust_closes(RAW, (huge,), date(2024, 3, 13), "all")


def test_an_unknown_adjustment_is_refused() -> None:
    with pytest.raises(CorporateActionError, match="invalid adjustment: 'splits'"):
        adjust_closes(RAW, ACTIONS, date(2024, 3, 13), "splits")


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "actions.csv"
    path.write_text("symbol,ex_date,kind,value\n" + body)
    return path


def test_a_valid_file_loads_sorted_by_ex_date(tmp_path: Path) -> None:
    path = write(tmp_path, "AAA,2024-03-12,cash_dividend,0.5\nAAA,2024-03-07,split,2\n")
    assert load_corporate_actions(path, {"AAA"}) == (
        CorporateAction("AAA", date(2024, 3, 7), ActionKind.SPLIT, 2.0),
        CorporateAction("AAA", date(2024, 3, 12), ActionKind.CASH_DIVIDEND, 0.5),
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("ZZZ,2024-03-07,split,2", "line 2, field 'symbol': 'ZZZ' is not traded"),
        ("AAA,2024-03-07,merger,2", "line 2, field 'kind': 'merger' is not one of"),
        ("AAA,2024-03-07,split,-2", "line 2, field 'value': '-2' must be a number > 0"),
        ("AAA,2024-03-07,cash_dividend,0", "line 2, field 'value': '0' must be a number > 0"),
        ("AAA,2024-03-07,split,two", "line 2, field 'value': 'two' is not a number"),
        ("AAA,07/03/2024,split,2", "line 2, field 'ex_date': '07/03/2024' is not a YYYY-MM-DD"),
        ("AAA,2024-03-07,split", "line 2: expected 4 fields"),
    ],
)
def test_a_bad_row_is_refused_naming_line_and_field(tmp_path: Path, row: str, message: str) -> None:
    with pytest.raises(CorporateActionError, match=message):
        load_corporate_actions(write(tmp_path, row + "\n"), {"AAA"})


def test_a_wrong_header_or_a_repeated_action_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,date,kind,value\n")
    with pytest.raises(CorporateActionError, match="line 1: header must be"):
        load_corporate_actions(bad)
    twice = write(tmp_path, "AAA,2024-03-07,split,2\nAAA,2024-03-07,split,3\n")
    with pytest.raises(CorporateActionError, match="listed twice"):
        load_corporate_actions(twice)


def test_factors_are_exactly_one_for_raw() -> None:
    got = adjust_closes(RAW, ACTIONS, date(2024, 3, 13), "raw")
    assert np.array_equal(got.to_numpy(), RAW.to_numpy())
