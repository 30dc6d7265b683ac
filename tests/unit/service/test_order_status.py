"""One mapping from every Alpaca order status to what the cycle does next."""

from __future__ import annotations

import copy

import pytest

from regime_trader.service.alpaca_parsing import order_to_broker_order
from regime_trader.service.order_status import OrderPhase, OrderStatus, parse_order_status, phase_of
from tests.support.alpaca_recorded import RECORDED

# Alpaca's documented lifecycle, written out again here (not read from the module) so a
# change to the mapping has to change this table too.
EXPECTED = {
    "new": OrderPhase.OPEN,
    "partially_filled": OrderPhase.OPEN,
    "accepted": OrderPhase.OPEN,
    "pending_new": OrderPhase.OPEN,
    "accepted_for_bidding": OrderPhase.OPEN,
    "stopped": OrderPhase.OPEN,
    "pending_cancel": OrderPhase.OPEN,
    "pending_replace": OrderPhase.OPEN,
    "pending_review": OrderPhase.OPEN,
    "held": OrderPhase.OPEN,
    "filled": OrderPhase.FINAL,
    "calculated": OrderPhase.FINAL,
    "done_for_day": OrderPhase.FAILED,
    "canceled": OrderPhase.FAILED,
    "replaced": OrderPhase.FAILED,
    "expired": OrderPhase.FAILED,
    "rejected": OrderPhase.FAILED,
    "suspended": OrderPhase.FAILED,
}


def test_the_enumeration_has_exactly_alpacas_18_statuses() -> None:
    assert {s.value for s in OrderStatus} == set(EXPECTED)
    assert len(OrderStatus) == 18


def test_the_enumeration_matches_the_sdks() -> None:
    from alpaca.trading.enums import OrderStatus as SdkOrderStatus

    assert {s.value for s in OrderStatus} == {s.value for s in SdkOrderStatus}


@pytest.mark.parametrize("status", list(OrderStatus), ids=str)
def test_every_status_has_its_phase_on_a_parsed_order(status: OrderStatus) -> None:
    raw = copy.deepcopy(RECORDED["order_accepted"]) | {"status": status.value}
    order = order_to_broker_order(raw)
    assert parse_order_status(status.value) is status
    assert order.phase is EXPECTED[status.value] is phase_of(status)
    # "may still fill" is exactly the OPEN phase: FINAL and FAILED both end the wait
    assert order.is_open is (EXPECTED[status.value] is OrderPhase.OPEN)
    assert order.phase.is_final is (not order.is_open)


@pytest.mark.parametrize("status", ["", "Filled", "partial_fill", "cancelled", "zombie"])
def test_an_unknown_status_is_its_own_phase_and_never_final(status: str) -> None:
    assert parse_order_status(status) is None
    assert phase_of(status) is OrderPhase.UNKNOWN
    assert not OrderPhase.UNKNOWN.is_final


def test_an_order_with_an_unknown_status_parses_and_counts_as_open() -> None:
    # Parsing keeps it (one odd order must not hide the others); the cycle fails closed on it.
    raw = copy.deepcopy(RECORDED["order_accepted"]) | {"status": "zombie"}
    order = order_to_broker_order(raw)
    assert order.status == "zombie" and order.phase is OrderPhase.UNKNOWN and order.is_open
