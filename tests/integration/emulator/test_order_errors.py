"""Every refused order comes back as Alpaca's error: the SDK raises APIError(status, code)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from tests.support.emulator import EmulatorDriver


def api_error(call: Any, *args: Any) -> APIError:
    with pytest.raises(APIError) as err:
        call(*args)
    return err.value


def market(symbol: str = "SPY", side: OrderSide = OrderSide.BUY, **kw: Any) -> MarketOrderRequest:
    kw.setdefault("time_in_force", TimeInForce.DAY)
    return MarketOrderRequest(symbol=symbol, side=side, **kw)


def test_duplicate_client_order_id_is_rejected(emu: EmulatorDriver) -> None:
    emu.trading.submit_order(market(qty=1, client_order_id="plan-1"))
    error = api_error(emu.trading.submit_order, market(qty=2, client_order_id="plan-1"))
    assert (error.status_code, error.code) == (422, 40010001)
    assert error.message == "client_order_id must be unique"
    assert len(emu.trading.get_orders()) == 1


def test_duplicate_client_order_id_is_rejected_after_cancel(emu: EmulatorDriver) -> None:
    order = emu.trading.submit_order(market(qty=1, client_order_id="plan-2"))
    emu.trading.cancel_order_by_id(order.id)
    error = api_error(emu.trading.submit_order, market(qty=1, client_order_id="plan-2"))
    assert (error.status_code, error.code) == (422, 40010001)


def test_insufficient_buying_power_is_403(emu: EmulatorDriver) -> None:
    error = api_error(emu.trading.submit_order, market(notional=100_001))
    assert (error.status_code, error.code) == (403, 40310000)
    assert error.message == "insufficient buying power"


def test_open_buy_orders_count_against_buying_power(emu: EmulatorDriver) -> None:
    emu.trading.submit_order(market(notional=60_000))
    error = api_error(emu.trading.submit_order, market("TLT", notional=50_000))
    assert (error.status_code, error.code) == (403, 40310000)
    assert Decimal(emu.trading.get_account().buying_power) == Decimal("40000")


def test_selling_more_than_held_is_403_not_a_short(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    emu.trading.submit_order(market(qty=3))
    error = api_error(emu.trading.submit_order, market(side=OrderSide.SELL, qty=5))
    assert (error.status_code, error.code) == (403, 40310000)
    assert "insufficient qty available for order (requested: 5, available: 3)" in error.message
    error = api_error(emu.trading.submit_order, market("TLT", side=OrderSide.SELL, qty=1))
    assert (error.status_code, error.code) == (403, 40310000)
    assert [p.qty for p in emu.trading.get_all_positions()] == ["3"]


def test_shares_held_by_an_open_sell_cannot_be_sold_twice(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    emu.trading.submit_order(market(qty=3))
    emu.advance(to="next_close")
    emu.trading.submit_order(market(side=OrderSide.SELL, qty=2))  # queued
    error = api_error(emu.trading.submit_order, market(side=OrderSide.SELL, qty=2))
    assert (error.status_code, error.code) == (403, 40310000)
    assert "available: 1" in error.message
    position = emu.trading.get_open_position("SPY")
    assert (position.qty, position.qty_available) == ("3", "1")


def test_qty_and_notional_together_is_422(emu: EmulatorDriver) -> None:
    # The SDK refuses this before sending; post the raw body through the same client.
    body = {
        "symbol": "SPY",
        "qty": 1,
        "notional": 10,
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
    }
    error = api_error(emu.trading.post, "/orders", body)
    assert (error.status_code, error.code) == (422, 40010001)
    assert "qty" in error.message and "notional" in error.message


def test_unknown_symbol_is_422(emu: EmulatorDriver) -> None:
    error = api_error(emu.trading.submit_order, market("NOPE", qty=1))
    assert (error.status_code, error.code) == (422, 42210000)
    assert "NOPE" in error.message


def test_fractional_qty_on_non_fractionable_asset_is_422(emu: EmulatorDriver) -> None:
    error = api_error(emu.trading.submit_order, market("GLD", qty=1.5))
    assert (error.status_code, error.code) == (422, 42210000)
    assert "not fractionable" in error.message


def test_notional_on_non_fractionable_asset_is_422(emu: EmulatorDriver) -> None:
    error = api_error(emu.trading.submit_order, market("GLD", notional=100))
    assert (error.status_code, error.code) == (422, 42210000)
    assert "not fractionable" in error.message


def test_whole_shares_of_non_fractionable_asset_are_accepted(emu: EmulatorDriver) -> None:
    order = emu.trading.submit_order(market("GLD", qty=2))
    assert order.qty == "2"


def test_fractional_order_must_be_a_day_order(emu: EmulatorDriver) -> None:
    error = api_error(emu.trading.submit_order, market(qty=0.5, time_in_force=TimeInForce.GTC))
    assert (error.status_code, error.code) == (422, 42210000)
    assert error.message == "fractional orders must be DAY orders"


def test_notional_below_one_dollar_is_refused(emu: EmulatorDriver) -> None:
    error = api_error(emu.trading.submit_order, market(notional=0.5))
    assert (error.status_code, error.code) == (403, 40310000)
    assert "minimal amount of order 1" in error.message


def test_too_many_decimals_and_unsupported_types_are_422(emu: EmulatorDriver) -> None:
    base = {"symbol": "SPY", "side": "buy", "type": "market", "time_in_force": "day"}
    cases = [
        {**base, "qty": "0.0000000001"},
        {**base, "qty": -1},
        {**base, "qty": 1, "type": "limit", "limit_price": 10},
        {**base, "qty": 1, "time_in_force": "gtc"},
        {**base, "qty": 1, "side": "short"},
        {**base, "qty": 1, "client_order_id": "x" * 129},
    ]
    for body in cases:
        error = api_error(emu.trading.post, "/orders", body)
        assert error.status_code == 422, body
        assert error.code in (40010001, 42210000), body
    assert emu.trading.get_orders() == []
