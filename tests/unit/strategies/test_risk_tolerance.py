"""Risk-tolerance profiles: budgets by asset class, and what they make a strategy do."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.covariance import regularize
from regime_trader.strategies.reference import StaticERC
from regime_trader.strategies.registry import build_strategy, strategy_from_state
from regime_trader.strategies.risk_tolerance import (
    TOLERANCES,
    RiskToleranceError,
    tolerance_from,
)
from regime_trader.strategies.riskparity import relative_risk_contributions
from tests.unit.strategies.engines import quiet_signals

SYMBOLS = ["SPY", "TLT", "GLD"]
MULTI = ["SPY", "EFA", "AGG", "TLT", "SHY", "GLD"]


def test_each_class_budget_is_shared_equally_by_its_assets() -> None:
    moderate = TOLERANCES["moderate"]
    assert moderate.risk_budgets(SYMBOLS) == pytest.approx((0.4, 0.4, 0.2), abs=1e-15)
    budgets = moderate.risk_budgets(MULTI)
    assert budgets == pytest.approx((0.2, 0.2, 0.4 / 3, 0.4 / 3, 0.4 / 3, 0.2), abs=1e-15)
    assert math.fsum(budgets) == pytest.approx(1.0, abs=1e-15)


def test_a_class_not_held_gives_its_budget_to_the_others_in_proportion() -> None:
    budgets = TOLERANCES["conservative"].risk_budgets(["SPY", "TLT"])
    assert budgets == pytest.approx((0.25 / 0.80, 0.55 / 0.80), abs=1e-15)


def test_an_unknown_symbol_needs_the_portfolios_asset_class() -> None:
    with pytest.raises(RiskToleranceError, match="'XYZ' has no asset class"):
        TOLERANCES["moderate"].risk_budgets(["SPY", "XYZ"])
    budgets = TOLERANCES["moderate"].risk_budgets(["SPY", "XYZ"], {"XYZ": "bond"})
    assert budgets == pytest.approx((0.5, 0.5))
    with pytest.raises(RiskToleranceError, match="'cash' of 'XYZ'"):
        TOLERANCES["moderate"].risk_budgets(["XYZ"], {"XYZ": "cash"})


def test_a_custom_tolerance_changes_a_built_in_one_or_stands_alone() -> None:
    custom = tolerance_from({"base": "moderate", "target_vol": 0.08})
    assert (custom.name, custom.target_vol, custom.max_exposure) == ("custom (moderate)", 0.08, 1.0)
    alone = tolerance_from({"target_vol": 0.05, "class_budgets": {"bond": 1.0}})
    assert alone.risk_budgets(["TLT", "SPY"]) == (1.0, 0.0)  # no equity budget: none for SPY
    with pytest.raises(RiskToleranceError, match=r"unknown risk tolerance fields \['target'\]"):
        tolerance_from({"base": "moderate", "target": 0.08})
    with pytest.raises(RiskToleranceError, match="unknown risk tolerance 'bold'"):
        tolerance_from("bold")
    with pytest.raises(RiskToleranceError, match="min_exposure <= max_exposure"):
        tolerance_from({"base": "moderate", "min_exposure": 0.9, "max_exposure": 0.5})


def test_only_a_strategy_with_budgets_and_a_target_takes_a_tolerance() -> None:
    moderate = TOLERANCES["moderate"]
    static = moderate.strategy_params("erc_static", SYMBOLS)
    assert static["target_vol"] == 0.10 and static["min_exposure"] == 0.3
    regime = moderate.strategy_params("regime_erc", SYMBOLS)
    assert regime["policy"]["vol_target_mode"] == "absolute"
    build_strategy("erc_static", SYMBOLS, static)
    build_strategy("regime_erc", SYMBOLS, regime)
    with pytest.raises(RiskToleranceError, match="'equal_weight' has neither"):
        moderate.strategy_params("equal_weight", SYMBOLS)


def _static(prices: pd.DataFrame, **params: object) -> StaticERC:
    strategy = build_strategy("erc_static", SYMBOLS, params)
    assert isinstance(strategy, StaticERC)
    return strategy


def test_static_erc_under_a_tolerance_spends_its_budgets_and_targets_its_risk(
    synthetic_prices: pd.DataFrame,
) -> None:
    prices = synthetic_prices.iloc[:300]
    prices.columns = SYMBOLS
    params = TOLERANCES["conservative"].strategy_params("erc_static", SYMBOLS)
    strategy = _static(prices, **params)
    signals = [s for s in quiet_signals(strategy, prices) if s.ready]
    assert signals
    cov = regularize(strategy._cov.covariance, strategy.shrinkage)
    last = signals[-1]
    weights = np.array([last.weights[s] for s in SYMBOLS])
    exposure = weights.sum()
    rc = relative_risk_contributions(weights / exposure, cov)
    assert rc == pytest.approx(params["risk_budgets"], abs=1e-8)
    forecast = math.sqrt(float(weights @ cov @ weights) * 252)
    assert 0.2 - 1e-12 <= exposure <= 0.8 + 1e-12
    if 0.2 < exposure < 0.8:  # not clipped: the target is met
        assert forecast == pytest.approx(0.06, rel=1e-9)
    assert last.diagnostics["target_vol"] == 0.06
    for s in signals:
        assert 0.2 - 1e-12 <= sum(s.weights.values()) <= 0.8 + 1e-12


def test_static_erc_under_a_tolerance_is_causal_and_restores_exactly(
    synthetic_prices: pd.DataFrame,
) -> None:
    prices = synthetic_prices.iloc[:320].copy()
    prices.columns = SYMBOLS
    params = TOLERANCES["aggressive"].strategy_params("erc_static", SYMBOLS)
    full = quiet_signals(_static(prices, **params), prices)
    later = prices.copy()
    later.iloc[201:] *= np.linspace(1.0, 1.6, len(later) - 201)[:, None]  # another future
    cut = quiet_signals(_static(later, **params), later)
    assert [s.to_dict() for s in cut[:201]] == [s.to_dict() for s in full[:201]]
    live = _static(prices, **params)
    quiet_signals(live, prices.iloc[:200])
    restored = strategy_from_state(json.loads(json.dumps(live.state_dict())))
    rest = prices.iloc[200:]
    assert [s.to_dict() for s in quiet_signals(restored, rest)] == [
        s.to_dict() for s in quiet_signals(live, rest)
    ]
    assert restored.settings() == live.settings()


def test_static_erc_without_a_tolerance_keeps_its_saved_settings() -> None:
    assert set(StaticERC(SYMBOLS).settings()) == {"cov_halflife", "shrinkage", "min_obs"}


def test_the_momentum_sleeve_is_one_equity_asset_of_the_tolerance() -> None:
    stocks = ["AAPL", "MSFT", "XOM"]  # no asset class needed: they share the sleeve's budget
    params = TOLERANCES["moderate"].strategy_params(
        "erc_sleeve", [*SYMBOLS, *stocks], sleeve_symbols=stocks
    )
    assert params["risk_budgets"] == pytest.approx(
        {"SPY": 0.2, "TLT": 0.4, "GLD": 0.2, "sleeve": 0.2}
    )
    strategy = build_strategy(
        "erc_sleeve", [*SYMBOLS, *stocks], {**params, "sleeve_symbols": stocks}
    )
    assert strategy.settings()["target_vol"] == 0.10


def test_a_sleeve_strategy_without_stocks_takes_the_tolerance_on_its_assets_alone() -> None:
    # Its ERC is then over the assets: the class budgets fall on them as on erc_static's.
    params = TOLERANCES["moderate"].strategy_params("erc_sleeve", list(SYMBOLS))
    assert params["risk_budgets"] == pytest.approx({"SPY": 0.4, "TLT": 0.4, "GLD": 0.2})
    strategy = build_strategy("erc_sleeve", list(SYMBOLS), params)
    static = TOLERANCES["moderate"].strategy_params("erc_static", list(SYMBOLS))
    assert static["risk_budgets"] == pytest.approx([0.4, 0.4, 0.2])
    assert strategy.settings()["risk_budgets"] == pytest.approx(params["risk_budgets"])
