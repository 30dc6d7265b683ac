"""Risk attribution: exact Euler contributions, by class and by regime, causal and deterministic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from regime_trader.strategies.backtest import run_backtest
from regime_trader.strategies.backtest_attribution import (
    backtest_attribution,
    forecast_share_frame,
    return_contributions,
)
from regime_trader.strategies.base import Signal
from regime_trader.strategies.rebalance import RebalanceBand
from regime_trader.strategies.regime_erc import RegimeERC
from regime_trader.strategies.risk_attribution import (
    MIN_REGIME_OBS,
    SignalRisk,
    class_shares,
    euler_risk,
    realised_attribution,
    risk_sentence,
    risk_view,
    signal_risk,
)
from regime_trader.strategies.riskparity import relative_risk_contributions
from tests.unit.strategies.engines import quiet_signals

SYMBOLS = ["SPY", "TLT", "GLD"]


@st.composite
def portfolios(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A random positive semi-definite covariance (daily scale) and long-only weights."""
    n = draw(st.integers(1, 8))
    k = draw(st.integers(1, n + 2))  # k < n gives a singular covariance
    # Values are 0 or of a size a market gives (no subnormal products to round away).
    entry = st.one_of(st.just(0.0), st.floats(1e-4, 0.03), st.floats(-0.03, -1e-4))
    factors = draw(arrays(np.float64, (n, k), elements=entry))
    cov = factors @ factors.T
    weights = draw(arrays(np.float64, n, elements=st.one_of(st.just(0.0), st.floats(1e-4, 1.0))))
    return cov, weights


@settings(max_examples=300, deadline=None)
@given(portfolios())
def test_contributions_sum_to_the_volatility_and_shares_to_one(
    case: tuple[np.ndarray, np.ndarray],
) -> None:
    cov, w = case
    symbols = [f"A{i}" for i in range(len(w))]
    risk = euler_risk(dict(zip(symbols, w.tolist(), strict=True)), cov, symbols)
    variance = float(w @ cov @ w)
    if variance == 0.0:  # all cash, or only assets without variance: no risk to split
        assert risk.volatility == 0.0 and risk.contributions == (0.0,) * len(w)
        return
    assert math.isclose(sum(risk.contributions), risk.volatility, rel_tol=1e-12)
    # The volatility is sqrt(w' S w) computed independently, to rounding at the scale of the
    # terms (w' S w can cancel to far below them when S is near singular).
    scale = float(w @ np.abs(cov) @ w)
    assert abs(risk.volatility**2 - variance) <= 1e-12 * scale
    assert math.isclose(sum(risk.shares.values()), 1.0, rel_tol=1e-12)
    np.testing.assert_allclose(
        list(risk.shares.values()), relative_risk_contributions(w, cov), rtol=1e-9, atol=1e-12
    )


def test_a_zero_weight_contributes_nothing_and_cash_scales_only_the_volatility() -> None:
    cov = np.array([[4e-4, 1e-4, 0.0], [1e-4, 1e-4, 0.0], [0.0, 0.0, 2e-4]])
    full = euler_risk({"SPY": 0.6, "TLT": 0.4, "GLD": 0.0}, cov, SYMBOLS)
    assert full.contributions[2] == 0.0 and full.shares["GLD"] == 0.0
    half = euler_risk({"SPY": 0.3, "TLT": 0.2}, cov, SYMBOLS)  # the rest in cash
    assert half.volatility == pytest.approx(full.volatility / 2, rel=1e-14)
    assert half.shares == pytest.approx(full.shares, rel=1e-14)
    cash = euler_risk({}, cov, SYMBOLS)
    assert (cash.volatility, cash.contributions) == (0.0, (0.0, 0.0, 0.0))
    assert set(cash.shares.values()) == {0.0}


