"""Order-status scripts (POST /admin/order_scripts) seen through the real TradingClient."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest

from regime_trader.service.emulator.records import OPEN_STATUSES
from tests.support.emulator import NY, EmulatorDriver

OPEN_AT_11 = datetime(2024, 1, 2, 11, 0, tzinfo=NY)


def buy(emu: EmulatorDriver, symbol: str = "SPY", qty: float = 10) -> Order:
    order = emu.trading.submit_order(
        MarketOrderRequest(
            symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
        )
    )
    assert isinstance(order, Order)
    return order


def script(emu: EmulatorDriver, **body: Any) -> dict[str, Any]:
    return emu.add_order_script(**body)


def poll(emu: EmulatorDriver, order: Order) -> Order:
    got = emu.trading.get_order_by_id(order.id)
    assert isinstance(got, Order)
    return got


def test_alpacas_usual_life_one_status_per_poll(emu: EmulatorDriver) -> None:
    emu.set_clock(OPEN_AT_11)
    script(emu, statuses=["accepted", "pending_new", "new", "partially_filled"], final="filled")
    order = buy(emu, qty=10)
    assert order.status == OrderStatus.ACCEPTED and Decimal(order.filled_qty) == 0
    seen = [poll(emu, order) for _ in range(4)]
    assert [o.status for o in seen] == [
        OrderStatus.PENDING_NEW,
        OrderStatus.NEW,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ]
    assert [Decimal(o.filled_qty) for o in seen] == [0, 0, 5, 10]
    assert seen[-1].filled_at is not None and seen[-1].filled_avg_price is not None
    assert Decimal(emu.trading.get_open_position("SPY").qty) == 10
    assert poll(emu, order).status == OrderStatus.FILLED  # final: stays


def test_partial_fill_then_cancel_releases_the_rest_of_the_hold(emu: EmulatorDriver) -> None:
    emu.set_clock(OPEN_AT_11)
    cash = Decimal(emu.trading.get_account().cash)
    script(emu, statuses=["new", "partially_filled"], final="canceled", filled_fraction=0.4)
    order = buy(emu, qty=10)
    assert order.status == OrderStatus.NEW
    assert poll(emu, order).status == OrderStatus.PARTIALLY_FILLED
    done = poll(emu, order)
    assert done.status == OrderStatus.CANCELED and done.canceled_at is not None
    assert Decimal(done.filled_qty) == 4
    account = emu.trading.get_account()
    spent = Decimal(done.filled_qty) * Decimal(done.filled_avg_price)
    assert Decimal(account.cash) == (cash - spent).quantize(Decimal("0.01"))
    assert Decimal(account.non_marginable_buying_power) == Decimal(account.cash)  # no hold left


@pytest.mark.parametrize(
    ("final", "fraction", "filled"),
    [
        ("done_for_day", 0.5, 5),
        ("calculated", 1.0, 10),
        ("expired", 0.3, 3),
        ("rejected", 0.0, 0),
        ("canceled", 0.0, 0),
    ],
)
def test_final_statuses_end_with_the_given_filled_fraction(
    emu: EmulatorDriver, final: str, fraction: float, filled: int
) -> None:
    emu.set_clock(OPEN_AT_11)
    script(emu, statuses=["pending_new"], final=final, filled_fraction=fraction)
    order = buy(emu, qty=10)
    assert order.status == OrderStatus.PENDING_NEW
    done = poll(emu, order)
    assert (done.status.value, Decimal(done.filled_qty)) == (final, filled)
    closed = emu.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert [o.id for o in closed] == [order.id]  # no longer open


# Every status the emulator keeps open, but a partial fill (a final status fills nothing here).
@pytest.mark.parametrize("status", sorted(OPEN_STATUSES - {"partially_filled"}))
def test_an_open_final_status_stays_until_the_close_expires_it(
    emu: EmulatorDriver, status: str
) -> None:
    emu.set_clock(OPEN_AT_11)
    script(emu, statuses=[], final=status, filled_fraction=0)
    order = buy(emu, qty=10)
    assert order.status.value == status
    for _ in range(3):
        assert poll(emu, order).status.value == status
    listed = emu.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert [o.id for o in listed] == [order.id]
    assert emu.trading.get_all_positions() == []
    emu.advance(to="next_close")
    assert poll(emu, order).status == OrderStatus.EXPIRED


def test_every_n_polls_and_a_list_counts_as_a_poll(emu: EmulatorDriver) -> None:
    emu.set_clock(OPEN_AT_11)
    script(emu, statuses=["accepted", "new"], final="filled", every=2)
    order = buy(emu, qty=1)
    assert poll(emu, order).status == OrderStatus.ACCEPTED
    assert poll(emu, order).status == OrderStatus.NEW
    listed = emu.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert listed[0].status == OrderStatus.NEW
    by_client = emu.trading.get_order_by_client_id(order.client_order_id)
    assert by_client.status == OrderStatus.FILLED


def test_seconds_advance_with_the_wall_clock(emu: EmulatorDriver) -> None:
    emu.set_clock(OPEN_AT_11)
    wall = [1_000.0]
    emulator = emu.running.emulator
    real = emulator.wall
    emulator.wall = lambda: wall[0]
    try:
        script(emu, statuses=["pending_new", "new"], final="filled", advance="seconds", every=5)
        order = buy(emu, qty=2)
        wall[0] += 4.9
        assert poll(emu, order).status == OrderStatus.PENDING_NEW
        wall[0] += 0.2
        assert poll(emu, order).status == OrderStatus.NEW
        wall[0] += 10
        assert Decimal(emu.trading.get_open_position("SPY").qty) == 2  # any read moves it on
        assert poll(emu, order).status == OrderStatus.FILLED
    finally:
        emulator.wall = real


def test_a_script_for_one_symbol_and_count_leaves_other_orders_to_the_default(
    emu: EmulatorDriver,
) -> None:
    emu.set_clock(OPEN_AT_11)
    made = script(emu, symbol="TLT", statuses=["held"], final="filled", count=1)
    assert (made["symbol"], made["remaining"], made["used"]) == ("TLT", 1, 0)
    assert buy(emu, "SPY", 1).status == OrderStatus.FILLED
    assert buy(emu, "TLT", 1).status == OrderStatus.HELD
    assert buy(emu, "TLT", 1).status == OrderStatus.FILLED
    assert emu.order_scripts() == []


def test_the_default_without_scripts_is_unchanged(emu: EmulatorDriver) -> None:
    assert buy(emu, qty=1).status == OrderStatus.ACCEPTED  # 08:00, closed: queued
    emu.advance(to="next_open")
    assert emu.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []
    emu.set_clock(OPEN_AT_11)
    assert buy(emu, qty=1).status == OrderStatus.FILLED


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"statuses": ["filled"], "final": "filled"}, "statuses: 'filled' is not an open"),
        ({"final": "replaced"}, "final: 'replaced' is not one of"),
        ({"final": "filled", "filled_fraction": 0.5}, "needs filled_fraction 1"),
        ({"final": "rejected", "filled_fraction": 0.5}, "needs filled_fraction 0"),
        ({"final": "filled", "advance": "ticks"}, "advance must be 'poll' or 'seconds'"),
        ({"final": "filled", "every": 1.5}, "whole number of polls"),
        ({"final": "filled", "speed": 2}, "unknown fields"),
        ({"statuses": ["new"]}, "final is required"),
    ],
)
def test_a_bad_script_is_refused_naming_the_field(
    emu: EmulatorDriver, body: dict[str, Any], message: str
) -> None:
    response = emu.http.post("/admin/order_scripts", json=body)
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_scripts_and_scripted_orders_survive_a_restart(
    tmp_path: Path, start_emulator: Callable[..., EmulatorDriver]
) -> None:
    state = tmp_path / "state.json"
    first = start_emulator(state_file=state)
    first.set_clock(OPEN_AT_11)
    script(first, statuses=["new", "partially_filled"], final="filled", count=2)
    order = buy(first, qty=4)
    assert poll(first, order).status == OrderStatus.PARTIALLY_FILLED
    first.running.stop()
    second = start_emulator(state_file=state)
    assert [s["remaining"] for s in second.order_scripts()] == [1]
    assert poll(second, order).status == OrderStatus.FILLED
    assert Decimal(second.trading.get_open_position("SPY").qty) == 4
