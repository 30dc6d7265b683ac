"""AlpacaBars over real HTTP: paging, partial bars, validation with the broker's calendar."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
from alpaca.data.enums import Adjustment
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.models import BarSet
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from regime_trader.service.broker import AlpacaBroker
from regime_trader.service.exceptions import BadMarketDataError
from regime_trader.service.marketdata import AlpacaBars, check_bars
from tests.support.emulator import FAST, KEY_ID, NY, SECRET_KEY, EmulatorDriver

SYMBOLS = ["SPY", "TLT", "GLD"]


def test_bars_page_through_many_sessions_like_the_sdk(emu: EmulatorDriver) -> None:
    pages = emu.add_fault(path="/v2/stocks/bars", latency_ms=1)  # counts requests, changes nothing
    small = AlpacaBars(KEY_ID, SECRET_KEY, url_override=emu.url, policy=FAST, page_size=100)
    closes = small.daily_closes(SYMBOLS, date(2015, 1, 1), date(2024, 1, 2))
    assert emu.hits(pages.id) == 23  # 3 symbols x 756 sessions / 100 per page
    assert closes.shape == (756, 3) and list(closes.columns) == SYMBOLS
    assert closes.index.is_monotonic_increasing and closes.index[-1] == datetime(2023, 12, 29)
    sdk = StockHistoricalDataClient(KEY_ID, SECRET_KEY, url_override=emu.url)
    request = StockBarsRequest(
        symbol_or_symbols=SYMBOLS,
        timeframe=TimeFrame.Day,
        start=datetime(2015, 1, 1),
        adjustment=Adjustment.ALL,
    )
    direct = sdk.get_stock_bars(request)
    assert isinstance(direct, BarSet)
    for symbol, bars in direct.data.items():
        assert [b.close for b in bars] == closes[symbol].tolist()
        assert [b.timestamp.date() for b in bars] == [t.date() for t in closes.index]


def test_partial_bar_is_dropped_while_the_market_is_open(
    emu: EmulatorDriver, broker: AlpacaBroker, bars: AlpacaBars
) -> None:
    emu.set_clock(datetime(2024, 1, 3, 11, 0, tzinfo=NY))
    clock = broker.clock()
    assert clock.is_open
    raw = bars.daily_closes(SYMBOLS, date(2023, 12, 1), clock.timestamp.date())
    assert raw.index[-1] == datetime(2024, 1, 3)  # Alpaca serves today's partial bar
    sessions = broker.calendar(date(2023, 12, 1), clock.timestamp.date())
    valid = check_bars(raw, sessions, as_of=clock.timestamp).closes
    assert valid.index[-1] == datetime(2024, 1, 2)
    np.testing.assert_array_equal(valid.to_numpy(), raw.iloc[:-1].to_numpy())
    emu.advance(to="next_close")
    clock = broker.clock()
    closed = check_bars(
        bars.daily_closes(SYMBOLS, date(2023, 12, 1), clock.timestamp.date()),
        sessions,
        as_of=clock.timestamp,
    ).closes
    assert closed.index[-1] == datetime(2024, 1, 3)


def test_stale_bars_are_refused_on_a_later_session(
    emu: EmulatorDriver, broker: AlpacaBroker, bars: AlpacaBars
) -> None:
    old = bars.daily_closes(SYMBOLS, date(2023, 12, 1), date(2024, 1, 2))
    for _ in range(3):
        emu.advance(to="next_session_open")
    emu.advance(to="next_close")  # Friday 2024-01-05 16:00
    clock = broker.clock()
    sessions = broker.calendar(date(2023, 12, 1), clock.timestamp.date())
    with pytest.raises(BadMarketDataError, match=r"on 2023-12-29: stale.* is 2024-01-05"):
        check_bars(old, sessions, as_of=clock.timestamp)


def test_daily_bars_have_consistent_ohlcv(bars: AlpacaBars) -> None:
    ohlcv = bars.daily_bars(["SPY", "GLD"], date(2023, 12, 1), date(2023, 12, 29))
    assert list(ohlcv.index.names) == ["date", "symbol"]
    assert len(ohlcv) == 2 * 20  # December 2023 had 20 sessions
    assert (ohlcv["low"] <= ohlcv[["open", "close"]].min(axis=1)).all()
    assert (ohlcv["high"] >= ohlcv[["open", "close"]].max(axis=1)).all()
    assert (ohlcv["volume"] > 0).all()


def test_unknown_symbol_is_caught_by_validation(broker: AlpacaBroker, bars: AlpacaBars) -> None:
    raw = bars.daily_closes(["SPY", "NOPE"], date(2023, 12, 1), date(2024, 1, 2))
    assert raw["NOPE"].isna().all()
    sessions = broker.calendar(date(2023, 12, 1), date(2024, 1, 2))
    with pytest.raises(BadMarketDataError, match="NOPE: no bars at all"):
        check_bars(raw, sessions, as_of=broker.clock().timestamp)


def test_range_without_bars_is_an_empty_frame(bars: AlpacaBars) -> None:
    empty = bars.daily_closes(SYMBOLS, date(2024, 6, 3), date(2024, 6, 7))  # the future
    assert empty.empty and list(empty.columns) == SYMBOLS
