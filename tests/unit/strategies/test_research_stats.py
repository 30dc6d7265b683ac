"""Sharpe differences with block-bootstrap intervals, vol-matched static ERC, deflated Sharpe."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from regime_trader.strategies.metrics import performance_metrics
from regime_trader.strategies.research_stats import (
    annualised_sharpe,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_difference,
    stationary_bootstrap_indices,
    vol_matched,
)

DAYS = pd.bdate_range("2012-01-02", periods=1500)


def _series(seed: int, mean: float = 0.0003, sd: float = 0.01) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).normal(mean, sd, len(DAYS)), index=DAYS)


def test_annualised_sharpe_is_the_backtest_metrics_sharpe() -> None:
    r = _series(1)
    assert annualised_sharpe(r.to_numpy()) == pytest.approx(performance_metrics(r)["sharpe"])
    assert math.isnan(annualised_sharpe(np.zeros(10)))
    assert math.isnan(annualised_sharpe(np.array([0.01])))


def test_stationary_bootstrap_draws_blocks_of_the_stated_mean_length() -> None:
    rng = np.random.default_rng(0)
    idx = stationary_bootstrap_indices(500, 400, 10.0, rng)
    assert idx.shape == (400, 500)
    assert idx.min() >= 0 and idx.max() < 500
    # Inside a block the next position is the previous one plus one (circularly); a new block
    # starts with probability 1/10, so about 90% of the steps continue a block.
    continued = (idx[:, 1:] == (idx[:, :-1] + 1) % 500).mean()
    assert continued == pytest.approx(0.9, abs=0.01)
    with pytest.raises(ValueError, match=r"mean_block_length must be >= 1, got 0\.5"):
        stationary_bootstrap_indices(10, 1, 0.5, rng)


def test_sharpe_difference_is_seeded_and_zero_for_a_rescaled_copy() -> None:
    a = _series(2)
    again = sharpe_difference(a, 2.0 * a, seed=5, n_boot=300)
    # A constant scale leaves a ratio unchanged, in every resample too.
    assert again.difference == pytest.approx(0.0, abs=1e-12)
    assert again.ci_low == pytest.approx(0.0, abs=1e-9)
    assert again.ci_high == pytest.approx(0.0, abs=1e-9)
    b = _series(3)
    first = sharpe_difference(a, b, seed=7, n_boot=300)
    second = sharpe_difference(a, b, seed=7, n_boot=300)
    assert first == second
    assert first.ci_low < first.difference < first.ci_high
    assert first.difference == pytest.approx(
        annualised_sharpe(a.to_numpy()) - annualised_sharpe(b.to_numpy())
    )


def test_iid_bootstrap_width_matches_the_analytic_standard_error() -> None:
    # Two independent i.i.d. series with Sharpe ~ 0: each daily ratio has standard error
    # ~ 1/sqrt(T), so the annualised difference has sqrt(252 * 2 / T) (Lo 2002).
    a, b = _series(10, mean=0.0), _series(11, mean=0.0)
    result = sharpe_difference(a, b, seed=1, n_boot=2000, mean_block_length=1.0)
    analytic = math.sqrt(252 * 2 / len(DAYS))
    width = (result.ci_high - result.ci_low) / (2 * stats.norm.ppf(0.975))
    assert width == pytest.approx(analytic, rel=0.1)


def test_a_clear_edge_has_an_interval_above_zero() -> None:
    base = _series(4)
    better = base + 0.001  # the same risk, 25% a year more return
    result = sharpe_difference(better, base, seed=0, n_boot=500)
    assert result.ci_low > 0
    assert result.share_positive == 1.0


def test_sharpe_difference_refuses_different_days() -> None:
    a = _series(5)
    with pytest.raises(ValueError, match="same days"):
        sharpe_difference(a, a.iloc[1:])


def test_vol_matched_erc_has_the_strategys_volatility_and_ercs_sharpe() -> None:
    strategy = _series(6, sd=0.004)
    erc = _series(7, sd=0.01)
    turnover = pd.Series(0.02, index=DAYS)
    matched = vol_matched(strategy, erc, turnover)
    assert matched.scale == pytest.approx(strategy.std() / erc.std())
    assert matched.returns.std() == pytest.approx(strategy.std())
    assert annualised_sharpe(matched.returns.to_numpy()) == pytest.approx(
        annualised_sharpe(erc.to_numpy())
    )
    assert matched.turnover is not None
    assert matched.turnover.iloc[0] == pytest.approx(0.02 * matched.scale)
    with pytest.raises(ValueError, match="no volatility"):
        vol_matched(strategy, pd.Series(0.0, index=DAYS))


def test_expected_max_sharpe_matches_the_maximum_of_normal_draws() -> None:
    # E[max of N standard normals], by simulation, against the extreme-value approximation.
    draws = np.random.default_rng(0).standard_normal((20000, 100)).max(axis=1).mean()
    assert expected_max_sharpe(1.0, 100) == pytest.approx(draws, rel=0.03)
    assert expected_max_sharpe(4.0, 100) == pytest.approx(2 * expected_max_sharpe(1.0, 100))
    assert expected_max_sharpe(1.0, 1) == 0.0


def test_deflated_sharpe_reproduces_the_papers_numerical_example() -> None:
    # Bailey & Lopez de Prado (2014), "a numerical example": best annualised SR 2.5 among
    # N = 100 trials whose annualised SRs have variance 0.5, T = 1250 daily returns, skewness
    # -3, kurtosis 10, 250 days a year: DSR = 0.9004.
    days = 250
    sr0 = expected_max_sharpe(0.5 / days, 100)
    dsr = probabilistic_sharpe_ratio(2.5 / math.sqrt(days), sr0, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_deflated_sharpe_from_returns_equals_a_hand_computation() -> None:
    rng = np.random.default_rng(8)
    selected = rng.standard_t(5, 1000) * 0.01 + 0.0008
    sharpes = rng.normal(0.02, 0.015, 30)
    result = deflated_sharpe_ratio(selected, sharpes)
    s = pd.Series(selected)
    sr = s.mean() / s.std()
    g = 0.5772156649015329
    v = pd.Series(sharpes).var()
    sr0 = math.sqrt(v) * (
        (1 - g) * stats.norm.ppf(1 - 1 / 30) + g * stats.norm.ppf(1 - 1 / (30 * math.e))
    )
    skew, kurt = s.skew(), s.kurt() + 3.0
    z = (sr - sr0) * math.sqrt(999) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    assert result.dsr == pytest.approx(stats.norm.cdf(z), rel=1e-10)
    assert result.sharpe == pytest.approx(sr)
    assert result.expected_max == pytest.approx(sr0)
    assert (result.skewness, result.kurtosis) == pytest.approx((skew, kurt))


def test_more_trials_deflate_more() -> None:
    rng = np.random.default_rng(9)
    selected = rng.normal(0.0005, 0.01, 1500)
    trial_sharpes = rng.normal(0.02, 0.01, 5)
    few = deflated_sharpe_ratio(selected, trial_sharpes)
    many = deflated_sharpe_ratio(selected, np.resize(trial_sharpes, 500))
    assert many.expected_max > few.expected_max
    assert many.dsr < few.dsr
    one = deflated_sharpe_ratio(selected, np.array([0.05]))
    assert one.expected_max == 0.0
    assert one.dsr == pytest.approx(
        probabilistic_sharpe_ratio(one.sharpe, 0.0, 1500, one.skewness, one.kurtosis)
    )
