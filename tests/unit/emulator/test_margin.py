"""Buying power by Alpaca's documented formulas, checked against direct arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest

from regime_trader.service.emulator.margin import Balances, balances

D = Decimal


def unmoved_balances(
    cash: Decimal, long_value: Decimal, reserved: Decimal, multiplier: int
) -> Balances:
    """The balances of an account whose cash and positions are as they were at the last close."""
    return balances(
        cash=cash,
        long_value=long_value,
        last_equity=cash + long_value,
        last_long_value=long_value,
        reserved=reserved,
        multiplier=multiplier,
    )


@pytest.mark.parametrize(
    ("cash", "long_value", "reserved"),
    [(D(100_000), D(0), D(0)), (D(-50_000), D(150_000), D(0)), (D(20_000), D(80_000), D(5_000))],
)
def test_reg_t_buying_power_is_twice_the_equity_above_initial_margin(
    cash: Decimal, long_value: Decimal, reserved: Decimal
) -> None:
    got = unmoved_balances(cash, long_value, reserved, multiplier=2)
    equity = cash + long_value
    assert (
        got.buying_power
        == got.regt_buying_power
        == max(2 * (equity - long_value / 2) - reserved, 0)
    )
    assert got.non_marginable_buying_power == max(cash - reserved, 0)
    assert got.daytrading_buying_power == 0
    assert got.initial_margin == long_value / 2


def test_a_cash_account_spends_its_cash_only() -> None:
    got = unmoved_balances(D(30_000), D(70_000), reserved=D(1_000), multiplier=1)
    assert got.buying_power == got.regt_buying_power == got.non_marginable_buying_power == 29_000


def test_a_pattern_day_trader_gets_four_times_last_equity_less_maintenance() -> None:
    got = unmoved_balances(D(0), D(100_000), reserved=D(0), multiplier=4)
    assert got.last_maintenance_margin == D(30_000)
    assert got.buying_power == got.daytrading_buying_power == 4 * (D(100_000) - D(30_000))
    assert got.regt_buying_power == 2 * (D(100_000) - D(50_000))
