"""Walk-forward folds: contiguous blocks after a warm-up, purged and embargoed, in time order."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.backtest import run_backtest
from regime_trader.strategies.reference import EqualWeight
from regime_trader.strategies.research_folds import (
    development_prices,
    plan_folds,
    return_days,
)
from regime_trader.strategies.synthetic import generate_market

DAYS = pd.bdate_range("2010-01-01", periods=1000)


def test_blocks_tile_the_days_after_the_warm_up_in_time_order() -> None:
    plan = plan_folds(DAYS, n_folds=4, warmup_days=103, purge_days=1, embargo_days=10)
    folds = plan.folds
    assert folds[0].block_start == 103
    assert folds[-1].block_stop == len(DAYS)
    for before, after in itertools.pairwise(folds):
        assert before.block_stop == after.block_start
    lengths = [f.block_stop - f.block_start for f in folds]
    assert max(lengths) - min(lengths) <= 1
    assert sum(lengths) == len(DAYS) - 103


def test_purge_and_embargo_remove_exactly_the_stated_days() -> None:
    plan = plan_folds(DAYS, n_folds=3, warmup_days=50, purge_days=2, embargo_days=7)
    first, second, third = plan.folds
    # The first block follows the warm-up, not a test block: purge only.
    assert (first.embargoed, first.purged) == (0, 2)
    assert first.scored_start == 52
    # Later blocks: the embargo right after the previous block, then the purge.
    for fold, previous in ((second, first), (third, second)):
        assert fold.scored_start == previous.block_stop + 7 + 2
    mask = plan.scored_mask()
    assert mask.sum() == len(DAYS) - 50 - 3 * 2 - 2 * 7
    assert not mask[:52].any()
    # No day is scored by two folds, and every scored day lies inside its own block.
    seen = np.zeros(len(DAYS), dtype=int)
    for fold in plan.folds:
        seen[fold.scored] += 1
        assert fold.block_start <= fold.scored_start < fold.block_stop
    assert seen.max() == 1


def test_gap_between_scored_days_of_adjacent_folds_is_purge_plus_embargo() -> None:
    plan = plan_folds(DAYS, n_folds=5, warmup_days=0, purge_days=1, embargo_days=21)
    for before, after in itertools.pairwise(plan.folds):
        assert after.scored_start - before.block_stop == 22


def test_split_returns_each_folds_scored_days() -> None:
    plan = plan_folds(DAYS, n_folds=2, warmup_days=10, purge_days=1, embargo_days=5)
    returns = pd.Series(np.arange(len(DAYS), dtype=float), index=DAYS)
    parts = plan.split(returns)
    assert [len(p) for p in parts] == [f.n_scored for f in plan.folds]
    assert parts[0].iloc[0] == 11.0
    assert parts[1].index[0] == DAYS[plan.folds[1].block_start + 5 + 1]
    assert pd.concat(parts).index.equals(plan.scored_days())
    with pytest.raises(ValueError, match="lack 1 scored days"):
        plan.split(returns.drop(DAYS[500]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_folds": 0}, "n_folds must be >= 1, got 0"),
        ({"warmup_days": -1}, "warmup_days must be >= 0, got -1"),
        ({"purge_days": -2}, "purge_days must be >= 0, got -2"),
        ({"embargo_days": -3}, "embargo_days must be >= 0, got -3"),
        ({"n_folds": 40, "embargo_days": 21}, "shortest would score"),
    ],
)
def test_bad_settings_are_refused_naming_them(kwargs: dict[str, int], message: str) -> None:
    settings = {"n_folds": 4, "warmup_days": 100, "purge_days": 1, "embargo_days": 5} | kwargs
    with pytest.raises(ValueError, match=message):
        plan_folds(DAYS, **settings)


def test_unsorted_days_are_refused() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        plan_folds(DAYS[::-1], n_folds=2, warmup_days=0, purge_days=1, embargo_days=0)


def test_return_days_are_the_days_a_backtest_earns_returns() -> None:
    prices = generate_market(300, seed=3).prices
    start, end = prices.index[40], prices.index[250]
    result = run_backtest(prices, EqualWeight(list(prices.columns)), start=start, end=end)
    days = return_days(prices.index, start, end, lag=1)
    assert days.equals(result.strategy.returns.index)
    # A start between sessions trades from the next session, as run_backtest does.
    between = start + pd.Timedelta(hours=12)
    assert return_days(prices.index, between, end)[0] == prices.index[42]


def test_development_prices_end_at_the_development_end() -> None:
    prices = generate_market(200, seed=1).prices
    end = prices.index[120]
    kept = development_prices(prices, end)
    assert kept.index[-1] == end
    assert kept.equals(prices.iloc[:121])
    with pytest.raises(ValueError, match="no session on or before"):
        development_prices(prices, prices.index[0] - pd.Timedelta(days=1))
