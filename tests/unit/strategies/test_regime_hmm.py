"""The HMM's emission log-densities and EM statistics: hmmlearn's bits, in fewer NumPy calls."""

from __future__ import annotations

import numpy as np
import pytest
from hmmlearn.hmm import GaussianHMM
from hmmlearn.stats import log_multivariate_normal_density

from regime_trader.strategies.regime_hmm import (
    FullCovarianceHMM,
    log_density_full,
    row_sums,
    state_moments,
)


@pytest.mark.parametrize(("n_components", "n_features"), [(2, 1), (2, 3), (3, 5), (4, 2)])
def test_log_densities_are_hmmlearns_bits(n_components: int, n_features: int) -> None:
    rng = np.random.default_rng(n_components * 10 + n_features)
    for _ in range(20):
        X = rng.normal(size=(300, n_features)) * rng.choice([0.1, 1.0, 30.0])
        means = rng.normal(size=(n_components, n_features))
        factors = rng.normal(size=(n_components, n_features, n_features))
        covars = factors @ factors.transpose(0, 2, 1) + rng.choice([1e-3, 1.0]) * np.eye(n_features)
        ours = log_density_full(X, means, covars)
        theirs = log_multivariate_normal_density(X, means, covars, "full")
        assert ours.shape == theirs.shape
        assert ours.tobytes() == np.ascontiguousarray(theirs).tobytes()


def test_a_singular_covariance_takes_hmmlearns_fallback_and_an_indefinite_one_its_error() -> None:
    X = np.random.default_rng(1).normal(size=(50, 2))
    means = np.zeros((2, 2))
    singular = np.array([np.eye(2), [[1.0, 1.0], [1.0, 1.0]]])  # PD only with 1e-7 added
    ours = log_density_full(X, means, singular)
    theirs = log_multivariate_normal_density(X, means, singular, "full")
    assert ours.tobytes() == np.ascontiguousarray(theirs).tobytes()
    indefinite = np.array([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])
    for compute in (log_density_full, lambda *a: log_multivariate_normal_density(*a, "full")):
        with pytest.raises(ValueError, match="'covars' must be symmetric, positive-definite"):
            compute(X, means, indefinite)


def test_the_estimator_uses_them_for_its_emissions() -> None:
    rng = np.random.default_rng(2)
    hmm = FullCovarianceHMM(2, covariance_type="full", init_params="")
    hmm.n_features = 3
    hmm.startprob_ = np.array([0.5, 0.5])
    hmm.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    hmm.means_ = rng.normal(size=(2, 3))
    hmm.covars_ = np.stack([np.eye(3), 2 * np.eye(3)])
    X = rng.normal(size=(40, 3))
    expected = log_multivariate_normal_density(X, hmm.means_, hmm.covars_, "full")
    assert hmm._compute_log_likelihood(X).tobytes() == np.ascontiguousarray(expected).tobytes()


@pytest.mark.parametrize(("n_obs", "n_columns"), [(1, 1), (7, 2), (500, 3), (300, 7), (40, 9)])
def test_row_sums_are_numpys_bits(n_obs: int, n_columns: int) -> None:
    a = np.random.default_rng(n_obs + n_columns).standard_t(2, size=(n_obs, n_columns)) ** 2
    assert row_sums(a).tobytes() == a.sum(axis=1).tobytes()


@pytest.mark.parametrize(
    ("n_obs", "n_states", "n_features"),
    [(1, 2, 1), (250, 2, 3), (2520, 2, 3), (900, 3, 5), (600, 4, 2), (10_000, 2, 3)],
)
def test_state_moments_are_numpys_bits(n_obs: int, n_states: int, n_features: int) -> None:
    rng = np.random.default_rng(n_obs * n_states + n_features)
    X = rng.standard_t(3, size=(n_obs, n_features)) * rng.choice([0.01, 1.0, 50.0])
    posteriors = rng.random((n_obs, n_states))
    posteriors /= posteriors.sum(axis=1, keepdims=True)
    weights, moments = state_moments(posteriors, X)
    assert weights.tobytes() == posteriors.sum(axis=0).tobytes()
    assert moments.tobytes() == np.einsum("ij,ik,il->jkl", posteriors, X, X).tobytes()


def _fitted(cls: type[GaussianHMM], X: np.ndarray, seed: int, warm: bool) -> GaussianHMM:
    hmm = cls(
        n_components=2,
        covariance_type="full",
        n_iter=30,
        tol=1e-6,
        min_covar=1e-3,
        random_state=seed,
        init_params="" if warm else "stmc",
        implementation="scaling",
    )
    if warm:
        hmm.startprob_ = np.array([0.6, 0.4])
        hmm.transmat_ = np.array([[0.95, 0.05], [0.1, 0.9]])
        hmm.means_ = np.array([[0.2, -0.1, 0.0], [-0.5, 0.4, 0.3]])
        hmm.covars_ = np.stack([0.5 * np.eye(3), 2.0 * np.eye(3)])
    return hmm.fit(X)


@pytest.mark.parametrize(("seed", "warm"), [(0, False), (3, False), (1, True)])
def test_em_gives_hmmlearns_fit_bit_for_bit(seed: int, warm: bool) -> None:
    rng = np.random.default_rng(seed)
    calm = rng.normal(0.0, 0.5, size=(400, 3))
    stress = rng.normal(0.3, 2.0, size=(200, 3))
    X = np.concatenate([calm[:250], stress, calm[250:]])
    ours = _fitted(FullCovarianceHMM, X, seed, warm)
    theirs = _fitted(GaussianHMM, X, seed, warm)
    assert ours.monitor_.iter == theirs.monitor_.iter > 2
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        assert getattr(ours, name).tobytes() == getattr(theirs, name).tobytes(), name
    assert ours.score(X) == theirs.score(X)
    assert getattr(ours, "_tiled", None) is None  # the fit's tiles are not kept
