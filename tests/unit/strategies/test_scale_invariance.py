"""The assumption live adjusted history rests on: weights do not depend on a symbol's price scale.

Alpaca's adjusted closes of the same sessions, queried on two dates, differ per symbol by one
constant (the splits and dividends in between), and :mod:`regime_trader.service.bar_history` keeps
a restored strategy on the scale it started on. A backtest on the file adjusted after every action
then gives the live weights only if every strategy's weights are invariant to multiplying a symbol's
whole price history by a constant. Checked here for every registered strategy, against
independently drawn factors per symbol, to floating point rounding (the parity test's 1e-9).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regime_trader.strategies.base import Signal, Strategy
from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams
from regime_trader.strategies.regime_online import RegimeSettings
from regime_trader.strategies.registry import STRATEGIES

SYMBOLS = ["SPY", "TLT", "GLD"]
TOLERANCE = 1e-9
# A factor per symbol: splits (1/2, 1/10, 3/2...), dividends (just below 1), and extremes.
factor = st.one_of(
    st.sampled_from([0.5, 0.1, 1.5, 1 / 3, 20.0]),
    st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False),
)


def _fresh(name: str) -> Strategy:
    if name == "regime_erc":
        # A shorter first training window than the default 250 rows reaches the fitted path
        # (HMM fit, monthly and drift refits, ERC, exposure policy) in fewer bars; the
        # invariance is a property of that code, not of the window length.
        regime = RegimeSettings(min_train_obs=120, n_init=2)
        return RegimeERC(SYMBOLS, RegimeERCParams(regime=regime))
    return STRATEGIES[name](SYMBOLS)


def _weights(name: str, prices: pd.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signals: list[Signal] = list(_fresh(name).iter_update(prices))
    return np.array([[s.weights[x] for x in SYMBOLS] + [float(s.ready)] for s in signals])


@pytest.fixture(scope="module")
def prices(synthetic_prices: pd.DataFrame) -> pd.DataFrame:
    # 260 sessions: the regime strategy's first fit after about 141 bars, then refits.
    return synthetic_prices.iloc[:260]


@pytest.fixture(scope="module")
def unscaled(prices: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: _weights(name, prices) for name in STRATEGIES}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STRATEGIES))
@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(factors=st.tuples(factor, factor, factor))
def test_weights_are_invariant_to_scaling_each_symbols_whole_history(
    name: str,
    factors: tuple[float, float, float],
    prices: pd.DataFrame,
    unscaled: dict[str, np.ndarray],
) -> None:
    scaled = prices * np.asarray(factors)

    got = _weights(name, scaled)

    expected = unscaled[name]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_the_regime_strategy_is_invested_in_the_checked_window(
    unscaled: dict[str, np.ndarray],
) -> None:
    """The control: the invariance above is checked on real decisions, not on warm-up cash."""
    weights = unscaled["regime_erc"]
    ready = weights[:, -1] == 1.0
    assert ready.sum() > 100
    assert len(np.unique(weights[ready, 0].round(6))) > 50  # decisions that move
    assert (weights[ready, :-1].sum(axis=1) > 0.1).all()
