"""The one line people read names the regime label, re-adjusted history and carried bars."""

from __future__ import annotations

from decimal import Decimal

from regime_trader.service.cycle_record import (
    CycleRecord,
    OrderRow,
    Outcome,
    PlannedOrder,
    SignalSummary,
    Step,
)
from regime_trader.service.cycle_report import done_alert, done_details, summary_line
from regime_trader.service.order_status import OrderStatus

NOTES = (
    "SPY: past prices re-adjusted x0.5 on/before 2024-03-01 (split or dividend)",
    "QDEF on 2024-03-04: missing bar, close of 2024-03-01 carried",
)


def _row(symbol: str) -> OrderRow:
    planned = PlannedOrder(symbol, "buy", Decimal(1), f"rt-core-{symbol}", Decimal(100))
    return OrderRow(
        planned.symbol, "buy", Decimal(1), planned.client_order_id, OrderStatus.FILLED, Decimal(1)
    )


def test_rebalance_summary_names_each_data_note() -> None:
    line = summary_line(
        "core",
        "2024-03-04",
        "rebalanced",
        regime="calm",
        orders=[_row("SPY"), _row("TLT")],
        data_notes=NOTES,
    )
    assert line.startswith("core 2024-03-04: rebalanced with 2 orders, regime calm; SPY: past")
    assert line.endswith("; QDEF on 2024-03-04: missing bar, close of 2024-03-01 carried")


def test_summary_without_notes_is_unchanged() -> None:
    line = summary_line("core", "2024-03-04", "no_trade", regime="stress", orders=[], reason="")
    assert line == "core 2024-03-04: no trade (within bands), regime stress"


def test_the_done_alert_names_the_regime_label_the_signal_stored() -> None:
    # The stored signal writes "regime_label" (the alert details call it "regime"): the
    # summary used to look for a "regime_label" detail nothing wrote.
    signal = SignalSummary(
        date="2024-03-01",
        weights={"SPY": 0.5, "TLT": 0.5},
        cash=0.0,
        ready=True,
        regime=1,
        regime_label="stress",
        regime_probs=(0.1, 0.9),
        data_notes=NOTES[:1],
    )
    record = CycleRecord(
        portfolio="core",
        session="2024-03-04",
        cycle_id="c1",
        step=Step.DONE,
        started_at="2024-03-04T15:00:00+00:00",
        updated_at="2024-03-04T15:01:00+00:00",
        outcome=Outcome.REBALANCED,
        orders={r.client_order_id: r for r in (_row("SPY"), _row("TLT"))},
        signal=signal,
    )

    alert = done_alert(record, done_details(record, "", previous_regime="calm"))

    assert (alert.kind, alert.severity) == ("rebalanced", "info")
    assert alert.summary == (
        "core 2024-03-04: rebalanced with 2 orders, regime stress; " + NOTES[0]
    )
    assert alert.details["regime_change"] == {"from": "calm", "to": "stress"}
    assert alert.details["regime_probs"] == {"calm": 0.1, "stress": 0.9}
