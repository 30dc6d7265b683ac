from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regime_trader.strategies.covariance import (
    EwmaCovariance,
    RegimeCovariance,
    blend_covariance,
    mixture_covariance,
    regularize,
)
from regime_trader.strategies.state import json_tree


def test_ewma_covariance_matches_pandas_bias_corrected_ewm() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(scale=0.01, size=(200, 3))
    est = EwmaCovariance(3, halflife=20.0)
    for row in r:
        est.update(row)
    frame = pd.DataFrame(r)
    expected = np.array(
        [
            [(frame[i] * frame[j]).ewm(halflife=20.0).mean().iloc[-1] for j in range(3)]
            for i in range(3)
        ]
    )
    np.testing.assert_allclose(est.covariance, expected, rtol=1e-10)


def test_regime_covariance_with_certain_regimes_is_the_plain_weighted_estimate() -> None:
    rng = np.random.default_rng(1)
    calm = rng.normal(scale=0.01, size=(300, 2))
    stress = rng.normal(scale=0.03, size=(300, 2))
    est = RegimeCovariance(2, 2, halflife=1e9)  # no decay: plain sample moments
    for a, b in zip(calm, stress, strict=True):
        est.update(a, np.array([1.0, 0.0]))
        est.update(b, np.array([0.0, 1.0]))
    means, covs = est.moments()
    np.testing.assert_allclose(covs[0], np.cov(calm.T, bias=True), rtol=1e-6)
    np.testing.assert_allclose(covs[1], np.cov(stress.T, bias=True), rtol=1e-6)
    np.testing.assert_allclose(means[1], stress.mean(axis=0), rtol=1e-6)


def test_mixture_covariance_is_the_law_of_total_covariance() -> None:
    rng = np.random.default_rng(2)
    means = np.array([[0.001, 0.0], [-0.004, 0.002]])
    covs = np.array([np.diag([1e-4, 4e-5]), [[9e-4, -2e-4], [-2e-4, 2e-4]]])
    q = np.array([0.3, 0.7])
    # Monte Carlo of the mixture as a separate computation.
    states = rng.random(400_000) < q[1]
    draws = np.where(
        states[:, None],
        rng.multivariate_normal(means[1], covs[1], size=states.size),
        rng.multivariate_normal(means[0], covs[0], size=states.size),
    )
    np.testing.assert_allclose(
        mixture_covariance(q, means, covs), np.cov(draws.T), rtol=0.02, atol=2e-6
    )


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(2, 8),
    seed=st.integers(0, 10_000),
    shrinkage=st.floats(0.0, 1.0),
)
def test_regularized_matrix_is_symmetric_positive_definite(
    n: int, seed: int, shrinkage: float
) -> None:
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(n, 1))
    singular = factor @ factor.T  # rank one: not positive definite
    out = regularize(singular, shrinkage)
    np.testing.assert_array_equal(out, out.T)
    assert np.linalg.eigvalsh(out).min() > 0
    np.linalg.cholesky(out)


def test_regularize_lifts_an_indefinite_matrix() -> None:
    bad = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    assert np.linalg.eigvalsh(regularize(bad, 0.0)).min() > 0


def test_blend_without_mixture_is_the_ewma_and_bounds_are_checked() -> None:
    ewma = np.eye(2)
    np.testing.assert_array_equal(blend_covariance(ewma, None, 0.5), ewma)
    np.testing.assert_allclose(blend_covariance(ewma, 3 * np.eye(2), 0.5), 2 * np.eye(2))
    with pytest.raises(ValueError, match="regime_blend"):
        blend_covariance(ewma, ewma, 1.5)
    with pytest.raises(ValueError, match="shrinkage"):
        regularize(ewma, -0.1)
    with pytest.raises(ValueError, match="halflife"):
        EwmaCovariance(2, 0.0)


def test_estimators_round_trip_through_json() -> None:
    rng = np.random.default_rng(3)
    ewma, regime = EwmaCovariance(2, 10.0), RegimeCovariance(2, 2, 100.0)
    for row in rng.normal(size=(30, 2)):
        ewma.update(row)
        regime.update(row, np.array([0.2, 0.8]))
    ewma2 = EwmaCovariance.from_state(json.loads(json.dumps(json_tree(ewma.state_dict()))))
    regime2 = RegimeCovariance.from_state(json.loads(json.dumps(json_tree(regime.state_dict()))))
    np.testing.assert_array_equal(ewma.covariance, ewma2.covariance)
    for a, b in zip(regime.moments(), regime2.moments(), strict=True):
        np.testing.assert_array_equal(a, b)
