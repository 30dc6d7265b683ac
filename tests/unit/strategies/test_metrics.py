from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.metrics import drawdown, per_regime_metrics, performance_metrics


def test_metrics_match_direct_formulas() -> None:
    rng = np.random.default_rng(0)
    r = pd.Series(rng.normal(0.0004, 0.01, size=756))
    m = performance_metrics(r, turnover=pd.Series(np.full(756, 0.01)))
    years = 756 / 252
    assert m["cagr"] == pytest.approx(np.prod(1 + r) ** (1 / years) - 1)
    assert m["volatility"] == pytest.approx(r.std() * math.sqrt(252))
    assert m["sharpe"] == pytest.approx(r.mean() / r.std() * math.sqrt(252))
    downside = math.sqrt((np.minimum(r, 0) ** 2).mean())
    assert m["sortino"] == pytest.approx(r.mean() / downside * math.sqrt(252))
    assert m["turnover_per_year"] == pytest.approx(2.52)
    q = np.quantile(r, 0.05)
    assert m["var_95"] == pytest.approx(-q)
    assert m["cvar_95"] == pytest.approx(-r[r <= q].mean())
    assert m["cvar_95"] >= m["var_95"]


def test_max_drawdown_of_a_known_path() -> None:
    r = pd.Series([0.10, -0.20, 0.05, -0.10, 0.50])
    equity = np.cumprod(1 + r.to_numpy())  # 1.1, .88, .924, .8316, 1.2474
    assert performance_metrics(r)["max_drawdown"] == pytest.approx(0.8316 / 1.1 - 1)
    assert drawdown(pd.Series([-0.1]))[0] == pytest.approx(-0.1)  # from the starting capital
    assert equity[-1] == pytest.approx(1.2474)


def test_undefined_statistics_are_none_not_invented() -> None:
    flat = performance_metrics(pd.Series(np.zeros(100)))
    assert flat["sharpe"] is None and flat["sortino"] is None and flat["calmar"] is None
    assert performance_metrics(pd.Series([0.01]))["sharpe"] is None


def test_per_regime_splits_days_by_regime() -> None:
    r = pd.Series([0.01, -0.02, 0.03, -0.04])
    regimes = pd.Series([0.0, 1.0, 0.0, np.nan])
    out = per_regime_metrics(r, regimes, {0: "calm", 1: "stress"})
    assert out["calm"]["days"] == 2 and out["stress"]["days"] == 1
    assert out["calm"]["mean_return"] == pytest.approx(0.02 * 252)
    assert out["calm"]["share"] == pytest.approx(2 / 3)
    assert out["calm"]["hit_rate"] == 1.0
