"""hmmlearn's full-covariance Gaussian HMM, with the same bits in fewer NumPy calls.

EM runs an E-step per iteration and candidate (thousands in a walk-forward), and for a few
states and features hmmlearn's NumPy calls cost more than their arithmetic. Each override of
:class:`FullCovarianceHMM` does the same IEEE-754 operations in the same order, so fits are the
same bits (``tests/unit/strategies/test_regime_hmm`` compares each with hmmlearn's own):

- emissions (:func:`log_density_full`): hmmlearn's
  ``stats._log_multivariate_normal_density_full`` spends most of its time in
  ``scipy.linalg.cholesky`` and ``solve_triangular``'s input checks; this makes the same LAPACK
  calls (``dpotrf`` with the other triangle zeroed, ``dtrtrs``) and keeps hmmlearn's fallback
  (a covariance that is not positive definite is retried once with 1e-7 added to its diagonal,
  then refused with the same ``ValueError``);
- row sums over a few columns (the squared Mahalanobis terms, the posteriors' normaliser):
  NumPy's reduction of fewer than eight numbers per row adds them left to right, one inner
  loop per row; adding whole columns left to right is the same sums in one loop per column
  (:func:`row_sums`);
- the state weights ``posteriors.sum(axis=0)`` and second moments
  ``einsum('ij,ik,il->jkl', posteriors, X, X)``: NumPy adds both over i in order (a reduction
  down the first axis goes row after row; the three-operand einsum multiplies
  ``(p_ij x_ik) x_il``); the same products from ``X``'s columns tiled once per fit, added in
  one reduction down the rows (:func:`state_moments`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hmmlearn import _emissions
from hmmlearn.hmm import GaussianHMM
from hmmlearn.utils import normalize
from scipy.linalg.lapack import dpotrf, dtrtrs

__all__ = ["FullCovarianceHMM", "log_density_full", "row_sums", "state_moments"]

_RETRY_COVAR = 1e-7  # hmmlearn's min_covar of that function's fallback
_D_LOG_2PI = np.log(2 * np.pi)
_SEQUENTIAL = 8  # NumPy sums a row of fewer numbers left to right (pairwise from 8 on)


def row_sums(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=1)`` of a 2-D array, the same bits, faster for a few columns.

    Parameters
    ----------
    a : ndarray of shape (n_rows, n_columns)

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    if not 1 <= a.shape[1] < _SEQUENTIAL:
        return np.asarray(a.sum(axis=1))
    total = a[:, 0].copy()
    for k in range(1, a.shape[1]):
        total += a[:, k]
    return total


def _tiles(X: np.ndarray, n_states: int) -> tuple[np.ndarray, np.ndarray]:
    """The factors of :func:`state_moments`' products: ``X``'s columns tiled, then ones.

    Column (j*d+k)*d+l (j < n_states) of the first is ``X[:, k]``, of the second ``X[:, l]``;
    the last ``n_states`` columns of both are 1.
    """
    n, d = X.shape
    ones = np.ones((n, n_states))
    first = np.concatenate((np.tile(np.repeat(X, d, axis=1), (1, n_states)), ones), axis=1)
    second = np.concatenate((np.tile(X, (1, d * n_states)), ones), axis=1)
    return first, second


def state_moments(
    posteriors: np.ndarray, X: np.ndarray, tiles: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``posteriors.sum(axis=0)`` and ``np.einsum('ij,ik,il->jkl', posteriors, X, X)``.

    The same bits as NumPy's, in one reduction down the rows (row after row, as both of
    NumPy's go): the products ``(p_ij x_ik) x_il`` and ``(p_ij 1) 1`` side by side.

    Parameters
    ----------
    posteriors : ndarray of shape (n_obs, n_states)
    X : ndarray of shape (n_obs, n_features)
    tiles : pair of ndarray of shape (n_obs, n_states * (n_features ** 2 + 1)), optional
        :func:`_tiles` of ``X`` when the caller reuses them.

    Returns
    -------
    weights : ndarray of shape (n_states,)
    second_moments : ndarray of shape (n_states, n_features, n_features)
    """
    n_states, d = posteriors.shape[1], X.shape[1]
    first, second = _tiles(X, n_states) if tiles is None else tiles
    # Column (j*d+k)*d+l holds posteriors[:, j]; the last n_states columns posteriors itself.
    products = np.concatenate((np.repeat(posteriors, d * d, axis=1), posteriors), axis=1)
    products *= first
    products *= second
    sums = np.add.reduce(products, axis=0)
    return sums[n_states * d * d :], sums[: n_states * d * d].reshape(n_states, d, d)


