"""Account, positions (read, close one, close all) and assets through the TradingClient."""

from __future__ import annotations

from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import AssetStatus, OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import ClosePositionRequest, GetAssetsRequest, MarketOrderRequest

from regime_trader.service.emulator.catalogue import CATALOGUE_SYMBOLS
from tests.support.emulator import EmulatorDriver


def hold(emu: EmulatorDriver, symbol: str, qty: float) -> None:
    emu.trading.submit_order(
        MarketOrderRequest(
            symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
        )
    )


def test_new_account_is_a_cash_account_with_the_configured_cash(emu: EmulatorDriver) -> None:
    account = emu.trading.get_account()
    assert account.cash == "100000.00" and account.buying_power == "100000.00"
    assert account.equity == account.last_equity == account.portfolio_value == "100000.00"
    assert account.multiplier == "1" and account.shorting_enabled is False


def test_account_equity_is_cash_plus_positions_and_last_equity_follows_closes(
    emu: EmulatorDriver,
) -> None:
    emu.advance(to="next_open")
    hold(emu, "SPY", 10)
    hold(emu, "TLT", 2.25)
    emu.advance(to="next_close")
    account = emu.trading.get_account()
    positions = emu.trading.get_all_positions()
    assert [p.symbol for p in positions] == ["SPY", "TLT"]
    value = sum(Decimal(p.market_value) for p in positions)
    assert Decimal(account.long_market_value) == value
    assert Decimal(account.equity) == Decimal(account.cash) + value
    assert account.last_equity == account.equity  # recorded at the close just crossed
    for p in positions:
        assert Decimal(p.market_value) == (Decimal(p.qty) * Decimal(p.current_price)).quantize(
            Decimal("0.01")
        )
        assert Decimal(p.unrealized_pl) == Decimal(p.market_value) - Decimal(p.cost_basis)


def test_get_one_position_by_symbol_and_by_asset_id(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    hold(emu, "SPY", 1)
    by_symbol = emu.trading.get_open_position("SPY")
    by_id = emu.trading.get_open_position(by_symbol.asset_id)
    assert by_symbol.qty == by_id.qty == "1"
    with pytest.raises(APIError) as err:
        emu.trading.get_open_position("TLT")
    assert (err.value.status_code, err.value.code) == (404, 40410000)


def test_close_position_sells_it_at_the_market(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    hold(emu, "SPY", 10)
    cash = Decimal(emu.trading.get_account().cash)
    order = emu.trading.close_position("SPY")
    assert order.side == OrderSide.SELL and order.status == OrderStatus.FILLED
    assert emu.trading.get_all_positions() == []
    proceeds = Decimal(order.filled_qty) * Decimal(order.filled_avg_price)
    assert Decimal(emu.trading.get_account().cash) == cash + proceeds


def test_close_part_of_a_position_by_percentage_or_qty(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    hold(emu, "SPY", 10)
    emu.trading.close_position("SPY", ClosePositionRequest(percentage="25"))
    assert emu.trading.get_open_position("SPY").qty == "7.5"
    emu.trading.close_position("SPY", ClosePositionRequest(qty="2.5"))
    assert emu.trading.get_open_position("SPY").qty == "5"


def test_close_position_while_closed_queues_a_sell(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    hold(emu, "SPY", 3)
    emu.advance(to="next_close")
    order = emu.trading.close_position("SPY")
    assert order.status == OrderStatus.ACCEPTED
    assert emu.trading.get_open_position("SPY").qty == "3"
    emu.advance(to="next_open")
    assert emu.trading.get_all_positions() == []


def test_close_all_positions_with_cancel_orders(emu: EmulatorDriver) -> None:
    emu.advance(to="next_open")
    hold(emu, "SPY", 2)
    hold(emu, "TLT", 3)
    emu.advance(to="next_close")
    hold(emu, "GLD", 1)  # queued: cancelled by cancel_orders=True
    results = emu.trading.close_all_positions(cancel_orders=True)
    assert sorted(r.symbol for r in results) == ["SPY", "TLT"]
    assert {r.status for r in results} == {200}
    open_orders = emu.trading.get_orders()
    assert sorted((o.symbol, o.side) for o in open_orders) == [
        ("SPY", OrderSide.SELL),
        ("TLT", OrderSide.SELL),
    ]
    emu.advance(to="next_open")
    assert emu.trading.get_all_positions() == []


def test_close_unknown_position_is_404(emu: EmulatorDriver) -> None:
    with pytest.raises(APIError) as err:
        emu.trading.close_position("SPY")
    assert (err.value.status_code, err.value.code) == (404, 40410000)


def test_assets_list_and_lookup(emu: EmulatorDriver) -> None:
    assets = {a.symbol: a for a in emu.trading.get_all_assets()}
    assert set(assets) == set(CATALOGUE_SYMBOLS)  # no symbols configured: the catalogue
    assert {"SPY", "TLT", "GLD", "IEF", "QQQ", "QUAL", "IWF"} <= set(assets)
    assert all(a.tradable and a.status == AssetStatus.ACTIVE for a in assets.values())
    assert (assets["SPY"].fractionable, assets["GLD"].fractionable) == (True, False)
    assert emu.trading.get_asset("GLD").id == assets["GLD"].id
    assert emu.trading.get_asset(assets["TLT"].id).symbol == "TLT"
    inactive = emu.trading.get_all_assets(GetAssetsRequest(status=AssetStatus.INACTIVE))
    assert inactive == []
    with pytest.raises(APIError) as err:
        emu.trading.get_asset("NOPE")
    assert (err.value.status_code, err.value.code) == (404, 40410000)
