"""ERC with a momentum sleeve: the expansion into stocks, budgets, causality, determinism, state."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.base import Signal
from regime_trader.strategies.covariance import regularize
from regime_trader.strategies.reference import EqualWeightQuarterly
from regime_trader.strategies.registry import build_strategy, strategy_from_state
from regime_trader.strategies.riskparity import relative_risk_contributions
from regime_trader.strategies.sleeve_erc import SLEEVE, SleeveERC, SleeveERCParams, Widened
from regime_trader.strategies.state import StrategyState
from regime_trader.strategies.synthetic import generate_market
from tests.unit.strategies.engines import quiet_signals

ASSETS = ["SPY", "TLT", "GLD"]
STOCKS = [f"X{i:02d}" for i in range(24)]
# A short window so that the sleeve invests and joins the ERC within a few hundred sessions.
PARAMS: dict[str, Any] = {
    "sleeve_symbols": STOCKS,
    "momentum": {"lookback": 60, "skip": 5, "top_k": 6, "max_turnover": 0.5},
    "min_obs": 30,
}


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    assets = generate_market(420, ASSETS, seed=11, start="2015-01-02").prices
    rng = np.random.default_rng(5)
    steps = rng.normal(0.0, 0.002, len(STOCKS)) + rng.normal(0.0, 0.015, (420, len(STOCKS)))
    stocks = pd.DataFrame(
        30.0 * np.exp(np.cumsum(steps, axis=0)), index=assets.index, columns=STOCKS
    )
    return assets.join(stocks)


def _fresh(**overrides: Any) -> SleeveERC:
    strategy = build_strategy("erc_sleeve", [*ASSETS, *STOCKS], {**PARAMS, **overrides})
    assert isinstance(strategy, SleeveERC)
    return strategy


def _matrix(signals: list[Signal]) -> np.ndarray:
    return np.array([[*s.weights.values(), s.cash, float(s.ready)] for s in signals])


def test_the_sleeves_weight_is_spread_over_its_holdings_and_the_erc_spends_the_budgets(
    prices: pd.DataFrame,
) -> None:
    budgets = {"SPY": 1.0, "TLT": 2.0, "GLD": 1.0, SLEEVE: 4.0}
    strategy = _fresh(risk_budgets=budgets)

    signals = quiet_signals(strategy, prices)

    joined = [s for s in signals if s.diagnostics.get("sleeve", {}).get("in_erc")]
    assert len(joined) > 100
    last = joined[-1]
    assert min(last.weights.values()) >= 0 and last.cash == pytest.approx(0.0, abs=1e-12)
    sleeve_weight = last.diagnostics["sleeve"]["weight"]
    stock_weights = np.array([last.weights[s] for s in STOCKS])
    assert stock_weights.sum() == pytest.approx(sleeve_weight, abs=1e-12)
    assert strategy.sleeve is not None
    np.testing.assert_allclose(stock_weights, sleeve_weight * strategy.sleeve.holdings_, atol=1e-15)
    rc = last.diagnostics["risk_contributions"]
    np.testing.assert_allclose(
        [rc[k] for k in budgets], np.array(list(budgets.values())) / 8.0, atol=1e-8
    )


def test_before_the_sleeve_has_a_covariance_the_erc_runs_on_the_assets_alone(
    prices: pd.DataFrame,
) -> None:
    signals = quiet_signals(_fresh(), prices)

    early = [s for s in signals if s.ready and not s.diagnostics["sleeve"]["in_erc"]]
    assert early and early[0].date < pd.Timestamp("2015-05-01")
    for s in early:
        assert sum(s.weights[x] for x in STOCKS) == 0.0
        assert sum(s.weights[a] for a in ASSETS) == pytest.approx(1.0, abs=1e-12)
    assert not signals[0].ready


def test_budgets_as_a_list_match_the_table_and_bad_budgets_are_refused(
    prices: pd.DataFrame,
) -> None:
    as_list = quiet_signals(_fresh(risk_budgets=[1.0, 2.0, 1.0, 3.0]), prices.iloc[:250])
    as_table = quiet_signals(_fresh(risk_budgets={"TLT": 2.0, SLEEVE: 3.0}), prices.iloc[:250])

    np.testing.assert_array_equal(_matrix(as_list), _matrix(as_table))
    with pytest.raises(ValueError, match="not an asset"):
        _fresh(risk_budgets={"QQQ": 1.0})
    with pytest.raises(ValueError, match="4 numbers"):
        _fresh(risk_budgets=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"risk_budgets\.TLT"):
        _fresh(risk_budgets={"TLT": -1.0})
    with pytest.raises(ValueError, match="unknown parameter"):
        _fresh(top_k=3)  # belongs in the momentum table
    with pytest.raises(ValueError, match="not in the universe"):
        build_strategy("erc_sleeve", ASSETS, {"sleeve_symbols": ["X00"]})


def test_a_volatility_target_scales_the_invested_fraction(prices: pd.DataFrame) -> None:
    signals = quiet_signals(_fresh(target_vol=0.02, max_exposure=0.9), prices)

    ready = [s for s in signals if s.ready]
    exposures = np.array([s.diagnostics["exposure"] for s in ready])
    forecasts = np.array([s.diagnostics["forecast_vol"] for s in ready])
    np.testing.assert_allclose(exposures, np.clip(0.02 / forecasts, 0.0, 0.9), rtol=1e-12)
    assert exposures.min() < 0.9  # the target binds somewhere


def test_decisions_up_to_t_do_not_depend_on_bars_after_t(prices: pd.DataFrame) -> None:
    cut = 300
    changed = prices.copy()
    rng = np.random.default_rng(0)
    changed.iloc[cut + 1 :] *= rng.uniform(0.5, 1.5, changed.iloc[cut + 1 :].shape)

    a = quiet_signals(_fresh(), prices)
    b = quiet_signals(_fresh(), changed)

    np.testing.assert_array_equal(_matrix(a[: cut + 1]), _matrix(b[: cut + 1]))
    assert not np.array_equal(_matrix(a[cut + 1 :]), _matrix(b[cut + 1 :]))  # the test can fail


def test_two_fresh_runs_are_identical(prices: pd.DataFrame) -> None:
    a = quiet_signals(_fresh(), prices)
    b = quiet_signals(_fresh(), prices)

    np.testing.assert_array_equal(_matrix(a), _matrix(b))
    assert [s.diagnostics for s in a] == [s.diagnostics for s in b]


@pytest.mark.parametrize("form", ["json", "fields"])
def test_a_restored_strategy_continues_bit_for_bit(prices: pd.DataFrame, form: str) -> None:
    live = _fresh(risk_budgets={SLEEVE: 2.0}, target_vol=0.05)
    quiet_signals(live, prices.iloc[:280])
    if form == "json":
        restored = strategy_from_state(json.loads(json.dumps(live.state_dict(), allow_nan=False)))
    else:
        restored = strategy_from_state(StrategyState.from_fields(live.save_state().fields()))

    a = quiet_signals(live, prices.iloc[280:])
    b = quiet_signals(restored, prices.iloc[280:])

    np.testing.assert_array_equal(_matrix(a), _matrix(b))
    assert [s.diagnostics for s in a] == [s.diagnostics for s in b]
    assert live.save_state().fields() == restored.save_state().fields()
    assert restored.settings() == live.settings()


def test_settings_are_plain_data_that_rebuild_the_same_parameters() -> None:
    strategy = _fresh(risk_budgets={SLEEVE: 2.0})

    settings = json.loads(json.dumps(strategy.settings()))

    assert SleeveERCParams.from_dict(settings) == strategy.params
    assert settings["momentum"] == PARAMS["momentum"]
    assert settings["risk_budgets"] == {SLEEVE: 2.0}


def test_without_sleeve_symbols_it_is_erc_on_every_symbol(prices: pd.DataFrame) -> None:
    signals = quiet_signals(SleeveERC(ASSETS), prices[ASSETS].iloc[:120])

    last = signals[-1]
    assert last.ready and "sleeve" not in last.diagnostics
    rc = last.diagnostics["risk_contributions"]
    np.testing.assert_allclose([rc[a] for a in ASSETS], [1 / 3] * 3, atol=1e-8)


def test_a_widened_benchmark_decides_as_the_inner_one_and_holds_nothing_else(
    prices: pd.DataFrame,
) -> None:
    inner = quiet_signals(EqualWeightQuarterly(ASSETS), prices)
    wide = quiet_signals(Widened(EqualWeightQuarterly(ASSETS), list(prices.columns)), prices)

    for a, b in zip(inner, wide, strict=True):
        assert {k: b.weights[k] for k in ASSETS} == a.weights
        assert sum(b.weights[k] for k in STOCKS) == 0.0
        assert b.cash == a.cash


def test_the_covariance_the_erc_uses_is_the_regularised_ewma_of_assets_and_sleeve(
    prices: pd.DataFrame,
) -> None:
    strategy = _fresh()
    signals = quiet_signals(strategy, prices)

    last = signals[-1]
    cov = regularize(strategy._cov.covariance, strategy.params.shrinkage)
    w = np.array([last.weights[a] for a in ASSETS] + [last.diagnostics["sleeve"]["weight"]])
    np.testing.assert_allclose(relative_risk_contributions(w, cov), [0.25] * 4, atol=1e-8)


def test_weights_do_not_depend_on_each_symbols_price_scale(prices: pd.DataFrame) -> None:
    factors = np.random.default_rng(1).uniform(0.01, 100.0, prices.shape[1])

    a = quiet_signals(_fresh(), prices)
    b = quiet_signals(_fresh(), prices * factors)

    np.testing.assert_allclose(_matrix(a), _matrix(b), rtol=0, atol=1e-9)
    assert _matrix(a)[:, len(ASSETS) : len(ASSETS) + len(STOCKS)].max() > 0  # the sleeve traded
