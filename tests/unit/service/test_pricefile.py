from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from regime_trader.service.pricefile import PriceFileError, load_prices, validate_prices
from tests.conftest import SHARED_DATA


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_wide_and_long_files_give_the_same_frame(tmp_path: Path) -> None:
    wide = _write(tmp_path, "date,SPY,TLT\n2020-01-02,100,50\n2020-01-03,101.5,49.75\n")
    frame = load_prices(wide)
    long_path = tmp_path / "long.csv"
    long_path.write_text(
        "date,symbol,close\n2020-01-02,SPY,100\n2020-01-02,TLT,50\n"
        "2020-01-03,TLT,49.75\n2020-01-03,SPY,101.5\n",
        encoding="utf-8",
    )
    pd.testing.assert_frame_equal(load_prices(long_path), frame)
    assert frame.index.name == "date" and list(frame.columns) == ["SPY", "TLT"]
    assert frame.loc["2020-01-03", "SPY"] == 101.5


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("day,SPY\n2020-01-02,1\n", "no 'date' column"),
        ("date,SPY\n", "no data rows"),
        ("date\n2020-01-02\n", "no price columns"),
        ("date,SPY\n2020-01-02,1\n,2\n", r"line 3: date '' is missing"),
        ("date,SPY\n2020-01-02,1\n02/01/2020,2\n", "line 3: date '02/01/2020'"),
        ("date,SPY\n2020-01-03,1\n2020-01-02,2\n", "2020-01-02 comes after 2020-01-03"),
        ("date,SPY\n2020-01-02,1\n2020-01-02,2\n", "duplicate date 2020-01-02"),
        ("date,SPY\n2020-01-02,0\n", r"line 2: SPY on 2020-01-02 = '0' is not a positive price"),
        ("date,SPY\n2020-01-02,-3\n", "'-3' is not a positive price"),
        ("date,SPY\n2020-01-02,abc\n", "'abc' is not a positive price"),
        ("date,SPY\n2020-01-02,\n", "'' is not a positive price"),
        ("date,SPY\n2020-01-02,nan\n", "'nan' is not a positive price"),
        ("date,SPY\n2020-01-02,inf\n", "'inf' is not a positive price"),
        ("date,SPY,Unnamed: 2\n2020-01-02,1,2\n", "'Unnamed: 2' is not a ticker"),
        ("date,symbol,close,volume\n2020-01-02,SPY,1,5\n", r"unknown \['volume'\], missing \[\]"),
        (
            "date,symbol,close\n2020-01-02,SPY,1\n2020-01-02,SPY,2\n",
            "line 3: duplicate row for SPY",
        ),
        (
            "date,symbol,close\n2020-01-02,SPY,1\n2020-01-02,TLT,2\n2020-01-03,SPY,1\n",
            "no close for TLT on 2020-01-03",
        ),
        ("date,symbol,close\n2020-01-03,SPY,1\n2020-01-02,SPY,2\n", "rows must be sorted"),
    ],
)
def test_bad_files_are_refused_naming_line_column_and_value(
    tmp_path: Path, text: str, match: str
) -> None:
    with pytest.raises(PriceFileError, match=match):
        load_prices(_write(tmp_path, text))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match="no such file"):
        load_prices(tmp_path / "absent.csv")


def test_binary_garbage_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(PriceFileError):
        load_prices(path)


def test_validate_prices_names_the_symbol_and_date() -> None:
    frame = pd.DataFrame(
        {"A": [1.0, float("nan")]}, index=pd.to_datetime(["2020-01-02", "2020-01-03"])
    )
    with pytest.raises(PriceFileError, match="A on 2020-01-03"):
        validate_prices(frame)


@pytest.mark.realdata
def test_the_shared_real_file_loads(real_prices: pd.DataFrame) -> None:
    assert list(real_prices.columns) == ["SPXTR", "TLT", "GLD"]
    assert len(real_prices) == 3804
    assert real_prices.index[0] == pd.Timestamp("2004-11-18")


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "shape", "first"),
    [
        ("multiasset13_2007_2019.csv", (3205, 13), ["SPY", "EFA", "EEM"]),
        ("factor7_2013_2019.csv", (1626, 7), ["SPY", "QUAL", "MTUM"]),
        ("sp500_stocks_2010_2019.csv", (2516, 399), ["A", "AAPL", "ABT"]),
    ],
)
def test_the_other_shared_universes_load_as_wide_files(
    name: str, shape: tuple[int, int], first: list[str]
) -> None:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"shared data not found at {path}")
    prices = load_prices(path)
    assert prices.shape == shape
    assert list(prices.columns[:3]) == first  # file order: the first column is the equity
    assert prices.index.is_monotonic_increasing and prices.index[-1] == pd.Timestamp("2019-12-31")
