"""The one line people read names re-adjusted history and carried bars."""

from __future__ import annotations

from service.cycle import _summary


def test_rebalance_summary_names_each_data_note() -> None:
    details = {
        "regime": "calm",
        "orders": [{"status": "filled"}, {"status": "filled"}],
        "data_notes": [
            "SPY: past prices re-adjusted x0.5 on/before 2024-03-01 (split or dividend)",
            "QDEF on 2024-03-04: missing bar, close of 2024-03-01 carried",
        ],
    }
    line = _summary("core", "2024-03-04", "rebalanced", details)
    assert line.startswith("core 2024-03-04: rebalanced with 2 orders, regime calm; SPY: past")
    assert line.endswith("; QDEF on 2024-03-04: missing bar, close of 2024-03-01 carried")


def test_summary_without_notes_is_unchanged() -> None:
    line = _summary("core", "2024-03-04", "no_trade", {"regime": "stress", "reason": ""})
    assert line == "core 2024-03-04: no trade (within bands), regime stress"
