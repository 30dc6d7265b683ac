"""A trial sees no bar after the development end, scores the folds it is given, and the
one-off window evaluation reports every benchmark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regime_trader.service.research_trial import (
    BENCHMARK,
    VOL_MATCHED,
    ParametersRefusedError,
    TrialEvaluator,
    evaluate_window,
)
from regime_trader.strategies.backtest import run_backtest
from regime_trader.strategies.base import Strategy
from regime_trader.strategies.metrics import drawdown
from regime_trader.strategies.rebalance import RebalanceBand
from regime_trader.strategies.registry import BENCHMARKS, build_strategy
from regime_trader.strategies.research_folds import plan_folds, return_days
from regime_trader.strategies.synthetic import generate_market

FAST = {"regime": {"min_train_obs": 120, "n_init": 1, "refit_months": 3}}


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return generate_market(620, seed=11).prices


def _evaluator(prices: pd.DataFrame, builder: Any = build_strategy) -> TrialEvaluator:
    dev_start, dev_end = prices.index[150], prices.index[500]
    plan = plan_folds(
        return_days(prices.index, dev_start, dev_end),
        n_folds=3,
        warmup_days=40,
        purge_days=1,
        embargo_days=5,
    )
    return TrialEvaluator(
        prices,
        plan,
        "regime_erc",
        dev_start=dev_start,
        dev_end=dev_end,
        cost_bps=5.0,
        build=builder,
    )


def test_no_bar_after_the_development_end_reaches_a_trial(prices: pd.DataFrame) -> None:
    dev_end = prices.index[500]
    poisoned = prices.copy()
    # Every later row is unusable: a NaN close would make the strategy refuse the bars, and a
    # price a thousand times higher would change every statistic it touched.
    poisoned.iloc[501::2] = np.nan
    poisoned.iloc[502::2] = prices.iloc[502::2] * 1000.0
    built: list[Strategy] = []

    def spy(name: str, symbols: Sequence[str], params: Mapping[str, Any]) -> Strategy:
        strategy = build_strategy(name, symbols, params)
        built.append(strategy)
        return strategy

    clean = _evaluator(prices).evaluate(FAST)
    dirty_evaluator = _evaluator(poisoned, spy)
    dirty = dirty_evaluator.evaluate(FAST)
    assert built[0].last_date == dev_end
    assert dirty_evaluator.prices.index[-1] == dev_end
    assert dirty.objective == clean.objective
    np.testing.assert_array_equal(dirty.scored_returns, clean.scored_returns)
    assert dirty.folds == clean.folds


def test_the_objective_is_the_mean_fold_sharpe_difference(prices: pd.DataFrame) -> None:
    evaluator = _evaluator(prices)
    score = evaluator.evaluate(FAST)
    assert len(score.folds) == 3
    assert score.objective == pytest.approx(np.mean([f.difference for f in score.folds]))
    for fold, plan_fold in zip(score.folds, evaluator.plan.folds, strict=True):
        assert fold.n_days == plan_fold.n_scored
        assert fold.difference == pytest.approx(fold.sharpe - fold.benchmark_sharpe)
        assert fold.first_day == str(evaluator.plan.days[plan_fold.scored_start].date())
    assert score.scored_returns.size == int(evaluator.plan.scored_mask().sum())
    assert score.max_drawdown <= 0


def test_static_erc_scored_against_itself_scores_zero(prices: pd.DataFrame) -> None:
    evaluator = _evaluator(prices)
    evaluator.strategy = BENCHMARK
    score = evaluator.evaluate({})
    assert score.objective == pytest.approx(0.0, abs=1e-12)


def test_parameters_the_strategy_refuses_fail_the_trial_only(prices: pd.DataFrame) -> None:
    evaluator = _evaluator(prices)
    with pytest.raises(ParametersRefusedError, match="min_exposure"):
        evaluator.evaluate({"policy": {"min_exposure": 0.9, "max_exposure": 0.5}})


def test_window_evaluation_reports_every_benchmark(prices: pd.DataFrame) -> None:
    result = evaluate_window(
        prices,
        "regime_erc",
        FAST,
        start=prices.index[501],
        end=prices.index[-1],
        cost_bps=5.0,
        n_boot=200,
    )
    assert set(result.rows) == {"strategy", VOL_MATCHED, *BENCHMARKS}
    assert BENCHMARK in BENCHMARKS
    assert result.rows[VOL_MATCHED]["sharpe"] == pytest.approx(result.rows[BENCHMARK]["sharpe"])
    assert result.rows[VOL_MATCHED]["volatility"] == pytest.approx(
        result.rows["strategy"]["volatility"]
    )
    diff = result.difference
    assert diff["difference"] == pytest.approx(diff["sharpe_a"] - diff["sharpe_b"])
    assert diff["ci_low"] <= diff["ci_high"]
    assert result.first_day == str(prices.index[502].date())
    assert type(result).from_dict(result.to_dict()) == result


def test_drawdown_excess_compares_with_static_erc_at_the_trials_volatility(
    prices: pd.DataFrame,
) -> None:
    evaluator = _evaluator(prices)
    score = evaluator.evaluate(FAST)
    # The vol-matched drawdown, computed again directly.
    path = run_backtest(
        evaluator.prices,
        build_strategy("regime_erc", evaluator.symbols, FAST),
        start=evaluator.dev_start,
        cost_bps=5.0,
    ).strategy
    mine = path.returns.iloc[evaluator.plan.warmup_days :]
    theirs = evaluator.benchmark_.returns.loc[mine.index]
    matched = theirs * (mine.std(ddof=1) / theirs.std(ddof=1))
    assert score.vol_matched_max_drawdown == pytest.approx(float(drawdown(matched).min()))
    assert score.drawdown_excess == pytest.approx(
        score.vol_matched_max_drawdown - score.max_drawdown
    )
    # Static ERC against itself: the same drawdown, so exactly on the feasibility boundary.
    evaluator.strategy = BENCHMARK
    assert evaluator.evaluate({}).drawdown_excess == pytest.approx(0.0, abs=1e-12)


def test_the_execution_band_changes_what_a_trial_trades(prices: pd.DataFrame) -> None:
    plain = _evaluator(prices).evaluate(FAST)
    banded_evaluator = _evaluator(prices)
    banded_evaluator.execution_band = RebalanceBand(weight_band=0.05)
    banded_evaluator.benchmark_ = banded_evaluator._run(
        build_strategy(BENCHMARK, banded_evaluator.symbols, {})
    )
    banded = banded_evaluator.evaluate(FAST)
    assert banded.turnover_per_year < plain.turnover_per_year
