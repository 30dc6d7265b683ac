"""Risk-budgeting solver: invariants checked by direct computation, and every input error.

Accuracy is always measured here, exactly, from the returned weights and the covariance, never
from the solver's own diagnostics.
"""

from __future__ import annotations

import dataclasses
import warnings
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regime_trader.strategies.riskparity import (
    RiskBudgetResult,
    RiskParityConvergenceWarning,
    relative_risk_contributions,
    risk_budget_weights,
    risk_contributions,
    solve_risk_budget,
)

FloatArray = npt.NDArray[np.float64]
Problem = tuple[FloatArray, FloatArray | None]  # a covariance and its risk budgets (None: equal)

REQUIRED_ACCURACY = 1e-8

# Any convergence warning in a test that does not expect one is a failure.
pytestmark = pytest.mark.filterwarnings(
    "error::regime_trader.strategies.riskparity.RiskParityConvergenceWarning"
)


def budget_error(weights: FloatArray, cov: FloatArray, budgets: FloatArray | None) -> float:
    """Return max_i |RC_i / sum(RC) - b_i| / b_i of the weights, computed exactly.

    ``RC_i = w_i (Sigma w)_i`` is evaluated in integer arithmetic on the exact binary values
    of the float64 inputs and rounded once at the end. A float64 evaluation would itself err
    by up to ~eps * max_i (|Sigma| w)_i / |Sigma w|_i, which reaches 1e-8 on the
    ill-conditioned matrices drawn here and would measure the arithmetic, not the weights.
    """
    n = len(weights)

    def exact_integers(x: FloatArray) -> list[int]:
        # x = mantissa * 2**exponent exactly; a common power of two cancels in the ratios.
        mantissa, exponent = np.frexp(x)
        ints = (mantissa * 2.0**53).astype(np.int64)
        shifts = exponent - exponent.min()
        return [int(m) << int(k) for m, k in zip(ints.ravel(), shifts.ravel(), strict=True)]

    c = exact_integers(np.asarray(cov, dtype=np.float64))
    w = exact_integers(np.asarray(weights, dtype=np.float64))
    rc = [
        w[i] * sum(a * x for a, x in zip(c[i * n : (i + 1) * n], w, strict=True)) for i in range(n)
    ]
    total = sum(rc)
    b = [Fraction(1, n)] * n if budgets is None else [Fraction(float(v)) for v in budgets]
    b_total = sum(b)
    return max(
        float(abs(Fraction(r, total) - bi / b_total) / (bi / b_total))
        for r, bi in zip(rc, b, strict=True)
    )


def factor_covariance(
    rng: np.random.Generator, n: int, n_factors: int, log10_condition: float
) -> FloatArray:
    """Return a factor-model covariance with mixed-sign loadings and spread-out volatilities.

    The correlation matrix of loadings @ loadings.T plus idiosyncratic variance is blended
    with the identity so that its condition number is at most ``10**log10_condition``;
    volatilities span three orders of magnitude.
    """
    loadings = rng.normal(rng.uniform(-1.0, 1.0), rng.uniform(0.1, 2.0), size=(n, n_factors))
    shape = loadings @ loadings.T + np.diag(rng.uniform(1e-9, 1e-3, n))
    scale = np.sqrt(np.diag(shape))
    corr = shape / np.outer(scale, scale)
    lowest, highest = np.linalg.eigvalsh(corr)[[0, -1]]
    target = 10.0**log10_condition
    if highest > target * lowest:
        # Eigenvalues l -> (1 - a) l + a; pick a so that the extreme ones have ratio target.
        a = (highest - target * lowest) / ((target - 1.0) * (1.0 - lowest) + highest - lowest)
        corr = (1.0 - a) * corr + a * np.eye(n)
    vols = 10.0 ** rng.uniform(-3.0, 0.0, n)
    cov: FloatArray = corr * np.outer(vols, vols)
    return (cov + cov.T) / 2.0


