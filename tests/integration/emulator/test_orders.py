"""Orders through the real TradingClient: the closed-market queue, fills, cancels, filters."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest

from tests.support.emulator import NY, START, EmulatorDriver


def buy(emu: EmulatorDriver, symbol: str = "SPY", *, qty: float | None = None, **kw: Any) -> Order:
    order = emu.trading.submit_order(
        MarketOrderRequest(
            symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, **kw
        )
    )
    assert isinstance(order, Order)
    return order


def session_open_price(emu: EmulatorDriver, symbol: str, day: datetime) -> Decimal:
    bars = emu.data.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols=symbol,
            timeframe=TimeFrame.Day,
            start=day,
            end=day + timedelta(hours=23),
        )
    )
    (bar,) = bars.data[symbol]
    return Decimal(str(bar.open))


def test_order_submitted_while_closed_is_queued_then_filled_at_the_next_open(
    emu: EmulatorDriver,
) -> None:
    assert emu.trading.get_clock().is_open is False
    order = emu.trading.submit_order(
        MarketOrderRequest(symbol="SPY", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert order.status == OrderStatus.ACCEPTED
    assert order.filled_qty == "0" and order.filled_avg_price is None
    assert emu.trading.get_all_positions() == []
    open_orders = emu.trading.get_orders()
    assert [o.id for o in open_orders] == [order.id]

    clock = emu.advance(to="next_open")
    assert clock.is_open is True

    filled = emu.trading.get_order_by_id(order.id)
    assert filled.status == OrderStatus.FILLED
    assert filled.filled_at == datetime(2024, 1, 2, 9, 30, tzinfo=NY)
    price = Decimal(str(filled.filled_avg_price))
    assert price == session_open_price(emu, "SPY", datetime(2024, 1, 2))
    (position,) = emu.trading.get_all_positions()
    assert (position.symbol, position.qty) == ("SPY", "10")
    assert Decimal(position.cost_basis) == 10 * price
    account = emu.trading.get_account()
    assert Decimal(account.cash) == Decimal("100000") - 10 * price
    assert Decimal(account.equity) == Decimal(account.cash) + Decimal(position.market_value)
    assert emu.trading.get_orders() == []


def test_queued_buy_holds_buying_power_until_it_fills(emu: EmulatorDriver) -> None:
    order = buy(emu, notional=2500)
    account = emu.trading.get_account()
    assert Decimal(account.cash) == Decimal("100000")
    assert Decimal(account.buying_power) == Decimal("97500")
    emu.advance(to="next_open")
    filled = emu.trading.get_order_by_id(order.id)
    account = emu.trading.get_account()
    spent = Decimal("100000") - Decimal(account.cash)
    assert Decimal(account.buying_power) == Decimal(account.cash)
    assert Decimal("2499.9") <= spent <= Decimal("2500")
    assert spent == (Decimal(filled.filled_qty) * Decimal(filled.filled_avg_price)).quantize(
        Decimal("0.01")
    )


def test_order_while_open_fills_at_once_at_the_interpolated_price(emu: EmulatorDriver) -> None:
    emu.set_clock(datetime(2024, 1, 2, 12, 45, tzinfo=NY))  # half-way through the session
    order = buy(emu, qty=1.5)
    assert order.status == OrderStatus.FILLED
    price = float(order.filled_avg_price)
    bars = emu.data.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="SPY", timeframe=TimeFrame.Day, start=datetime(2024, 1, 2)
        )
    )
    (bar,) = bars.data["SPY"]  # the partial bar of the session in progress
    assert bar.close == pytest.approx(price)
    assert min(bar.open, bar.close) >= bar.low and max(bar.open, bar.close) <= bar.high
    assert order.filled_qty == "1.5"


def test_notional_order_buys_whole_dollars_worth_in_fractional_shares(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    order = buy(emu, notional=1000)
    price = Decimal(order.filled_avg_price)
    qty = Decimal(order.filled_qty)
    assert qty == (Decimal(1000) / price).quantize(Decimal("1e-9"), rounding=ROUND_FLOOR)
    assert order.notional == "1000.00" and order.qty is None


def test_sell_after_buy_returns_cash_and_closes_the_position(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    buy(emu, qty=4)
    emu.advance(minutes=120)
    sell = emu.trading.submit_order(
        MarketOrderRequest(symbol="SPY", qty=4, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
    )
    assert sell.status == OrderStatus.FILLED
    assert emu.trading.get_all_positions() == []
    orders = emu.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    buy_price = Decimal(next(o for o in orders if o.side == OrderSide.BUY).filled_avg_price)
    sell_price = Decimal(sell.filled_avg_price)
    account = emu.trading.get_account()
    assert Decimal(account.cash) == Decimal("100000") + 4 * (sell_price - buy_price)


def test_cancel_releases_the_hold_and_the_order_never_fills(emu: EmulatorDriver) -> None:
    order = buy(emu, qty=10)
    emu.trading.cancel_order_by_id(order.id)
    cancelled = emu.trading.get_order_by_id(order.id)
    assert cancelled.status == OrderStatus.CANCELED and cancelled.canceled_at is not None
    assert Decimal(emu.trading.get_account().buying_power) == Decimal("100000")
    emu.advance(to="next_open")
    assert emu.trading.get_all_positions() == []
    with pytest.raises(APIError) as err:
        emu.trading.cancel_order_by_id(order.id)
    assert (err.value.status_code, err.value.code) == (422, 42210000)


def test_cancel_all_cancels_every_open_order(emu: EmulatorDriver) -> None:
    ids = {buy(emu, symbol, qty=1).id for symbol in ("SPY", "TLT")}
    results = emu.trading.cancel_orders()
    assert {r.id for r in results} == ids and {r.status for r in results} == {200}
    assert emu.trading.get_orders() == []
    statuses = {
        o.status for o in emu.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    }
    assert statuses == {OrderStatus.CANCELED}


def test_order_can_be_read_back_by_client_order_id(emu: EmulatorDriver) -> None:
    order = buy(emu, qty=2, client_order_id="cycle-2024-01-02-SPY-buy")
    found = emu.trading.get_order_by_client_id("cycle-2024-01-02-SPY-buy")
    assert found.id == order.id
    with pytest.raises(APIError) as err:
        emu.trading.get_order_by_client_id("never-sent")
    assert (err.value.status_code, err.value.code) == (404, 40410000)


def test_unknown_order_id_is_404(emu: EmulatorDriver) -> None:
    with pytest.raises(APIError) as err:
        emu.trading.get_order_by_id("00000000-0000-4000-8000-000000000000")
    assert (err.value.status_code, err.value.code) == (404, 40410000)


def test_order_list_filters_by_status_symbols_side_time_and_limit(emu: EmulatorDriver) -> None:
    first = buy(emu, "SPY", qty=1)
    emu.advance(to="next_open")  # fills the first
    emu.advance(minutes=10)
    second = buy(emu, "TLT", qty=1)
    emu.advance(minutes=10)
    third = emu.trading.submit_order(
        MarketOrderRequest(symbol="SPY", qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
    )
    every = emu.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.id for o in every] == [third.id, second.id, first.id]
    ascending = emu.trading.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.ALL, direction="asc")
    )
    assert [o.id for o in ascending] == [o.id for o in reversed(every)]
    spy = emu.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["SPY"]))
    assert {o.id for o in spy} == {first.id, third.id}
    sells = emu.trading.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.ALL, side=OrderSide.SELL)
    )
    assert [o.id for o in sells] == [third.id]
    after = emu.trading.get_orders(
        GetOrdersRequest(
            status=QueryOrderStatus.ALL, after=second.submitted_at - timedelta(seconds=1)
        )
    )
    assert {o.id for o in after} == {second.id, third.id}
    until = emu.trading.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.ALL, until=second.submitted_at, nested=True)
    )
    assert [o.id for o in until] == [first.id]
    limited = emu.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=2))
    assert [o.id for o in limited] == [third.id, second.id]
    assert emu.trading.get_orders() == []  # default: open only; all three filled


def test_expires_at_is_the_close_of_the_session_the_order_is_for(emu: EmulatorDriver) -> None:
    order = buy(emu, qty=1)
    assert order.expires_at == datetime(2024, 1, 2, 16, 0, tzinfo=NY)
    assert order.submitted_at == START
