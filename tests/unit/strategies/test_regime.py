from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hmmlearn.hmm import GaussianHMM

from regime_trader.strategies.features import compute_features
from regime_trader.strategies.regime import ForwardFilter, HMMParams, RegimeModel
from regime_trader.strategies.regime_online import RegimeSettings, RegimeTracker
from regime_trader.strategies.state import json_tree
from regime_trader.strategies.synthetic import generate_market


def _two_state_params() -> HMMParams:
    return HMMParams(
        startprob=np.array([0.6, 0.4]),
        transmat=np.array([[0.95, 0.05], [0.10, 0.90]]),
        means=np.array([[0.0, 0.5], [1.0, -1.0]]),
        covars=np.array([[[1.0, 0.2], [0.2, 0.5]], [[2.0, -0.3], [-0.3, 1.5]]]),
        scaler_mean=np.array([0.1, -0.2]),
        scaler_scale=np.array([2.0, 0.5]),
    )


def _hmmlearn_twin(params: HMMParams) -> GaussianHMM:
    hmm = GaussianHMM(n_components=2, covariance_type="full", init_params="")
    hmm.startprob_ = params.startprob
    hmm.transmat_ = params.transmat
    hmm.means_ = params.means
    hmm.covars_ = params.covars
    return hmm


def test_filtered_probability_at_t_equals_smoothed_probability_of_the_prefix_ending_at_t() -> None:
    # With nothing after t, forward-backward's posterior at t is the filtered one: an
    # independent check of our forward recursion against hmmlearn.
    params = _two_state_params()
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 2)) * params.scaler_scale + params.scaler_mean
    filtered, _ = ForwardFilter(params).run(X)
    hmm = _hmmlearn_twin(params)
    Z = (X - params.scaler_mean) / params.scaler_scale
    for t in (0, 1, 10, 40, 79):
        np.testing.assert_allclose(filtered[t], hmm.predict_proba(Z[: t + 1])[-1], atol=1e-10)


def test_filter_log_likelihood_sums_to_hmmlearn_score_plus_the_scaling_jacobian() -> None:
    params = _two_state_params()
    X = np.random.default_rng(4).normal(size=(50, 2))
    _, loglik = ForwardFilter(params).run(X)
    Z = (X - params.scaler_mean) / params.scaler_scale
    expected = _hmmlearn_twin(params).score(Z) - 50 * np.log(params.scaler_scale).sum()
    assert loglik.sum() == pytest.approx(expected, rel=1e-10)


def test_filtered_history_is_unchanged_by_later_observations() -> None:
    params = _two_state_params()
    X = np.random.default_rng(5).normal(size=(100, 2))
    f_all, _ = ForwardFilter(params).run(X)
    f_cut, _ = ForwardFilter(params).run(X[:60])
    np.testing.assert_array_equal(f_all[:60], f_cut)


def test_online_step_matches_batch_run() -> None:
    params = _two_state_params()
    X = np.random.default_rng(6).normal(size=(40, 2))
    filt = ForwardFilter(params)
    batch, batch_ll = filt.run(X)
    current = params.startprob
    for t in range(40):
        post, ll = filt.step(current, filt.log_emission(X[t])[0])
        np.testing.assert_allclose(post, batch[t], atol=1e-12)
        assert ll == pytest.approx(batch_ll[t], rel=1e-12)
        current = filt.predict(post)


def test_filter_survives_observations_far_in_the_tails() -> None:
    params = _two_state_params()
    X = np.array([[1e3, -1e3], [0.0, 0.0], [-5e2, 7e2]])
    filtered, loglik = ForwardFilter(params).run(X)
    assert np.all(np.isfinite(filtered)) and np.all(np.isfinite(loglik))
    np.testing.assert_allclose(filtered.sum(axis=1), 1.0)


def _fit_on(market_seed: int, n: int = 1200) -> tuple[RegimeModel, np.ndarray, np.ndarray]:
    market = generate_market(n, seed=market_seed)
    features = compute_features(market.prices).iloc[1:]
    X = features[["SPY_ret", "TLT_ret", "GLD_ret"]].to_numpy()
    model = RegimeModel(2, random_state=0).fit(X, X[:, 0])
    return model, X, market.regimes[1:]


def test_state_zero_is_the_calm_regime_after_relabelling() -> None:
    model, X, truth = _fit_on(11)
    filtered = model.filtered_
    vol = [np.sqrt(np.average(X[:, 0] ** 2, weights=filtered[:, k])) for k in range(2)]
    assert vol[0] < vol[1]
    assert (filtered.argmax(axis=1) == truth).mean() > 0.85


