from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from regime_trader.strategies.jump import (
    JumpConvergenceWarning,
    JumpModel,
    JumpParams,
    OnlineJumpFilter,
    dp_assign,
    penalty_matrix,
    with_penalty,
)
from regime_trader.strategies.jump_features import JumpFeatureSpec, compute_jump_features
from regime_trader.strategies.jump_sparse import SparseJumpModel, sparse_weights
from regime_trader.strategies.synthetic import generate_market

SPEC = JumpFeatureSpec(halflives=(2.0, 5.0, 10.0))


def _brute_force(loss: np.ndarray, penalty: np.ndarray) -> float:
    n_obs, n_states = loss.shape
    best = np.inf
    for path in itertools.product(range(n_states), repeat=n_obs):
        s = np.asarray(path)
        cost = loss[np.arange(n_obs), s].sum() + penalty[s[:-1], s[1:]].sum()
        best = min(best, cost)
    return float(best)


def _market_features(n_days: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Volatility and drift features of every asset, equity returns and true regimes."""
    market = generate_market(n_days, seed=seed)
    features = compute_jump_features(market.prices, SPEC)
    cols = [c for c in features.columns if "_logvol_" in c or "_ewret_" in c]
    X = features[cols].to_numpy()
    ok = np.all(np.isfinite(X), axis=1)
    equity = np.log(market.prices["SPY"]).diff().to_numpy()
    return X[ok], equity[ok], market.regimes[ok]


@pytest.mark.parametrize(
    "penalty",
    [
        penalty_matrix(2, 0.7),
        penalty_matrix(2, 0.3, enter=0.2, exit=1.5),
        penalty_matrix(3, 0.5, enter=0.1, exit=0.9),
        np.array([[0, 0.2, 1.0], [0.6, 0, 0.1], [0.3, 2.0, 0]]),
    ],
)
def test_dp_assignment_equals_brute_force_over_every_path(penalty: np.ndarray) -> None:
    rng = np.random.default_rng(int(penalty.sum() * 100))
    n_states = penalty.shape[0]
    for n_obs in (1, 2, 5, 7 if n_states == 2 else 6):
        loss = rng.exponential(size=(n_obs, n_states))
        labels, objective = dp_assign(loss, penalty)
        direct = loss[np.arange(n_obs), labels].sum() + penalty[labels[:-1], labels[1:]].sum()
        assert objective == pytest.approx(direct, abs=1e-12)
        assert objective == pytest.approx(_brute_force(loss, penalty), abs=1e-12)


def test_dp_agrees_with_jumpmodels_on_scalar_lambda() -> None:
    jm = pytest.importorskip("jumpmodels.jump")
    X, _, _ = _market_features(800, seed=4)
    model = JumpModel(2, jump_penalty=8.0, n_init=3).fit(X)
    p = model.params_
    Z = (X - p.scaler_mean) / p.scaler_scale
    ours = dp_assign(OnlineJumpFilter(p).loss(X), p.penalty)
    # jumpmodels uses the same 0.5 * squared distance and lambda * (1 - I).
    theirs_labels, theirs_value = jm.do_E_step(Z, p.centers, jm.jump_penalty_to_mx(8.0, 2))[1:]
    np.testing.assert_array_equal(ours[0], theirs_labels)
    assert ours[1] == pytest.approx(theirs_value, rel=1e-10)
    online = jm.do_E_step(Z, p.centers, jm.jump_penalty_to_mx(8.0, 2), return_value_mx=True)
    np.testing.assert_array_equal(model.values_.argmin(axis=1), online.argmin(axis=1))


def test_jumpmodels_fit_reaches_no_better_objective_than_ours() -> None:
    jumpmodels = pytest.importorskip("jumpmodels.jump")
    X, equity, _ = _market_features(800, seed=5)
    ours = JumpModel(2, jump_penalty=8.0, n_init=10).fit(X, equity)
    Z = (X - ours.params_.scaler_mean) / ours.params_.scaler_scale
    theirs = jumpmodels.JumpModel(2, jump_penalty=8.0, n_init=10, random_state=0).fit(Z)
    assert ours.report_.objective <= theirs.val_ * (1 + 1e-9)


@pytest.mark.parametrize("penalty", [penalty_matrix(2, 6.0), penalty_matrix(2, 3.0, exit=15.0)])
def test_coordinate_descent_never_increases_the_objective(penalty: np.ndarray) -> None:
    X, equity, _ = _market_features(900, seed=6)
    model = JumpModel(2, penalty=penalty, n_init=1)
    Zw = (X - X.mean(axis=0)) / X.std(axis=0)
    for seed in range(5):
        start = Zw[np.random.default_rng(seed).choice(len(Zw), 2, replace=False)]
        trace = np.asarray(model.descend(Zw, start, equity).trace)
        assert trace.size >= 2
        assert np.all(np.diff(trace) <= 1e-9 * np.abs(trace[:-1])), trace


def test_more_starts_never_give_a_worse_best_objective() -> None:
    X, equity, _ = _market_features(700, seed=8)
    objectives = [
        JumpModel(3, jump_penalty=4.0, n_init=n).fit(X, equity).report_.objective
        for n in (1, 2, 4, 8)
    ]
    assert all(b <= a for a, b in itertools.pairwise(objectives)), objectives


def test_same_seed_gives_identical_bits_and_params_survive_json() -> None:
    X, equity, _ = _market_features(700, seed=9)
    a = JumpModel(2, jump_penalty=5.0, random_state=3).fit(X, equity)
    b = JumpModel(2, jump_penalty=5.0, random_state=3).fit(X, equity)
    assert a.params_.to_dict() == b.params_.to_dict()
    np.testing.assert_array_equal(a.values_, b.values_)
    restored = JumpParams.from_dict(json.loads(json.dumps(a.params_.to_dict())))
    np.testing.assert_array_equal(
        OnlineJumpFilter(restored).run(X), OnlineJumpFilter(a.params_).run(X)
    )


def test_state_zero_is_the_calm_regime_whatever_the_start_order() -> None:
    X, equity, truth = _market_features(1200, seed=10)
    for seed in range(4):
        model = JumpModel(2, jump_penalty=5.0, n_init=1, random_state=seed).fit(X, equity)
        assert (model.labels_ == truth).mean() > 0.85
        vols = [np.mean(equity[model.labels_ == k] ** 2) for k in range(2)]
        assert vols[0] < vols[1]


def test_online_values_stepwise_equal_the_batch_run_and_the_dp_forward_pass() -> None:
    X, equity, _ = _market_features(500, seed=11)
    p = JumpModel(2, jump_penalty=5.0).fit(X, equity).params_
    filt = OnlineJumpFilter(p)
    batch = filt.run(X)
    values = None
    for t in range(len(X)):
        values = filt.step(values, X[t])
        np.testing.assert_array_equal(values, batch[t])
    # The last causal value's argmin is the DP path's last state (the only day they agree on).
    labels, _ = dp_assign(filt.loss(X), p.penalty)
    assert batch[-1].argmin() == labels[-1]
    probs = filt.probabilities(batch)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(probs.argmax(axis=1), batch.argmin(axis=1))


@pytest.mark.parametrize("sparse", [False, True])
def test_online_labels_up_to_t_do_not_depend_on_later_rows(sparse: bool) -> None:
    X, equity, _ = _market_features(1000, seed=12)
    model: JumpModel | SparseJumpModel = (
        SparseJumpModel(JumpModel(2, jump_penalty=10.0), kappa=2.0)
        if sparse
        else JumpModel(2, jump_penalty=5.0)
    )
    p = model.fit(X[:400], equity[:400]).params_
    filt = OnlineJumpFilter(p)
    full = filt.run(X[400:])
    for end in (401, 450, 613, 999):
        cut = filt.run(X[400:end])
        np.testing.assert_array_equal(full[: end - 400], cut)
        np.testing.assert_array_equal(
            filt.probabilities(full[: end - 400]), filt.probabilities(cut)
        )


@pytest.mark.parametrize("seed", range(6))
def test_online_label_recovers_the_true_regime_on_a_synthetic_market(seed: int) -> None:
    # Fit on the first 750 days, then label every later day causally with fixed parameters.
    # Measured (seeds 0-5): accuracy 0.887 0.896 0.860 0.917 0.927 0.866, switches 0.82 0.94
    # 1.36 1.08 0.90 0.94 x the truth.
    X, equity, truth = _market_features(3000, seed=seed)
    model = JumpModel(2, jump_penalty=10.0).fit(X[:750], equity[:750])
    labels = OnlineJumpFilter(model.params_).run(X).argmin(axis=1)[750:]
    true = truth[750:]
    accuracy = float((labels == true).mean())
    switch_ratio = np.count_nonzero(np.diff(labels)) / np.count_nonzero(np.diff(true))
    print(f"seed {seed}: online accuracy {accuracy:.3f}, switches {switch_ratio:.2f}x the truth")
    assert accuracy >= 0.85
    assert switch_ratio <= 1.5


def test_a_cheap_entry_and_costly_exit_enter_stress_sooner_and_leave_it_later() -> None:
    X, equity, truth = _market_features(3000, seed=2)
    params = JumpModel(2, jump_penalty=10.0).fit(X[:750], equity[:750]).params_
    sym = OnlineJumpFilter(params).run(X[750:]).argmin(axis=1)
    asym_params = with_penalty(params, penalty_matrix(2, 10.0, enter=5.0, exit=20.0))
    asym = OnlineJumpFilter(asym_params).run(X[750:]).argmin(axis=1)
    true = truth[750:]
    switches = {
        name: int(np.count_nonzero(np.diff(s))) for name, s in (("sym", sym), ("asym", asym))
    }
    stress_share = {"sym": float(sym.mean()), "asym": float(asym.mean())}
    n_true = np.count_nonzero(np.diff(true))
    print(f"switches {switches} (truth {n_true}), stress share {stress_share}")
    assert stress_share["asym"] > stress_share["sym"]
    assert switches["asym"] <= switches["sym"]
    # Stress is flagged no later under the cheap entry and left no sooner under the costly
    # exit: every day the symmetric model calls stress, the asymmetric one does too.
    assert np.all(asym[(sym == 1)] == 1)


def test_sparse_model_drops_noise_features_and_keeps_informative_ones() -> None:
    X, equity, _ = _market_features(1500, seed=3)
    informative = X[:, [1, 7]]  # SPY_logvol_2 and TLT_logvol_2
    rng = np.random.default_rng(0)
    data = np.column_stack([informative, rng.normal(size=(len(X), 5))])
    model = SparseJumpModel(JumpModel(2, jump_penalty=10.0), kappa=1.5).fit(data, equity)
    w = model.weights_
    assert model.report_.converged
    assert w[:2].min() > 0.3, w
    assert w[2:].max() < 0.02, w
    assert np.linalg.norm(w) == pytest.approx(1.0)
    assert w.sum() <= 1.5 + 1e-9


@pytest.mark.parametrize("kappa", [1.5, 2.0])
def test_sparse_model_agrees_with_jumpmodels_sparse_jump_model(kappa: float) -> None:
    sparse_jump = pytest.importorskip("jumpmodels.sparse_jump")
    X, _, _ = _market_features(1500, seed=3)
    data = np.column_stack([X[:, [1, 7, 4]], np.random.default_rng(0).normal(size=(len(X), 4))])
    ours = SparseJumpModel(JumpModel(2, jump_penalty=10.0), kappa=kappa).fit(data)
    Z = (data - data.mean(axis=0)) / data.std(axis=0)
    # jumpmodels' max_feats is kappa^2; it scales lambda by 1/sqrt(n_features) as we do.
    theirs = sparse_jump.SparseJumpModel(
        2, max_feats=kappa**2, jump_penalty=10.0, random_state=0
    ).fit(Z)
    np.testing.assert_allclose(ours.weights_, np.asarray(theirs.w), atol=2e-3)
    same = float((ours.labels_ == np.asarray(theirs.labels_)).mean())
    assert max(same, 1 - same) >= 0.99  # equal paths up to the state numbering


def test_sparse_weights_meet_the_l1_budget_and_equal_normalised_bcss_when_loose() -> None:
    a = np.array([4.0, 3.0, 0.5, 0.1])
    loose = sparse_weights(a, kappa=2.0)
    np.testing.assert_allclose(loose, a / np.linalg.norm(a))
    tight = sparse_weights(a, kappa=1.2)
    assert tight.sum() == pytest.approx(1.2, abs=1e-9)
    assert np.linalg.norm(tight) == pytest.approx(1.0)
    assert tight[2] == tight[3] == 0.0


def test_fit_warns_with_a_specific_warning_when_descent_is_cut_short() -> None:
    X, equity, _ = _market_features(600, seed=13)
    with pytest.warns(JumpConvergenceWarning, match="max_iter=1"):
        model = JumpModel(2, jump_penalty=1.0, n_init=1, max_iter=1).fit(X, equity)
    assert model.report_.converged is False and model.report_.n_iter == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_states": 5}, "n_states must be between 2 and 4, got 5"),
        ({"jump_penalty": -1.0}, "jump_penalty must be finite and >= 0, got -1.0"),
        ({"n_init": 0}, "n_init must be an integer >= 1, got 0"),
        ({"temperature": 0.0}, "temperature must be finite and > 0, got 0.0"),
        ({"penalty": np.ones((2, 2))}, "zero diagonal"),
        ({"penalty": np.zeros((3, 3))}, r"penalty must be \(2, 2\), got shape \(3, 3\)"),
        ({"min_occupancy": 0.6}, r"min_occupancy must be in \[0, 1/n_states\), got 0.6"),
    ],
)
def test_invalid_parameters_are_rejected_quoting_the_value(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        JumpModel(**kwargs)  # type: ignore[arg-type]


def test_sparse_kappa_outside_its_range_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"kappa must be >= 1, got 0\.5"):
        SparseJumpModel(kappa=0.5)
    X = np.random.default_rng(0).normal(size=(100, 3))
    with pytest.raises(ValueError, match=r"kappa=2\.0 exceeds sqrt"):
        SparseJumpModel(kappa=2.0).fit(X)


def test_fit_refuses_non_finite_or_short_data() -> None:
    X = np.random.default_rng(0).normal(size=(100, 2))
    with pytest.raises(ValueError, match="n_obs >= 20"):
        JumpModel(2).fit(X[:10])
    X[5, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        JumpModel(2).fit(X)
