"""AlpacaBroker reads over real HTTP: clock, calendar, account, positions, assets, snapshot."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from regime_trader.service.broker import AlpacaBroker
from regime_trader.service.exceptions import BrokerRejectedError
from regime_trader.service.orders import plan_orders
from tests.support.emulator import NY, START, EmulatorDriver


def test_clock_and_calendar_come_from_the_emulator(
    emu: EmulatorDriver, broker: AlpacaBroker
) -> None:
    clock = broker.clock()
    assert clock.timestamp == START and not clock.is_open
    assert clock.next_open == datetime(2024, 1, 2, 9, 30, tzinfo=NY)
    emu.advance(to="next_open")
    assert broker.clock().is_open
    days = broker.calendar(date(2024, 1, 10), date(2024, 1, 17))
    assert [d.date.day for d in days] == [10, 11, 12, 16, 17]  # MLK day is a holiday
    assert all(d.close.hour == 16 and d.open.tzinfo is not None for d in days)


def test_fresh_account_has_only_cash(broker: AlpacaBroker) -> None:
    account = broker.account()
    assert account.equity == account.cash == Decimal("100000.00")
    # Alpaca paper's default margin account: buying power is twice the cash, and the
    # non-marginable buying power (what the planner may spend) is the cash.
    assert account.buying_power == 2 * account.cash
    assert account.non_marginable_buying_power == account.cash
    assert account.blocking_flags == ()
    assert broker.positions() == {}
    assert broker.open_orders() == []


def test_account_positions_and_snapshot_after_fills(
    emu: EmulatorDriver, broker: AlpacaBroker
) -> None:
    emu.set_clock(datetime(2024, 1, 3, 11, 0, tzinfo=NY))
    spy = broker.submit_market_order("SPY", "buy", Decimal("10"), "fill-spy")
    tlt = broker.submit_market_order("TLT", "buy", Decimal("2.5"), "fill-tlt")
    assert spy.status == tlt.status == "filled"
    assert broker.positions() == {"SPY": Decimal("10"), "TLT": Decimal("2.5")}
    prices = {"SPY": spy.filled_avg_price or Decimal(0), "TLT": tlt.filled_avg_price or Decimal(0)}
    value = 10 * prices["SPY"] + Decimal("2.5") * prices["TLT"]
    account = broker.account()
    cent = Decimal("0.01")  # the exchange rounds each fill's value to cents
    assert abs(account.cash - (Decimal("100000.00") - value)) <= cent
    assert abs(account.equity - (account.cash + value)) <= 2 * cent
    snapshot = broker.snapshot(["SPY", "TLT", "GLD"], {**prices, "GLD": Decimal("78")})
    assert (snapshot.equity, snapshot.cash) == (account.equity, account.cash)
    assert dict(snapshot.positions) == {"SPY": Decimal("10"), "TLT": Decimal("2.5")}
    assert dict(snapshot.fractionable) == {"SPY": True, "TLT": True, "GLD": False}


def test_snapshot_plan_and_submit_reach_the_target(
    emu: EmulatorDriver, broker: AlpacaBroker
) -> None:
    emu.set_clock(datetime(2024, 1, 3, 11, 0, tzinfo=NY))
    prices = {"SPY": Decimal("67.54"), "TLT": Decimal("108.69"), "GLD": Decimal("78.55")}
    snapshot = broker.snapshot(["SPY", "TLT", "GLD"], prices)
    weights = {"SPY": 0.5, "TLT": 0.3, "GLD": 0.1}
    plan = plan_orders(snapshot, weights, portfolio="demo", session=date(2024, 1, 3))
    for intent in plan.orders:
        order = broker.submit_market_order(
            intent.symbol, intent.side, intent.qty, intent.client_order_id
        )
        assert order.status == "filled" and order.filled_qty == intent.qty
    held = broker.positions()
    assert held == {o.symbol: o.qty for o in plan.orders}
    assert held["GLD"] == held["GLD"].to_integral_value()  # GLD trades whole shares


def test_assets_report_flags_and_unknown_symbols_are_rejected(broker: AlpacaBroker) -> None:
    assets = broker.assets(["SPY", "GLD", "SPY"])
    assert list(assets) == ["SPY", "GLD"]
    assert assets["SPY"].fractionable and not assets["GLD"].fractionable
    with pytest.raises(BrokerRejectedError, match=r"GET /v2/assets/NOPE failed: HTTP 404") as err:
        broker.assets(["NOPE"])
    assert err.value.status == 404


@pytest.mark.parametrize("flag", ["trading_blocked", "account_blocked", "trade_suspended_by_user"])
def test_each_account_flag_set_at_the_emulator_is_read(
    emu: EmulatorDriver, broker: AlpacaBroker, flag: str
) -> None:
    emu.set_account_flags(**{flag: True})
    try:
        assert broker.account().blocking_flags == (flag,)
    finally:
        emu.set_account_flags(**{flag: False})
    assert broker.account().blocking_flags == ()