def market_covariance(n: int, seed: int) -> FloatArray:
    """Return a realistic daily covariance: market + 2 style factors, vols 10-40% a year."""
    rng = np.random.default_rng(seed)
    betas = np.column_stack([rng.normal(1.0, 0.3, n), rng.normal(0.0, 0.5, (n, 2))])
    factor_var = (np.array([0.16, 0.08, 0.08]) / np.sqrt(252.0)) ** 2
    systematic = (betas**2) @ factor_var
    total = (rng.uniform(0.10, 0.40, n) / np.sqrt(252.0)) ** 2
    idiosyncratic = np.maximum(total - systematic, (0.05 / np.sqrt(252.0)) ** 2)
    cov: FloatArray = (betas * factor_var) @ betas.T + np.diag(idiosyncratic)
    return (cov + cov.T) / 2.0


@st.composite
def risk_budget_problems(draw: st.DrawFn) -> Problem:
    """Draw a positive definite covariance (n = 2..60, condition up to ~1e6) and budgets."""
    n = draw(st.integers(2, 60))
    n_factors = draw(st.integers(1, 5))
    log10_condition = draw(st.floats(0.0, 6.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cov = factor_covariance(rng, n, n_factors, log10_condition)
    budgets = 10.0 ** rng.uniform(-3.0, 0.0, n) if draw(st.booleans()) else None
    return cov, budgets


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(problem=risk_budget_problems())
def test_random_covariances_and_budgets_are_met_to_1e8(problem: Problem) -> None:
    cov, budgets = problem
    result = solve_risk_budget(cov, budgets)
    w = result.weights
    assert w.shape == (cov.shape[0],)
    assert np.all(w > 0.0)
    assert abs(w.sum() - 1.0) <= 1e-12
    assert budget_error(w, cov, budgets) <= REQUIRED_ACCURACY
    assert result.converged


@settings(max_examples=100, deadline=None)
@given(
    problem=risk_budget_problems(),
    factor=st.sampled_from([1e-8, 1.0 / 252.0, 3.7, 252.0, 1e6]),
)
def test_scaling_the_covariance_leaves_the_weights_unchanged(
    problem: Problem, factor: float
) -> None:
    cov, budgets = problem
    w = risk_budget_weights(cov, budgets)
    w_scaled = risk_budget_weights(cov * factor, budgets)
    assert budget_error(w_scaled, cov * factor, budgets) <= REQUIRED_ACCURACY
    np.testing.assert_allclose(w_scaled, w, rtol=1e-7, atol=0.0)


@settings(max_examples=100, deadline=None)
@given(problem=risk_budget_problems(), seed=st.integers(0, 2**32 - 1))
def test_permuting_the_assets_permutes_the_weights(problem: Problem, seed: int) -> None:
    cov, budgets = problem
    perm = np.random.default_rng(seed).permutation(cov.shape[0])
    w = risk_budget_weights(cov, budgets)
    w_perm = risk_budget_weights(
        cov[np.ix_(perm, perm)], None if budgets is None else budgets[perm]
    )
    np.testing.assert_allclose(w_perm, w[perm], rtol=1e-7, atol=0.0)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 60),
    seed=st.integers(0, 2**32 - 1),
    with_budgets=st.booleans(),
)
def test_uncorrelated_assets_get_sqrt_budget_over_volatility(
    n: int, seed: int, with_budgets: bool
) -> None:
    rng = np.random.default_rng(seed)
    vols = 10.0 ** rng.uniform(-3.0, 0.0, n)
    budgets = 10.0 ** rng.uniform(-3.0, 0.0, n) if with_budgets else None
    expected = np.sqrt(np.ones(n) if budgets is None else budgets) / vols
    expected /= expected.sum()
    w = risk_budget_weights(np.diag(vols**2), budgets)
    np.testing.assert_allclose(w, expected, rtol=1e-12, atol=0.0)


# --------------------------------------------------------------------------------------------
# Known answers and deterministic scenarios
# --------------------------------------------------------------------------------------------


def test_constant_correlation_erc_is_inverse_volatility() -> None:
    # Maillard, Roncalli and Teiletche (2010): with one common correlation, ERC = 1/sigma.
    vols = np.array([0.05, 0.10, 0.20, 0.40, 0.80]) / np.sqrt(252.0)
    rho = 0.6
    corr = np.full((5, 5), rho) + (1.0 - rho) * np.eye(5)
    w = risk_budget_weights(corr * np.outer(vols, vols))
    expected = (1.0 / vols) / (1.0 / vols).sum()
    np.testing.assert_allclose(w, expected, rtol=1e-10, atol=0.0)


