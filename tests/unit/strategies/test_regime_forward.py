"""The HMM's forward loop on Python floats, and EM in probability space with its log-space retry."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hmmlearn.hmm import GaussianHMM

from regime_trader.strategies.regime import ForwardFilter, HMMParams, RegimeModel


def _left_to_right(post: np.ndarray, transmat: np.ndarray) -> np.ndarray:
    """``post @ transmat`` as unfused products added left to right (no BLAS, no FMA)."""
    n = len(post)
    return np.array(
        [sum(float(post[i]) * float(transmat[i, j]) for i in range(n)) for j in range(n)]
    )


def _numpy_forward(
    params: HMMParams, X: np.ndarray, *, blas: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The recursion as NumPy calls per day (the loop ForwardFilter.run replaced).

    The prediction is summed left to right, or with ``blas`` by ``post @ A``, whose order and
    fused multiply-adds depend on the machine's BLAS kernel.
    """
    filt = ForwardFilter(params)
    log_b = filt.log_emission(X)
    shift = log_b.max(axis=1)
    scaled = np.exp(log_b - shift[:, None])
    filtered = np.empty_like(log_b)
    loglik = np.empty(log_b.shape[0])
    current = params.startprob
    for t in range(log_b.shape[0]):
        joint = current * scaled[t]
        total = joint.sum()
        if total > 1e-250:
            post, loglik[t] = joint / total, shift[t] + math.log(total)
        else:
            post, loglik[t] = filt.step(current, log_b[t])
        filtered[t] = post
        current = post @ params.transmat if blas else _left_to_right(post, params.transmat)
    return filtered, loglik


def _random_params(rng: np.random.Generator, n_states: int, d: int) -> HMMParams:
    transmat = rng.random((n_states, n_states)) + 5 * np.eye(n_states)
    transmat[0, 1:] = 0.0  # state 0 absorbing: priors of exactly 0 meet the data
    transmat /= transmat.sum(axis=1, keepdims=True)
    factors = rng.normal(size=(n_states, d, d)) * 0.5
    return HMMParams(
        startprob=np.full(n_states, 1.0 / n_states),
        transmat=transmat,
        means=rng.normal(size=(n_states, d)) * 3,
        covars=factors @ factors.transpose(0, 2, 1) + 0.01 * np.eye(d),
        scaler_mean=rng.normal(size=d),
        scaler_scale=rng.random(d) + 0.5,
    )


@pytest.mark.parametrize("n_states", [2, 3])
def test_forward_loop_gives_the_left_to_right_recursions_bits(n_states: int) -> None:
    rng = np.random.default_rng(n_states)
    for _ in range(20):
        params = _random_params(rng, n_states, 3)
        X = rng.normal(size=(300, 3)) * 20  # far tails: some days are redone in log space
        ours = ForwardFilter(params).run(X)
        reference = _numpy_forward(params, X)
        assert ours[0].tobytes() == reference[0].tobytes()
        assert ours[1].tobytes() == reference[1].tobytes()
        # NumPy's own matrix product agrees to rounding (on some machines to the bit).
        blas = _numpy_forward(params, X, blas=True)
        np.testing.assert_allclose(ours[0], blas[0], rtol=0, atol=1e-13)
        np.testing.assert_allclose(ours[1], blas[1], rtol=1e-13)


def test_forward_loop_of_four_states_agrees_with_numpy_to_rounding() -> None:
    # BLAS sums a four-state prediction in another order than left to right.
    rng = np.random.default_rng(4)
    params = _random_params(rng, 4, 2)
    X = rng.normal(size=(400, 2)) * 5
    ours, reference = ForwardFilter(params).run(X), _numpy_forward(params, X, blas=True)
    np.testing.assert_allclose(ours[0], reference[0], rtol=0, atol=1e-13)
    np.testing.assert_allclose(ours[1], reference[1], rtol=1e-13)


def test_online_prediction_is_the_batch_loops_arithmetic() -> None:
    params = _random_params(np.random.default_rng(5), 4, 2)
    filt = ForwardFilter(params)
    X = np.random.default_rng(6).normal(size=(50, 2))
    filtered, _ = filt.run(X)
    rest, _ = filt.run(X[25:], prior=filt.predict(filtered[24]))
    assert rest.tobytes() == filtered[25:].tobytes()


def _market(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    calm = rng.normal(0.0, 1.0, size=(300, 2))
    stress = rng.normal(0.0, 4.0, size=(100, 2))
    X = np.vstack((calm[:150], stress, calm[150:]))
    return X, X[:, 0]


def test_scaling_em_equals_log_em_to_rounding_on_a_regime_market() -> None:
    X, equity = _market(np.random.default_rng(7))
    model = RegimeModel(2, n_init=2).fit(X, equity)
    assert model.report_.n_log_space_retries == 0
    Z = (X - model.params_.scaler_mean) / model.params_.scaler_scale
    scores = {}
    for implementation in ("scaling", "log"):
        hmm = GaussianHMM(
            2,
            covariance_type="full",
            n_iter=100,
            tol=1e-3,
            min_covar=1e-3,
            random_state=0,
            implementation=implementation,
        ).fit(Z)
        scores[implementation] = (hmm.score(Z), hmm.monitor_.iter, hmm.means_)
    assert scores["scaling"][1] == scores["log"][1]
    assert scores["scaling"][0] == pytest.approx(scores["log"][0], rel=1e-12)
    np.testing.assert_allclose(scores["scaling"][2], scores["log"][2], rtol=1e-9, atol=1e-12)


def test_a_start_that_underflows_in_probability_space_is_redone_in_log_space() -> None:
    X, equity = _market(np.random.default_rng(8))
    mean, scale = X.mean(axis=0), X.std(axis=0)
    # So tight that no state gives most days a density above 0 in float64.
    tight = HMMParams(
        startprob=np.array([0.5, 0.5]),
        transmat=np.array([[0.9, 0.1], [0.1, 0.9]]),
        means=np.array([[0.0, 0.0], [0.5, 0.5]]),
        covars=np.stack([np.eye(2), np.eye(2)]) * 1e-4,
        scaler_mean=mean,
        scaler_scale=scale,
    )
    Z = (X - mean) / scale

    def hmmlearn_from_tight(implementation: str) -> GaussianHMM:
        hmm = GaussianHMM(
            2,
            covariance_type="full",
            n_iter=100,
            tol=1e-3,
            min_covar=1e-3,
            init_params="",
            implementation=implementation,
        )
        hmm.startprob_, hmm.transmat_ = tight.startprob, tight.transmat
        hmm.means_, hmm.covars_ = tight.means, tight.covars
        return hmm

    with pytest.raises(ValueError, match="underflow"):
        hmmlearn_from_tight("scaling").fit(Z)
    model = RegimeModel(2).fit(X, equity, warm_start=tight)
    assert model.report_.n_log_space_retries == 1
    assert model.report_.n_failed == 0
    # The very fit EM gives in log space from that start.
    assert model.report_.log_likelihood == hmmlearn_from_tight("log").fit(Z).score(Z)
