"""Risk-budgeting portfolio weights (equal risk contribution when the budgets are equal).

The risk contribution of asset ``i`` to a portfolio ``w`` with covariance ``Sigma`` is
``RC_i = w_i (Sigma w)_i``; the contributions add up to the portfolio variance ``w' Sigma w``.
A risk-budgeting portfolio is the long-only, fully invested ``w`` whose *relative* contributions
``RC_i / sum_j RC_j`` equal prescribed budgets ``b_i > 0`` with ``sum_i b_i = 1``; with
``b_i = 1/n`` it is the equal-risk-contribution (ERC) portfolio.

The algorithm, Newton's method on Spinu's convex formulation over the correlation matrix
(F. Spinu, "An algorithm for computing risk parity weights", SSRN 2297383, 2013), lives in
:mod:`regime_trader.strategies.riskparity_newton`; this module states the problem, validates the
input once (a Cholesky factorisation proves positive definiteness, unless the caller has proven it:
``assume_positive_definite``), maps the solution back to the
covariance passed in, measures its error there and reports it.

Non-convergence is never silent: ``converged=False`` on :class:`RiskBudgetResult` *and* a
:class:`RiskParityConvergenceWarning`, with the best iterate returned. Callers that must fail
closed escalate the warning with ``warnings.simplefilter("error",
RiskParityConvergenceWarning)`` or check ``converged``.

References
----------
.. [1] F. Spinu, "An algorithm for computing risk parity weights", SSRN 2297383 (2013).
.. [2] N. J. Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., SIAM (2002),
   section 3.1 (rounding-error bound of inner products, used for the floor).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Final, TypedDict, Unpack

import numpy as np
import numpy.typing as npt

from regime_trader.strategies.riskparity_linalg import LinAlgError, first_indefinite_minor
from regime_trader.strategies.riskparity_newton import (
    ONE_FACTOR_MIN_ASSETS,
    Matrix,
    Vector,
    cold_start,
    newton,
    polish,
    relative_error,
    rounding_floor,
)

__all__ = [
    "RiskBudgetOptions",
    "RiskBudgetResult",
    "RiskParityConvergenceWarning",
    "relative_risk_contributions",
    "risk_budget_weights",
    "risk_contributions",
    "solve_risk_budget",
]

SYMMETRY_RTOL: Final = 1e-8
"""Accepted asymmetry ``|Sigma_ij - Sigma_ji| <= SYMMETRY_RTOL * sigma_i * sigma_j``."""

# Reductions called as ufunc methods: the ndarray-method wrappers add a Python frame each.
_SUM: Final = np.add.reduce
_MIN: Final = np.minimum.reduce
_MAX: Final = np.maximum.reduce


class RiskParityConvergenceWarning(RuntimeWarning):
    """The risk-budgeting solver stopped before meeting its tolerance.

    Raised as a warning (never silently swallowed) alongside ``converged=False`` on the
    :class:`RiskBudgetResult`; the weights returned are the best iterate found. Escalate it with
    ``warnings.simplefilter("error", RiskParityConvergenceWarning)`` to fail closed.
    """


@dataclass(frozen=True)
class RiskBudgetResult:
    """The solution of a risk-budgeting problem and its diagnostics.

    Attributes
    ----------
    weights : ndarray of shape (n_assets,)
        Long-only weights, each ``> 0``, summing to 1.
    n_iter : int
        Newton (or reused-factor chord) steps taken; 0 when the starting point already met
        ``tol``.
    converged : bool
        Whether ``max_relative_error <= tol``; or, when ``tol`` is below what float64 can
        resolve for this matrix and the iteration has reached that floor, whether the error is
        within the worst-case rounding bound of its evaluation (details in
        :mod:`regime_trader.strategies.riskparity_newton`). ``False`` always comes with a
        :class:`RiskParityConvergenceWarning`.
    max_relative_error : float
        ``max_i |RC_i / sum(RC) - b_i| / b_i`` of ``weights`` measured on the covariance that
        was passed in, with ``b`` the normalised budgets (in extended precision when the solve
        ended at the float64 floor, where a float64 evaluation is itself rounding noise).
    """

    weights: Vector
    n_iter: int
    converged: bool
    max_relative_error: float

    def diagnostics(self) -> dict[str, bool | int | float]:
        """Return ``converged``, ``n_iter`` and ``max_relative_error`` as JSON-ready values.

        What a strategy puts on :attr:`regime_trader.strategies.base.Signal.diagnostics` (under
        ``"erc_solver"``), so a solve that stopped short is visible in every alert and log line
        that carries the signal, not only in a Python warning.
        """
        return {
            "converged": bool(self.converged),
            "n_iter": int(self.n_iter),
            "max_relative_error": float(self.max_relative_error),
        }


def risk_contributions(weights: npt.ArrayLike, cov: npt.ArrayLike) -> Vector:
    """Return the absolute risk contributions ``RC_i = w_i (Sigma w)_i``.

    Parameters
    ----------
    weights : array-like of shape (n_assets,)
        Portfolio weights (any sign, any sum).
    cov : array-like of shape (n_assets, n_assets)
        Covariance matrix, in squared return units per period.

    Returns
    -------
    ndarray of shape (n_assets,)
        The contributions; they sum to the portfolio variance ``w' Sigma w``.

    Raises
    ------
    ValueError
        If ``cov`` is not square or ``weights`` does not have shape (n_assets,).
    """
    w = np.asarray(weights, dtype=np.float64)
    sigma = np.asarray(cov, dtype=np.float64)
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
        raise ValueError(f"cov must be a square 2-D array; got shape {sigma.shape}")
    if w.shape != (sigma.shape[0],):
        raise ValueError(
            f"weights must have shape ({sigma.shape[0]},) to match cov; got shape {w.shape}"
        )
    rc: Vector = w * (sigma @ w)
    return rc


def relative_risk_contributions(weights: npt.ArrayLike, cov: npt.ArrayLike) -> Vector:
    """Return the relative risk contributions ``RC_i / sum_j RC_j``.

    Parameters
    ----------
    weights : array-like of shape (n_assets,)
        Portfolio weights.
    cov : array-like of shape (n_assets, n_assets)
        Covariance matrix.

    Returns
    -------
    ndarray of shape (n_assets,)
        Fractions of the portfolio variance; they sum to 1.

    Raises
    ------
    ValueError
        On the shape errors of :func:`risk_contributions`, or if the portfolio variance
        ``w' Sigma w`` is not positive (the fractions would be undefined).
    """
    rc = risk_contributions(weights, cov)
    total = float(rc.sum())
    if not total > 0.0:
        raise ValueError(f"portfolio variance must be > 0 to split it; got {total!r}")
    rel: Vector = rc / total
    return rel


class RiskBudgetOptions(TypedDict, total=False):
    """Keyword options of :func:`solve_risk_budget` and :func:`risk_budget_weights`.

    Each is documented, with its default, at :func:`solve_risk_budget`.
    """

    w0: npt.ArrayLike | None
    tol: float
    max_iter: int
    assume_positive_definite: bool


def solve_risk_budget(
    cov: npt.ArrayLike,
    budgets: npt.ArrayLike | None = None,
    **options: Unpack[RiskBudgetOptions],
) -> RiskBudgetResult:
    """Solve the long-only risk-budgeting problem and return the weights with diagnostics.

    Find ``w >= 0`` with ``sum(w) = 1`` whose relative risk contributions
    ``w_i (Sigma w)_i / (w' Sigma w)`` equal the budgets, by Newton's method on Spinu's convex
    formulation ``min_y 1/2 y' C y - sum_i b_i log y_i`` over the correlation matrix ``C``
    (see :mod:`regime_trader.strategies.riskparity_newton` and F. Spinu, "An algorithm for
    computing risk parity weights", 2013).

    Parameters
    ----------
    cov : array-like of shape (n_assets, n_assets)
        Covariance matrix: finite, symmetric (to a relative ``1e-8`` of ``sigma_i sigma_j``)
        and positive definite. Its units do not matter.
    budgets : array-like of shape (n_assets,), optional
        Positive risk budgets, normalised here to sum to 1. Default: equal budgets (ERC).
    w0 : array-like of shape (n_assets,), optional
        Strictly positive warm-start weights (e.g. the previous solution); only their
        direction is used. Default: the better of ``w_i ∝ sqrt(b_i) / sigma_i`` and the
        solution for a one-factor approximation of the correlation matrix.
    tol : float, default=1e-10
        Stop when ``max_i |RC_i / sum(RC) - b_i| / b_i <= tol``. On an ill-conditioned matrix
        a tiny ``tol`` can lie below the float64 floor; the solve then ends at that floor.
    max_iter : int, default=100
        Maximum number of Newton steps (0 only evaluates the starting point).
    assume_positive_definite : bool, default=False
        The caller has proven ``cov`` positive definite already (e.g.
        :func:`~regime_trader.strategies.covariance.regularize`, which lifts its lowest
        eigenvalue above zero): the Cholesky factorisation that would prove it again is
        skipped (at n = 500 it is a quarter of the solve). An indefinite matrix then goes
        undetected; shape, finiteness, positive variances and symmetry are still checked.

    Returns
    -------
    RiskBudgetResult
        Weights of shape (n_assets,), ``n_iter``, ``converged`` and ``max_relative_error``
        (measured on the returned weights and the ``cov`` passed in).

    Raises
    ------
    ValueError
        If ``cov`` is not a non-empty square matrix, has a NaN or infinite entry, is not
        symmetric or not positive definite (a Cholesky factorisation fails); if ``budgets``
        or ``w0`` has the wrong length, a non-finite or a non-positive entry; if ``tol`` is
        not a positive finite number or ``max_iter`` not a non-negative integer.

    Warns
    -----
    RiskParityConvergenceWarning
        If ``tol`` was not met within ``max_iter`` steps, or the iteration stalled above the
        rounding floor; the best weights found are returned with ``converged=False``.
    """
    return _solve(cov, budgets, stacklevel=3, **options)


def risk_budget_weights(
    cov: npt.ArrayLike,
    budgets: npt.ArrayLike | None = None,
    **options: Unpack[RiskBudgetOptions],
) -> Vector:
    """Return the long-only weights whose risk contributions match the budgets.

    The weights of :func:`solve_risk_budget`, which documents the algorithm (Spinu 2013)
    and every argument.

    Parameters
    ----------
    cov : array-like of shape (n_assets, n_assets)
        Positive definite covariance matrix.
    budgets : array-like of shape (n_assets,), optional
        Positive risk budgets (normalised to sum to 1); default equal (ERC).
    **options
        ``w0``, ``tol``, ``max_iter``, ``assume_positive_definite``, as
        :func:`solve_risk_budget` describes them.

    Returns
    -------
    ndarray of shape (n_assets,)
        Weights, each ``> 0``, summing to 1.

    Raises
    ------
    ValueError
        On invalid input, as listed in :func:`solve_risk_budget`.

    Warns
    -----
    RiskParityConvergenceWarning
        If the tolerance was not met; the best weights found are returned.
    """
    return _solve(cov, budgets, stacklevel=3, **options).weights


# --------------------------------------------------------------------------------------------
# Implementation
# --------------------------------------------------------------------------------------------


def _solve(
    cov: npt.ArrayLike,
    budgets: npt.ArrayLike | None,
    *,
    w0: npt.ArrayLike | None = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    assume_positive_definite: bool = False,
    stacklevel: int,
) -> RiskBudgetResult:
    """Validate once, run the Newton iteration, map back, measure, warn if needed."""
    # ``type(...) is`` first: the ABC checks cost a microsecond each on the common path.
    if not (type(tol) is float or (isinstance(tol, numbers.Real) and not isinstance(tol, bool))):
        raise ValueError(f"tol must be a positive finite number; got {tol!r}")
    if not 0.0 < tol < math.inf:
        raise ValueError(f"tol must be a positive finite number; got {tol!r}")
    if (
        not (
            type(max_iter) is int
            or (isinstance(max_iter, numbers.Integral) and not isinstance(max_iter, bool))
        )
        or max_iter < 0
    ):
        raise ValueError(f"max_iter must be a non-negative integer; got {max_iter!r}")

    sigma = np.asarray(cov, dtype=np.float64)
    corr, inv_vol, work = _correlation(sigma, prove_positive_definite=not assume_positive_definite)
    n = corr.shape[0]
    if budgets is None:
        b = np.full(n, 1.0 / n)
    else:
        b = _positive_vector(budgets, n, "budgets")
        b /= b.sum()
    inv_b = 1.0 / b

    at_floor = False
    if n == 1:
        weights = np.ones(1)
        n_iter = 0
    else:
        if w0 is None:
            y, cy = cold_start(corr, b, one_factor=n >= ONE_FACTOR_MIN_ASSETS)
        else:
            y = _positive_vector(w0, n, "w0") / inv_vol
            cy = corr @ y
            scale = 1.0 / math.sqrt(float(y @ cy))
            y *= scale
            cy *= scale
        y, n_iter, at_floor = newton(corr, work, b, inv_b, y, cy, float(tol), int(max_iter))
        weights = y * inv_vol
        weights /= _SUM(weights)

    error = relative_error(weights, sigma @ weights, inv_b)  # measured on the caller's cov
    converged = error <= tol
    why = f"max_iter={max_iter} was reached"
    if not converged and at_floor:
        # float64 residuals cannot resolve tol on this matrix: polish with extended-precision
        # residuals, then accept the rounding floor of the float64 weights once reached.
        weights, error = polish(sigma, corr, work, inv_vol, b, y)
        floor = rounding_floor(corr, y)
        converged = error <= max(tol, floor)
        why = f"it stalled above the rounding floor {floor:.3e} of this covariance"
    if not converged:
        warnings.warn(
            RiskParityConvergenceWarning(
                f"risk budgeting of {n} assets did not reach tol={tol:g}: {why} after "
                f"{n_iter} Newton steps; the max relative budget error is {error:.3e}; "
                "returning the best weights found"
            ),
            stacklevel=stacklevel,
        )
    return RiskBudgetResult(
        weights=weights, n_iter=n_iter, converged=converged, max_relative_error=error
    )


def _correlation(sigma: Matrix, *, prove_positive_definite: bool) -> tuple[Matrix, Vector, Matrix]:
    """Validate ``sigma`` and return its correlation matrix, ``1 / sigma_i`` and a work array.

    The work array is a Fortran-ordered (n, n) buffer, already used (and overwritten) by the
    symmetry check; the Newton loop refills it with the Hessian. Positive definiteness is
    proved by a Cholesky factorisation of the correlation matrix (unless the caller proved it).
    """
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1] or sigma.shape[0] == 0:
        raise ValueError(
            "cov must be a non-empty square 2-D array of shape (n_assets, n_assets); "
            f"got shape {sigma.shape}"
        )
    # A NaN or an infinity makes the sum non-finite (so can overflow, which the scan clears).
    if not math.isfinite(float(_SUM(sigma, axis=None))) and not np.isfinite(sigma).all():
        i, j = np.argwhere(~np.isfinite(sigma))[0]
        raise ValueError(f"cov must be finite; got cov[{i}, {j}] = {float(sigma[i, j])!r}")
    variances = np.diagonal(sigma)
    if not float(_MIN(variances)) > 0.0:
        i = int(np.flatnonzero(~(variances > 0.0))[0])
        raise ValueError(
            f"cov must be positive definite; got the variance cov[{i}, {i}] = "
            f"{float(variances[i])!r}, which is not > 0"
        )
    n = sigma.shape[0]
    inv_vol = 1.0 / np.sqrt(variances)
    corr = sigma * inv_vol[:, None]
    corr *= inv_vol
    # Large temporaries are costly (page faults), so the asymmetry goes into the work buffer
    # that the Newton loop needs anyway.
    work = np.empty((n, n), dtype=np.float64, order="F")
    np.subtract(corr, corr.T, out=work)
    np.abs(work, out=work)
    if _MAX(work, axis=None) > SYMMETRY_RTOL:
        i, j = np.unravel_index(int(np.argmax(work)), work.shape)
        raise ValueError(
            f"cov must be symmetric (to a relative {SYMMETRY_RTOL:g} of sigma_i * sigma_j); "
            f"got cov[{i}, {j}] = {float(sigma[i, j])!r} but cov[{j}, {i}] = {float(sigma[j, i])!r}"
        )
    if not prove_positive_definite:
        return corr, inv_vol, work
    # corr.T is Fortran-contiguous, so NumPy's copy into the LAPACK layout is a plain copy.
    try:
        np.linalg.cholesky(corr.T)
    except LinAlgError:
        info = first_indefinite_minor(corr.T)
        raise ValueError(
            f"cov of shape {sigma.shape} must be positive definite; its Cholesky "
            f"factorisation failed at leading minor {info} (of {n})"
        ) from None
    return corr, inv_vol, work


def _positive_vector(values: npt.ArrayLike, n: int, name: str) -> Vector:
    """Return ``values`` as a float vector of shape (n,) with finite entries ``> 0``."""
    v = np.array(values, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match cov; got shape {v.shape}")
    bad = ~(np.isfinite(v) & (v > 0.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite and > 0; got {name}[{i}] = {float(v[i])!r}")
    return v
