"""Daily bars through the real StockHistoricalDataClient: paging, partial bars, no future."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import pytest
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.requests import StockBarsRequest, StockLatestBarRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from tests.support.emulator import HEADERS, NY, EmulatorDriver


def daily(symbols: list[str] | str, **kw: object) -> StockBarsRequest:
    return StockBarsRequest(symbol_or_symbols=symbols, timeframe=TimeFrame.Day, **kw)


def test_history_before_the_start_is_available_for_fitting(emu: EmulatorDriver) -> None:
    bars = emu.data.get_stock_bars(daily(["SPY", "TLT", "GLD"], start=datetime(2015, 1, 1)))
    for symbol in ("SPY", "TLT", "GLD"):
        series = bars.data[symbol]
        assert len(series) == 756  # --history-sessions; the first session has not opened
        days = [b.timestamp for b in series]
        assert days == sorted(days) and len(set(days)) == len(days)
        assert days[-1] == datetime(2023, 12, 29, tzinfo=NY)
        for b in series:
            assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
            assert b.volume > 0 and b.trade_count and b.trade_count > 0
            assert b.vwap is not None and b.low <= b.vwap <= b.high


def test_bars_of_future_sessions_are_never_served(emu: EmulatorDriver) -> None:
    bars = emu.data.get_stock_bars(
        daily("SPY", start=datetime(2024, 1, 1), end=datetime(2025, 1, 1))
    )
    assert bars.data.get("SPY", []) == []
    emu.advance(to="next_session_open")  # 2024-01-03 09:30
    bars = emu.data.get_stock_bars(
        daily("SPY", start=datetime(2024, 1, 1), end=datetime(2025, 1, 1))
    )
    assert [b.timestamp.date() for b in bars.data["SPY"]] == [date(2024, 1, 2), date(2024, 1, 3)]


def test_partial_bar_of_the_session_in_progress_closes_at_the_current_price(
    emu: EmulatorDriver,
) -> None:
    emu.set_clock(datetime(2024, 1, 2, 11, 0, tzinfo=NY))
    morning = emu.data.get_stock_bars(daily("SPY", start=datetime(2024, 1, 2))).data["SPY"][-1]
    order = emu.trading.submit_order(
        MarketOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert morning.close == pytest.approx(float(order.filled_avg_price))
    emu.advance(to="next_close")
    full = emu.data.get_stock_bars(daily("SPY", start=datetime(2024, 1, 2))).data["SPY"][-1]
    assert full.timestamp == morning.timestamp and full.open == morning.open
    assert full.volume > morning.volume
    assert full.high >= morning.high and full.low <= morning.low
    latest = emu.data.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="SPY"))
    assert latest["SPY"].close == full.close


def test_multi_page_bars_are_all_returned_once_in_order(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    symbols = [f"S{i:02d}" for i in range(15)]  # 15 x 756 bars > 10 000: two pages
    emu = start_emulator(symbols=tuple(symbols), non_fractionable=frozenset())
    bars = emu.data.get_stock_bars(daily(symbols, start=datetime(2015, 1, 1)))
    assert sorted(bars.data) == symbols
    assert {len(v) for v in bars.data.values()} == {756}
    # The same through raw pages of 1000: tokens chain, nothing is repeated, null stops.
    seen: list[tuple[str, str]] = []
    token: str | None = None
    pages = 0
    while True:
        params = {
            "symbols": ",".join(symbols),
            "timeframe": "1Day",
            "start": "2015-01-01",
            "limit": "1000",
            **({"page_token": token} if token else {}),
        }
        body = emu.http.get("/v2/stocks/bars", params=params, headers=HEADERS).json()
        pages += 1
        seen += [(s, b["t"]) for s, page in body["bars"].items() for b in page]
        token = body["next_page_token"]
        if token is None:
            break
    assert pages == 12 and len(seen) == len(set(seen)) == 15 * 756
    assert seen == sorted(seen)


def test_limit_sort_feed_and_adjustment(emu: EmulatorDriver) -> None:
    newest = emu.data.get_stock_bars(
        daily(
            ["SPY", "TLT"],
            start=datetime(2023, 1, 1),
            limit=5,
            sort=Sort.DESC,
            feed=DataFeed.IEX,
            adjustment=Adjustment.ALL,
        )
    )
    assert list(newest.data) == ["SPY"]  # the limit counts bars across symbols
    days = [b.timestamp for b in newest.data["SPY"]]
    assert days == sorted(days, reverse=True) and days[0] == datetime(2023, 12, 29, tzinfo=NY)


def test_default_start_is_the_current_day(emu: EmulatorDriver) -> None:
    emu.advance(to="next_session_open")
    bars = emu.data.get_stock_bars(daily("SPY"))
    assert [b.timestamp.date() for b in bars.data["SPY"]] == [date(2024, 1, 3)]


def test_unknown_symbols_are_left_out_and_bad_parameters_refused(emu: EmulatorDriver) -> None:
    bars = emu.data.get_stock_bars(daily(["SPY", "NOPE"], start=datetime(2023, 12, 1)))
    assert list(bars.data) == ["SPY"]
    with pytest.raises(APIError) as err:
        emu.data.get_stock_bars(
            StockBarsRequest(symbol_or_symbols="SPY", timeframe=TimeFrame(5, TimeFrameUnit.Minute))
        )
    assert (err.value.status_code, err.value.code) == (422, 42210000)
    response = emu.http.get(
        "/v2/stocks/bars",
        params={"symbols": "SPY", "timeframe": "1Day", "start": "yesterday"},
        headers=HEADERS,
    )
    assert response.status_code == 400 and response.json()["code"] == 40010001


def test_same_seed_gives_the_same_market(
    start_emulator: Callable[..., EmulatorDriver], emu: EmulatorDriver
) -> None:
    other = start_emulator()
    request = daily("TLT", start=datetime(2023, 6, 1))
    ours = emu.data.get_stock_bars(request).data["TLT"]
    theirs = other.data.get_stock_bars(request).data["TLT"]
    assert [b.model_dump() for b in ours] == [b.model_dump() for b in theirs]
    changed = start_emulator(seed=1)
    assert changed.data.get_stock_bars(request).data["TLT"][-1].close != ours[-1].close