def test_equal_budgets_give_every_asset_an_equal_share_of_variance() -> None:
    cov = market_covariance(40, seed=3)
    w = risk_budget_weights(cov)
    rc = risk_contributions(w, cov)
    variance = float(w @ cov @ w)
    np.testing.assert_allclose(rc, variance / 40.0, rtol=1e-9, atol=0.0)


def test_thousand_asset_covariance_is_solved_to_1e8() -> None:
    cov = market_covariance(1000, seed=7)
    budgets = np.random.default_rng(8).uniform(0.2, 1.0, 1000)
    for b in (None, budgets):
        result = solve_risk_budget(cov, b)
        assert result.converged
        assert budget_error(result.weights, cov, b) <= REQUIRED_ACCURACY
        assert abs(result.weights.sum() - 1.0) <= 1e-12


def test_hedging_assets_with_negative_betas_are_solved() -> None:
    rng = np.random.default_rng(11)
    cov = factor_covariance(rng, 300, 3, log10_condition=4.0)
    result = solve_risk_budget(cov)
    assert result.converged
    assert budget_error(result.weights, cov, None) <= REQUIRED_ACCURACY


def test_ill_conditioned_hedges_converge_at_the_rounding_floor() -> None:
    # Correlation condition number 1e6 and budgets three orders apart: float64 residuals
    # cannot resolve 1e-10 here, so the solver polishes and accepts the floor - silently
    # only because the weights are exact to well within 1e-8.
    rng = np.random.default_rng(33)
    cov = factor_covariance(rng, 40, 3, log10_condition=6.0)
    budgets = 10.0 ** rng.uniform(-3.0, 0.0, 40)
    result = solve_risk_budget(cov, budgets)
    assert result.converged
    assert budget_error(result.weights, cov, budgets) <= REQUIRED_ACCURACY


def test_tolerance_below_float64_resolution_is_met_at_the_floor() -> None:
    cov = market_covariance(100, seed=13)
    result = solve_risk_budget(cov, tol=1e-17)
    assert result.converged
    assert result.max_relative_error <= 1e-13
    assert budget_error(result.weights, cov, None) <= 1e-13


def test_warm_start_from_yesterdays_weights_needs_no_more_iterations() -> None:
    rng = np.random.default_rng(5)
    for n in (10, 60, 300):
        cov = market_covariance(n, seed=n)
        yesterday = risk_budget_weights(cov)
        # One more day of an EWMA covariance: a rank-one update.
        shock = rng.multivariate_normal(np.zeros(n), cov)
        cov_today = 0.97 * cov + 0.03 * np.outer(shock, shock)
        cold = solve_risk_budget(cov_today)
        warm = solve_risk_budget(cov_today, w0=yesterday)
        assert warm.converged
        assert warm.n_iter <= cold.n_iter
        np.testing.assert_allclose(warm.weights, cold.weights, rtol=1e-8, atol=0.0)
        assert budget_error(warm.weights, cov_today, None) <= REQUIRED_ACCURACY


def test_warm_start_at_the_solution_takes_no_step() -> None:
    cov = market_covariance(50, seed=2)
    budgets = np.linspace(1.0, 3.0, 50)
    solution = risk_budget_weights(cov, budgets)
    result = solve_risk_budget(cov, budgets, w0=solution)
    assert result.n_iter == 0
    np.testing.assert_allclose(result.weights, solution, rtol=1e-12, atol=0.0)


def test_budgets_are_normalised_to_sum_to_one() -> None:
    cov = market_covariance(20, seed=4)
    budgets = np.arange(1.0, 21.0)
    np.testing.assert_allclose(
        risk_budget_weights(cov, 7.0 * budgets),
        risk_budget_weights(cov, budgets / budgets.sum()),
        rtol=1e-12,
    )


def test_single_asset_gets_the_whole_portfolio() -> None:
    result = solve_risk_budget([[0.04]])
    assert result.weights.tolist() == [1.0]
    assert result.converged
    assert result.n_iter == 0


