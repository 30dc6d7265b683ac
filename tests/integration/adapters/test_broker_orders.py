"""AlpacaBroker orders over real HTTP: submit, duplicates, look-ups, rejections, cancels."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

import regime_trader.service.broker
from regime_trader.service.broker import AlpacaBroker
from regime_trader.service.exceptions import (
    BadBrokerResponseError,
    BrokerRejectedError,
    DuplicateClientOrderError,
)
from tests.support.emulator import NY, EmulatorDriver

OPEN = datetime(2024, 1, 3, 11, 0, tzinfo=NY)


def test_market_order_fills_while_open_with_an_exact_fractional_qty(
    emu: EmulatorDriver, broker: AlpacaBroker
) -> None:
    emu.set_clock(OPEN)
    order = broker.submit_market_order("SPY", "buy", Decimal("1.123456789"), "exact-qty")
    assert (order.symbol, order.side, order.order_type, order.time_in_force) == (
        "SPY", "buy", "market", "day",
    )  # fmt: skip
    assert order.status == "filled" and order.filled_qty == Decimal("1.123456789")
    assert broker.positions() == {"SPY": Decimal("1.123456789")}


@pytest.mark.parametrize("code", [40010001, 42210000])  # both seen from the real API
def test_duplicate_client_order_id_is_rejected_and_the_original_fetched(
    emu: EmulatorDriver, broker: AlpacaBroker, code: int
) -> None:
    emu.set_duplicate_code(code)
    emu.set_clock(OPEN)
    first = broker.submit_market_order("SPY", "buy", Decimal("2"), "demo-20240103-SPY-buy-0")
    with pytest.raises(DuplicateClientOrderError, match="client_order_id must be unique") as err:
        broker.submit_market_order("SPY", "buy", Decimal("2"), "demo-20240103-SPY-buy-0")
    assert (err.value.status, err.value.code) == (422, code)
    assert broker.order_by_client_id("demo-20240103-SPY-buy-0") == first
    assert broker.positions() == {"SPY": Decimal("2")}


def test_order_by_client_id_found_and_not_found(emu: EmulatorDriver, broker: AlpacaBroker) -> None:
    placed = broker.submit_market_order("TLT", "buy", Decimal("3"), "lookup-me")
    found = broker.order_by_client_id("lookup-me")
    assert found is not None and found.id == placed.id and found.status == "accepted"
    assert broker.order_by_client_id("never-sent") is None


def test_insufficient_buying_power_is_rejected_with_its_code(
    emu: EmulatorDriver, broker: AlpacaBroker
) -> None:
    emu.set_clock(OPEN)
    with pytest.raises(BrokerRejectedError, match="HTTP 403 code 40310000") as err:
        broker.submit_market_order("SPY", "buy", Decimal("100000"), "too-big")
    assert not isinstance(err.value, DuplicateClientOrderError)
    assert (err.value.status, err.value.code) == (403, 40310000)
    assert err.value.broker_message == "insufficient buying power"
    assert broker.order_by_client_id("too-big") is None


def test_order_before_the_open_stays_open_until_cancelled(
    emu: EmulatorDriver, broker: AlpacaBroker
) -> None:
    order = broker.submit_market_order("GLD", "buy", Decimal("3"), "pre-open")
    assert order.is_open and [o.id for o in broker.open_orders()] == [order.id]
    broker.cancel_order(order.id)
    assert broker.open_orders() == []
    cancelled = broker.order_by_client_id("pre-open")
    assert cancelled is not None and cancelled.status == "canceled" and not cancelled.is_open
    with pytest.raises(BrokerRejectedError, match="HTTP 422") as err:
        broker.cancel_order(order.id)
    assert err.value.status == 422
    with pytest.raises(ValueError, match="order_id must be a UUID"):
        broker.cancel_order("pre-open")


def test_orders_page_through_more_than_one_page(
    emu: EmulatorDriver, broker: AlpacaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu.set_clock(OPEN)
    ids = []
    for n in range(5):
        ids.append(broker.submit_market_order("SPY", "buy", Decimal(1), f"page-{n}").id)
        emu.advance(minutes=1)
    monkeypatch.setattr(regime_trader.service.broker, "ORDERS_PAGE_SIZE", 2)
    assert [o.id for o in broker.orders()] == ids
    third = broker.order_by_client_id("page-2")
    assert third is not None and third.submitted_at is not None
    assert [o.id for o in broker.orders(after=third.submitted_at)] == ids[3:]
    assert broker.orders(status="open") == []
    with pytest.raises(ValueError, match="after must be timezone-aware"):
        broker.orders(after=datetime(2024, 1, 3, 11, 0))


def test_more_orders_at_one_instant_than_a_page_is_refused_not_truncated(
    emu: EmulatorDriver, broker: AlpacaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):  # the simulated clock stands still: one submission time
        broker.submit_market_order("SPY", "buy", Decimal(1), f"same-instant-{n}")
    monkeypatch.setattr(regime_trader.service.broker, "ORDERS_PAGE_SIZE", 2)
    with pytest.raises(BadBrokerResponseError, match="more than 2 orders submitted at"):
        broker.orders()
