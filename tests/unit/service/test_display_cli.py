"""What the operator commands print: rounded quantities, money, percentages, exit codes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from regime_trader.service.cycle import CycleOutcome
from regime_trader.service.cycle_record import Outcome
from regime_trader.service.display_cli import money, percent, quantity, signed_percent, table
from regime_trader.service.ops_common_cli import ExitCode, worst
from regime_trader.service.rebalance_cli import exit_code


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("294.368093419"), "294.3681"),
        (Decimal("12"), "12"),
        (Decimal("12.500000000"), "12.5"),
        (Decimal("0.00001"), "0"),
        ("-3.25", "-3.25"),
        (None, "-"),
        ("nan", "-"),
    ],
)
def test_quantities_are_rounded_for_reading(value: object, shown: str) -> None:
    assert quantity(value) == shown  # type: ignore[arg-type]


def test_money_and_percentages() -> None:
    assert money(Decimal("100000")) == "$100,000.00"
    assert money("-12.5") == "-$12.50"
    assert percent(0.2314) == "23.1%" and percent(None) == "-"
    assert signed_percent(0.001) == "+0.1%" and signed_percent(-0.0123, 2) == "-1.23%"


def test_tables_align_the_first_column_left_and_the_others_right() -> None:
    lines = table(["symbol", "weight"], [["SPY", "32.5%"], ["GLD", "2.0%"]], indent="  ")
    assert lines == ["  symbol  weight", "  SPY      32.5%", "  GLD       2.0%"]


def _outcome(outcome: Outcome, reason: str = "") -> CycleOutcome:
    return CycleOutcome("default", "2024-01-02", outcome, reason)


@pytest.mark.parametrize(
    ("outcome", "reason", "code"),
    [
        (Outcome.REBALANCED, "", ExitCode.OK),
        (Outcome.NO_TRADE, "", ExitCode.OK),
        (Outcome.ALREADY_DONE, "rebalanced", ExitCode.OK),
        (Outcome.ALREADY_DONE, "interrupted", ExitCode.FAILED),  # closed, never traded
        (Outcome.HALTED, "halted: x", ExitCode.HALTED),
        (Outcome.NOT_DUE, "market closed", ExitCode.MARKET_CLOSED),
        (Outcome.LOCKED, "another process", ExitCode.LOCKED),
        (Outcome.FAILED, "broker", ExitCode.FAILED),
        (Outcome.REFUSED, "bad input", ExitCode.FAILED),
        (Outcome.LOST_LOCK, "", ExitCode.FAILED),
        (Outcome.STOPPED, "", ExitCode.FAILED),
    ],
)
def test_rebalance_never_exits_0_without_a_done_cycle(
    outcome: Outcome, reason: str, code: ExitCode
) -> None:
    assert exit_code(_outcome(outcome, reason)) is code


def test_the_code_that_needs_most_attention_wins_over_portfolios() -> None:
    assert worst([ExitCode.OK, ExitCode.HALTED, ExitCode.LOCKED]) is ExitCode.LOCKED
    assert worst([ExitCode.LOCKED, ExitCode.FAILED]) is ExitCode.FAILED
    assert worst([ExitCode.MARKET_CLOSED, ExitCode.OK]) is ExitCode.MARKET_CLOSED
    assert worst([]) is ExitCode.OK
