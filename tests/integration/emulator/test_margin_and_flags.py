"""A margin account (Alpaca paper's default), a cash account, and the flags that stop orders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from regime_trader.service.emulator import EmulatorConfig
from tests.support.emulator import NY, EmulatorDriver

OPEN_AT_11 = datetime(2024, 1, 2, 11, 0, tzinfo=NY)


def buy_notional(emu: EmulatorDriver, dollars: int, symbol: str = "SPY") -> None:
    emu.trading.submit_order(
        MarketOrderRequest(
            symbol=symbol, notional=dollars, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
        )
    )


def money(text: str | None) -> Decimal:
    assert text is not None
    return Decimal(text)


def test_margin_is_the_default_and_lets_buys_borrow_up_to_buying_power(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    assert EmulatorConfig().multiplier == 2
    emu = start_emulator(multiplier=2)
    fresh = emu.trading.get_account()
    assert fresh.multiplier == "2"
    assert money(fresh.buying_power) == money(fresh.regt_buying_power) == Decimal("200000.00")
    assert money(fresh.non_marginable_buying_power) == money(fresh.cash) == Decimal("100000.00")
    emu.set_clock(OPEN_AT_11)
    buy_notional(emu, 150_000)  # half borrowed
    account = emu.trading.get_account()
    long_value = money(account.long_market_value)
    equity = money(account.equity)
    assert money(account.cash) == Decimal("-50000.00")  # negative cash = the loan
    assert money(account.non_marginable_buying_power) == 0
    # Alpaca: buying_power = max(equity - initial_margin, 0) x 2, initial margin 50 %.
    expected = ((equity - long_value / 2) * 2).quantize(Decimal("0.01"))
    assert abs(money(account.buying_power) - expected) <= Decimal("0.01")
    assert money(account.initial_margin) == (long_value / 2).quantize(Decimal("0.01"))
    with pytest.raises(APIError) as err:
        buy_notional(emu, int(expected) + 1_000)
    assert (err.value.status_code, err.value.code) == (403, 40310000)
    assert "insufficient buying power" in str(err.value)


def test_a_cash_account_never_spends_more_than_its_cash(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    emu = start_emulator(multiplier=1)
    fresh = emu.trading.get_account()
    assert fresh.multiplier == "1"
    assert (
        money(fresh.buying_power) == money(fresh.cash) == money(fresh.non_marginable_buying_power)
    )
    emu.set_clock(OPEN_AT_11)
    with pytest.raises(APIError) as err:
        buy_notional(emu, 100_001)
    assert (err.value.status_code, err.value.code) == (403, 40310000)
    buy_notional(emu, 60_000)
    account = emu.trading.get_account()
    assert money(account.cash) == money(account.buying_power) == Decimal("40000.00")


def test_a_pattern_day_trader_account_has_four_times_last_equity_less_maintenance(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    emu = start_emulator(multiplier=4)
    account = emu.trading.get_account()
    assert account.multiplier == "4" and account.pattern_day_trader
    assert money(account.daytrading_buying_power) == money(account.buying_power) == 400_000
    assert money(account.regt_buying_power) == 200_000


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("trade_suspended_by_user", "new orders are rejected by user request"),
        ("trading_blocked", "trading is blocked for this account"),
        ("account_blocked", "account is blocked"),
    ],
)
def test_each_flag_is_reported_and_refuses_new_orders_until_cleared(
    emu: EmulatorDriver, flag: str, message: str
) -> None:
    emu.set_clock(OPEN_AT_11)
    assert emu.set_account_flags(**{flag: True})[flag] is True
    assert getattr(emu.trading.get_account(), flag) is True
    with pytest.raises(APIError) as err:
        buy_notional(emu, 100)
    assert (err.value.status_code, err.value.code) == (403, 40310000)
    assert err.value.message == message
    assert emu.state()["exchange"]["flags"][flag] is True
    emu.set_account_flags(**{flag: False})
    assert getattr(emu.trading.get_account(), flag) is False
    buy_notional(emu, 100)
    assert emu.trading.get_open_position("SPY").symbol == "SPY"


def test_reset_clears_the_flags_and_bad_flags_are_refused(emu: EmulatorDriver) -> None:
    emu.set_account_flags(**{"account_blocked": True})
    emu.reset()
    assert emu.account_flags() == {
        "trading_blocked": False,
        "account_blocked": False,
        "trade_suspended_by_user": False,
    }
    response = emu.http.put("/admin/account_flags", json={"frozen": True})
    assert response.status_code == 400 and "unknown flags ['frozen']" in response.json()["message"]
    response = emu.http.put("/admin/account_flags", json={"account_blocked": "yes"})
    assert (
        response.status_code == 400
        and "account_blocked must be true or false" in (response.json()["message"])
    )


def test_a_queued_margin_buy_borrows_when_it_fills_at_the_open(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    emu = start_emulator(multiplier=2)
    order = emu.trading.submit_order(  # 08:00, closed: held with the 3 % collar, > the cash
        MarketOrderRequest(
            symbol="SPY", qty=2000, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
        )
    )
    assert money(emu.trading.get_account().non_marginable_buying_power) == 0
    emu.advance(to="next_open")
    filled = emu.trading.get_order_by_id(order.id)
    assert filled.status == OrderStatus.FILLED
    cost = (Decimal(2000) * money(filled.filled_avg_price)).quantize(Decimal("0.01"))
    assert cost > 100_000
    assert money(emu.trading.get_account().cash) == Decimal("100000.00") - cost
