from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.features import FeatureEngine, FeatureSpec, compute_features
from tests.support.online_engines import assert_json_restored_engine_continues


def test_features_of_a_prefix_do_not_change_when_more_bars_arrive(
    synthetic_prices: pd.DataFrame,
) -> None:
    full = compute_features(synthetic_prices)
    cut = compute_features(synthetic_prices.iloc[:300])
    pd.testing.assert_frame_equal(full.iloc[:300], cut)


def test_vol_normalised_return_divides_by_the_previous_days_ewma_volatility(
    synthetic_prices: pd.DataFrame,
) -> None:
    spec = FeatureSpec(vol_halflife=10.0)
    features = compute_features(synthetic_prices, spec)
    log_ret = np.log(synthetic_prices["SPY"]).diff()
    # Direct computation with pandas' bias-corrected EWMA of squared returns.
    var = (log_ret**2).ewm(halflife=10.0, adjust=True).mean()
    expected = log_ret / np.sqrt(var.shift(1))
    np.testing.assert_allclose(features["SPY_vnr"].iloc[3:], expected.iloc[3:], rtol=1e-10)
    np.testing.assert_allclose(
        features["SPY_logvol"].iloc[2:], np.log(np.sqrt(var.iloc[2:] * 252)), rtol=1e-10
    )


def test_efficiency_ratio_is_one_on_a_clean_trend_and_small_on_noise() -> None:
    n = 60
    trend = pd.DataFrame(
        {"A": np.exp(np.linspace(0, 0.3, n))}, index=pd.bdate_range("2020-01-01", periods=n)
    )
    zigzag = pd.DataFrame({"A": 100 * np.exp(0.01 * (np.arange(n) % 2))}, index=trend.index)
    assert compute_features(trend)["A_trend"].iloc[-1] == pytest.approx(1.0)
    assert abs(compute_features(zigzag)["A_trend"].iloc[-1]) < 0.1


def test_stock_bond_correlation_matches_a_direct_ewma_computation(
    synthetic_prices: pd.DataFrame,
) -> None:
    features = compute_features(synthetic_prices, FeatureSpec(corr_halflife=63.0))
    r = np.log(synthetic_prices).diff().iloc[1:]
    ew = lambda s: s.ewm(halflife=63.0, adjust=True).mean()  # noqa: E731
    expected = ew(r.SPY * r.TLT) / np.sqrt(ew(r.SPY**2) * ew(r.TLT**2))
    np.testing.assert_allclose(features["corr_SPY_TLT"].iloc[1:], expected, rtol=1e-10)


def test_engine_restored_from_json_state_continues_identically(
    synthetic_prices: pd.DataFrame,
) -> None:
    engine = FeatureEngine(list(synthetic_prices.columns))
    assert_json_restored_engine_continues(
        engine, FeatureEngine.from_state, synthetic_prices.to_numpy(), saved_after=100, until=150
    )


def test_warmup_rows_are_nan_and_ready_flips_after_warmup() -> None:
    engine = FeatureEngine(["A", "B"], FeatureSpec(trend_window=5))
    rows = [engine.update(np.array([100.0 + i, 50.0 - 0.1 * i])) for i in range(7)]
    assert np.isnan(rows[0]).all()
    assert np.isnan(rows[4][3])  # trend needs trend_window + 1 prices
    assert not np.isnan(rows[5]).any()
    assert engine.ready


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"vol_halflife": 0}, "vol_halflife"),
        ({"trend_window": 1}, "trend_window"),
        ({"kama_fast": 30, "kama_slow": 2}, "kama_fast"),
    ],
)
def test_invalid_feature_spec_is_rejected(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FeatureSpec(**kwargs)  # type: ignore[arg-type]


def test_non_positive_close_is_rejected() -> None:
    engine = FeatureEngine(["A"])
    with pytest.raises(ValueError, match="positive"):
        engine.update(np.array([0.0]))
