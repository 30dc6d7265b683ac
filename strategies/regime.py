"""Gaussian HMM regimes: EM fitting with hmmlearn, our own causal forward filter.

hmmlearn fits the parameters (Baum-Welch EM). It is *not* used for probabilities: its
``predict_proba`` and ``predict`` run forward-backward / Viterbi over the whole sequence and
so use the future. The probabilities that drive weights come from :class:`ForwardFilter`,
which updates P(state_t | x_1..x_t) one observation at a time in log space.

Fitting choices (each a parameter of :class:`RegimeModel`):

- features are standardised with a scaler fit on the training window only (hmmlearn's
  ``min_covar`` is an absolute floor and would swamp raw daily-return variances);
- several seeded initialisations, keeping the best log-likelihood, and optionally a warm start
  from the previous fit's parameters;
- after every fit the states are relabelled by the equity asset's volatility under the filtered
  probabilities of the training window, so state 0 is the calmest and the last the most
  stressed, whatever order EM produced;
- non-convergence is checked on ``monitor_.iter`` (hmmlearn reports hitting ``n_iter`` as
  converged) and recorded, and warned about with :class:`RegimeConvergenceWarning`.

Reference: L. R. Rabiner, "A tutorial on hidden Markov models and selected applications in
speech recognition", Proc. IEEE 77(2), 1989 (forward recursion, eq. 19-20).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from regime_trader.strategies._checks import check_at_least, check_positive
from regime_trader.strategies.estimator import SeededStatesModel, Transitions
from regime_trader.strategies.regime_forward import filter_scaled, predict

if TYPE_CHECKING:
    from hmmlearn.hmm import GaussianHMM

__all__ = [
    "ForwardFilter",
    "HMMParams",
    "RegimeConvergenceWarning",
    "RegimeFitError",
    "RegimeModel",
]

_LOG_2PI = math.log(2.0 * math.pi)


class RegimeConvergenceWarning(UserWarning):
    """EM stopped at ``n_iter`` without meeting its tolerance."""


class RegimeFitError(RuntimeError):
    """No initialisation produced a usable model (all failed or were degenerate)."""


@dataclass(frozen=True)
class HMMParams(Transitions):
    """Parameters of a fitted Gaussian HMM, in the standardised feature space.

    Attributes
    ----------
    startprob : ndarray of shape (n_states,)
    transmat : ndarray of shape (n_states, n_states)
        Row-stochastic; ``transmat[i, j]`` = P(state_{t+1} = j | state_t = i).
    means : ndarray of shape (n_states, n_features)
    covars : ndarray of shape (n_states, n_features, n_features)
    scaler_mean, scaler_scale : ndarray of shape (n_features,)
        Standardisation fit on the training window: z = (x - mean) / scale.
    """

    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    covars: np.ndarray
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray

    def permuted(self, order: np.ndarray) -> HMMParams:
        """The same model with states renumbered so that new state i is old ``order[i]``."""
        return HMMParams(
            startprob=self.startprob[order],
            transmat=self.transmat[np.ix_(order, order)],
            means=self.means[order],
            covars=self.covars[order],
            scaler_mean=self.scaler_mean,
            scaler_scale=self.scaler_scale,
        )

    def rescaled(self, mean: np.ndarray, scale: np.ndarray) -> HMMParams:
        """Express the same emission distributions in another standardisation."""
        ratio = self.scaler_scale / scale
        means = (self.means * self.scaler_scale + self.scaler_mean - mean) / scale
        covars = self.covars * np.outer(ratio, ratio)
        return HMMParams(self.startprob, self.transmat, means, covars, mean, scale)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: every array as nested lists."""
        return {name: getattr(self, name).tolist() for name in self.__dataclass_fields__}

    def arrays(self) -> dict[str, np.ndarray]:
        """The fields as they are (for :class:`~regime_trader.strategies.state.StrategyState`)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HMMParams:
        """Read :meth:`to_dict` or :meth:`arrays`."""
        return cls(**{k: np.asarray(data[k], dtype=float) for k in cls.__dataclass_fields__})


class ForwardFilter:
    """Causal filtered probabilities P(state_t | x_1..x_t) for fixed parameters.

    Parameters
    ----------
    params : HMMParams
        The model; observations are given in raw feature units and standardised here.
    """

    def __init__(self, params: HMMParams) -> None:
        self.params = params
        d = params.means.shape[1]
        self._chol = np.linalg.cholesky(params.covars)
        log_det = 2.0 * np.log(np.diagonal(self._chol, axis1=1, axis2=2)).sum(axis=1)
        # Density of the raw x: the standardisation's Jacobian is the same for every state.
        self._const = -0.5 * (d * _LOG_2PI + log_det) - np.log(params.scaler_scale).sum()
        with np.errstate(divide="ignore"):
            self._log_transmat = np.log(params.transmat)
        self._transmat_rows: list[list[float]] = params.transmat.tolist()

    def log_emission(self, X: np.ndarray) -> np.ndarray:
        """Log density of each observation under each state.

        Parameters
        ----------
        X : ndarray of shape (n_obs, n_features)

        Returns
        -------
        ndarray of shape (n_obs, n_states)
        """
        Z = (np.atleast_2d(X) - self.params.scaler_mean) / self.params.scaler_scale
        out = np.empty((Z.shape[0], self.params.n_states))
        # One stacked solve: NumPy's gufunc makes the same LAPACK call per state as a solve
        # per state would, in a single call (a day's row is filtered every bar).
        diffs = (Z[None, :, :] - self.params.means[:, None, :]).transpose(0, 2, 1)
        solved = np.linalg.solve(self._chol, diffs)
        for k in range(self.params.n_states):
            out[:, k] = self._const[k] - 0.5 * np.einsum("ij,ij->j", solved[k], solved[k])
        return out

    def predict(self, probs: np.ndarray) -> np.ndarray:
        """One-step-ahead state distribution: probs @ transmat (summed as :meth:`run` does)."""
        return np.array(predict(probs.tolist(), self._transmat_rows))

    def step(self, prior: np.ndarray, log_b: np.ndarray) -> tuple[np.ndarray, float]:
        """Bayes update of a predicted distribution with one observation's log densities.

        Parameters
        ----------
        prior : ndarray of shape (n_states,)
            P(state_t | x_1..x_{t-1}) (the start probabilities for the first observation).
        log_b : ndarray of shape (n_states,)
            Log densities of x_t under each state.

        Returns
        -------
        posterior : ndarray of shape (n_states,)
            P(state_t | x_1..x_t).
        log_predictive : float
            log p(x_t | x_1..x_{t-1}), the observation's predictive log-likelihood.
        """
        with np.errstate(divide="ignore"):
            a = log_b + np.log(prior)
        top = a.max()
        weights = np.exp(a - top)
        total = weights.sum()
        return weights / total, float(top + math.log(total))

    def run(self, X: np.ndarray, prior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Filter a whole sequence, strictly left to right.

        Parameters
        ----------
        X : ndarray of shape (n_obs, n_features)
        prior : ndarray of shape (n_states,), optional
            Predicted distribution of the first observation; ``startprob`` by default.

        Returns
        -------
        filtered : ndarray of shape (n_obs, n_states)
        log_predictive : ndarray of shape (n_obs,)
        """
        log_b = self.log_emission(X)
        # Probability space with each row's densities shifted by their maximum: the most
        # likely state's scaled density is 1, so the normaliser only underflows when the
        # prior is ~0 there; such a step is redone exactly in log space by :meth:`step`.
        shift = log_b.max(axis=1)
        scaled = np.exp(log_b - shift[:, None])
        current = self.params.startprob if prior is None else prior

        def in_log_space(t: int, prior_t: list[float]) -> tuple[list[float], float]:
            post, loglik_t = self.step(np.array(prior_t), log_b[t])
            return post.tolist(), loglik_t

        # The day-by-day loop runs on Python floats (regime_forward: NumPy's arithmetic).
        return filter_scaled(
            scaled,
            shift,
            self._transmat_rows,
            np.asarray(current, dtype=float).tolist(),
            in_log_space,
        )


