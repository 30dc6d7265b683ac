from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies import reference
from regime_trader.strategies.backtest import run_backtest
from regime_trader.strategies.base import BarsError, Signal, Strategy
from regime_trader.strategies.rebalance import RebalanceBand
from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams
from regime_trader.strategies.registry import STRATEGIES, strategy_from_state
from regime_trader.strategies.riskparity import relative_risk_contributions
from regime_trader.strategies.synthetic import generate_market
from tests.unit.strategies.engines import ENGINES, quiet_signals, regime_erc, registered_case

SYMBOLS = ["SPY", "TLT", "GLD"]


def _signals(strategy: Strategy, prices: pd.DataFrame) -> list[Signal]:
    return quiet_signals(strategy, prices)


def _fresh(case: str) -> Strategy:
    """A registered strategy by name, or ``regime_erc/<engine>`` with every option engaged."""
    return registered_case(case, SYMBOLS)


@pytest.mark.parametrize("case", [*sorted(STRATEGIES), *(f"regime_erc/{e}" for e in ENGINES)])
def test_restored_strategy_gives_exactly_the_same_next_signals(
    case: str, synthetic_prices: pd.DataFrame
) -> None:
    # Cut after the first fit so the state holds a fitted model, filter and covariances.
    cut = 400
    live = _fresh(case)
    _signals(live, synthetic_prices.iloc[:cut])
    state = json.loads(json.dumps(live.state_dict(), allow_nan=False))
    restored = strategy_from_state(state)
    rest = synthetic_prices.iloc[cut:]
    a = _signals(live, rest)
    b = _signals(restored, rest)
    assert [s.to_dict() for s in a] == [s.to_dict() for s in b]
    # Everything restored, not only what the next signals read: the states agree bit for bit.
    assert json.dumps(live.state_dict()) == json.dumps(restored.state_dict())
    if "/" in case:
        assert sum(s.diagnostics.get("refit") is not None for s in a) >= 5  # refits restored
        assert {s.diagnostics["engine"] for s in a if s.ready} == {case.partition("/")[2]}


def test_regime_strategy_signal_is_long_only_erc_scaled_by_exposure(
    synthetic_prices: pd.DataFrame,
) -> None:
    signals = _signals(RegimeERC(SYMBOLS), synthetic_prices)
    ready = [s for s in signals if s.ready]
    assert len(ready) > 350 and not signals[0].ready
    for s in ready:
        w = np.array([s.weights[x] for x in SYMBOLS])
        assert np.all(w >= 0) and w.sum() + s.cash == pytest.approx(1.0)
        assert w.sum() == pytest.approx(s.diagnostics["exposure"])
        assert s.regime_label in ("calm", "stress")
        assert s.regime_probs is not None and sum(s.regime_probs) == pytest.approx(1.0)
        assert max(s.diagnostics["risk_contributions"].values()) == pytest.approx(1 / 3, abs=1e-8)
        solver = s.diagnostics["erc_solver"]
        assert solver["converged"] is True and solver["max_relative_error"] <= 1e-10


def _uncorrelated_prices() -> pd.DataFrame:
    """300 sessions of three independent assets with 32%, 16% and 24% volatility a year."""
    rng = np.random.default_rng(0)
    r = rng.multivariate_normal([0, 0, 0], np.diag([4e-4, 1e-4, 2.25e-4]), size=300)
    index = pd.bdate_range("2020-01-01", periods=300)
    return pd.DataFrame(100 * np.exp(np.cumsum(r, axis=0)), columns=SYMBOLS, index=index)


def test_static_erc_weights_equalise_risk_on_the_ewma_covariance() -> None:
    prices = _uncorrelated_prices()
    strategy = reference.StaticERC(SYMBOLS, cov_halflife=1e9, shrinkage=0.0)
    signal = strategy.update(prices)
    w = np.array([signal.weights[s] for s in SYMBOLS])
    returns = np.log(prices).diff().dropna().to_numpy()
    cov = returns.T @ returns / len(returns)  # EWMA around zero with no decay
    np.testing.assert_allclose(relative_risk_contributions(w, cov), 1 / 3, atol=1e-6)
    assert signal.cash == pytest.approx(0.0)


