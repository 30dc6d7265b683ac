"""The planner buys with the account's own money only, never with margin buying power."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from regime_trader.service.orders import AccountSnapshot, PlanningSettings, plan_orders
from tests.unit.service.order_fills import weights_after

PRICES = {"SPY": Decimal("472.65"), "TLT": Decimal("98.20"), "GLD": Decimal("190.11")}
SESSION = date(2024, 3, 4)
NO_BUFFER = PlanningSettings(cash_buffer=Decimal(0))


def _margin_account(cash: Decimal, held: dict[str, Decimal], multiplier: int) -> AccountSnapshot:
    equity = cash + sum((q * PRICES[s] for s, q in held.items()), Decimal(0))
    return AccountSnapshot(
        equity=equity,
        cash=cash,
        buying_power=multiplier * equity,  # what Alpaca reports for a margin account
        non_marginable_buying_power=cash,
        positions=held,
        prices=PRICES,
        fractionable=dict.fromkeys(PRICES, True),
    )


def test_a_multiplier_2_account_buys_with_cash_not_buying_power() -> None:
    snapshot = _margin_account(Decimal("10000"), {}, multiplier=2)
    plan = plan_orders(
        snapshot,
        {"SPY": 0.6, "TLT": 0.4},
        portfolio="p",
        session=SESSION,
        settings=NO_BUFFER,
    )
    spent = sum((o.estimated_notional for o in plan.orders if o.side == "buy"), Decimal(0))
    assert plan.buy_budget == Decimal("10000") and spent <= Decimal("10000")
    assert weights_after(plan, snapshot).cash >= 0


def test_non_marginable_buying_power_below_cash_caps_the_buys() -> None:
    # Part of the cash is already reserved (an open order elsewhere): Alpaca's own number wins.
    snapshot = AccountSnapshot(
        equity=Decimal("10000"),
        cash=Decimal("10000"),
        buying_power=Decimal("20000"),
        non_marginable_buying_power=Decimal("4000"),
        prices=PRICES,
        fractionable=dict.fromkeys(PRICES, True),
    )
    assert snapshot.spendable == Decimal("4000")
    plan = plan_orders(snapshot, {"SPY": 1.0}, portfolio="p", session=SESSION, settings=NO_BUFFER)
    assert plan.buy_budget == Decimal("4000")
    assert sum((o.estimated_notional for o in plan.orders), Decimal(0)) <= Decimal("4000")


def test_without_non_marginable_buying_power_cash_is_the_limit() -> None:
    snapshot = AccountSnapshot(
        equity=Decimal("5000"), cash=Decimal("5000"), buying_power=Decimal("20000"), prices=PRICES
    )
    assert snapshot.non_marginable_buying_power is None and snapshot.spendable == Decimal("5000")


def test_a_bad_non_marginable_buying_power_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="non_marginable_buying_power"):
        AccountSnapshot(
            equity=Decimal(1),
            cash=Decimal(1),
            buying_power=Decimal(1),
            non_marginable_buying_power=Decimal("NaN"),
        )


@settings(max_examples=200, deadline=None)
@given(
    cash=st.decimals(min_value=0, max_value=1_000_000, places=2),
    spy=st.decimals(min_value=0, max_value=500, places=3),
    tlt=st.decimals(min_value=0, max_value=500, places=3),
    multiplier=st.sampled_from([1, 2, 4]),
    w_spy=st.floats(min_value=0, max_value=1),
    w_tlt=st.floats(min_value=0, max_value=1),
)
def test_buys_never_make_cash_negative_whatever_the_margin(
    cash: Decimal,
    spy: Decimal,
    tlt: Decimal,
    multiplier: int,
    w_spy: float,
    w_tlt: float,
) -> None:
    held = {s: q for s, q in (("SPY", spy), ("TLT", tlt)) if q > 0}
    assume(cash > 0 or held)  # an empty account is refused by AccountSnapshot
    snapshot = _margin_account(cash, held, multiplier)
    total = w_spy + w_tlt
    weights = (
        {"SPY": w_spy / total, "TLT": w_tlt / total} if total > 1 else {"SPY": w_spy, "TLT": w_tlt}
    )
    plan = plan_orders(snapshot, weights, portfolio="p", session=SESSION, settings=NO_BUFFER)
    # Filled at the planning prices, the account never borrows.
    assert weights_after(plan, snapshot).cash >= 0
