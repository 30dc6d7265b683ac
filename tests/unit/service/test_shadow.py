"""The shadow records: each written and read back unchanged, damaged ones refused by name."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pytest

from regime_trader.service.shadow import PaperEquity, ShadowLedger, ShadowPoint
from regime_trader.strategies.registry import build_strategy
from regime_trader.strategies.shadow import ShadowBook


def _ledger(prices: pd.DataFrame) -> ShadowLedger:
    symbols = list(prices.columns)
    books = {
        name: ShadowBook(build_strategy(name, symbols, {})).start(prices.iloc[:120])
        for name in ("erc_static", "buy_hold")
    }
    for book in books.values():
        book.advance(prices.iloc[119:130])
    return ShadowLedger(
        symbols=tuple(symbols),
        equity_symbol=symbols[0],
        start_session="2024-03-05",
        start_date="2024-03-04",
        start_equity=Decimal("100000.00"),
        last_session="2024-03-19",
        books={n: b.state() for n, b in books.items()},
    )


def test_a_ledger_is_read_back_equal_and_continues_bit_for_bit(
    synthetic_prices: pd.DataFrame,
) -> None:
    ledger = _ledger(synthetic_prices)
    text = ledger.to_json()
    back = ShadowLedger.from_json(text)
    assert back == ledger and back.to_json() == text
    # Both continue to the same bits as books that never stopped.
    for name, state in back.books.items():
        restored = ShadowBook.from_state(state).advance(synthetic_prices.iloc[129:140])
        original = ShadowBook.from_state(ledger.books[name]).advance(synthetic_prices.iloc[129:140])
        assert [s.growth for s in restored] == [s.growth for s in original]
    assert back.last_date == str(synthetic_prices.index[129].date())


def test_points_and_equities_are_read_back_equal() -> None:
    point = ShadowPoint("2024-03-05", {"SPY": 501.25, "TLT": 93.1}, {"erc_static": 1.0021})
    warm_up = ShadowPoint("2023-03-05", {"SPY": 401.0, "TLT": 99.5})
    equity = PaperEquity("2024-03-06", "2024-03-05", Decimal("100123.45"))
    assert ShadowPoint.from_json(point.to_json()) == point
    assert ShadowPoint.from_json(warm_up.to_json()) == warm_up
    assert PaperEquity.from_json(equity.to_json()) == equity


def test_a_damaged_ledger_is_refused_by_name(synthetic_prices: pd.DataFrame) -> None:
    data = json.loads(_ledger(synthetic_prices).to_json())
    with pytest.raises(ValueError, match="shadow ledger version 9 is not 1"):
        ShadowLedger.from_json(json.dumps({**data, "version": 9}))
    del data["start_equity"]
    with pytest.raises(ValueError, match="field 'start_equity' missing"):
        ShadowLedger.from_json(json.dumps(data))
    with pytest.raises(ValueError, match="shadow point must be a JSON object"):
        ShadowPoint.from_json("[1, 2]")
    with pytest.raises(ValueError, match="not JSON compliant"):
        ShadowPoint("2024-03-05", {"SPY": float("nan")}).to_json()