def test_reference_weights() -> None:
    bars = pd.DataFrame([[1.0, 2.0, 3.0]], columns=SYMBOLS, index=[pd.Timestamp("2020-01-02")])
    assert reference.EqualWeight(SYMBOLS).update(bars).weights == pytest.approx(
        dict.fromkeys(SYMBOLS, 1 / 3)
    )
    assert reference.SixtyForty(SYMBOLS).update(bars).weights == {
        "SPY": 0.6,
        "TLT": 0.4,
        "GLD": 0.0,
    }
    assert reference.BuyHold(SYMBOLS).update(bars).weights == {"SPY": 1.0, "TLT": 0.0, "GLD": 0.0}


def test_already_seen_bars_are_skipped_and_no_new_bar_is_an_error(
    synthetic_prices: pd.DataFrame,
) -> None:
    strategy = reference.EqualWeight(SYMBOLS)
    strategy.update(synthetic_prices.iloc[:10])
    signal = strategy.update(synthetic_prices.iloc[5:12])  # overlaps: only 2 new bars
    assert signal.date == synthetic_prices.index[11]
    with pytest.raises(BarsError, match="no bar after"):
        strategy.update(synthetic_prices.iloc[:12])


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda df: df.drop(columns="TLT"), "lack symbols"),
        (lambda df: df.iloc[::-1], "increasing"),
        (lambda df: df.assign(GLD=df.GLD.where(df.index != df.index[3], np.nan)), "GLD on"),
        (lambda df: df.assign(SPY=-df.SPY), "not a positive price"),
    ],
)
def test_bad_bars_are_rejected_with_the_symbol_and_date(
    synthetic_prices: pd.DataFrame, mutate: object, match: str
) -> None:
    bars = mutate(synthetic_prices.iloc[:10])  # type: ignore[operator]
    with pytest.raises(BarsError, match=match):
        RegimeERC(SYMBOLS).update(bars)


def test_state_of_another_strategy_or_version_is_refused() -> None:
    state = reference.EqualWeight(SYMBOLS).state_dict()
    with pytest.raises(ValueError, match="not 'buy_hold'"):
        reference.BuyHold.from_state(state)
    with pytest.raises(ValueError, match="version"):
        reference.EqualWeight.from_state({**state, "version": 99})
    with pytest.raises(ValueError, match="unknown strategy"):
        strategy_from_state({**state, "strategy": "nope"})


def test_unknown_hmm_feature_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"hmm_features: '\{0\}_nonsense' matches no feature"):
        RegimeERC(SYMBOLS, RegimeERCParams(hmm_features=("{0}_nonsense",)))


def test_static_erc_signal_carries_the_solver_diagnostics_of_its_weights(
    synthetic_prices: pd.DataFrame,
) -> None:
    signals = [
        s for s in _signals(reference.StaticERC(SYMBOLS), synthetic_prices.iloc[:200]) if s.ready
    ]
    assert len(signals) > 100
    for s in signals:
        solver = s.diagnostics["erc_solver"]
        assert set(solver) == {"converged", "n_iter", "max_relative_error"}
        assert solver["converged"] is True and isinstance(solver["n_iter"], int)
        # The reported error is the one of the weights traded: recompute it from the reported
        # relative risk contributions (equal budgets of 1/3).
        rc = np.array(list(s.diagnostics["risk_contributions"].values()))
        assert float(np.max(np.abs(3 * rc - 1))) == pytest.approx(
            solver["max_relative_error"], abs=1e-12
        )
    json.dumps([s.diagnostics for s in signals], allow_nan=False)  # alerts serialise them


def _version_1(document: dict[str, Any], returns: list[list[float]]) -> dict[str, Any]:
    """A version-2 state document in the version-1 layout: window columns oldest first."""
    window = document["tracker"].pop("window")
    ring = np.asarray(window["ring"])
    rows = np.roll(ring, -window["start"], axis=0)
    width = window["n_features"]
    document["tracker"]["X"] = rows[:, :width].tolist()
    document["tracker"]["equity"] = rows[:, width].tolist()
    return {**document, "version": 1, "returns": returns}


def test_saved_returns_not_aligned_with_a_version_1_window_are_refused(
    synthetic_prices: pd.DataFrame,
) -> None:
    strategy = RegimeERC(SYMBOLS)
    _signals(strategy, synthetic_prices.iloc[:300])
    state = json.loads(json.dumps(strategy.state_dict()))
    n = len(state["tracker"]["window"]["ring"])
    assert n > 200
    returns = np.diff(np.log(synthetic_prices.to_numpy()), axis=0)[-n:].tolist()
    strategy_from_state(_version_1(json.loads(json.dumps(state)), returns))  # aligned: read
    with pytest.raises(ValueError, match=rf"\(X, equity, payload\): \({n}, {n}, {n - 1}\)"):
        strategy_from_state(_version_1(state, returns[1:]))


