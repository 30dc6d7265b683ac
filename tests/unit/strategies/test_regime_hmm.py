"""The HMM's emission log-densities: hmmlearn's bits, without SciPy's wrappers."""

from __future__ import annotations

import numpy as np
import pytest
from hmmlearn.stats import log_multivariate_normal_density

from regime_trader.strategies.regime_hmm import FullCovarianceHMM, log_density_full


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
