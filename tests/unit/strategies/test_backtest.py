from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.backtest import BacktestResult, run_backtest, simulate
from regime_trader.strategies.metrics import METRIC_NAMES
from regime_trader.strategies.reference import EqualWeight
from regime_trader.strategies.regime_erc import RegimeERC
from regime_trader.strategies.registry import BENCHMARKS, STRATEGIES


def _run(prices: pd.DataFrame, start: str, **kwargs: object) -> BacktestResult:
    symbols = list(prices.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_backtest(
            prices,
            RegimeERC(symbols),
            {b: STRATEGIES[b](symbols) for b in BENCHMARKS},
            start=start,
            **kwargs,  # type: ignore[arg-type]
        )


def test_simulate_matches_a_direct_daily_computation() -> None:
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2021-01-01", periods=6)
    returns = pd.DataFrame(rng.normal(0, 0.01, size=(6, 2)), index=dates, columns=["A", "B"])
    decisions = pd.DataFrame(
        [[0.5, 0.3], [0.6, 0.2], [0.0, 0.0], [1.0, 0.0]], index=dates[1:5], columns=["A", "B"]
    )
    net, turnover = simulate(decisions, returns, lag=1, cost_bps=10)
    # By hand: the decision at dates[k] earns returns[k + 1], trading from drifted holdings.
    held = np.zeros(2)
    for i, day in enumerate(dates[2:6]):
        target = decisions.iloc[i].to_numpy()
        r = returns.loc[day].to_numpy()
        tv = np.abs(target - held).sum()
        assert turnover.loc[day] == pytest.approx(tv)
        assert net.loc[day] == pytest.approx((1 - 0.001 * tv) * (1 + target @ r) - 1)
        held = target * (1 + r) / (1 + target @ r)
    assert list(net.index) == list(dates[2:6])


def test_lag_two_earns_the_return_one_day_later() -> None:
    dates = pd.bdate_range("2021-01-01", periods=5)
    returns = pd.DataFrame({"A": [0.0, 0.01, 0.02, 0.03, 0.04]}, index=dates)
    decisions = pd.DataFrame({"A": [1.0, 1.0]}, index=dates[1:3])
    net, _ = simulate(decisions, returns, lag=2, cost_bps=0)
    assert list(net.index) == list(dates[3:5])
    np.testing.assert_allclose(net.to_numpy(), [0.03, 0.04])
    with pytest.raises(ValueError, match="look-ahead"):
        simulate(decisions, returns, lag=0)


def _assert_prefix_identical(
    full: BacktestResult, cut: BacktestResult, until: pd.Timestamp
) -> None:
    pd.testing.assert_frame_equal(full.strategy.weights.loc[:until], cut.strategy.weights)
    pd.testing.assert_frame_equal(full.regimes.loc[:until], cut.regimes)
    for name, path in cut.benchmarks.items():
        pd.testing.assert_frame_equal(full.benchmarks[name].weights.loc[:until], path.weights)


@pytest.mark.slow
def test_decisions_up_to_any_cut_date_ignore_later_bars_synthetic(
    synthetic_prices: pd.DataFrame,
) -> None:
    start = str(synthetic_prices.index[300].date())
    full = _run(synthetic_prices, start)
    for cut in (350, 480, 620):
        until = synthetic_prices.index[cut]
        _assert_prefix_identical(full, _run(synthetic_prices.iloc[: cut + 1], start), until)
        # --end must behave like a shorter file.
        _assert_prefix_identical(full, _run(synthetic_prices, start, end=until), until)


@pytest.mark.slow
@pytest.mark.realdata
def test_decisions_up_to_any_cut_date_ignore_later_bars_real_data(
    real_prices: pd.DataFrame,
) -> None:
    prices = real_prices.loc[:"2010-12-31"]
    full = _run(prices, "2006-01-02")
    until = pd.Timestamp("2008-10-15")  # mid-crisis: regimes and refits are busy
    _assert_prefix_identical(full, _run(prices.loc[:until], "2006-01-02"), until)


def test_two_runs_give_identical_results(synthetic_prices: pd.DataFrame) -> None:
    prices = synthetic_prices.iloc[:420]
    a, b = _run(prices, str(prices.index[300].date())), _run(prices, str(prices.index[300].date()))
    pd.testing.assert_frame_equal(a.strategy.weights, b.strategy.weights)
    pd.testing.assert_series_equal(a.strategy.returns, b.strategy.returns)
    assert a.metrics == b.metrics


def test_metrics_json_has_every_strategy_and_statistic(synthetic_prices: pd.DataFrame) -> None:
    result = _run(synthetic_prices.iloc[:420], str(synthetic_prices.index[300].date()))
    # The report's columns are METRIC_NAMES; the ones the README promises are named here.
    assert {"cagr", "sharpe", "sortino", "max_drawdown", "cvar_95"} <= set(METRIC_NAMES)
    keys = {*METRIC_NAMES, "per_regime"}
    assert keys <= set(result.metrics["strategy"])
    assert set(result.metrics["benchmarks"]) == set(BENCHMARKS)
    for stats in result.metrics["benchmarks"].values():
        assert keys <= set(stats)
    assert set(result.metrics["strategy"]["per_regime"]) == {"calm", "stress"}


def test_bars_before_start_are_history_not_trades(synthetic_prices: pd.DataFrame) -> None:
    start = synthetic_prices.index[100]
    result = run_backtest(
        synthetic_prices.iloc[:150], EqualWeight(list(synthetic_prices.columns)), start=start
    )
    assert result.strategy.weights.index[0] == start
    assert result.strategy.returns.index[0] == synthetic_prices.index[101]
    # The first trade buys from cash: turnover 1.
    assert result.strategy.turnover.iloc[0] == pytest.approx(1.0)


def test_empty_period_and_used_strategy_are_refused(synthetic_prices: pd.DataFrame) -> None:
    symbols = list(synthetic_prices.columns)
    with pytest.raises(ValueError, match="no trading period"):
        run_backtest(synthetic_prices, EqualWeight(symbols), start="2100-01-01")
    used = EqualWeight(symbols)
    used.update(synthetic_prices.iloc[:5])
    with pytest.raises(ValueError, match="already seen"):
        run_backtest(synthetic_prices, used)