@dataclass(frozen=True)
class FitReport:
    """Diagnostics of one :meth:`RegimeModel.fit`.

    ``n_log_space_retries`` counts the starts whose EM had to be redone in log space (see
    :meth:`RegimeModel._fit_one`).
    """

    log_likelihood: float
    converged: bool
    n_iter: int
    n_candidates: int
    n_failed: int
    warm_started: bool
    n_log_space_retries: int = 0


@dataclass(frozen=True)
class _Window:
    """A training window: raw rows, standardised rows and the standardisation."""

    X: np.ndarray
    Z: np.ndarray
    mean: np.ndarray
    scale: np.ndarray


@dataclass(frozen=True)
class _Candidate:
    """One start's fit: its score, the estimator, the parameters and the window's filter."""

    score: float
    hmm: GaussianHMM
    params: HMMParams
    filtered: np.ndarray
    log_predictive: np.ndarray


_EM_IMPLEMENTATIONS = ("scaling", "log")


class RegimeModel(SeededStatesModel):
    """Gaussian HMM with full covariances, fitted by EM from several seeds.

    Parameters
    ----------
    n_states : int, default 2
        Number of regimes, 2 to 4.
    n_init : int, default 4
        Seeded random initialisations per cold fit.
    n_iter : int, default 100
        EM iteration cap per initialisation.
    tol : float, default 1e-3
        EM convergence tolerance on the log-likelihood gain.
    min_covar : float, default 1e-3
        Floor on the diagonal of each covariance, in standardised units.
    min_occupancy : float, default 0.01
        A candidate whose least visited state holds less than this share of the training
        window (by filtered probability) is degenerate and discarded.
    random_state : int, default 0
        Random initialisation j is seeded with ``random_state + j``.
    """

    def __init__(
        self,
        n_states: int = 2,
        *,
        n_init: int = 4,
        n_iter: int = 100,
        tol: float = 1e-3,
        min_covar: float = 1e-3,
        min_occupancy: float = 0.01,
        random_state: int = 0,
    ) -> None:
        super().__init__(
            n_states, n_init=n_init, min_occupancy=min_occupancy, random_state=random_state
        )
        check_at_least("n_iter", n_iter, 1)
        check_positive("tol", tol)
        check_positive("min_covar", min_covar)
        self.n_iter = n_iter
        self.tol = tol
        self.min_covar = min_covar

    def fit(
        self,
        X: np.ndarray,
        equity_returns: np.ndarray,
        *,
        warm_start: HMMParams | None = None,
        cold_starts: int | None = None,
    ) -> Self:
        """Fit on a training window and relabel states by equity volatility.

        Parameters
        ----------
        X : ndarray of shape (n_obs, n_features)
            Training features, raw units, all finite.
        equity_returns : ndarray of shape (n_obs,)
            The equity asset's return on each training day, used only to order the states.
        warm_start : HMMParams, optional
            Previous parameters; EM starts from them as one candidate, which keeps routine
            refits fast and their states aligned.
        cold_starts : int, optional
            Seeded random initialisations tried as well; default ``n_init`` without a warm
            start and 0 with one. A refit after drift wants both: the old parameters may
            sit in a local optimum the new data have moved away from.

        Returns
        -------
        self
            With ``params_`` (HMMParams), ``report_`` (FitReport), and the causal filter over
            the training window under the fitted parameters: ``filtered_`` of shape
            (n_obs, n_states) and ``log_predictive_`` of shape (n_obs,).

        Raises
        ------
        ValueError
            If the inputs are not finite or too short.
        RegimeFitError
            If every candidate failed or was degenerate.
        """
        X = np.asarray(X, dtype=float)
        equity_returns = np.asarray(equity_returns, dtype=float)
        self._check_inputs(X, equity_returns)
        mean = X.mean(axis=0)
        scale = np.maximum(X.std(axis=0), 1e-8)
        window = _Window(X, (X - mean) / scale, mean, scale)
        if cold_starts is None:
            cold_starts = 0 if warm_start is not None else self.n_init
        # (seed, start) pairs: the warm start first, then seeded random initialisations.
        starts: list[tuple[int, HMMParams | None]] = [
            (self.random_state + j, None) for j in range(cold_starts)
        ]
        if warm_start is not None:
            starts.insert(0, (self.random_state, warm_start.rescaled(mean, scale)))
        best: _Candidate | None = None
        failed = 0
        retries = 0
        # The fitting stack first, then one thread for it: threadpoolctl limits only the
        # libraries already loaded, and hmmlearn brings SciPy's own OpenBLAS and scikit-learn's
        # OpenMP, whose threads only contend on these small matrices (the 2004-2019 HMM
        # walk-forward ran 1.9x slower on two threads of a loaded 2-core machine).
        from threadpoolctl import threadpool_limits

        from regime_trader.strategies import regime_hmm  # noqa: F401 - loads what is limited

        with threadpool_limits(limits=1):
            for seed, start in starts:
                candidate, retried = self._fit_one(window, seed, start)
                retries += retried
                if candidate is None:
                    failed += 1
                    continue
                if best is None or candidate.score > best.score:
                    best = candidate
        if best is None:
            raise RegimeFitError(
                f"all {len(starts)} HMM initialisations failed or were degenerate "
                f"on {X.shape[0]} observations"
            )
        score, hmm, params = best.score, best.hmm, best.params
        # The occupancy check already filtered the window under these very parameters.
        filtered, self.log_predictive_ = best.filtered, best.log_predictive
        order = self._volatility_order(filtered, equity_returns)
        self.params_ = params.permuted(order)
        self.filtered_ = filtered[:, order]
        converged = bool(hmm.monitor_.converged and hmm.monitor_.iter < self.n_iter)
        if not converged:
            warnings.warn(
                f"HMM EM hit n_iter={self.n_iter} without reaching tol={self.tol}",
                RegimeConvergenceWarning,
                stacklevel=2,
            )
        self.report_ = FitReport(
            log_likelihood=score,
            converged=converged,
            n_iter=int(hmm.monitor_.iter),
            n_candidates=len(starts),
            n_failed=failed,
            warm_started=warm_start is not None,
            n_log_space_retries=retries,
        )
        return self

    def _check_inputs(self, X: np.ndarray, equity_returns: np.ndarray) -> None:
        if X.ndim != 2 or X.shape[0] != equity_returns.shape[0]:
            raise ValueError(
                f"X must be (n_obs, n_features) with one equity return per row, got "
                f"{X.shape} and {equity_returns.shape}"
            )
        min_obs = 10 * self.n_states * (X.shape[1] + 1)
        if X.shape[0] < min_obs:
            raise ValueError(f"need at least {min_obs} observations to fit, got {X.shape[0]}")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(equity_returns))):
            raise ValueError("training features and returns must be finite")

    def _fit_one(
        self, window: _Window, seed: int, start: HMMParams | None
    ) -> tuple[_Candidate | None, bool]:
        """EM from one start, in probability space, redone in log space if that fails.

        hmmlearn's ``"scaling"`` forward-backward runs on densities; it refuses (ValueError)
        when a day's densities underflow in every state, and is then redone with ``"log"``.
        Where it succeeds it gives the log implementation's parameters to ~1e-14 (relative
        log-likelihood 6e-14 at most over the 170 refits of the 2004-2019 3-asset walk-forward,
        with the same EM iteration counts), 1.6x faster. Returns the candidate (None when
        it failed or is degenerate) and whether log space was needed.
        """
        for implementation in _EM_IMPLEMENTATIONS:
            hmm = self._hmm(seed, start, implementation)
            try:
                hmm.fit(window.Z)
                score = float(hmm.score(window.Z))
            except (ValueError, np.linalg.LinAlgError):
                continue  # counted by the caller, reported in FitReport.n_failed
            if np.isfinite(score):
                return self._candidate(hmm, score, window), implementation != _EM_IMPLEMENTATIONS[0]
        return None, True

    def _hmm(self, seed: int, start: HMMParams | None, implementation: str) -> GaussianHMM:
        # hmmlearn (and scikit-learn, SciPy's stats behind it) only in a process that fits:
        # the service restores fitted parameters and filters without it.
        from regime_trader.strategies.regime_hmm import FullCovarianceHMM

        hmm = FullCovarianceHMM(
            n_components=self.n_states,
            covariance_type="full",
            n_iter=self.n_iter,
            tol=self.tol,
            min_covar=self.min_covar,
            random_state=seed,
            init_params="" if start is not None else "stmc",
            params="stmc",
            implementation=implementation,
        )
        if start is not None:
            hmm.startprob_ = start.startprob
            hmm.transmat_ = start.transmat
            hmm.means_ = start.means
            hmm.covars_ = start.covars
        return hmm

    def _candidate(self, hmm: GaussianHMM, score: float, window: _Window) -> _Candidate | None:
        """The fitted start with its causal filter over the window, None if degenerate.

        A state the filter almost never visits on the training window is degenerate.
        Occupancy is measured on the data rather than read off the stationary distribution
        of ``transmat_``: a regime that began recently and has not ended yet is absorbing in
        the fitted matrix (stationary share 0) although it is real and current. The filter
        runs on the raw window with its standardisation, exactly as the fit reports it, so
        the winner's pass is reused rather than repeated.
        """
        if not (np.all(np.isfinite(hmm.transmat_)) and np.all(np.isfinite(hmm.covars_))):
            return None
        params = HMMParams(
            startprob=np.asarray(hmm.startprob_, dtype=float),
            transmat=np.asarray(hmm.transmat_, dtype=float),
            means=np.asarray(hmm.means_, dtype=float),
            covars=np.asarray(hmm.covars_, dtype=float),
            scaler_mean=window.mean,
            scaler_scale=window.scale,
        )
        try:
            filtered, log_predictive = ForwardFilter(params).run(window.X)
        except np.linalg.LinAlgError:
            return None
        if filtered.mean(axis=0).min() < self.min_occupancy:
            return None
        return _Candidate(score, hmm, params, filtered, log_predictive)

    @staticmethod
    def _volatility_order(filtered: np.ndarray, equity_returns: np.ndarray) -> np.ndarray:
        """State order by the equity volatility each state carries, calmest first."""
        weight = filtered.sum(axis=0)
        variance = (filtered * equity_returns[:, None] ** 2).sum(axis=0) / np.maximum(weight, 1e-12)
        return np.argsort(variance, kind="stable")
