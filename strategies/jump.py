"""Statistical and sparse jump models with a K x K jump penalty and causal online inference.

A jump model (Nystrup, Lindström & Madsen 2020; Shu, Yu & Mulvey 2024, arXiv 2402.05272)
assigns each day t a state s_t and each state a centroid mu_k, minimising

    sum_t 0.5 * ||z_t - mu_{s_t}||^2  +  sum_{t>=1} Lambda[s_{t-1}, s_t]

over standardised features z. The loss keeps the literature's factor 0.5 (as the
``jumpmodels`` package does) so that its lambda values carry over. Lambda is K x K with a
zero diagonal: the scalar lambda of the papers is ``lambda * (1 - I)``; an asymmetric one
charges entering stress (``enter``) differently from leaving it (``exit``), the "JOH-12"
extension of the Helix project: a low enter and a high exit let crises in fast and out slowly.

Fitting is coordinate descent from several seeded k-means++ starts: the assignment step is
an exact dynamic programme over the penalised loss (Viterbi with costs, O(T K^2)), the update
step sets each centroid to the mean of its days; neither step can raise the objective. With
an asymmetric Lambda the role of a state matters, so the centroids are put in canonical order
(state 0 calmest) before every assignment step, not only at the end; such a renumbering can
raise the objective (the trace on :class:`JumpFitReport` would show it; none was seen in
the tests). States are ordered by the mean squared equity return of their days.

The sparse jump model (feature weights with an l1 budget, Nystrup, Kolm & Lindström 2021)
is :class:`~regime_trader.strategies.jump_sparse.SparseJumpModel`; the online tracker with the HMM
tracker's daily contract is :class:`~regime_trader.strategies.jump_online.JumpTracker`.

Online inference is causal and lives in :mod:`regime_trader.strategies.jump_dp` (re-exported here):
the label of day t is the argmin of the DP's forward value vector, updated in O(K^2) per day.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Self

import numpy as np

from regime_trader.strategies._checks import check_at_least, check_non_negative, check_positive
from regime_trader.strategies.estimator import SeededStatesModel
from regime_trader.strategies.jump_dp import (
    JumpParams,
    OnlineJumpFilter,
    check_penalty,
    dp_assign,
    dp_step,
    half_sq_dist,
    kmeans_pp,
    penalty_matrix,
    with_penalty,
)
from regime_trader.strategies.jump_features import FeatureScaler

__all__ = [
    "Descent",
    "JumpConvergenceWarning",
    "JumpFitError",
    "JumpFitReport",
    "JumpModel",
    "JumpParams",
    "OnlineJumpFilter",
    "dp_assign",
    "dp_step",
    "penalty_matrix",
    "with_penalty",
]


class JumpConvergenceWarning(UserWarning):
    """Coordinate descent stopped at ``max_iter`` before the assignment settled."""


class JumpFitError(RuntimeError):
    """No start produced a usable model (every candidate left a state almost empty)."""


@dataclass(frozen=True)
class JumpFitReport:
    """Diagnostics of one fit (of the best start).

    ``objective`` is the penalised loss in the fitted space; ``objective_trace`` its value
    after every assignment step; ``n_switches`` the switches of the fitted in-sample path
    (smoothed, a diagnostic only); ``n_degenerate`` starts discarded for an almost empty state.
    """

    objective: float
    n_iter: int
    converged: bool
    n_switches: int
    n_candidates: int
    n_degenerate: int
    warm_started: bool
    objective_trace: tuple[float, ...]


@dataclass(frozen=True)
class Descent:
    """One coordinate-descent run.

    Centroids (fitted space, calmest first), the path, the penalised objective of that path,
    iterations, whether the assignment settled, and the objective after every assignment step.
    """

    centers: np.ndarray
    labels: np.ndarray
    objective: float
    n_iter: int
    converged: bool
    trace: tuple[float, ...]


class JumpModel(SeededStatesModel):
    """Statistical jump model fitted by coordinate descent from several seeded starts.

    Parameters
    ----------
    n_states : int, default 2
        Number of regimes, 2 to 4.
    jump_penalty : float, default 10.0
        Scalar lambda (>= 0), in units of the 0.5 * squared standardised distance (so it
        weighs against the number of features: 10 suits ~10-20 standardised features).
    penalty : array-like of shape (n_states, n_states), optional
        Full Lambda (zero diagonal, >= 0), overriding ``jump_penalty``; see
        :func:`penalty_matrix` for the enter/exit form.
    n_init : int, default 10
        Seeded k-means++ starts per cold fit.
    max_iter : int, default 100
        Coordinate-descent iterations per start.
    tol : float, default 1e-8
        Stop when an iteration lowers the objective by less than this.
    min_occupancy : float, default 0.01
        A start whose least used state holds less than this share of the days is discarded.
    temperature : float, default 1.0
        Of the online soft probabilities, in loss units.
    order_feature : int, default 0
        Without equity returns at fit, states are ordered by their centroid of this feature,
        lowest first (put a volatility feature there; negate a return feature).
    random_state : int, default 0
        Seed of the first start; later starts use the next integers.
    """

    def __init__(
        self,
        n_states: int = 2,
        *,
        jump_penalty: float = 10.0,
        penalty: np.ndarray | None = None,
        n_init: int = 10,
        max_iter: int = 100,
        tol: float = 1e-8,
        min_occupancy: float = 0.01,
        temperature: float = 1.0,
        order_feature: int = 0,
        random_state: int = 0,
    ) -> None:
        super().__init__(
            n_states, n_init=n_init, min_occupancy=min_occupancy, random_state=random_state
        )
        check_non_negative("jump_penalty", jump_penalty)
        check_at_least("max_iter", max_iter, 1)
        check_non_negative("tol", tol)
        check_positive("temperature", temperature)
        check_at_least("order_feature", order_feature, 0)
        self.jump_penalty = jump_penalty
        self.penalty = (
            penalty_matrix(n_states, jump_penalty)
            if penalty is None
            else check_penalty(np.asarray(penalty, dtype=float), n_states)
        )
        self.max_iter = max_iter
        self.tol = tol
        self.temperature = temperature
        self.order_feature = order_feature

    def scaled_penalty(self, scale: float) -> JumpModel:
        """This model with Lambda times ``scale`` > 0 (the sparse model's inner fits)."""
        check_positive("scale", scale)
        return JumpModel(
            self.n_states,
            jump_penalty=self.jump_penalty,
            penalty=self.penalty * scale,
            n_init=self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            min_occupancy=self.min_occupancy,
            temperature=self.temperature,
            order_feature=self.order_feature,
            random_state=self.random_state,
        )

    def fit(
        self,
        X: np.ndarray,
        equity_returns: np.ndarray | None = None,
        *,
        warm_start: JumpParams | None = None,
        cold_starts: int | None = None,
        feature_weights: np.ndarray | None = None,
    ) -> Self:
        """Fit on a training window; state 0 is the calmest.

        Parameters
        ----------
        X : ndarray of shape (n_obs, n_features)
            Raw training features, finite; standardised here on these rows only.
        equity_returns : ndarray of shape (n_obs,), optional
            Orders the states by the mean squared equity return of their days (calmest
            first). Without it, by the centroid of feature ``order_feature``, lowest first.
        warm_start : JumpParams, optional
            Previous fit: its raw centroids start one candidate (keeps refits aligned).
        cold_starts : int, optional
            k-means++ starts; default ``n_init`` without a warm start, 0 with one.
        feature_weights : ndarray of shape (n_features,), optional
            Multipliers of the standardised features (the sparse model's sqrt(w)).

        Returns
        -------
        self
            With ``params_``, ``labels_`` (in-sample fitted path, smoothed: diagnostics
            only), ``values_`` (causal DP values over the window, last row = today's state)
            and ``report_``.

        Raises
        ------
        ValueError
            If the inputs are not finite, mis-shaped or too short.
        JumpFitError
            If every start left a state below ``min_occupancy``.
        """
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] < 10 * self.n_states:
            raise ValueError(f"X must be (n_obs >= {10 * self.n_states}, d), got {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("training features must be finite")
        if self.order_feature >= X.shape[1]:
            raise ValueError(f"order_feature={self.order_feature} but X has {X.shape[1]} columns")
        eq = None if equity_returns is None else np.asarray(equity_returns, dtype=float)
        if eq is not None and (eq.shape != (X.shape[0],) or not np.all(np.isfinite(eq))):
            raise ValueError(f"equity_returns must be {X.shape[0]} finite values, got {eq.shape}")
        w = np.ones(X.shape[1]) if feature_weights is None else np.asarray(feature_weights, float)
        if w.shape != (X.shape[1],) or np.any(w < 0) or not np.any(w > 0):
            raise ValueError(f"feature_weights must be {X.shape[1]} values >= 0, got {w}")
        scaler = FeatureScaler.fit(X)
        Zw = scaler.transform(X) * w
        starts: list[np.ndarray] = []
        if warm_start is not None:
            starts.append(scaler.transform(warm_start.raw_centers()) * w)
        n_cold = (self.n_init if warm_start is None else 0) if cold_starts is None else cold_starts
        starts += [
            kmeans_pp(Zw, self.n_states, np.random.default_rng(self.random_state + j))
            for j in range(n_cold)
        ]
        best, n_degenerate = self._best_of(Zw, starts, eq)
        if best is None:
            raise JumpFitError(
                f"all {len(starts)} jump-model starts left a state below "
                f"min_occupancy={self.min_occupancy} on {X.shape[0]} observations"
            )
        if not best.converged:
            warnings.warn(
                f"jump model hit max_iter={self.max_iter} before the assignment settled",
                JumpConvergenceWarning,
                stacklevel=2,
            )
        counts = np.ones((self.n_states, self.n_states))  # add-one smoothing
        np.add.at(counts, (best.labels[:-1], best.labels[1:]), 1.0)
        self.params_ = JumpParams(
            centers=best.centers,
            penalty=self.penalty,
            feature_weights=w,
            transmat=counts / counts.sum(axis=1, keepdims=True),
            scaler_mean=scaler.mean,
            scaler_scale=scaler.scale,
            temperature=self.temperature,
        )
        self.labels_ = best.labels
        self.values_ = OnlineJumpFilter(self.params_).run(X)
        self.report_ = JumpFitReport(
            objective=best.objective,
            n_iter=best.n_iter,
            converged=best.converged,
            n_switches=int(np.count_nonzero(np.diff(best.labels))),
            n_candidates=len(starts),
            n_degenerate=n_degenerate,
            warm_started=warm_start is not None,
            objective_trace=best.trace,
        )
        return self

    def _best_of(
        self, Zw: np.ndarray, starts: list[np.ndarray], eq: np.ndarray | None
    ) -> tuple[Descent | None, int]:
        best: Descent | None = None
        n_degenerate = 0
        for centers in starts:
            cand = self.descend(Zw, centers, eq)
            share = np.bincount(cand.labels, minlength=self.n_states) / cand.labels.size
            if share.min() < self.min_occupancy or share.min() == 0:
                n_degenerate += 1
            elif best is None or cand.objective < best.objective:
                best = cand
        return best, n_degenerate

    def descend(
        self, Zw: np.ndarray, centers: np.ndarray, equity_returns: np.ndarray | None = None
    ) -> Descent:
        """Coordinate descent from ``centers`` in the fitted space (exposed for tests).

        Each iteration: order the centroids (calmest first), assign by :func:`dp_assign`,
        move each centroid to the mean of its days (an empty state keeps its centroid).
        """
        centers = np.array(centers, dtype=float)
        labels = np.full(Zw.shape[0], -1, dtype=np.int64)
        trace: list[float] = []
        converged = False
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):
            if n_iter == 1 or not _invariant(self.penalty):
                centers, labels = self._ordered(centers, labels, Zw, equity_returns)
            new_labels, objective = dp_assign(half_sq_dist(Zw, centers), self.penalty)
            if np.array_equal(new_labels, labels) or (trace and trace[-1] - objective <= self.tol):
                trace.append(objective)
                labels = new_labels
                converged = True
                break
            trace.append(objective)
            labels = new_labels
            for k in range(self.n_states):
                members = labels == k
                if members.any():
                    centers[k] = Zw[members].mean(axis=0)
        centers, labels = self._ordered(centers, labels, Zw, equity_returns)
        objective = _objective(Zw, centers, labels, self.penalty)
        return Descent(centers, labels, objective, n_iter, converged, tuple(trace))

    def _ordered(
        self, centers: np.ndarray, labels: np.ndarray, Zw: np.ndarray, eq: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Renumber states calmest first; before any assignment, by the nearest centroid."""
        near = labels if labels.min() >= 0 else half_sq_dist(Zw, centers).argmin(axis=1)
        if eq is not None:
            key = np.array(
                [
                    np.mean(eq[near == k] ** 2) if np.any(near == k) else np.inf
                    for k in range(len(centers))
                ]
            )
        else:
            key = centers[:, self.order_feature]
        order = np.argsort(key, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return centers[order], np.where(labels >= 0, rank[np.maximum(labels, 0)], -1)


def _invariant(penalty: np.ndarray) -> bool:
    """True when Lambda is the same under every relabelling (all off-diagonals equal)."""
    off = penalty[~np.eye(penalty.shape[0], dtype=bool)]
    return bool(np.all(off == off[0]))


def _objective(
    Zw: np.ndarray, centers: np.ndarray, labels: np.ndarray, penalty: np.ndarray
) -> float:
    """The penalised loss of a given path (direct evaluation, no DP)."""
    fit = half_sq_dist(Zw, centers)[np.arange(labels.size), labels].sum()
    return float(fit + penalty[labels[:-1], labels[1:]].sum())
