"""Every alert of a cycle comes from one constructor; its kind decides the severity."""

from __future__ import annotations

import pytest

from regime_trader.service.cycle_record import CycleRecord, Outcome
from regime_trader.service.cycle_report import cycle_alert, done_status, refusal_alert
from tests.support.captured_cycles import CAPTURED


@pytest.mark.parametrize(
    ("outcome", "kind", "severity"),
    [
        (Outcome.HALTED, "halted", "warning"),
        (Outcome.REFUSED, "skipped", "warning"),
        (Outcome.FAILED, "failed", "error"),
        (Outcome.INTERRUPTED, "failed", "error"),
    ],
)
def test_a_refusal_alert_takes_its_kind_and_severity_from_the_outcome(
    outcome: Outcome, kind: str, severity: str
) -> None:
    alert = refusal_alert("core", "2024-03-04", outcome, "bad input, not trading: NaN in SPY")

    assert (alert.kind, alert.severity) == (kind, severity)
    assert alert.summary == "core 2024-03-04: bad input, not trading: NaN in SPY"
    assert alert.details == {"reason": alert.details["reason"], "outcome": str(outcome)}


def test_an_interrupted_cycle_alert_carries_its_orders_and_unsent_ids_instead_of_outcome() -> None:
    alert = refusal_alert(
        "core", "2024-03-04", Outcome.INTERRUPTED, "cycle interrupted", orders=[], unsent=["c1"]
    )

    assert list(alert.details) == ["reason", "orders", "unsent"]


def test_an_operator_alert_may_set_its_severity() -> None:
    alert = cycle_alert("core", "2024-03-04", "resumed", "core: resumed", {}, severity="warning")

    assert (alert.kind, alert.severity) == ("resumed", "warning")
    assert cycle_alert("core", "2024-03-04", "resumed", "core: resumed", {}).severity == "info"


def test_the_done_status_reads_regime_weights_and_equity_from_the_record() -> None:
    record = CycleRecord.from_hash("core", "2024-03-04", CAPTURED["done_regime_erc"])
    assert record.signal is not None

    status = done_status(Outcome.REBALANCED, record)

    assert (status["last_outcome"], status["last_reason"], status["last_session"]) == (
        "rebalanced",
        "",
        "2024-03-04",
    )
    assert (status["regime"], status["equity"], status["orders"]) == ("calm", "100000.00", 3)
    assert status["regime_probs"] == dict(
        zip(("calm", "stress"), record.signal.regime_probs or (), strict=True)
    )
    assert status["target_weights"] == dict(record.signal.weights)
