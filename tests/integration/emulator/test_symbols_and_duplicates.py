"""Unknown symbols refused as Alpaca does, prices keyed by symbol, duplicates, a thin symbol."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.models import Bar
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from regime_trader.service.emulator.catalogue import CATALOGUE_SYMBOLS, THIN_SYMBOL
from tests.support.emulator import NY, EmulatorDriver


def daily_bars(
    emu: EmulatorDriver, symbols: list[str], start: datetime = datetime(2023, 6, 1), **kw: object
) -> dict[str, list[Bar]]:
    request = StockBarsRequest(
        symbol_or_symbols=symbols, timeframe=TimeFrame.Day, start=start, **kw
    )
    return dict(emu.data.get_stock_bars(request).data)


def closes(emu: EmulatorDriver, symbols: list[str], **kw: object) -> dict[str, list[float]]:
    return {s: [b.close for b in series] for s, series in daily_bars(emu, symbols, **kw).items()}


def order(symbol: str, client_order_id: str | None = None) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=symbol,
        qty=1,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        client_order_id=client_order_id,
    )


def test_a_symbol_outside_the_catalogue_is_unknown_everywhere(emu: EmulatorDriver) -> None:
    assert {"SPY", "TLT", "GLD", "IEF", "SHY", "QQQ", "IWM", "EFA", "EEM", "AGG"} <= set(
        CATALOGUE_SYMBOLS
    )
    assert {
        "LQD",
        "HYG",
        "TIP",
        "DBC",
        "VNQ",
        "QUAL",
        "MTUM",
        "USMV",
        "VLUE",
        "SIZE",
        "IWF",
    } <= set(CATALOGUE_SYMBOLS)
    with pytest.raises(APIError) as err:
        emu.trading.get_asset("XXXX")
    assert (err.value.status_code, err.value.code) == (404, 40410000)
    assert err.value.message == "asset not found for XXXX"
    with pytest.raises(APIError) as err:
        emu.trading.submit_order(order("XXXX"))
    assert (err.value.status_code, err.value.code) == (422, 42210000)
    assert err.value.message == 'asset "XXXX" not found'
    assert set(closes(emu, ["SPY", "XXXX", "GLD"])) == {"SPY", "GLD"}
    assert emu.trading.get_orders() == []


def test_a_symbols_prices_never_depend_on_its_neighbours(
    emu: EmulatorDriver, start_emulator: Callable[..., EmulatorDriver]
) -> None:
    catalogue = closes(emu, ["SPY", "TLT", "GLD", "IEF"])
    mixed = start_emulator(symbols=("GLD", "XXXX", "SPY"))
    seen = closes(mixed, ["GLD", "XXXX", "SPY"])
    assert seen["GLD"] == catalogue["GLD"] and seen["SPY"] == catalogue["SPY"]
    # The made-up ticker has a series of its own, not a catalogue symbol's.
    assert all(seen["XXXX"] != series for series in catalogue.values())
    alone = start_emulator(symbols=("IEF",), non_fractionable=frozenset())
    assert closes(alone, ["IEF"])["IEF"] == catalogue["IEF"]


@pytest.mark.parametrize("code", [40010001, 42210000])
def test_a_duplicate_client_order_id_is_answered_with_the_scenarios_code(
    emu: EmulatorDriver, code: int
) -> None:
    assert emu.set_duplicate_code(code)["duplicate_code"] == code
    emu.trading.submit_order(order("SPY", "dup-1"))
    with pytest.raises(APIError) as err:
        emu.trading.submit_order(order("SPY", "dup-1"))
    assert (err.value.status_code, err.value.code) == (422, code)
    assert err.value.message == "client_order_id must be unique"
    assert len(emu.trading.get_orders()) == 1


def test_the_duplicate_code_is_a_config_setting_and_bad_codes_are_refused(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    emu = start_emulator(duplicate_code=42210000)
    assert emu.scenario()["duplicate_code"] == 42210000
    emu.trading.submit_order(order("SPY", "dup-2"))
    with pytest.raises(APIError) as err:
        emu.trading.submit_order(order("SPY", "dup-2"))
    assert err.value.code == 42210000
    response = emu.http.put("/admin/scenario", json={"duplicate_code": 40000000})
    assert response.status_code == 400 and "duplicate_code must be one of" in response.text


def test_the_thin_symbol_misses_some_iex_daily_bars_but_not_sip_ones(emu: EmulatorDriver) -> None:
    sip_days, iex_days = (
        {
            b.timestamp
            for b in daily_bars(emu, [THIN_SYMBOL], datetime(2023, 1, 1), feed=f)[THIN_SYMBOL]
        }
        for f in (DataFeed.SIP, DataFeed.IEX)
    )
    assert iex_days < sip_days
    assert 0 < len(sip_days - iex_days) < len(sip_days) // 5
    spy_iex = closes(emu, ["SPY"], feed=DataFeed.IEX)["SPY"]
    assert len(spy_iex) == len(closes(emu, ["SPY"], feed=DataFeed.SIP)["SPY"])


def test_configured_iex_gaps_remove_exactly_those_sessions(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    emu = start_emulator(iex_missing=(("SPY", date(2023, 12, 27)), ("SPY", date(2023, 12, 28))))
    days = {
        feed: [
            b.timestamp.astimezone(NY).date()
            for b in daily_bars(emu, ["SPY"], datetime(2023, 12, 20), feed=feed)["SPY"]
        ]
        for feed in (DataFeed.SIP, DataFeed.IEX)
    }
    assert set(days[DataFeed.SIP]) - set(days[DataFeed.IEX]) == {
        date(2023, 12, 27),
        date(2023, 12, 28),
    }
