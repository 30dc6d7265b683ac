from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.backtest import BacktestResult, Period, run_backtest, simulate
from regime_trader.strategies.backtest_metrics import VOL_MATCHED
from regime_trader.strategies.metrics import METRIC_NAMES
from regime_trader.strategies.rebalance import RebalanceBand
from regime_trader.strategies.reference import EqualWeight
from regime_trader.strategies.registry import BENCHMARKS, build_benchmarks
from tests.unit.strategies.engines import ENGINES, regime_erc


def _run(prices: pd.DataFrame, start: str, engine: str = "hmm", **kwargs: object) -> BacktestResult:
    symbols = list(prices.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_backtest(
            prices,
            regime_erc(symbols, engine),
            build_benchmarks(symbols),
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
        if name == VOL_MATCHED:  # an ex-post scaling to the whole period's risk, not a decision
            continue
        pd.testing.assert_frame_equal(full.benchmarks[name].weights.loc[:until], path.weights)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_decisions_up_to_any_cut_date_ignore_later_bars_synthetic(
    engine: str, synthetic_prices: pd.DataFrame
) -> None:
    start = str(synthetic_prices.index[300].date())
    full = _run(synthetic_prices, start, engine)
    assert full.regimes["regime"].notna().sum() > 300  # the cuts fall among regime decisions
    for cut in (350, 480, 620):
        until = synthetic_prices.index[cut]
        _assert_prefix_identical(full, _run(synthetic_prices.iloc[: cut + 1], start, engine), until)
        # --end must behave like a shorter file.
        _assert_prefix_identical(full, _run(synthetic_prices, start, engine, end=until), until)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("engine", ENGINES)
def test_decisions_up_to_any_cut_date_ignore_later_bars_real_data(
    engine: str, real_prices: pd.DataFrame
) -> None:
    prices = real_prices.loc[:"2010-12-31"]
    full = _run(prices, "2006-01-02", engine)
    assert full.regimes["regime"].notna().sum() > 1000
    until = pd.Timestamp("2008-10-15")  # mid-crisis: regimes and refits are busy
    _assert_prefix_identical(full, _run(prices.loc[:until], "2006-01-02", engine), until)


@pytest.mark.parametrize("engine", ENGINES)
def test_two_runs_give_identical_results(engine: str, synthetic_prices: pd.DataFrame) -> None:
    prices = synthetic_prices.iloc[:420]
    start = str(prices.index[300].date())
    a, b = _run(prices, start, engine), _run(prices, start, engine)
    pd.testing.assert_frame_equal(a.strategy.weights, b.strategy.weights)
    pd.testing.assert_frame_equal(a.regimes, b.regimes)
    pd.testing.assert_series_equal(a.strategy.returns, b.strategy.returns)
    assert a.metrics == b.metrics


def test_metrics_json_has_every_strategy_and_statistic(synthetic_prices: pd.DataFrame) -> None:
    result = _run(synthetic_prices.iloc[:420], str(synthetic_prices.index[300].date()))
    # The report's columns are METRIC_NAMES; the ones the README promises are named here.
    assert {"cagr", "sharpe", "sortino", "max_drawdown", "cvar_95"} <= set(METRIC_NAMES)
    keys = {*METRIC_NAMES, "per_regime"}
    assert keys <= set(result.metrics["strategy"])
    assert list(result.metrics["benchmarks"]) == [BENCHMARKS[0], VOL_MATCHED, *BENCHMARKS[1:]]
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


def test_simulate_trades_what_the_execution_band_decides_from_the_drifted_holdings() -> None:
    rng = np.random.default_rng(1)
    dates = pd.bdate_range("2021-01-01", periods=30)
    returns = pd.DataFrame(rng.normal(0, 0.01, size=(30, 3)), index=dates, columns=list("ABC"))
    # A target that moves a little every day around 30% each: most moves are inside the band.
    raw = 0.3 + rng.normal(0, 0.01, size=(28, 3)) * np.linspace(1, 3, 28)[:, None]
    decisions = pd.DataFrame(raw, index=dates[1:29])
    decisions.columns = list("ABC")
    band = RebalanceBand(weight_band=0.03, exposure_band=0.05)
    net, turnover = simulate(decisions, returns, lag=1, cost_bps=10, band=band)
    held = np.zeros(3)
    untouched = 0
    for i, day in enumerate(dates[2:30]):
        traded = band.apply(held, decisions.iloc[i].to_numpy())
        untouched += int(np.sum(traded == held))
        r = returns.loc[day].to_numpy()
        assert turnover.loc[day] == pytest.approx(np.abs(traded - held).sum())
        assert net.loc[day] == pytest.approx((1 - 0.001 * turnover.loc[day]) * (1 + traded @ r) - 1)
        held = traded * (1 + r) / (1 + traded @ r)
    assert untouched > 20  # the band left weights alone on many days
    unbanded, unbanded_turnover = simulate(decisions, returns, lag=1, cost_bps=10)
    # After the first purchase from cash, the band trades less than half as much.
    assert turnover.iloc[1:].sum() < 0.5 * unbanded_turnover.iloc[1:].sum()
    # Band 0 is today's execution, bit for bit.
    zero, _ = simulate(decisions, returns, lag=1, cost_bps=10, band=RebalanceBand())
    pd.testing.assert_series_equal(zero, unbanded)


def test_metrics_per_period_and_calendar_year_with_a_vol_matched_static_erc(
    synthetic_prices: pd.DataFrame,
) -> None:
    prices = synthetic_prices.iloc[:700]
    start = str(prices.index[300].date())
    period = Period("second half", prices.index[500], prices.index[699])
    result = _run(prices, start, periods=[period])
    metrics = result.metrics
    years = sorted({str(d.year) for d in result.strategy.returns.index})
    assert list(metrics["per_year"]) == years
    section = metrics["periods"]["second half"]
    assert section["first"] == str(prices.index[500].date()) and section["days"] == 200
    for part in [section, *metrics["per_year"].values()]:
        assert set(part["benchmarks"]) == set(metrics["benchmarks"])
        first, last = part["first"], part["last"]
        own = result.strategy.returns.loc[first:last]
        assert part["strategy"]["sharpe"] == pytest.approx(
            own.mean() / own.std() * np.sqrt(252), rel=1e-9
        )
        # Static ERC at the strategy's volatility over the same slice: same volatility,
        # the same Sharpe as static ERC (a scaling does not change it).
        matched, erc = part["benchmarks"][VOL_MATCHED], part["benchmarks"]["erc_static"]
        assert matched["volatility"] == pytest.approx(part["strategy"]["volatility"], rel=1e-9)
        assert matched["sharpe"] == pytest.approx(erc["sharpe"], rel=1e-9)
        assert matched["vol_scale"] == pytest.approx(
            own.std() / result.benchmarks["erc_static"].returns.loc[first:last].std()
        )
    whole = metrics["benchmarks"][VOL_MATCHED]
    assert whole["volatility"] == pytest.approx(metrics["strategy"]["volatility"], rel=1e-9)
    assert 0 < whole["vol_scale"] < 1  # the strategy holds cash: less risk than static ERC