def log_density_full(X: np.ndarray, means: np.ndarray, covars: np.ndarray) -> np.ndarray:
    """Gaussian log-density of each row under each component, full covariances.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    means : ndarray of shape (n_components, n_features)
    covars : ndarray of shape (n_components, n_features, n_features)

    Returns
    -------
    ndarray of shape (n_samples, n_components)

    Raises
    ------
    ValueError
        If a covariance is not positive definite even with 1e-7 on its diagonal.
    """
    n_features = means.shape[1]
    log_prob = []
    for mu, cv in zip(means, covars, strict=True):
        chol, info = dpotrf(cv, 1, 1)  # (a, lower, clean): scipy.linalg.cholesky(lower=True)
        if info > 0:
            chol, info = dpotrf(cv + _RETRY_COVAR * np.eye(n_features), 1, 1)
            if info > 0:
                raise ValueError("'covars' must be symmetric, positive-definite")
        if info < 0:  # pragma: no cover - a LAPACK argument error, not data
            raise ValueError(f"illegal value in argument {-info} of dpotrf")
        log_det = 2 * np.sum(np.log(np.diagonal(chol)))
        solved, info = dtrtrs(chol, (X - mu).T, lower=1)
        if info != 0:  # pragma: no cover - dpotrf succeeded: the diagonal is positive
            raise ValueError(f"dtrtrs failed with info={info}")
        sol = solved.T
        log_prob.append(-0.5 * (n_features * _D_LOG_2PI + row_sums(sol**2) + log_det))
    return np.transpose(log_prob)


class FullCovarianceHMM(GaussianHMM):  # type: ignore[misc]
    """``GaussianHMM(covariance_type="full")`` with the fast paths above, the same bits."""

    def fit(self, X: np.ndarray, lengths: np.ndarray | None = None) -> FullCovarianceHMM:
        """hmmlearn's ``fit``; the tiles of ``X`` live for this fit only."""
        self._tiled: tuple[Any, np.ndarray, np.ndarray] | None = None
        try:
            super().fit(X, lengths)
        finally:
            self._tiled = None
        return self

    def _compute_log_likelihood(self, X: np.ndarray) -> np.ndarray:
        return log_density_full(X, self.means_, self._covars_)

    def _compute_posteriors_scaling(
        self, fwdlattice: np.ndarray, bwdlattice: np.ndarray
    ) -> np.ndarray:
        posteriors: np.ndarray = fwdlattice * bwdlattice
        if posteriors.ndim != 2 or not 1 <= posteriors.shape[1] < _SEQUENTIAL:
            normalize(posteriors, axis=1)
            return posteriors
        total = row_sums(posteriors)  # hmmlearn's normalize(posteriors, axis=1)
        total[total == 0] = 1
        posteriors /= total[:, None]
        return posteriors

    def _accumulate_sufficient_statistics(
        self,
        stats: dict[str, Any],
        X: np.ndarray,
        lattice: np.ndarray,
        posteriors: np.ndarray,
        fwdlattice: np.ndarray,
        bwdlattice: np.ndarray,
    ) -> None:
        # BaseGaussianHMM's, its posteriors' sum and einsum from state_moments: start and
        # transition counts first (BaseHMM's), then the state weights, first and second moments.
        super(_emissions.BaseGaussianHMM, self)._accumulate_sufficient_statistics(
            stats=stats,
            X=X,
            lattice=lattice,
            posteriors=posteriors,
            fwdlattice=fwdlattice,
            bwdlattice=bwdlattice,
        )
        weights, moments = state_moments(posteriors, X, self._tiles_of(X))
        if self._needs_sufficient_statistics_for_mean():
            stats["post"] += weights
            stats["obs"] += posteriors.T @ X
        if self._needs_sufficient_statistics_for_covars():
            stats["obs*obs.T"] += moments

    def _tiles_of(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``X``'s tiled columns, made once for all the E-steps of a fit.

        hmmlearn hands every E-step a new view of the fit's ``X`` (``np.split``), so the
        tiles are keyed by the memory viewed; :meth:`fit` forgets them when it ends.
        """
        key = (X.__array_interface__["data"][0], X.shape, X.strides)
        cached = getattr(self, "_tiled", None)
        if cached is None or cached[0] != key:
            cached = (key, *_tiles(X, self.n_components))
            self._tiled = cached
        return cached[1], cached[2]
