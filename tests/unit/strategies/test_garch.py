"""GARCH variances: the hand-written recursion against arch, causality, determinism, state."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from arch import arch_model

from regime_trader.strategies.garch import (
    SCALE,
    GarchCovariance,
    GarchKind,
    GarchSettings,
    fit_garch,
    garch_step,
    with_variances,
)
from regime_trader.strategies.state import StrategyState, json_tree
from tests.support.fresh_python import run_fresh

KINDS: tuple[GarchKind, ...] = ("garch", "gjr")
# A short window and calendar so the ring wraps and several refits happen in a few hundred days.
SHORT = GarchSettings(min_train_obs=120, max_train_obs=200, refit_months=1)


def _garch_returns(n: int, n_assets: int = 2, seed: int = 0) -> pd.DataFrame:
    """Returns simulated from a GJR-GARCH (daily vol near 1%), on business days."""
    rng = np.random.default_rng(seed)
    omega, alpha, gamma, beta = 2e-6, 0.05, 0.08, 0.88
    out = np.empty((n, n_assets))
    var = np.full(n_assets, omega / (1 - alpha - gamma / 2 - beta))
    for t in range(n):
        out[t] = np.sqrt(var) * rng.standard_normal(n_assets)
        var = omega + (alpha + gamma * (out[t] < 0)) * out[t] ** 2 + beta * var
    return pd.DataFrame(out, index=pd.bdate_range("2010-01-04", periods=n))


def _forecasts(est: GarchCovariance, returns: pd.DataFrame) -> np.ndarray:
    """The variance held after each day's update, one row per day."""
    rows = []
    for date, r in zip(returns.index, returns.to_numpy(), strict=True):
        est.update(date, r)
        rows.append(est.variances)
    return np.array(rows)


@pytest.mark.parametrize("kind", KINDS)
def test_the_daily_recursion_matches_arch_forecasting_with_the_same_parameters(
    kind: GarchKind,
) -> None:
    y = _garch_returns(900, 1).to_numpy()[:, 0]
    n = 600
    params, variance = fit_garch(y[:n], kind)
    var = np.array([variance])
    for t in range(n, len(y)):
        var = garch_step(params[None, :], var, SCALE * y[t : t + 1])
    # arch with the parameters fixed, on the longer sample (same backcast: its first days).
    o = 1 if kind == "gjr" else 0
    fixed = params if o else params[[0, 1, 3]]
    model = arch_model(SCALE * y, mean="Zero", vol="GARCH", p=1, o=o, q=1, rescale=False)
    expected = model.fix(fixed).forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]
    assert var[0] == pytest.approx(expected, rel=1e-10)
    if kind == "garch":
        assert params[2] == 0.0
    assert 0 < params[1] + params[2] / 2 + params[3] < 1


def test_after_a_fit_the_forecast_is_archs_own_and_scaled_back_to_return_units() -> None:
    returns = _garch_returns(160)
    est = GarchCovariance(2, "gjr", SHORT)
    reasons = [est.update(d, r) for d, r in zip(returns.index, returns.to_numpy(), strict=True)]
    assert reasons[119] == "initial" and not any(reasons[:119])  # on the 120th return
    fit_day = returns.index[119]
    next_month = next(i for i in range(120, 160) if returns.index[i].month != fit_day.month)
    assert reasons[next_month] == "scheduled" and not any(reasons[120:next_month])
    replay = GarchCovariance(2, "gjr", SHORT)
    _forecasts(replay, returns.loc[:fit_day])
    for i in range(2):
        _, expected = fit_garch(returns.loc[:fit_day].to_numpy()[:, i], "gjr")
        assert replay.variances[i] == expected / SCALE**2
    assert replay.fitted_.all() and replay.n_fits_ == 1


@pytest.mark.parametrize("kind", KINDS)
def test_forecasts_up_to_a_day_ignore_later_returns(kind: GarchKind) -> None:
    returns = _garch_returns(420)
    full = _forecasts(GarchCovariance(2, kind, SHORT), returns)
    assert np.isfinite(full[-1]).all()
    for cut in (150, 260, 333):
        changed = returns.copy()
        changed.iloc[cut + 1 :] *= 3.0  # a different future
        other = _forecasts(GarchCovariance(2, kind, SHORT), changed)
        np.testing.assert_array_equal(full[: cut + 1], other[: cut + 1])
        assert not np.array_equal(full[cut + 2 :], other[cut + 2 :])


def test_two_runs_give_the_same_bits() -> None:
    returns = _garch_returns(400)
    a = _forecasts(GarchCovariance(2, "gjr", SHORT), returns)
    b = _forecasts(GarchCovariance(2, "gjr", SHORT), returns)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cut", [100, 150, 333])  # before the fit, ring not full, ring wrapped
def test_a_restored_estimator_continues_bit_for_bit(cut: int) -> None:
    returns = _garch_returns(420)
    live = GarchCovariance(2, "gjr", SHORT)
    _forecasts(live, returns.iloc[:cut])
    compact = StrategyState({"garch": live.state_dict()}).to_bytes()
    from_bytes = GarchCovariance.from_state(StrategyState.from_bytes(compact).tree["garch"])
    document = json.loads(json.dumps(json_tree(live.state_dict()), allow_nan=False))
    from_json = GarchCovariance.from_state(document)
    rest = returns.iloc[cut:]
    expected = _forecasts(live, rest)
    for restored in (from_bytes, from_json):
        np.testing.assert_array_equal(_forecasts(restored, rest), expected)
        assert json.dumps(json_tree(restored.state_dict())) == json.dumps(
            json_tree(live.state_dict())
        )


