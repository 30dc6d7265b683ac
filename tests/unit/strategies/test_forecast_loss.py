"""QLIKE losses of variance forecasts and the EWMA-vs-GARCH comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.forecast_loss import (
    MEAN,
    compare_forecasts,
    loss_difference,
    markdown_table,
    newey_west_variance,
    qlike,
    variance_forecasts,
)
from regime_trader.strategies.garch import GarchSettings

SHORT = GarchSettings(min_train_obs=100, max_train_obs=300, refit_months=1)


def _returns(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vol = 0.01 * np.exp(0.5 * np.sin(np.arange(n) / 40.0))[:, None]  # slow volatility cycles
    data = vol * rng.standard_normal((n, 2))
    return pd.DataFrame(data, index=pd.bdate_range("2011-01-03", periods=n), columns=["A", "B"])


def test_qlike_on_a_hand_computed_example() -> None:
    realised = np.array([4e-4, 1e-4, 1e-4, 0.0])
    forecast = np.array([2e-4, 1e-4, 4e-4, 1e-4])
    loss = qlike(realised, forecast)
    assert loss[0] == pytest.approx(2.0 - math.log(2.0) - 1.0, rel=1e-14)  # 0.3068...
    assert loss[1] == 0.0  # a perfect forecast
    assert loss[2] == pytest.approx(0.25 - math.log(0.25) - 1.0, rel=1e-14)  # 0.6362...
    assert math.isnan(loss[3])  # a zero return has no finite loss
    assert math.isnan(qlike(np.array([1e-4]), np.array([np.nan]))[0])


def test_the_ewma_forecast_of_a_day_is_built_from_the_days_before_it() -> None:
    returns = _returns(5)
    fc = variance_forecasts(returns, "ewma", halflife=2.0)
    assert fc.iloc[0].isna().all()  # nothing seen yet
    lam = 2.0 ** (-1 / 2.0)
    r = returns.to_numpy()
    expected = (lam * r[0] ** 2 + r[1] ** 2) / (lam + 1.0)
    np.testing.assert_allclose(fc.iloc[2].to_numpy(), expected, rtol=1e-14)


@pytest.mark.parametrize("model", ["ewma", "garch", "gjr"])
def test_forecasts_do_not_depend_on_later_returns(model: str) -> None:
    returns = _returns(260)
    full = variance_forecasts(returns, model, settings=SHORT)  # type: ignore[arg-type]
    cut = 180
    short = variance_forecasts(returns.iloc[:cut], model, settings=SHORT)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(full.iloc[:cut], short)
    # The forecast of day `cut` already exists before that day's return is known.
    changed = returns.copy()
    changed.iloc[cut:] *= 5.0
    other = variance_forecasts(changed, model, settings=SHORT)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(full.iloc[: cut + 1], other.iloc[: cut + 1])
    assert full.iloc[-1].notna().all()


def test_newey_west_without_lags_is_the_sample_variance_and_dm_finds_a_real_difference() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0.2, 1.0, 2000)
    assert newey_west_variance(d, 0) == pytest.approx(float(np.var(d)), rel=1e-12)
    result = loss_difference(d, n_boot=500)
    assert result.mean == pytest.approx(float(d.mean()))
    assert result.dm_stat > 5 and result.p_value < 1e-6
    assert result.ci_low < result.mean < result.ci_high and result.ci_low > 0
    null = loss_difference(rng.normal(0.0, 1.0, 2000), n_boot=500)
    assert null.p_value > 0.01 and null.ci_low < 0 < null.ci_high


def test_the_comparison_scores_every_model_on_the_same_days_of_the_window_only() -> None:
    returns = _returns(500)
    returns.iloc[250, 1] = 0.0  # a stale close: left out for every model
    comparison = compare_forecasts(returns, "2011-06-01", "2012-06-29", settings=SHORT, n_boot=200)
    assert comparison.start >= pd.Timestamp("2011-06-01")
    assert comparison.end == pd.Timestamp("2012-06-29")
    assert list(comparison.losses.index) == ["A", "B", MEAN]
    assert list(comparison.losses.columns) == ["ewma", "garch", "gjr"]
    assert comparison.n_days["A"] == comparison.n_days["B"] + 1
    assert (comparison.losses.to_numpy() > 0).all()
    garch_a = comparison.differences[("garch", "A")]
    expected = comparison.losses.loc["A", "garch"] - comparison.losses.loc["A", "ewma"]
    assert garch_a.mean == pytest.approx(expected, rel=1e-9)
    # Returns after the window change nothing.
    later = returns.copy()
    later.loc["2012-07-02":] *= 10.0
    again = compare_forecasts(later, "2011-06-01", "2012-06-29", settings=SHORT, n_boot=200)
    pd.testing.assert_frame_equal(comparison.losses, again.losses)
    table = markdown_table(comparison)
    assert table.splitlines()[0].startswith("| asset | days | ewma | garch | gjr |")
    assert len(table.splitlines()) == 2 + 3


def test_a_window_without_every_models_forecast_is_refused() -> None:
    with pytest.raises(ValueError, match="has every model's forecast"):
        compare_forecasts(_returns(150), "2011-01-03", "2011-03-01", settings=SHORT)


@pytest.mark.slow
@pytest.mark.realdata
def test_on_the_development_window_of_the_3_asset_file(real_prices: pd.DataFrame) -> None:
    prices = real_prices.loc[:"2014-12-31"]
    log_closes = np.log(prices.to_numpy())
    returns = pd.DataFrame(np.diff(log_closes, axis=0), prices.index[1:], prices.columns)
    comparison = compare_forecasts(returns, "2006-01-01", "2014-12-31", n_boot=200)
    assert comparison.start == pd.Timestamp("2006-01-03")  # every model ready on day one
    assert comparison.end == pd.Timestamp("2014-12-31")
    assert (comparison.n_days > 2200).all()
    assert np.isfinite(comparison.losses.to_numpy()).all()
    assert (comparison.losses.to_numpy() > 0).all()
