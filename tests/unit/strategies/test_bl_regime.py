"""The Black-Litterman regime strategy: parameters, the benchmark without views, the
tracking-error bound on every signal, causality, determinism and an exact restore."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from regime_trader.strategies.base import Signal, Strategy
from regime_trader.strategies.bl_regime import BlackLittermanParams, BlackLittermanRegime
from regime_trader.strategies.registry import build_strategy, strategy_from_state
from regime_trader.strategies.state import StrategyState
from tests.unit.strategies.engines import quiet_signals as _quiet_signals

SYMBOLS = ["SPY", "TLT", "GLD"]
# A shorter first training window than the default 250 rows reaches the fitted path (first fit,
# monthly refits, per-regime means, the TE-bounded portfolio) in fewer bars.
FAST = {"regimes": {"regime": {"min_train_obs": 120, "n_init": 2}}}


def quiet_signals(strategy: Strategy, prices: pd.DataFrame) -> list[Signal]:
    # One BLAS/OpenMP thread, as the backtest and the live step run: hmmlearn's k-means start
    # is slower by orders of magnitude on a loaded machine with every thread.
    with threadpool_limits(limits=1):
        return _quiet_signals(strategy, prices)


def _strategy(**overrides: object) -> BlackLittermanRegime:
    strategy = build_strategy("bl_regime", SYMBOLS, {**FAST, **overrides})
    assert isinstance(strategy, BlackLittermanRegime)
    return strategy


def _weights(signal_weights: dict[str, float]) -> np.ndarray:
    return np.array([signal_weights[s] for s in SYMBOLS])


@pytest.fixture(scope="module")
def prices(synthetic_prices: pd.DataFrame) -> pd.DataFrame:
    return synthetic_prices.iloc[:450]


def test_a_portfolios_table_sets_every_parameter_and_round_trips() -> None:
    table = {
        "risk_aversion": 3.0,
        "tau": 0.025,
        "view_confidence": 0.5,
        "te_target": 0.02,
        "benchmark_weights": [0.5, 0.3, 0.2],
        "regimes": {"engine": "jump", "jump": {"n_init": 3}, "cov_halflife": 42.0},
    }
    params = BlackLittermanParams.from_dict(table)
    assert params.regimes.engine == "jump" and params.regimes.cov_halflife == 42.0
    assert params.benchmark_weights == (0.5, 0.3, 0.2)
    assert BlackLittermanParams.from_dict(params.to_dict()) == params
    strategy = build_strategy("bl_regime", SYMBOLS, table)
    assert strategy.settings() == params.to_dict()
    assert BlackLittermanParams() == BlackLittermanParams.from_dict({})  # documented defaults
    assert (BlackLittermanParams().te_target, BlackLittermanParams().tau) == (0.03, 0.05)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"te_targt": 0.03}, "unknown parameter 'te_targt'"),
        ({"te_target": -0.01}, "te_target must be a finite number >= 0"),
        ({"view_confidence": -1.0}, "view_confidence"),
        ({"tau": 0.0}, "tau"),
        ({"benchmark_weights": [0.5, 0.6, -0.1]}, "benchmark_weights must be >= 0"),
        ({"benchmark_weights": [0.5, 0.5]}, "benchmark_weights has 2 values for 3 symbols"),
        ({"regimes": {"engine": "svm"}}, "regimes.engine must be one of"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(table: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_strategy("bl_regime", SYMBOLS, table)


def test_without_confidence_in_the_views_every_decision_is_the_benchmark(
    prices: pd.DataFrame,
) -> None:
    for benchmark in (None, [0.5, 0.3, 0.2]):
        expected = np.full(3, 1 / 3) if benchmark is None else np.array(benchmark)
        signals = quiet_signals(_strategy(view_confidence=0.0, benchmark_weights=benchmark), prices)
        ready = [s for s in signals if s.ready]
        assert len(ready) > 100
        for s in ready:
            np.testing.assert_allclose(_weights(s.weights), expected, rtol=0, atol=1e-14)
            assert s.diagnostics["tracking_error"] < 1e-12


def test_every_signal_is_long_only_fully_invested_and_within_the_te_budget(
    prices: pd.DataFrame,
) -> None:
    signals = quiet_signals(_strategy(te_target=0.02), prices)
    ready = [s for s in signals if s.ready]
    assert len(ready) > 100 and not any(s.ready for s in signals[:100])
    for s in ready:
        w = _weights(s.weights)
        assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12) and s.cash < 1e-12
        d = s.diagnostics
        assert d["tracking_error"] <= 0.02 * (1 + 1e-12)
        assert d["te_binding"] == (d["te_multiplier"] != 0.0)
        active = _weights(d["active_weights"])
        np.testing.assert_allclose(active, w - 1 / 3, atol=1e-15)
        views = _weights(d["views_active"])
        forecast = _weights(d["forecast_returns"])
        np.testing.assert_allclose(views, forecast - forecast.mean(), atol=1e-15)
        assert s.regime_probs is not None and sum(s.regime_probs) == pytest.approx(1.0)
    binding = [s for s in ready if s.diagnostics["te_binding"]]
    assert binding  # the budget is exercised, and it is spent exactly where it binds
    assert all(s.diagnostics["tracking_error"] == pytest.approx(0.02, rel=1e-8) for s in binding)
    moved = {tuple(np.round(_weights(s.weights), 6)) for s in ready}
    assert len(moved) > 50  # the views move the portfolio


def test_decisions_up_to_any_cut_ignore_later_bars(prices: pd.DataFrame) -> None:
    full = [s.to_dict() for s in quiet_signals(_strategy(), prices)]
    for cut in (200, 330):
        short = [s.to_dict() for s in quiet_signals(_strategy(), prices.iloc[: cut + 1])]
        assert short == full[: cut + 1]
    # A shock after the cut changes later decisions, not earlier ones.
    shocked = prices.copy()
    shocked.iloc[331:] *= np.array([0.7, 1.2, 1.0])
    after = [s.to_dict() for s in quiet_signals(_strategy(), shocked)]
    assert after[:331] == full[:331] and after[340:] != full[340:]


def test_two_runs_give_identical_signals(prices: pd.DataFrame) -> None:
    a = [s.to_dict() for s in quiet_signals(_strategy(), prices)]
    b = [s.to_dict() for s in quiet_signals(_strategy(), prices)]
    assert a == b


@pytest.mark.parametrize("engine", ["hmm", "jump"])
def test_a_restored_strategy_continues_bit_for_bit(
    engine: str, synthetic_prices: pd.DataFrame
) -> None:
    regimes = {"engine": engine, "jump": {"n_init": 3, "refit_cold_starts": 1}}
    live = BlackLittermanRegime(SYMBOLS, BlackLittermanParams.from_dict({"regimes": regimes}))
    cut = 400  # after the first fit: fitted model, filter, per-regime moments are saved
    quiet_signals(live, synthetic_prices.iloc[:cut])
    from_json = strategy_from_state(json.loads(json.dumps(live.state_dict(), allow_nan=False)))
    from_bytes = strategy_from_state(StrategyState.from_bytes(live.save_state().to_bytes()))
    rest = synthetic_prices.iloc[cut:]
    expected = [s.to_dict() for s in quiet_signals(live, rest)]
    assert sum(s["ready"] for s in expected) == len(expected)
    for restored in (from_json, from_bytes):
        assert isinstance(restored, BlackLittermanRegime)
        assert restored.settings() == live.settings()
        assert [s.to_dict() for s in quiet_signals(restored, rest)] == expected
        assert restored.save_state().fields() == live.save_state().fields()


def test_the_state_of_another_strategy_is_refused() -> None:
    erc = build_strategy("regime_erc", SYMBOLS, {})
    with pytest.raises(ValueError, match="not 'bl_regime'"):
        BlackLittermanRegime.from_state(erc.state_dict())


def test_weights_do_not_depend_on_each_symbols_price_scale(prices: pd.DataFrame) -> None:
    # The contract of every strategy (strategies/base.py): adjusted histories fetched on two
    # dates differ by one constant per symbol.
    base = quiet_signals(_strategy(), prices)
    scaled = quiet_signals(_strategy(), prices * np.array([0.1, 20.0, 1 / 3]))
    assert sum(s.ready for s in base) > 100
    for a, b in zip(base, scaled, strict=True):
        assert a.ready == b.ready
        np.testing.assert_allclose(_weights(a.weights), _weights(b.weights), rtol=0, atol=1e-9)