def test_a_saved_training_ring_that_does_not_fit_the_window_is_refused(
    synthetic_prices: pd.DataFrame,
) -> None:
    strategy = RegimeERC(SYMBOLS, RegimeERCParams.from_dict({"regime": {"max_train_obs": 260}}))
    _signals(strategy, synthetic_prices.iloc[:400])
    state = strategy.save_state()
    window = state.tree["tracker"]["window"]
    assert window["ring"].shape[0] == 260 and 0 < window["start"] < 260  # full, wrapped
    window["ring"] = np.vstack((window["ring"], window["ring"][:1]))
    with pytest.raises(ValueError, match=r"ring of shape \(261, \d+\) .* window of 260 rows"):
        strategy_from_state(state)


def test_a_state_saved_before_the_new_parameters_continues_as_it_was_saved(
    synthetic_prices: pd.DataFrame,
) -> None:
    # Before issue 10 a state had no engine, bands, volatility history or relative target, and
    # the persistence multiplier was always applied: such a state restores with that behaviour.
    legacy = {"policy": {"persistence_multiplier": True}}
    strategy = RegimeERC(SYMBOLS, RegimeERCParams.from_dict(legacy))
    _signals(strategy, synthetic_prices.iloc[:300])
    state = json.loads(json.dumps(strategy.state_dict()))
    params = state["params"]
    new = ("engine", "equity_symbol", "bond_symbol", "jump", "jump_feature_spec", "jump_features")
    for key in (*new, "rebalance"):
        del params[key]
    for key in ("persistence_multiplier", "vol_target_mode", "vol_multiple", "regime_levels"):
        del params["policy"][key]
    for key in ("vol_history", "previous"):
        del state[key]
    del state["features"]["pair"]
    restored = strategy_from_state(state)
    assert isinstance(restored, RegimeERC)
    assert restored.params.policy.persistence_multiplier is True
    assert restored.params.engine == "hmm"
    rest = synthetic_prices.iloc[300:360]
    # What the old state did not hold (the median, the band's reference) is not read with
    # the absolute target and no band: the weights continue exactly.
    expected = [s.weights for s in _signals(strategy, rest)]
    assert [s.weights for s in _signals(restored, rest)] == expected


@pytest.mark.parametrize("engine", ENGINES)
def test_the_decision_band_is_the_rebalancing_rule_applied_to_the_previous_decision(
    engine: str, synthetic_prices: pd.DataFrame
) -> None:
    prices = synthetic_prices.iloc[:450]
    band = {"weight_band": 0.02, "exposure_band": 0.05}
    free = _signals(regime_erc(SYMBOLS, engine), prices)
    banded = _signals(regime_erc(SYMBOLS, engine, rebalance=band), prices)
    rule = RebalanceBand(**band)
    previous = np.zeros(3)
    kept = 0
    for a, b in zip(free, banded, strict=True):
        target = np.array([a.weights[x] for x in SYMBOLS])
        got = np.array([b.weights[x] for x in SYMBOLS])
        # The band only filters the decision: everything upstream is the same.
        assert a.diagnostics.get("exposure") == b.diagnostics.get("exposure")
        if b.ready:
            np.testing.assert_array_equal(got, rule.apply(previous, target))
            assert b.diagnostics["decided_exposure"] == pytest.approx(got.sum())
            kept += int(np.sum(got == previous))
        previous = got
    assert kept > 100  # the band held weights on many days
    assert _turnover(banded) < _turnover(free)


def _turnover(signals: list[Signal]) -> float:
    pairs = itertools.pairwise(signals)
    return sum(abs(a.weights[k] - b.weights[k]) for a, b in pairs for k in SYMBOLS)


