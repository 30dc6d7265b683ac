"""Black-Litterman mathematics: the posterior by hand, the benchmark without views, and the
tracking-error-bounded long-only portfolio against an independent solver."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import minimize

from regime_trader.strategies.black_litterman import (
    active_pick_matrix,
    black_litterman,
    implied_returns,
    posterior_returns,
    simplex_qp,
    tracking_error,
    tracking_error_portfolio,
    view_uncertainty,
)

DAILY_TE = 0.03 / math.sqrt(252)


def _random_problem(seed: int, n: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    cov = (a @ a.T / n + 0.1 * np.eye(n)) * 1e-4  # daily variances of ~1-2% a day
    return cov, rng.normal(size=n) * 5e-4


def test_the_posterior_of_one_view_on_two_uncorrelated_assets_matches_the_hand_computation() -> (
    None
):
    # S = diag(0.04, 0.09), tau = 0.05, one view on asset 0 alone (P = [1, 0]) of Q = 0.10 with
    # omega = 0.002 = tau S_00: the view weighs as the prior, so mu_0 = (pi_0 + Q) / 2, and the
    # uncorrelated asset 1 keeps its prior.
    cov = np.diag([0.04, 0.09])
    w_b = np.array([0.5, 0.5])
    pi = implied_returns(cov, w_b, 2.5)
    assert pi == pytest.approx([0.05, 0.1125], abs=1e-15)  # 2.5 * 0.04 * 0.5, 2.5 * 0.09 * 0.5
    mu = posterior_returns(
        pi, cov, np.array([[1.0, 0.0]]), np.array([0.10]), np.array([0.002]), 0.05
    )
    np.testing.assert_allclose(mu, [0.075, 0.1125], rtol=0, atol=1e-15)
    # Confidence 4 makes omega a quarter: weight tau S / (tau S + omega / 4) = 0.8 on the view.
    mu4 = posterior_returns(
        pi, cov, np.array([[1.0, 0.0]]), np.array([0.10]), np.array([0.002]), 0.05, 4.0
    )
    np.testing.assert_allclose(mu4, [0.05 + 0.8 * 0.05, 0.1125], rtol=0, atol=1e-15)


def test_the_active_views_posterior_on_three_correlated_assets_matches_the_precision_form() -> None:
    # mu = [(tau S)^-1 + P^T Omega^-1 P]^-1 [(tau S)^-1 pi + P^T Omega^-1 Q] is the same
    # posterior written through precisions; P = I - 1 w_b^T is singular, Omega is not.
    cov = np.array([[0.04, 0.012, 0.006], [0.012, 0.0225, 0.0045], [0.006, 0.0045, 0.01]])
    w_b = np.array([0.5, 0.3, 0.2])
    tau = 0.05
    pi = implied_returns(cov, w_b, 3.0)
    np.testing.assert_allclose(pi, 3.0 * np.array([0.0248, 0.01365, 0.00635]), atol=1e-15)
    pick = active_pick_matrix(w_b)
    np.testing.assert_allclose(pick @ np.ones(3), 0.0, atol=1e-15)  # cash-neutral views
    q = np.array([0.02, -0.01, 0.005])
    omega = view_uncertainty(pick, cov, tau)
    np.testing.assert_allclose(omega, np.diag(pick @ (tau * cov) @ pick.T), rtol=1e-15)
    for c in (0.25, 1.0, 3.0):
        precision = np.linalg.inv(tau * cov) + pick.T @ np.diag(c / omega) @ pick
        rhs = np.linalg.solve(tau * cov, pi) + pick.T @ (c / omega * q)
        expected = np.linalg.solve(precision, rhs)
        got = posterior_returns(pi, cov, pick, q, omega, tau, c)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_zero_confidence_views_give_the_prior_and_the_benchmark_exactly() -> None:
    cov, m = _random_problem(3)
    w_b = np.full(7, 1 / 7)
    out = black_litterman(cov, w_b, m, risk_aversion=2.5, tau=0.05, confidence=0.0, te_max=DAILY_TE)
    np.testing.assert_array_equal(out.posterior, out.implied)
    np.testing.assert_allclose(out.weights, w_b, rtol=0, atol=1e-15)
    assert out.solution.tracking_error < 1e-15 and not out.solution.binding
    # A benchmark that is not 1/N, with an asset out of it, is also returned exactly.
    w_c = np.array([0.3, 0.0, 0.2, 0.1, 0.1, 0.2, 0.1])
    out = black_litterman(cov, w_c, m, risk_aversion=2.5, tau=0.05, confidence=0.0, te_max=0.01)
    np.testing.assert_allclose(out.weights, w_c, rtol=0, atol=1e-15)


def test_views_equal_to_the_equilibrium_leave_the_benchmark() -> None:
    cov, _ = _random_problem(4)
    w_b = np.full(7, 1 / 7)
    pi = implied_returns(cov, w_b, 2.5)
    out = black_litterman(cov, w_b, pi, risk_aversion=2.5, tau=0.05, confidence=5.0, te_max=0.1)
    np.testing.assert_allclose(out.posterior, pi, atol=1e-18)
    np.testing.assert_allclose(out.weights, w_b, atol=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_the_portfolio_is_long_only_fully_invested_within_the_te_and_optimal(seed: int) -> None:
    cov, m = _random_problem(seed)
    w_b = np.full(7, 1 / 7)
    out = black_litterman(cov, w_b, m, risk_aversion=2.5, tau=0.05, confidence=1.0, te_max=DAILY_TE)
    w, mu = out.weights, out.posterior
    assert w.min() >= 0.0 and w.sum() == pytest.approx(1.0, abs=1e-14)
    te = tracking_error(w, w_b, cov)
    assert te <= DAILY_TE and te == pytest.approx(out.solution.tracking_error, rel=1e-15)
    assert out.solution.binding and te >= DAILY_TE * (1 - 1e-8)  # these views want more
    # An independent solver of the same constrained problem finds no better utility.
    utility = lambda x: float(mu @ x - 1.25 * x @ cov @ x)  # noqa: E731
    constraints = [
        {"type": "eq", "fun": lambda x: x.sum() - 1.0},
        {"type": "ineq", "fun": lambda x: DAILY_TE**2 - (x - w_b) @ cov @ (x - w_b)},
    ]
    ref = minimize(
        lambda x: -utility(x),
        w_b,
        method="SLSQP",
        bounds=[(0.0, None)] * 7,
        constraints=constraints,
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    assert ref.success
    assert utility(w) >= utility(ref.x) - 1e-12
    np.testing.assert_allclose(w, ref.x, atol=1e-6)


def test_a_slack_te_bound_gives_the_unconstrained_optimum() -> None:
    cov, m = _random_problem(5)
    w_b = np.full(7, 1 / 7)
    free = tracking_error_portfolio(m, cov, w_b, 2.5, 10.0)
    assert not free.binding and free.multiplier == 0.0
    np.testing.assert_array_equal(free.weights, simplex_qp(m, cov, 2.5, w_b))
    tight = tracking_error_portfolio(m, cov, w_b, 2.5, free.tracking_error / 2)
    assert tight.binding and tight.multiplier > 0
    assert tight.tracking_error == pytest.approx(free.tracking_error / 2, rel=1e-8)
    zero = tracking_error_portfolio(m, cov, w_b, 2.5, 0.0)
    np.testing.assert_array_equal(zero.weights, w_b)


@pytest.mark.parametrize("seed", range(8))
def test_the_simplex_qp_satisfies_the_kkt_conditions(seed: int) -> None:
    cov, m = _random_problem(seed, n=9)
    a = m * 50  # strong enough that several bounds bind
    w = simplex_qp(a, cov, 2.0, np.full(9, 1 / 9))
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-14)
    g = 2.0 * cov @ w - a
    free = w > 0
    assert (~free).any()  # the bounds are exercised
    lam = g[free].mean()
    np.testing.assert_allclose(g[free], lam, atol=1e-12 * np.abs(a).max())
    assert (g[~free] - lam).min() >= -1e-12 * np.abs(a).max()


def test_the_te_falls_as_the_multiplier_blends_toward_the_benchmark() -> None:
    cov, m = _random_problem(6)
    w_b = np.full(7, 1 / 7)
    tes = [
        tracking_error(simplex_qp(m + nu * cov @ w_b, cov, 2.5 + nu, w_b), w_b, cov)
        for nu in (0.0, 1.0, 10.0, 100.0, 1e6)
    ]
    assert all(a >= b for a, b in itertools.pairwise(tes))
    assert tes[-1] < 1e-3 * tes[0]


def test_bad_arguments_are_refused() -> None:
    cov, m = _random_problem(7, n=3)
    with pytest.raises(ValueError, match="confidence"):
        posterior_returns(m, cov, np.eye(3), m, np.ones(3), 0.05, -1.0)
    with pytest.raises(ValueError, match="te_max"):
        tracking_error_portfolio(m, cov, np.full(3, 1 / 3), 2.5, -0.01)
