"""The typed cycle record reads what the previous, untyped version stored, and writes it back.

``cycle_hashes_525fdca.json`` holds cycle hashes captured from real runs of the
``tests/integration/service/test_cycle.py`` scenarios with the version before
:mod:`regime_trader.service.cycle_record` (commit 525fdca): a done regime-strategy cycle and a cycle
stopped at ``planned`` (pending strategy state, signal prices, a write-ahead plan). The cycle
hashes of ``tests/integration/service/state_841cfcc/redis.json`` (offline ``rebalance`` runs of
841cfcc, the version before the ``regime_trader`` namespace: a buy-in, no-trades, a halted
attempt) are read the same way; ``test_state_migration.py`` runs today's service on all of it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from regime_trader.service.alpaca_parsing import BrokerOrder
from regime_trader.service.cycle_record import (
    STEP_ORDER,
    CycleRecord,
    OrderRow,
    Outcome,
    Plan,
    PlannedOrder,
    SignalSummary,
    Step,
)
from regime_trader.service.order_status import SUBMIT_REFUSED, UNCONFIRMED, OrderPhase, OrderStatus
from tests.support.captured_cycles import CAPTURED

STATE_841CFCC = json.loads(
    (Path(__file__).parents[2] / "integration/service/state_841cfcc/redis.json").read_text(
        encoding="utf-8"
    )
)
CYCLES_841CFCC = sorted(k for k in STATE_841CFCC if ":cycle:" in k)
PLANNED = PlannedOrder(
    "SPY", "buy", Decimal("3.5"), "rt-core-20240304-SPY-buy-x", Decimal("241.85")
)


@pytest.mark.parametrize("name", ["done_regime_erc", "planned_equal_weight"])
def test_a_hash_written_by_the_previous_version_is_read_and_written_back_identically(
    name: str,
) -> None:
    raw: dict[str, str] = CAPTURED[name]

    record = CycleRecord.from_hash("core", "2024-03-04", raw)

    assert record.to_hash() == raw
    # Field by field too, JSON text included: the reliability tests read the raw hash.
    assert {k: record.to_hash()[k] for k in raw} == raw


@pytest.mark.parametrize("key", CYCLES_841CFCC, ids=lambda k: k.rsplit(":", 1)[1])
def test_every_cycle_hash_written_offline_by_841cfcc_round_trips(key: str) -> None:
    raw: dict[str, str] = STATE_841CFCC[key]["value"]
    _, portfolio, _, session = key.split(":")

    record = CycleRecord.from_hash(portfolio, session, raw)

    assert record.to_hash() == raw
    assert record.finished == (raw["step"] == "done")


def test_the_done_cycle_reads_into_typed_values() -> None:
    record = CycleRecord.from_hash("core", "2024-03-04", CAPTURED["done_regime_erc"])

    assert (record.step, record.outcome, record.finished) == (Step.DONE, Outcome.REBALANCED, True)
    assert record.signal is not None and record.signal.regime_label == "calm"
    assert record.plan is not None and record.plan.equity == Decimal("100000.00")
    assert {r.status for r in record.orders.values()} == {OrderStatus.FILLED}
    assert all(r.phase is OrderPhase.FINAL and r.sent for r in record.orders.values())
    coids = [o.client_order_id for o in record.planned_orders]
    assert sorted(coids) == sorted(record.orders)
    # The plan's target is the signal's weights as the text of the floats.
    assert {s: float(w) for s, w in record.plan.target.items()} == dict(record.signal.weights)


def _order(status: str) -> BrokerOrder:
    return BrokerOrder(
        id="b-1",
        client_order_id=PLANNED.client_order_id,
        symbol="SPY",
        side="buy",
        order_type="market",
        time_in_force="day",
        status=status,
        qty=Decimal("3.5"),
        notional=None,
        filled_qty=Decimal("1.25"),
        filled_avg_price=Decimal("69.1"),
        submitted_at=datetime(2024, 3, 4, 15, 1, tzinfo=UTC),
        filled_at=None,
    )


def test_rows_keep_the_previous_shapes_for_sent_refused_and_unconfirmed_orders() -> None:
    sent = OrderRow.of(PLANNED, _order("partially_filled"))
    refused = OrderRow.of(PLANNED, None, "403 40310000: insufficient buying power")
    unconfirmed = OrderRow.of(PLANNED, None, "never found", UNCONFIRMED)

    assert list(sent.to_json()) == [
        "symbol", "side", "qty", "client_order_id", "status",
        "broker_id", "filled_qty", "filled_avg_price", "submitted_at",
    ]  # fmt: skip
    assert sent.to_json()["submitted_at"] == "2024-03-04T15:01:00+00:00"
    assert refused.to_json() == {
        "symbol": "SPY",
        "side": "buy",
        "qty": "3.5",
        "client_order_id": PLANNED.client_order_id,
        "status": SUBMIT_REFUSED,
        "error": "403 40310000: insufficient buying power",
        "filled_qty": "0",
    }
    assert (refused.phase, unconfirmed.phase) == (OrderPhase.FAILED, OrderPhase.UNKNOWN)
    assert unconfirmed.unknown_reason == "never found"
    for row in (sent, refused, unconfirmed):
        assert OrderRow.from_json(row.to_json()) == row


def test_an_undocumented_status_is_kept_as_its_text_and_is_unknown() -> None:
    row = OrderRow.of(PLANNED, _order("zombie"))

    assert row.status == "zombie" and not isinstance(row.status, OrderStatus)
    assert row.phase is OrderPhase.UNKNOWN
    assert row.unknown_reason == "status 'zombie' is not one Alpaca documents"
    assert OrderRow.from_json(json.loads(json.dumps(row.to_json()))).status == "zombie"


def test_a_signal_written_by_a_newer_version_keeps_its_unknown_keys_in_place_at_the_end() -> None:
    data = {
        "date": "2024-03-01",
        "weights": {"SPY": 0.5},
        "cash": 0.5,
        "ready": True,
        "regime": None,
        "regime_label": None,
        "regime_probs": None,
        "diagnostics": {},
        "data_notes": [],
        "solver": {"converged": True},
    }

    summary = SignalSummary.from_json(data)

    assert json.dumps(summary.to_json()) == json.dumps(data)
    assert summary.extra == {"solver": {"converged": True}}


def test_a_plan_serialises_decimals_as_text_and_reads_them_back() -> None:
    plan = Plan(
        orders=(PLANNED,),
        prices={"SPY": Decimal("69.10")},
        target={"SPY": Decimal("0.3333333333333333")},
        current_weights={},
        equity=Decimal("100000.00"),
    )

    assert plan.to_json()["prices"] == {"SPY": "69.10"}
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    assert plan.side("sell") == () and plan.side("buy") == (PLANNED,)


def test_steps_are_in_cycle_order_and_a_bad_step_is_named() -> None:
    assert [str(s) for s in STEP_ORDER] == [
        "started", "signal", "planned", "sells_submitted", "sells_filled",
        "buys_planned", "buys_submitted", "filled", "done",
    ]  # fmt: skip
    raw = dict(CAPTURED["planned_equal_weight"], step="teleported")
    with pytest.raises(ValueError, match="teleported"):
        CycleRecord.from_hash("core", "2024-03-04", raw)
