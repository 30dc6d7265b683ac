"""Risk attribution where people read it: the rebalance alert's sentence and the backtest report."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from regime_trader.service.cycle_record import CycleRecord
from regime_trader.service.cycle_report import (
    done_alert,
    done_details,
    restart_details,
    risk_line,
)
from regime_trader.strategies.risk_attribution import ASSET_CLASSES, asset_class
from tests.conftest import REAL_PRICES
from tests.support.backtest_cli import run_backtest
from tests.support.captured_cycles import CAPTURED

SYMBOLS = ("SPXTR", "TLT", "GLD")


def _record(diagnostics: dict[str, Any]) -> CycleRecord:
    """The captured done cycle with a signal of the 3-asset universe carrying ``diagnostics``."""
    signal = {
        "date": "2024-03-01",
        "weights": {"SPXTR": 0.25, "TLT": 0.45, "GLD": 0.2},
        "cash": 0.1,
        "ready": True,
        "regime": 0,
        "regime_label": "calm",
        "regime_probs": [0.9, 0.1],
        "diagnostics": diagnostics,
    }
    fields = {**CAPTURED["done_regime_erc"], "signal": json.dumps(signal)}
    return CycleRecord.from_hash("core", "2024-03-04", fields)


REGIME_DIAGNOSTICS = {
    "exposure": 0.9,
    "risk_variance": {
        "forecast": [3.0e-6, 3.1e-6, 2.9e-6],
        "regimes": {"calm": [1e-6, 3e-6, 2e-6], "stress": [9e-6, 2e-6, 3e-6]},
        "regime_obs": {"calm": 400.0, "stress": 60.0},
    },
}


def test_the_rebalance_alert_says_where_todays_risk_is_and_would_be_in_stress() -> None:
    record = _record(REGIME_DIAGNOSTICS)
    details = done_details(record, "", None)
    # Recomputed from the diagnostics: shares are each variance contribution over their sum.
    forecast = REGIME_DIAGNOSTICS["risk_variance"]["forecast"]  # type: ignore[index]
    stress = REGIME_DIAGNOSTICS["risk_variance"]["regimes"]["stress"]  # type: ignore[index]
    top = max(range(3), key=lambda i: forecast[i])
    today, in_stress = forecast[top] / sum(forecast), stress[top] / sum(stress)
    expected = (
        f"{round(100 * today)}% of today's risk is in TLT (bonds); "
        f"in stress it would be {round(100 * in_stress)}%"
    )
    assert top == 1 and details["risk"] == expected == (
        "34% of today's risk is in TLT (bonds); in stress it would be 14%"
    )
    text = done_alert(record, details).to_text()
    assert f"Risk: {expected}" in text.splitlines()
    # The alert a later run sends for a cycle whose first run crashed says the same.
    assert restart_details(record)["risk"] == expected


def test_a_reference_strategys_alert_gives_todays_share_only_and_cash_gives_none() -> None:
    shares = {"SPXTR": 0.5, "TLT": 0.3, "GLD": 0.2}
    details = done_details(_record({"risk_contributions": shares}), "", None)
    assert details["risk"] == "50% of today's risk is in SPXTR (equities)"
    assert risk_line(_record({"exposure": 1.0}).signal) is None
    cash = _record({"risk_variance": {"forecast": [0.0, 0.0, 0.0]}})
    assert risk_line(cash.signal) is None
    assert "Risk:" not in done_alert(cash, done_details(cash, "", None)).to_text()


def test_the_alert_groups_the_risk_by_the_portfolios_own_asset_classes() -> None:
    record = _record(REGIME_DIAGNOSTICS)
    forecast = REGIME_DIAGNOSTICS["risk_variance"]["forecast"]  # type: ignore[index]
    stress = REGIME_DIAGNOSTICS["risk_variance"]["regimes"]["stress"]  # type: ignore[index]
    # The portfolio calls GLD an equity: SPXTR keeps its built-in class and the two add up.
    details = done_details(record, "", None, asset_classes={"GLD": "equity"})
    today = (forecast[0] + forecast[2]) / sum(forecast)
    in_stress = (stress[0] + stress[2]) / sum(stress)
    assert (
        details["risk"]
        == (
            f"{round(100 * today)}% of today's risk is in equities (SPXTR, GLD); "
            f"in stress it would be {round(100 * in_stress)}%"
        )
        == "66% of today's risk is in equities (SPXTR, GLD); in stress it would be 86%"
    )
    assert restart_details(record, {"GLD": "equity"})["risk"] == details["risk"]
    # A class in the portfolio's own words groups as well: TLT and GLD as "long duration".
    own = {"TLT": "long duration", "GLD": "long duration"}
    assert risk_line(record.signal, own) == (
        "67% of today's risk is in long duration (TLT, GLD); in stress it would be 36%"
    )
    # Without a table the built-in classes hold (the sentence of the first test).
    assert (
        risk_line(record.signal)
        == risk_line(record.signal, {})
        == done_details(record, "", None)["risk"]
    )


def test_a_portfolio_table_adds_to_the_built_in_one_and_wins_where_both_name_a_symbol() -> None:
    own = {"GLD": "equity", "XYZ": "bond"}
    assert asset_class("GLD", own) == "equities" and asset_class("XYZ", own) == "bonds"
    assert asset_class("SPY", own) == ASSET_CLASSES["SPY"] == "equities"
    assert asset_class("TLT", own) == "bonds"
    assert all(asset_class(s) == asset_class(s, {}) == c for s, c in ASSET_CLASSES.items())
    assert asset_class("ZZZ", own) is None


# ------------------------------------------------------------------------ the report


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The backtest command on the 3-asset file, two years of the development window."""
    if not REAL_PRICES.is_file():
        pytest.skip(f"real price data not found at {REAL_PRICES}")
    out = tmp_path_factory.mktemp("attribution")
    period = ("--start", "2007-01-03", "--end", "2008-12-31")
    assert run_backtest(REAL_PRICES, out, "--profile", "core3", *period) == 0
    return out


def test_the_report_has_the_attribution_tables_and_they_add_up(report: Path) -> None:
    metrics = json.loads((report / "metrics.json").read_text())
    table = metrics["attribution"]
    for row in (*table["forecast_share"], *table["share_under_regime"]):
        assert math.isclose(sum(row[s] for s in SYMBOLS), 1.0, abs_tol=1e-9), row
    assert [r["label"] for r in table["share_under_regime"]] == ["calm", "normal", "stress"]
    whole, *regimes = table["return_contribution"]
    # Each row adds up to its total, and the total to the sum of the strategy's net returns.
    for row in table["return_contribution"]:
        assert math.isclose(sum(row[s] for s in (*SYMBOLS, "costs")), row["total"], abs_tol=1e-12)
    equity = pd.read_csv(report / "equity.csv", index_col="date")["strategy"]
    net = equity.pct_change().fillna(equity.iloc[0] - 1.0)
    assert whole["days"] == len(net) and math.isclose(whole["total"], net.sum(), abs_tol=1e-8)
    assert math.isclose(sum(r["total"] for r in regimes), whole["total"], abs_tol=1e-12)

    html = (report / "report.html").read_text()
    assert html.count("<h2>Risk and return attribution</h2>") == 1
    section = html[html.index("Risk and return attribution") :]
    assert "SPXTR (equities): share of risk (%)" in section
    assert "stress covariance" in section and "Contribution to return" in section
    # The page's table is metrics.json's: the same days.
    cells = re.findall(r"<th>(?:<span[^>]*></span>)?all days</th><td>(\d+)</td>", section)
    assert cells == [str(whole["days"])]