def test_equal_weight_quarterly_trades_on_the_first_session_of_each_quarter_only(
    synthetic_prices: pd.DataFrame,
) -> None:
    prices = synthetic_prices.iloc[:400]
    result = run_backtest(prices, reference.EqualWeightQuarterly(SYMBOLS), start=prices.index[10])
    turnover = result.strategy.turnover.to_numpy()
    weights = result.strategy.weights[SYMBOLS].to_numpy()[: len(turnover)]
    quarter = [(d.year, (d.month - 1) // 3) for d in result.strategy.weights.index]
    # The i-th return follows the i-th decision; decisions are consecutive sessions.
    new = np.array([i > 0 and quarter[i] != quarter[i - 1] for i in range(len(turnover))])
    assert new.sum() >= 5
    assert turnover[0] == pytest.approx(1.0)  # the first purchase, from cash
    assert np.all(turnover[new] > 1e-4)
    assert np.all(turnover[1:][~new[1:]] < 1e-12)  # in between: the drift, nothing traded
    np.testing.assert_allclose(weights[new], 1 / 3)
    assert np.abs(weights[~new] - 1 / 3).max() > 0.01  # and the weights did drift


def test_inverse_volatility_weights_are_proportional_to_one_over_sigma() -> None:
    prices = _uncorrelated_prices()
    signal = reference.InverseVolatility(SYMBOLS, cov_halflife=1e9, shrinkage=0.0).update(prices)
    returns = np.log(prices).diff().dropna().to_numpy()
    sigma = np.sqrt((returns**2).mean(axis=0))
    expected = (1 / sigma) / (1 / sigma).sum()
    np.testing.assert_allclose([signal.weights[s] for s in SYMBOLS], expected, rtol=1e-6)


def test_sixty_forty_and_buy_hold_follow_the_named_equity_and_bond() -> None:
    bars = pd.DataFrame([[1.0, 2.0, 3.0]], columns=SYMBOLS, index=[pd.Timestamp("2020-01-02")])
    sixty = reference.SixtyForty(SYMBOLS, equity="GLD", bond="TLT")
    assert sixty.update(bars).weights == {"SPY": 0.0, "TLT": 0.4, "GLD": 0.6}
    restored = strategy_from_state(json.loads(json.dumps(sixty.state_dict())))
    assert isinstance(restored, reference.SixtyForty) and restored.pair == (2, 1)
    assert reference.BuyHold(SYMBOLS, equity="TLT").update(bars).weights == {
        "SPY": 0,
        "TLT": 1,
        "GLD": 0,
    }
    with pytest.raises(ValueError, match="bond_symbol 'BND' is not one of the symbols"):
        reference.SixtyForty(SYMBOLS, bond="BND")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 2])
def test_the_strategys_jump_engine_labels_the_synthetic_regimes_as_its_tracker_does(
    seed: int,
) -> None:
    # The tracker's acceptance (test_jump_online: >= 85% of days, <= 1.5x the switches) on the
    # same features, now through RegimeERC: the wiring loses nothing. Measured: seed 0 0.882 at
    # 1.04x, seed 2 0.858 at 0.94x, as the tracker alone. (With the strategy's default jump
    # features, the literature's equity-only set at half-lives 5-21, seeds 0 and 2 give 0.753
    # and 0.812, and seed 2 never separates a stress state: a prior for the research protocol
    # to revisit, not a choice made here.)
    market = generate_market(2000, seed=seed)
    features = {"jump_features": ["*_logvol_*", "*_ewret_*"]}
    strategy = regime_erc(
        SYMBOLS,
        "jump",
        jump={"n_init": 10, "refit_cold_starts": 3},
        **features,
        jump_feature_spec={"halflives": [2.0, 5.0, 10.0]},
    )
    signals = [s for s in _signals(strategy, market.prices) if s.ready]
    truth = pd.Series(market.regimes, index=market.prices.index).loc[[s.date for s in signals]]
    labels = np.array([s.regime for s in signals])
    accuracy = float((labels == truth.to_numpy()).mean())
    ratio = np.count_nonzero(np.diff(labels)) / np.count_nonzero(np.diff(truth.to_numpy()))
    print(f"seed {seed}: strategy's jump label accuracy {accuracy:.3f}, switches {ratio:.2f}x")
    assert accuracy >= 0.85
    assert ratio <= 1.5


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_ready_signal_reports_its_gross_exposure(
    name: str, synthetic_prices: pd.DataFrame
) -> None:
    strategy = _fresh(name)
    ready = [s for s in _signals(strategy, synthetic_prices.iloc[:300]) if s.ready]
    assert ready
    for signal in ready:
        exposure = signal.diagnostics["exposure"]
        assert exposure == pytest.approx(sum(signal.weights.values()), abs=1e-12)
        assert exposure == pytest.approx(1.0 - signal.cash, abs=1e-12)