def test_inputs_are_not_modified_and_lists_are_accepted() -> None:
    cov = market_covariance(8, seed=9)
    before = cov.copy()
    budgets = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
    w = risk_budget_weights(cov.tolist(), budgets, w0=[1.0] * 8)
    np.testing.assert_array_equal(cov, before)
    assert budget_error(w, cov, np.array(budgets)) <= REQUIRED_ACCURACY


def test_result_is_a_frozen_record_of_diagnostics() -> None:
    result = solve_risk_budget(market_covariance(5, seed=1))
    assert isinstance(result, RiskBudgetResult)
    assert result.max_relative_error == pytest.approx(
        budget_error(result.weights, market_covariance(5, seed=1), None), abs=1e-14
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.converged = False  # type: ignore[misc]


def test_risk_contributions_add_up_to_the_portfolio_variance() -> None:
    cov = market_covariance(6, seed=6)
    w = np.array([0.3, -0.1, 0.2, 0.25, 0.15, 0.2])
    rc = risk_contributions(w, cov)
    assert rc.sum() == pytest.approx(float(w @ cov @ w), rel=1e-12)
    rel = relative_risk_contributions(w, cov)
    assert rel.sum() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(rel, rc / rc.sum(), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Non-convergence is never silent
# --------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings(
    "default::regime_trader.strategies.riskparity.RiskParityConvergenceWarning"
)
def test_exhausting_max_iter_warns_and_flags_the_result() -> None:
    cov = market_covariance(30, seed=12)
    with pytest.warns(RiskParityConvergenceWarning, match=r"did not reach tol=1e-10.*max_iter"):
        result = solve_risk_budget(cov, max_iter=1)
    assert not result.converged
    assert result.n_iter == 1
    assert result.max_relative_error == pytest.approx(budget_error(result.weights, cov, None))
    with pytest.warns(RiskParityConvergenceWarning, match="did not reach"):
        risk_budget_weights(cov, max_iter=0)


def test_callers_can_fail_closed_on_non_convergence() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RiskParityConvergenceWarning)
        with pytest.raises(RiskParityConvergenceWarning):
            risk_budget_weights(market_covariance(30, seed=12), max_iter=1)


# --------------------------------------------------------------------------------------------
# Input errors quote what was received
# --------------------------------------------------------------------------------------------

GOOD = np.array([[0.04, 0.006], [0.006, 0.09]])


