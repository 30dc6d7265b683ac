"""Black-Litterman with views on active returns, and a tracking-error-bounded long-only portfolio.

Pure mathematics (no state, no clock); :mod:`regime_trader.strategies.bl_regime` feeds it the
regime engine's predicted mixture of per-regime mean returns.

1. Equilibrium: the excess returns that make the benchmark optimal for a mean-variance investor
   of risk aversion delta, ``pi = delta * S w_b`` (:func:`implied_returns`).
2. Views: one per asset, "asset i beats the benchmark by Q_i", so the pick matrix is
   ``P = I - 1 w_b^T`` (:func:`active_pick_matrix`) and ``P pi`` the equilibrium's active
   returns. A view on an asset's *active* return is a relative view on the asset against the
   benchmark portfolio, not an absolute view on the asset: writing it with ``P = I`` would set
   an asset's total return equal to an active return.
3. View uncertainty: He and Litterman's ``Omega = diag(P tau S P^T) / c`` with a confidence
   ``c >= 0`` (:func:`view_uncertainty`); ``c = 1`` gives the views the weight of the prior,
   ``c = 0`` ignores them.
4. Posterior: ``mu = pi + tau S P^T (P tau S P^T + Omega)^-1 (Q - P pi)``
   (:func:`posterior_returns`), computed as ``pi + c tau S P^T (c P tau S P^T + Omega_1)^-1
   (Q - P pi)`` with ``Omega_1 = diag(P tau S P^T)``, which is the same for ``c > 0`` and is
   ``pi`` exactly at ``c = 0``.
5. Portfolio (:func:`tracking_error_portfolio`): maximise ``mu^T w - delta/2 w^T S w`` over
   the long-only, fully invested weights with ``sqrt((w - w_b)^T S (w - w_b)) <= TE``.

How the tracking-error constraint is solved, and why. The problem is convex (a concave
quadratic over the simplex intersected with an ellipsoid), so the KKT conditions characterise
its solution: for a multiplier ``nu >= 0`` on ``TE^2``, the solution maximises
``mu^T w - delta/2 w^T S w - nu/2 (w - w_b)^T S (w - w_b)`` over the simplex, which is the same
mean-variance problem with mean ``mu + nu S w_b`` and risk aversion ``delta + nu``: the
multiplier *blends the portfolio toward the benchmark* (without the long-only bounds, exactly
``w_b + delta / (delta + nu) (w* - w_b)``). Each such problem is a small strictly convex QP
solved exactly by an active-set method (:func:`simplex_qp`); the tracking error of its solution
does not increase with ``nu``, so ``nu`` is found by bisection and the feasible end of the
bracket is returned: the constraint holds at the solution, tight to a relative ``1e-9`` when it
binds, and ``nu = 0`` (no blending) when the unconstrained optimum already satisfies it. This
was preferred over a generic SLSQP with the quadratic constraint because the active set and the
bisection are deterministic, need no starting point or tolerance tuning, and give the exact
benchmark when the views carry no information (SLSQP stops where its own tolerance says); the
tests compare the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BlackLittermanResult",
    "active_pick_matrix",
    "black_litterman",
    "implied_returns",
    "posterior_returns",
    "simplex_qp",
    "tracking_error",
    "tracking_error_portfolio",
    "view_uncertainty",
]

_BISECTIONS = 200  # far more than a relative 1e-9 on the tracking error ever needs
_TE_RTOL = 1e-9


def implied_returns(cov: np.ndarray, w_bench: np.ndarray, risk_aversion: float) -> np.ndarray:
    """Equilibrium excess returns ``delta S w_b``, shape (n,)."""
    return np.asarray(risk_aversion * (cov @ w_bench))


def active_pick_matrix(w_bench: np.ndarray) -> np.ndarray:
    """``P = I - 1 w_b^T``: row i is asset i less the benchmark portfolio."""
    n = len(w_bench)
    return np.asarray(np.eye(n) - np.outer(np.ones(n), w_bench))


def view_uncertainty(pick: np.ndarray, cov: np.ndarray, tau: float) -> np.ndarray:
    """He-Litterman's view variances at confidence 1, ``diag(P tau S P^T)``, shape (k,).

    A view whose row of P is zero (the benchmark is all in that asset) has no variance of its
    own; it is floored at a tiny fraction of the mean so the posterior stays defined (such a
    view says nothing: its Q - P pi is 0).
    """
    omega = np.einsum("ij,jk,ik->i", pick, tau * cov, pick)
    floor = 1e-12 * max(float(np.mean(np.diag(cov))) * tau, 1e-300)
    return np.asarray(np.maximum(omega, floor))


def posterior_returns(
    pi: np.ndarray,
    cov: np.ndarray,
    pick: np.ndarray,
    views: np.ndarray,
    omega_unit: np.ndarray,
    tau: float,
    confidence: float = 1.0,
) -> np.ndarray:
    """The Black-Litterman posterior mean with ``Omega = diag(omega_unit) / confidence``.

    Parameters
    ----------
    pi : ndarray of shape (n,)
        Prior (equilibrium) mean.
    cov : ndarray of shape (n, n)
    pick : ndarray of shape (k, n)
    views : ndarray of shape (k,)
        Q.
    omega_unit : ndarray of shape (k,)
        Diagonal of Omega at confidence 1.
    tau : float
        Scale of the prior's uncertainty, ``tau S``.
    confidence : float, default 1
        >= 0; 0 returns ``pi`` exactly.

    Returns
    -------
    ndarray of shape (n,)
    """
    if confidence < 0 or not math.isfinite(confidence):
        raise ValueError(f"confidence must be a finite number >= 0, got {confidence}")
    if confidence == 0:
        return np.asarray(pi, dtype=float).copy()
    prior = tau * cov
    sp = prior @ pick.T
    # Multiplying the bracket by c keeps the formula finite as c goes to 0.
    middle = confidence * (pick @ sp) + np.diag(omega_unit)
    gain = np.linalg.solve(middle, views - pick @ pi)
    return np.asarray(pi + confidence * (sp @ gain))


def tracking_error(w: np.ndarray, w_bench: np.ndarray, cov: np.ndarray) -> float:
    """``sqrt((w - w_b)^T S (w - w_b))`` in the units of ``cov`` (daily for a daily S)."""
    d = w - w_bench
    return math.sqrt(max(float(d @ cov @ d), 0.0))


def simplex_qp(
    a: np.ndarray, cov: np.ndarray, gamma: float, w0: np.ndarray, max_iter: int = 500
) -> np.ndarray:
    """Maximise ``a^T w - gamma/2 w^T S w`` subject to ``w >= 0`` and ``sum(w) = 1``, exactly.

    A primal active-set method (Nocedal and Wright, Numerical Optimization, 2nd ed., alg. 16.3)
    for a positive definite S and gamma > 0: every iterate is feasible, each step solves the
    equality-constrained problem on the free assets, and an asset leaves the bound set when
    its multiplier is negative. Finite for a strictly convex problem.

    Parameters
    ----------
    a : ndarray of shape (n,)
    cov : ndarray of shape (n, n)
        Symmetric positive definite.
    gamma : float
        > 0.
    w0 : ndarray of shape (n,)
        A feasible start (>= 0, summing to 1).

    Raises
    ------
    RuntimeError
        If the method has not finished after ``max_iter`` steps (cycling: a degenerate problem).
    """
    w = np.asarray(w0, dtype=float).copy()
    bound = w <= 0.0
    w[bound] = 0.0
    scale = max(float(np.max(np.abs(gamma * cov))), float(np.max(np.abs(a))), 1e-300)
    tol = 1e-12 * scale
    # After a full step the iterate minimises on its free set: rounding leaves a step of
    # ~1e-16 x cond, which is not worth taking; go straight to the multipliers instead.
    at_minimum = False
    for _ in range(max_iter):
        free = np.flatnonzero(~bound)
        g = gamma * (cov @ w) - a  # gradient of the minimised objective
        k = len(free)
        kkt = np.zeros((k + 1, k + 1))
        kkt[:k, :k] = gamma * cov[np.ix_(free, free)]
        kkt[:k, k] = 1.0
        kkt[k, :k] = 1.0
        sol = np.linalg.solve(kkt, np.concatenate([-g[free], [0.0]]))
        d = sol[:k]
        if at_minimum or np.max(np.abs(d), initial=0.0) <= 1e-15:
            multipliers = g + sol[k]  # of the bounds w_i >= 0 held in the working set
            held = np.flatnonzero(bound)
            if held.size == 0 or float(np.min(multipliers[held])) >= -tol:
                return w
            bound[held[int(np.argmin(multipliers[held]))]] = False
            at_minimum = False
            continue
        step, blocking = 1.0, -1
        for j, dj in zip(free, d, strict=True):
            if dj < 0 and -w[j] / dj < step:
                step, blocking = -w[j] / dj, int(j)
        w[free] += step * d
        at_minimum = blocking < 0
        if blocking >= 0:
            bound[blocking] = True
        # The step keeps sum(w) = 1 up to rounding; the blocking asset is exactly 0.
        w = np.where(bound, 0.0, np.maximum(w, 0.0))
        w = w / w.sum()
    raise RuntimeError(f"simplex_qp did not finish in {max_iter} steps")


@dataclass(frozen=True)
class TrackingErrorSolution:
    """The TE-bounded portfolio and how it was reached."""

    weights: np.ndarray
    tracking_error: float
    multiplier: float
    binding: bool


def tracking_error_portfolio(
    mu: np.ndarray,
    cov: np.ndarray,
    w_bench: np.ndarray,
    risk_aversion: float,
    te_max: float,
) -> TrackingErrorSolution:
    """Maximise ``mu^T w - delta/2 w^T S w`` on the simplex with TE <= ``te_max``.

    See the module docstring for the method. ``te_max`` is in the units of ``cov`` (a daily S
    takes a daily tracking error). ``w_bench`` must be long-only and fully invested.
    """
    if not te_max >= 0:
        raise ValueError(f"te_max must be >= 0, got {te_max}")
    w_b = np.asarray(w_bench, dtype=float)

    def solve(nu: float, start: np.ndarray) -> np.ndarray:
        return simplex_qp(mu + nu * (cov @ w_b), cov, risk_aversion + nu, start)

    w = solve(0.0, w_b)
    te = tracking_error(w, w_b, cov)
    if te <= te_max:
        return TrackingErrorSolution(w, te, 0.0, False)
    if te_max == 0:
        return TrackingErrorSolution(w_b.copy(), 0.0, math.inf, True)
    low, high = 0.0, risk_aversion
    w_high = solve(high, w)
    while tracking_error(w_high, w_b, cov) > te_max:
        low, high = high, 2.0 * high
        w_high = solve(high, w_high)
        if high > 1e300:  # unreachable for a positive definite S: w tends to w_b
            return TrackingErrorSolution(w_b.copy(), 0.0, math.inf, True)
    for _ in range(_BISECTIONS):
        te_high = tracking_error(w_high, w_b, cov)
        if te_high >= te_max * (1.0 - _TE_RTOL) or high - low <= 1e-15 * high:
            break
        mid = 0.5 * (low + high)
        w_mid = solve(mid, w_high)
        if tracking_error(w_mid, w_b, cov) > te_max:
            low = mid
        else:
            high, w_high = mid, w_mid
    return TrackingErrorSolution(w_high, tracking_error(w_high, w_b, cov), high, True)


@dataclass(frozen=True)
class BlackLittermanResult:
    """Every step of one Black-Litterman decision (daily units, asset order).

    Attributes
    ----------
    implied, views, posterior : ndarray
        pi, Q (active returns over the benchmark) and mu.
    solution : TrackingErrorSolution
    """

    implied: np.ndarray
    views: np.ndarray
    posterior: np.ndarray
    solution: TrackingErrorSolution

    @property
    def weights(self) -> np.ndarray:
        return self.solution.weights

    def diagnostics(self, symbols: list[str], periods_per_year: float) -> dict[str, Any]:
        """JSON values, returns and tracking error annualised (x periods, x sqrt(periods))."""

        def per_symbol(x: np.ndarray) -> dict[str, float]:
            return dict(zip(symbols, (x * periods_per_year).tolist(), strict=True))

        sol = self.solution
        return {
            "implied_returns": per_symbol(self.implied),
            "views_active": per_symbol(self.views),
            "posterior_returns": per_symbol(self.posterior),
            "tracking_error": sol.tracking_error * math.sqrt(periods_per_year),
            "te_binding": sol.binding,
            "te_multiplier": sol.multiplier if math.isfinite(sol.multiplier) else None,
        }


def black_litterman(
    cov: np.ndarray,
    w_bench: np.ndarray,
    expected_returns: np.ndarray,
    *,
    risk_aversion: float,
    tau: float,
    confidence: float,
    te_max: float,
) -> BlackLittermanResult:
    """The whole decision from a covariance, a benchmark and a forecast of asset returns.

    Parameters
    ----------
    cov : ndarray of shape (n, n)
        Symmetric positive definite.
    w_bench : ndarray of shape (n,)
        Long-only, summing to 1.
    expected_returns : ndarray of shape (n,)
        The forecast the views come from: Q_i = m_i - w_b^T m.
    risk_aversion, tau, confidence, te_max : float
        delta, tau, c (see :func:`posterior_returns`) and the tracking-error bound in the units
        of ``cov``.
    """
    pi = implied_returns(cov, w_bench, risk_aversion)
    pick = active_pick_matrix(w_bench)
    views = pick @ expected_returns
    omega = view_uncertainty(pick, cov, tau)
    mu = posterior_returns(pi, cov, pick, views, omega, tau, confidence)
    solution = tracking_error_portfolio(mu, cov, w_bench, risk_aversion, te_max)
    return BlackLittermanResult(pi, views, mu, solution)
