"""The tearsheet's numbers against direct computations on small, known series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from regime_trader.service import tearsheet_stats as stats
from regime_trader.strategies.metrics import TRADING_DAYS_PER_YEAR


def _days(n: int, start: str = "2010-01-04") -> pd.DatetimeIndex:
    return pd.bdate_range(start, periods=n, name="date")


@pytest.fixture
def market() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Correlated daily returns of three assets, drifting weights with cash, two regimes."""
    rng = np.random.default_rng(7)
    n = 400
    index = _days(n)
    mix = np.array([[0.010, 0.0, 0.0], [-0.003, 0.006, 0.0], [0.002, 0.001, 0.008]])
    returns = pd.DataFrame(
        rng.standard_normal((n, 3)) @ mix.T, index=index, columns=["A", "B", "C"]
    )
    raw = np.abs(rng.normal(0.3, 0.05, (n, 3)))
    weights = pd.DataFrame(
        raw / raw.sum(axis=1, keepdims=True) * 0.9, index=index, columns=["A", "B", "C"]
    )
    weights["cash"] = 1.0 - weights.sum(axis=1)
    regimes = pd.Series(np.where(np.arange(n) % 7 < 2, "stress", "calm"), index=index)
    return returns, weights, regimes


def test_rolling_risk_shares_are_euler_contributions_summing_to_the_variance(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.Series],
) -> None:
    returns, weights, _ = market
    shares = stats.rolling_risk_shares(weights, returns, window=126)
    assert not shares.empty and list(shares.columns) == ["A", "B", "C"]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-12)
    day = shares.index[-1]
    pos = int(returns.index.searchsorted(day))
    sample = returns.iloc[pos - 125 : pos + 1].to_numpy()
    w = weights.loc[day, ["A", "B", "C"]].to_numpy()
    cov = np.cov(sample, rowvar=False, ddof=1)
    contributions = w * (cov @ w)
    assert contributions.sum() == pytest.approx(float(w @ cov @ w), rel=1e-12)
    np.testing.assert_allclose(shares.loc[day], contributions / (w @ cov @ w), rtol=1e-10)
    # Month ends are sampled (and the last day of the data), none before a full window.
    assert all(d == d + pd.offsets.BMonthEnd(0) for d in shares.index[:-1])
    assert shares.index[-1] == returns.index[-1]
    assert shares.index[0] >= returns.index[125]


def test_risk_by_regime_sums_to_each_regimes_portfolio_variance(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.Series],
) -> None:
    returns, weights, regimes = market
    rows = {r.regime: r for r in stats.risk_by_regime(weights, returns, regimes)}
    assert set(rows) == {"calm", "stress"}
    for label, row in rows.items():
        days = regimes[regimes == label].index
        w = weights.loc[days, ["A", "B", "C"]].mean().to_numpy()
        cov = np.cov(returns.loc[days].to_numpy(), rowvar=False, ddof=1)
        assert row.days == len(days)
        assert sum(row.contributions.values()) == pytest.approx(row.variance, rel=1e-12)
        assert row.variance == pytest.approx(float(w @ cov @ w), rel=1e-12)
        assert sum(row.shares.values()) == pytest.approx(1.0, abs=1e-12)
        assert row.volatility == pytest.approx(math.sqrt(row.variance * TRADING_DAYS_PER_YEAR))


def test_drawdown_periods_name_peak_trough_and_recovery() -> None:
    # Equity 1 -> 1.1 (peak, day 1) -> 0.88 (-20%, day 3) -> 1.1 (day 5) -> 1.21 -> 1.15 (open).
    equity = pd.Series([1.0, 1.1, 0.99, 0.88, 1.0, 1.1, 1.21, 1.15], index=_days(8))
    returns = equity.pct_change().fillna(0.0)
    deepest, second = stats.drawdown_periods(returns, count=5)
    d = returns.index
    assert (deepest.peak, deepest.trough, deepest.recovery) == (d[1], d[3], d[5])
    assert deepest.depth == pytest.approx(0.88 / 1.1 - 1)
    assert (deepest.days_to_trough, deepest.days_to_recover) == (2, 2)
    assert (second.peak, second.trough, second.recovery) == (d[6], d[7], None)
    assert second.days_to_recover is None
    assert second.depth == pytest.approx(1.15 / 1.21 - 1)


def test_monthly_and_annual_returns_compound_the_days() -> None:
    index = pd.bdate_range("2011-12-26", "2012-02-10")
    returns = pd.Series(0.001, index=index)
    table = stats.monthly_returns(returns)
    assert list(table.index) == ["2011", "2012"]
    december = ((index.year == 2011) & (index.month == 12)).sum()
    assert table.loc["2011", "Dec"] == pytest.approx(1.001**december - 1)
    assert np.isnan(table.to_numpy()[1, stats.MONTHS.index("Mar")])
    assert table.loc["2012", "Year"] == pytest.approx(1.001 ** (index.year == 2012).sum() - 1)
    annual = stats.annual_returns(returns.to_frame("s"))
    assert annual.loc["2011", "s"] == pytest.approx(table.loc["2011", "Year"])


def test_relative_growth_is_the_wealth_ratio_minus_one() -> None:
    index = _days(3)
    strategy = pd.Series([0.10, 0.0, -0.05], index=index)
    reference = pd.Series([0.05, 0.02, 0.0], index=index)
    expected = (1.1 * 1.0 * 0.95) / (1.05 * 1.02 * 1.0) - 1
    assert stats.relative_growth(strategy, reference).iloc[-1] == pytest.approx(expected)


def test_rolling_sharpe_and_volatility_annualise_the_window() -> None:
    rng = np.random.default_rng(3)
    r = pd.DataFrame({"s": rng.normal(0.0005, 0.01, 300)}, index=_days(300))
    window = r["s"].iloc[-252:]
    sharpe = window.mean() / window.std(ddof=1) * math.sqrt(252)
    assert stats.rolling_sharpe(r)["s"].iloc[-1] == pytest.approx(sharpe)
    assert stats.rolling_volatility(r)["s"].iloc[-1] == pytest.approx(
        window.std(ddof=1) * math.sqrt(252)
    )
    assert stats.rolling_sharpe(r)["s"].iloc[:251].isna().all()


def test_costs_follow_turnover_and_monthly_turnover_sums_the_month() -> None:
    turnover = pd.Series(
        [0.5, 0.0, 0.2, 0.1],
        index=pd.to_datetime(["2012-01-30", "2012-01-31", "2012-02-01", "2012-02-02"]),
    )
    assert stats.cumulative_costs(turnover, 5.0).iloc[-1] == pytest.approx(0.8 * 5e-4)
    monthly = stats.monthly_turnover(turnover)
    assert list(monthly.index) == list(pd.to_datetime(["2012-01-01", "2012-02-01"]))
    np.testing.assert_allclose(monthly.to_numpy(), [0.5, 0.3])