@pytest.mark.parametrize(
    ("cov", "match"),
    [
        (np.ones((3, 4)), r"square .* got shape \(3, 4\)"),
        (np.ones(3), r"square .* got shape \(3,\)"),
        (np.ones((0, 0)), r"non-empty .* got shape \(0, 0\)"),
        (np.array([[0.04, np.nan], [np.nan, 0.09]]), r"finite; got cov\[0, 1\] = nan"),
        (np.array([[np.inf, 0.0], [0.0, 0.09]]), r"finite; got cov\[0, 0\] = inf"),
        (np.array([[0.04, 0.01], [0.0, 0.09]]), r"symmetric .* cov\[0, 1\] = 0.01 but cov\[1, 0\]"),
        (np.array([[0.0, 0.0], [0.0, 0.09]]), r"positive definite; .*cov\[0, 0\] = 0.0"),
        (np.array([[0.04, 0.0], [0.0, -0.09]]), r"positive definite; .*cov\[1, 1\] = -0.09"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), r"shape \(2, 2\) must be positive definite.*minor 2"),
        (np.ones((3, 3)), r"positive definite; its Cholesky .* minor 2 \(of 3\)"),
    ],
    ids=[
        "non-square",
        "one-dimensional",
        "empty",
        "nan",
        "inf",
        "asymmetric",
        "zero-variance",
        "negative-variance",
        "indefinite",
        "singular",
    ],
)
def test_invalid_covariance_is_rejected(cov: FloatArray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        risk_budget_weights(cov)


@settings(max_examples=100, deadline=None)
@given(problem=risk_budget_problems())
def test_a_caller_proven_covariance_gives_the_same_bits_without_the_cholesky_proof(
    problem: Problem,
) -> None:
    cov, budgets = problem
    checked = solve_risk_budget(cov, budgets)
    proven = solve_risk_budget(cov, budgets, assume_positive_definite=True)
    assert proven.weights.tobytes() == checked.weights.tobytes()
    assert (proven.n_iter, proven.max_relative_error) == (
        checked.n_iter,
        checked.max_relative_error,
    )


@pytest.mark.parametrize(
    ("cov", "match"),
    [
        (np.array([[0.04, np.nan], [np.nan, 0.09]]), r"finite; got cov\[0, 1\] = nan"),
        (np.array([[0.04, 0.01], [0.0, 0.09]]), r"symmetric .* cov\[0, 1\] = 0.01"),
        (np.array([[0.0, 0.0], [0.0, 0.09]]), r"positive definite; .*cov\[0, 0\] = 0.0"),
    ],
    ids=["nan", "asymmetric", "zero-variance"],
)
def test_a_caller_proven_covariance_is_still_validated_short_of_the_factorisation(
    cov: FloatArray, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        risk_budget_weights(cov, assume_positive_definite=True)


def test_asymmetry_within_relative_tolerance_is_accepted() -> None:
    cov = GOOD * 1e-6  # tiny units: the tolerance is relative to sigma_i * sigma_j
    cov[0, 1] *= 1.0 + 1e-12
    w = risk_budget_weights(cov)
    assert budget_error(w, cov, None) <= REQUIRED_ACCURACY


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budgets": [1.0, 2.0, 3.0]}, r"budgets must have shape \(2,\) .* got shape \(3,\)"),
        ({"budgets": [1.0, 0.0]}, r"budgets must be finite and > 0; got budgets\[1\] = 0.0"),
        ({"budgets": [-1.0, 2.0]}, r"budgets\[0\] = -1.0"),
        ({"budgets": [1.0, np.nan]}, r"budgets\[1\] = nan"),
        ({"w0": [1.0]}, r"w0 must have shape \(2,\) .* got shape \(1,\)"),
        ({"w0": [0.5, 0.0]}, r"w0 must be finite and > 0; got w0\[1\] = 0.0"),
        ({"w0": [-0.5, 1.5]}, r"w0\[0\] = -0.5"),
        ({"w0": [np.inf, 1.0]}, r"w0\[0\] = inf"),
        ({"tol": 0.0}, r"tol must be a positive finite number; got 0.0"),
        ({"tol": float("nan")}, r"tol .* got nan"),
        ({"max_iter": -1}, r"max_iter must be a non-negative integer; got -1"),
        ({"max_iter": 2.5}, r"max_iter .* got 2.5"),
    ],
    ids=[
        "budgets-length",
        "budgets-zero",
        "budgets-negative",
        "budgets-nan",
        "w0-length",
        "w0-zero",
        "w0-negative",
        "w0-inf",
        "tol-zero",
        "tol-nan",
        "max-iter-negative",
        "max-iter-float",
    ],
)
def test_invalid_options_are_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        solve_risk_budget(GOOD, **kwargs)  # type: ignore[arg-type]


def test_risk_contributions_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"weights must have shape \(2,\) .* got shape \(3,\)"):
        risk_contributions([0.2, 0.3, 0.5], GOOD)
    with pytest.raises(ValueError, match=r"square 2-D array; got shape \(2, 3\)"):
        risk_contributions([0.5, 0.5], np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"portfolio variance must be > 0 to split it; got 0.0"):
        relative_risk_contributions([0.0, 0.0], GOOD)


def test_diagnostics_of_a_solve_stopped_short_say_it_did_not_converge() -> None:
    cov = np.array([[4.0, 1.0, 0.5], [1.0, 1.0, 0.2], [0.5, 0.2, 0.25]])
    with pytest.warns(RiskParityConvergenceWarning, match="max_iter=1 was reached"):
        result = solve_risk_budget(cov, max_iter=1)
    rc = relative_risk_contributions(result.weights, cov)
    assert result.diagnostics() == {
        "converged": False,
        "n_iter": 1,
        "max_relative_error": pytest.approx(float(np.max(np.abs(3 * rc - 1))), abs=1e-14),
    }
    assert result.diagnostics()["max_relative_error"] > 1e-10