def test_a_saved_ring_that_does_not_fit_the_window_is_refused() -> None:
    live = GarchCovariance(2, "garch", SHORT)
    _forecasts(live, _garch_returns(50))
    state = live.state_dict()
    with pytest.raises(ValueError, match="does not fit a window of 200"):
        GarchCovariance.from_state({**state, "start": 3})


def test_an_asset_whose_fit_fails_takes_the_reference_variance_until_a_fit_succeeds() -> None:
    # A stale price (zero returns) for the first training window: arch cannot fit it.
    returns = _garch_returns(300)
    returns.iloc[:125, 1] = 0.0
    est = GarchCovariance(2, "garch", SHORT)
    seen = []
    for date, r in zip(returns.index, returns.to_numpy(), strict=True):
        reason = est.update(date, r)
        seen.append((reason, est.fitted_.copy(), est.diagnostics(["A", "B"])))
    first = next(i for i, (reason, _, _) in enumerate(seen) if reason == "initial")
    _, fitted, diag = seen[first]
    assert fitted.tolist() == [True, False]
    assert diag["fallback"] == ["B"] and "did not converge" in diag["fit_errors"]["B"]
    reference = np.array([[4e-4, 1e-4], [1e-4, 1e-4]])
    cov = with_variances(reference, GarchCovariance.from_state(est.state_dict()).variances)
    assert cov.shape == (2, 2)
    later = next(i for i, (reason, f, _) in enumerate(seen) if reason == "scheduled" and f.all())
    assert seen[later][2]["fallback"] == [] and seen[later][2]["fit_errors"] == {}
    assert est.n_fits_ >= 3


def test_a_failed_refit_keeps_the_previous_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    returns = _garch_returns(200)
    est = GarchCovariance(2, "garch", SHORT)
    _forecasts(est, returns.iloc[:140])
    assert est.fitted_.all()
    before = est.params_.copy()
    from regime_trader.strategies import garch

    def fail(y: np.ndarray, kind: GarchKind) -> tuple[np.ndarray, float]:
        raise garch.GarchFitError("garch fit did not converge: test")

    monkeypatch.setattr(garch, "fit_garch", fail)
    reasons = [
        est.update(d, r) for d, r in zip(returns.index[140:], returns.to_numpy()[140:], strict=True)
    ]
    assert "scheduled" in reasons
    np.testing.assert_array_equal(est.params_, before)
    assert est.fitted_.all() and np.isfinite(est.variances).all()
    assert est.diagnostics(["A", "B"])["fit_errors"] == {
        "A": "garch fit did not converge: test",
        "B": "garch fit did not converge: test",
    }


def test_the_covariance_keeps_the_reference_correlations_with_the_given_variances() -> None:
    reference = np.array([[4.0, 1.2, -0.5], [1.2, 1.0, 0.1], [-0.5, 0.1, 0.25]]) * 1e-4
    variances = np.array([9e-4, np.nan, 1e-4])
    cov = with_variances(reference, variances)
    np.testing.assert_allclose(np.diag(cov), [9e-4, 1e-4, 1e-4])  # NaN: the reference's own
    sd, ref_sd = np.sqrt(np.diag(cov)), np.sqrt(np.diag(reference))
    np.testing.assert_allclose(cov / np.outer(sd, sd), reference / np.outer(ref_sd, ref_sd))
    np.testing.assert_array_equal(cov, cov.T)


def test_settings_are_checked_like_the_regime_engines() -> None:
    with pytest.raises(ValueError, match="min_train_obs <= max_train_obs"):
        GarchSettings(min_train_obs=300, max_train_obs=200)
    with pytest.raises(ValueError, match="refit_months"):
        GarchSettings(refit_months=-1)
    with pytest.raises(ValueError, match="kind must be one of"):
        GarchCovariance(2, "egarch")  # type: ignore[arg-type]


def test_arch_is_imported_by_the_first_fit_not_by_the_strategies() -> None:
    probe = (
        "import sys\n"
        "import numpy as np, pandas as pd\n"
        "import regime_trader.strategies.registry\n"
        "from regime_trader.strategies.garch import GarchCovariance, GarchSettings\n"
        "from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams\n"
        "RegimeERC(['A', 'B'], RegimeERCParams(covariance='gjr'))\n"
        "before = 'arch' in sys.modules\n"
        "est = GarchCovariance(1, 'garch', GarchSettings(min_train_obs=60))\n"
        "r = np.random.default_rng(0).normal(0, 0.01, size=(60, 1))\n"
        "for d, x in zip(pd.bdate_range('2020-01-01', periods=60), r): est.update(d, x)\n"
        "print(before, 'arch' in sys.modules, bool(est.fitted_[0]))\n"
    )
    assert run_fresh(probe).split() == ["False", "True", "True"]
