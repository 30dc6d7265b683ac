"""hmmlearn's full-covariance Gaussian HMM, its emission log-densities without SciPy's wrappers.

EM calls ``_compute_log_likelihood`` once per iteration and candidate (thousands of times in a
walk-forward), and for a few states and features hmmlearn's
``stats._log_multivariate_normal_density_full`` spends most of its time in
``scipy.linalg.cholesky`` and ``solve_triangular``'s input checks. :class:`FullCovarianceHMM`
computes the same thing with the same LAPACK calls (``dpotrf`` with the other triangle zeroed,
``dtrtrs``) and the same NumPy operations in the same order, so its log-densities are the same
bits (``tests/unit/strategies/test_regime_hmm`` compares them with hmmlearn's function); the
fallback of hmmlearn's function is kept too (a covariance that is not positive definite is
retried once with 1e-7 added to its diagonal, then refused with the same ``ValueError``).
"""

from __future__ import annotations

import numpy as np
from hmmlearn.hmm import GaussianHMM
from scipy.linalg.lapack import dpotrf, dtrtrs

__all__ = ["FullCovarianceHMM", "log_density_full"]

_RETRY_COVAR = 1e-7  # hmmlearn's min_covar of that function's fallback
_D_LOG_2PI = np.log(2 * np.pi)


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
        log_prob.append(-0.5 * (n_features * _D_LOG_2PI + (sol**2).sum(axis=1) + log_det))
    return np.transpose(log_prob)


class FullCovarianceHMM(GaussianHMM):  # type: ignore[misc]
    """``GaussianHMM(covariance_type="full")`` with :func:`log_density_full` as its emissions."""

    def _compute_log_likelihood(self, X: np.ndarray) -> np.ndarray:
        return log_density_full(X, self.means_, self._covars_)