def test_realised_attribution_is_euler_on_the_trailing_sample_covariance() -> None:
    rng = np.random.default_rng(1)
    returns = pd.DataFrame(rng.normal(0, 0.01, (100, 3)), columns=SYMBOLS)
    weights = {"SPY": 0.5, "TLT": 0.3, "GLD": 0.2}
    risk = realised_attribution(weights, returns, window=40)
    cov = np.cov(returns.iloc[-40:].to_numpy(), rowvar=False)
    w = np.array([0.5, 0.3, 0.2])
    assert sum(risk.contributions) == pytest.approx(math.sqrt(w @ cov @ w), rel=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        realised_attribution(weights, returns.iloc[:1])


def test_class_shares_add_the_members_and_name_them() -> None:
    shares = {"SPY": 0.4, "EFA": 0.2, "TLT": 0.3, "XYZ": 0.1}
    groups = class_shares(shares)
    assert [(g.name, g.symbols) for g in groups] == [
        ("equities", ("SPY", "EFA")),
        ("bonds", ("TLT",)),
        ("XYZ", ("XYZ",)),
    ]
    assert groups[0].share == pytest.approx(0.6)
    assert [g.describe() for g in groups] == ["equities (SPY, EFA)", "TLT (bonds)", "XYZ"]
    mine = class_shares(shares, {"SPY": "mine", "TLT": "mine"})
    assert mine[0].name == "mine" and mine[0].share == pytest.approx(0.7)
    # A portfolio's asset_classes table names classes by their risk-tolerance codes.
    coded = class_shares(shares, {"SPY": "equity", "EFA": "equity", "TLT": "real"})
    assert [g.describe() for g in coded] == ["equities (SPY, EFA)", "TLT (real assets)", "XYZ"]


def test_the_sentence_names_the_largest_class_and_its_share_in_stress() -> None:
    risk = SignalRisk(
        {"SPY": 0.5, "EFA": 0.22, "TLT": 0.28},
        0.01,
        {
            "calm": {"SPY": 0.4, "EFA": 0.1, "TLT": 0.5},
            "stress": {"SPY": 0.6, "EFA": 0.21, "TLT": 0.19},
        },
    )
    assert risk_sentence(risk) == (
        "72% of today's risk is in equities (SPY, EFA); in stress it would be 81%"
    )
    # A reference strategy's signal has no regimes: the first half only.
    assert risk_sentence(SignalRisk({"SPY": 0.6, "TLT": 0.4}, None, {})) == (
        "60% of today's risk is in SPY (equities)"
    )
    # Equal shares (ERC): the class that would carry the most in stress is named.
    equal = SignalRisk(
        {"SPY": 1 / 3 + 1e-12, "TLT": 1 / 3, "GLD": 1 / 3 - 1e-12},
        0.01,
        {"stress": {"SPY": 0.2, "TLT": 0.3, "GLD": 0.5}},
    )
    assert (
        risk_sentence(equal)
        == "33% of today's risk is in GLD (real assets); in stress it would be 50%"
    )


def test_the_dashboards_view_has_forecast_regime_and_realised_rows() -> None:
    diagnostics = {
        "risk_variance": {
            "forecast": [2e-5, 1e-5, 1e-5],
            "regimes": {"calm": [1e-5, 1e-5, 2e-5], "stress": [6e-5, 1e-5, 1e-5]},
            "regime_obs": {"calm": 300.0, "stress": 40.0},
        }
    }
    target = {"SPY": 0.3, "TLT": 0.4, "GLD": 0.2}
    rng = np.random.default_rng(2)
    returns = pd.DataFrame(rng.normal(0, 0.01, (80, 3)), columns=SYMBOLS)
    view = risk_view(target, diagnostics, held=target, returns=returns)
    assert view is not None and view.symbols == tuple(SYMBOLS)
    labels = [r.label for r in view.rows]
    assert labels == [
        "forecast today",
        "forecast in calm",
        "forecast in stress",
        "realised, 63 days",
    ]
    for r in view.rows:
        assert sum(r.shares.values()) == pytest.approx(1.0, abs=1e-12)
        assert sum(c.share for c in r.classes) == pytest.approx(1.0, abs=1e-12)
    today = view.rows[0]
    assert today.annual_volatility == pytest.approx(math.sqrt(4e-5 * 252))
    assert view.rows[2].shares["SPY"] == pytest.approx(0.75)
    realised = realised_attribution(target, returns)
    assert view.rows[3].shares == pytest.approx(realised.shares)
    assert view.sentence == "50% of today's risk is in SPY (equities); in stress it would be 75%"
    assert risk_view({"SPY": 0.0}, {}) is None


# ------------------------------------------------------------------------ the strategy


def _risk(signal: Signal) -> SignalRisk:
    risk = signal_risk(signal.weights, signal.diagnostics)
    assert risk is not None
    return risk


@pytest.fixture(scope="module")
def run(synthetic_prices: pd.DataFrame) -> tuple[RegimeERC, list[Signal]]:
    strategy = RegimeERC(SYMBOLS)
    return strategy, quiet_signals(strategy, synthetic_prices)


def test_a_regime_signal_carries_forecast_and_per_regime_contributions(
    run: tuple[RegimeERC, list[Signal]], synthetic_prices: pd.DataFrame
) -> None:
    _, signals = run
    ready = [s for s in signals if s.ready and s.cash < 1]
    assert len(ready) > 300
    for s in ready:
        risk = signal_risk(s.weights, s.diagnostics)
        assert risk is not None and risk.volatility is not None
        # Unbanded, the target is the ERC weights scaled: its forecast shares are the ERC's.
        assert risk.today == pytest.approx(s.diagnostics["risk_contributions"], abs=1e-9)
        assert sum(risk.today.values()) == pytest.approx(1.0, abs=1e-12)
        # A regime enters once its covariance rests on MIN_REGIME_OBS effective observations.
        obs = s.diagnostics["risk_variance"]["regime_obs"]
        assert set(risk.regimes) == {k for k, n in obs.items() if n >= MIN_REGIME_OBS}
        # forecast_vol is the fully invested ERC's, a year: the target's is it times exposure.
        invested = sum(s.weights.values())
        assert risk.volatility * math.sqrt(252) == pytest.approx(
            s.diagnostics["forecast_vol"] * invested, rel=1e-9
        )
    assert sum("stress" in r.regimes for r in map(_risk, ready)) > len(ready) // 2
    # The per-regime shares, recomputed from the strategy's regime covariances at the last bar.
    strategy, _ = run
    last = signals[-1]
    _, covs = strategy._regime_cov.moments()
    shrinkage = strategy.params.shrinkage
    w = np.array([last.weights[x] for x in SYMBOLS])
    risk = signal_risk(last.weights, last.diagnostics)
    assert risk is not None
    for label, c in zip(("calm", "stress"), covs, strict=True):
        shrunk = (1 - shrinkage) * c + shrinkage * np.diag(np.diag(c))
        expected = w * (shrunk @ w) / (w @ shrunk @ w)
        assert list(risk.regimes[label].values()) == pytest.approx(expected.tolist(), rel=1e-10)


def test_a_regime_with_too_few_observations_is_left_out() -> None:
    weights = {"SPY": 0.5, "TLT": 0.5}
    diagnostics = {
        "risk_variance": {
            "forecast": [2e-5, 1e-5],
            "regimes": {"calm": [1e-5, 1e-5], "stress": [0.0, 0.0]},
            "regime_obs": {"calm": MIN_REGIME_OBS, "stress": MIN_REGIME_OBS - 1},
        }
    }
    risk = signal_risk(weights, diagnostics)
    assert risk is not None and set(risk.regimes) == {"calm"}
    assert risk.today == pytest.approx({"SPY": 2 / 3, "TLT": 1 / 3})
    assert (
        signal_risk({"SPY": 0.0, "TLT": 0.0}, {"risk_variance": {"forecast": [0.0, 0.0]}}) is None
    )
    assert signal_risk(weights, {"risk_variance": {"forecast": ["x", 1.0]}}) is None
    assert signal_risk(weights, {}) is None


def test_attribution_at_a_bar_does_not_change_when_later_bars_do(
    run: tuple[RegimeERC, list[Signal]], synthetic_prices: pd.DataFrame
) -> None:
    _, signals = run
    # The file ending at the cut is the extreme change of every later bar: they are gone.
    cut = 420
    other = quiet_signals(RegimeERC(SYMBOLS), synthetic_prices.iloc[: cut + 1])
    before = [s.diagnostics.get("risk_variance") for s in signals[: cut + 1]]
    assert sum(b is not None for b in before) > 100
    assert before == [s.diagnostics.get("risk_variance") for s in other[: cut + 1]]
    assert signals[-1].diagnostics["risk_variance"] != other[-1].diagnostics["risk_variance"]


# ------------------------------------------------------------------------ the backtest


def test_return_contributions_add_up_to_the_strategys_returns_overall_and_by_regime(
    run: tuple[RegimeERC, list[Signal]], synthetic_prices: pd.DataFrame
) -> None:
    start = 300
    result = run_backtest(
        synthetic_prices,
        RegimeERC(SYMBOLS),
        start=synthetic_prices.index[start],
        cost_bps=10,
        execution_band=RebalanceBand(0.02),
    )
    held = result.strategy.held
    assert held is not None and result.risk_shares is not None
    # Deterministic: a second fresh strategy's attribution is the first one's, bit for bit.
    _, signals = run
    kept = signals[start:]
    pd.testing.assert_frame_equal(
        result.risk_shares,
        forecast_share_frame(
            [s.date for s in kept],
            [s.weights for s in kept],
            [s.diagnostics for s in kept],
            SYMBOLS,
        ),
        check_exact=True,
    )
    asset_returns = synthetic_prices.pct_change()
    contributions = return_contributions(held, asset_returns, result.strategy.returns)
    np.testing.assert_allclose(
        contributions.sum(axis=1), result.strategy.returns, rtol=0, atol=1e-15
    )
    # The costs are what proportional costs on the execution take: -c T (1 + gross).
    gross = contributions[SYMBOLS].sum(axis=1)
    np.testing.assert_allclose(
        contributions["costs"], -10e-4 * result.strategy.turnover * (1 + gross), atol=1e-15
    )
    regimes = result.regimes["regime"]
    in_force = pd.Series(regimes.to_numpy()[: len(held)], index=held.index)
    table = backtest_attribution(result.risk_shares, regimes, contributions, in_force)
    whole, *by_regime = table.returns
    assert whole.values["total"] == pytest.approx(float(result.strategy.returns.sum()), abs=1e-12)
    assert sum(r.values["total"] for r in by_regime) == pytest.approx(
        whole.values["total"], abs=1e-12
    )
    assert [r.label for r in by_regime] == ["calm", "stress"][: len(by_regime)]
    for row in (*table.forecast, *table.under_regime):
        assert sum(row.values[s] for s in SYMBOLS) == pytest.approx(1.0, abs=1e-9)
    assert [r.label for r in table.under_regime] == ["calm", "stress"]