def test_relabelling_is_independent_of_em_state_order() -> None:
    model, X, _ = _fit_on(12)
    swapped = model.params_.permuted(np.array([1, 0]))
    order = RegimeModel._volatility_order(ForwardFilter(swapped).run(X)[0], X[:, 0])
    np.testing.assert_array_equal(order, [1, 0])


def test_fit_reports_non_convergence_with_a_specific_warning() -> None:
    market = generate_market(600, seed=2)
    X = compute_features(market.prices).iloc[1:][["SPY_ret", "TLT_ret"]].to_numpy()
    with pytest.warns(Warning, match="n_iter=1"):
        model = RegimeModel(2, n_init=1, n_iter=1, tol=1e-12).fit(X, X[:, 0])
    assert model.report_.converged is False


def _track(prices: pd.DataFrame, settings: RegimeSettings) -> tuple[RegimeTracker, list]:
    features = compute_features(prices).iloc[1:]
    X = features[[f"{s}_ret" for s in prices.columns]].to_numpy()
    tracker = RegimeTracker(settings)
    updates = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for date, x in zip(features.index, X, strict=True):
            updates.append(tracker.update(date, x, x[0]))
    return tracker, updates


def test_filtered_regime_matches_the_true_regime_on_a_separated_market() -> None:
    market = generate_market(1500, seed=21)
    settings = RegimeSettings(min_train_obs=250)
    _, updates = _track(market.prices, settings)
    truth = market.regimes[1:]
    pairs = [
        (u.filtered.argmax(), z)
        for u, z in zip(updates, truth, strict=True)
        if u.filtered is not None
    ]
    accuracy = np.mean([a == b for a, b in pairs])
    assert len(pairs) > 1200
    assert accuracy >= 0.85, accuracy


def test_labels_stay_stable_across_monthly_refits() -> None:
    market = generate_market(1500, seed=22)
    tracker, updates = _track(market.prices, RegimeSettings(min_train_obs=250))
    refit_days = [i for i, u in enumerate(updates) if u.refit == "scheduled"]
    assert len(refit_days) >= 30 and tracker.n_fits >= 30
    truth = market.regimes[1:]
    # After every refit the stressed label still means the high-volatility regime.
    for i in refit_days:
        window = updates[i].window_filtered
        assert window is not None
        labels = window.argmax(axis=1)
        days = truth[i - len(labels) + 1 : i + 1]
        assert (labels == days).mean() > 0.85


def test_drift_triggers_a_refit_when_volatility_explodes() -> None:
    calm = generate_market(600, seed=5, transition=((1.0, 0.0), (0.0, 1.0)))
    settings = RegimeSettings(min_train_obs=250, refit_months=0)
    prices = calm.prices.copy()
    # From day 450 on, returns are ten times as volatile as anything seen in training.
    r = np.log(prices).diff().fillna(0.0)
    r.iloc[450:] *= 10.0
    shocked = np.exp(r.cumsum()) * 100
    _, updates = _track(shocked, settings)
    reasons = [u.refit for u in updates if u.refit]
    assert reasons[0] == "initial"
    assert "drift" in reasons
    first_drift = next(i for i, u in enumerate(updates) if u.refit == "drift")
    assert first_drift >= 449


def test_tracker_restored_from_json_continues_identically() -> None:
    market = generate_market(500, seed=9)
    features = compute_features(market.prices).iloc[1:]
    X = features[["SPY_ret", "TLT_ret", "GLD_ret"]].to_numpy()
    tracker = RegimeTracker(RegimeSettings(min_train_obs=250))
    for date, x in zip(features.index[:300], X[:300], strict=True):
        tracker.update(date, x, x[0])
    restored = RegimeTracker.from_state(json.loads(json.dumps(json_tree(tracker.state_dict()))))
    for date, x in zip(features.index[300:], X[300:], strict=True):
        a, b = tracker.update(date, x, x[0]), restored.update(date, x, x[0])
        np.testing.assert_array_equal(a.filtered, b.filtered)
        assert a.refit == b.refit


def test_expected_durations_follow_the_transition_matrix() -> None:
    np.testing.assert_allclose(_two_state_params().expected_durations, [20.0, 10.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_states": 5}, "n_states"), ({"n_init": 0}, "n_init"), ({"tol": 0.0}, "tol")],
)
def test_invalid_model_parameters_are_rejected(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RegimeModel(**kwargs)  # type: ignore[arg-type]


def test_fit_refuses_non_finite_or_too_short_training_data() -> None:
    X = np.random.default_rng(0).normal(size=(300, 2))
    X[5, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        RegimeModel().fit(X, X[:, 0])
    with pytest.raises(ValueError, match="at least"):
        RegimeModel().fit(X[:10], X[:10, 0])
