"""Sparse jump model: feature weights with an l1 budget, alternating with the jump-model fit.

Nystrup, Kolm & Lindström (2021) carry the sparse k-means of Witten & Tibshirani (2010) over
to jump models. With weights w >= 0, ||w||_2 = 1, ||w||_1 <= kappa, the model alternates

1. fit a :class:`~regime_trader.strategies.jump.JumpModel` on the standardised features times
sqrt(w)
   (so the loss is the w-weighted squared distance), with the jump penalty scaled by
   1 / sqrt(n_features) so that at uniform weights it weighs as much against the loss as in
   the unweighted model (the convention of the ``jumpmodels`` package);
2. set w to the soft-thresholded between-cluster sums of squares of the *unweighted*
   standardised features, BCSS_j = sum_k n_k (mean_kj - mean_j)^2:
   w = S(BCSS, delta) / ||S(BCSS, delta)||_2, with delta = 0 when that already meets the
   budget and otherwise found by bisection so that ||w||_1 = kappa;

until the weights move by less than ``tol_w`` (relative l1). A feature that does not separate
the regimes has a small BCSS and is thresholded to weight 0: the model selects features.

References: P. Nystrup, P. N. Kolm, E. Lindström, "Feature selection in jump models",
Expert Syst. Appl. 184 (2021); D. M. Witten, R. Tibshirani, "A framework for feature
selection in clustering", JASA 105 (2010), eq. (11).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Self

import numpy as np

from regime_trader.strategies.jump import JumpFitReport, JumpModel, JumpParams
from regime_trader.strategies.jump_features import FeatureScaler

__all__ = ["SparseFitReport", "SparseJumpModel", "sparse_weights"]


def sparse_weights(bcss: np.ndarray, kappa: float, *, n_bisect: int = 100) -> np.ndarray:
    """Witten-Tibshirani weights: argmax_w w . bcss s.t. ||w||_2 <= 1, ||w||_1 <= kappa, w >= 0.

    Parameters
    ----------
    bcss : ndarray of shape (n_features,)
        Between-cluster sums of squares (negative values are treated as 0).
    kappa : float
        l1 budget, 1 <= kappa <= sqrt(n_features).
    """
    a = np.maximum(np.asarray(bcss, dtype=float), 0.0)
    if not np.any(a > 0):
        raise ValueError("every between-cluster sum of squares is 0: nothing to weight")

    def unit(delta: float) -> np.ndarray:
        s = np.maximum(a - delta, 0.0)
        return np.asarray(s / np.linalg.norm(s))

    w = unit(0.0)
    if w.sum() <= kappa:
        return w
    low, high = 0.0, float(a.max())  # ||unit(delta)||_1 decreases from w.sum() to 1
    for _ in range(n_bisect):
        mid = 0.5 * (low + high)
        if unit(mid).sum() > kappa:
            low = mid
        else:
            high = mid
    return unit(high)


@dataclass(frozen=True)
class SparseFitReport:
    """Diagnostics of a sparse fit: the last inner fit's report plus the weight iterations."""

    jump: JumpFitReport
    weights: tuple[float, ...]
    n_outer_iter: int
    converged: bool

    @property
    def objective(self) -> float:
        return self.jump.objective

    @property
    def n_switches(self) -> int:
        return self.jump.n_switches

    @property
    def n_iter(self) -> int:
        return self.n_outer_iter


class SparseJumpModel:
    """Jump model with l1-budgeted feature weights (Nystrup, Kolm & Lindström 2021).

    Parameters
    ----------
    base : JumpModel, optional
        The unweighted jump model: its states, Lambda (``jump_penalty`` or ``penalty``,
        before the 1 / sqrt(n_features) scaling), seeded starts (``n_init`` for the first
        inner fit; later inner fits warm-start from the previous centroids re-weighted),
        iterations and occupancy floor serve every inner fit. Default ``JumpModel()``.
    kappa : float, default 2.0
        l1 budget of the weights, >= 1 (1 keeps one feature, sqrt(n_features) all; kappa^2
        is roughly the number of features kept). Checked against sqrt(n_features) at fit.
    max_outer : int, default 30
        Weight updates.
    tol_w : float, default 1e-4
        Stop when ||w - w_prev||_1 / ||w_prev||_1 falls below this.
    """

    def __init__(
        self,
        base: JumpModel | None = None,
        *,
        kappa: float = 2.0,
        max_outer: int = 30,
        tol_w: float = 1e-4,
    ) -> None:
        if not (math.isfinite(kappa) and kappa >= 1.0):
            raise ValueError(f"kappa must be >= 1, got {kappa}")
        if max_outer < 1 or not tol_w > 0:
            raise ValueError(f"max_outer must be >= 1 and tol_w > 0, got {max_outer}, {tol_w}")
        self.base = base if base is not None else JumpModel()
        self.n_states = self.base.n_states
        self.kappa = kappa
        self.max_outer = max_outer
        self.tol_w = tol_w

    def fit(
        self,
        X: np.ndarray,
        equity_returns: np.ndarray | None = None,
        *,
        warm_start: JumpParams | None = None,
        cold_starts: int | None = None,
    ) -> Self:
        """Alternate jump-model fits and weight updates on a training window.

        Each outer iteration refits the inner model on the features times sqrt(w), then sets w
        from the between-cluster sums of squares of that fit's states; the loop ends when w
        moves by less than ``tol_w`` or after ``max_outer`` updates.

        Parameters
        ----------
        X : ndarray of shape (n_obs, n_features)
            Raw training features, finite.
        equity_returns : ndarray of shape (n_obs,), optional
            Orders the states (see :meth:`JumpModel.fit`).
        warm_start : JumpParams, optional
            A previous sparse fit: its weights and centroids start the first inner fit,
            which keeps refits fast and their states aligned.
        cold_starts : int, optional
            Seeded starts of the first inner fit: ``n_init`` by default without a warm
            start, 0 with one.

        Returns
        -------
        self
            With ``weights_`` (w, shape (n_features,)), ``params_`` (feature_weights =
            sqrt(w)), ``labels_``, ``values_`` and ``report_`` (SparseFitReport).

        Raises
        ------
        ValueError
            If ``kappa`` exceeds sqrt(n_features) or the inputs are invalid.
        """
        X = np.asarray(X, dtype=float)
        n_features = X.shape[1] if X.ndim == 2 else 0
        if self.kappa > math.sqrt(max(n_features, 1)) + 1e-12:
            raise ValueError(
                f"kappa={self.kappa} exceeds sqrt(n_features)={math.sqrt(max(n_features, 1)):.4g}"
            )
        scale = 1.0 / math.sqrt(n_features)
        inner = self._inner(scale)
        Z = FeatureScaler.fit(X).transform(X)
        if warm_start is not None and warm_start.feature_weights.shape != (n_features,):
            raise ValueError(
                f"warm_start has {warm_start.feature_weights.size} features, X has {n_features}"
            )
        if warm_start is not None:
            w = warm_start.feature_weights**2
            w = w / np.linalg.norm(w)  # unit l2 norm, as every weight update leaves it
        else:
            w = np.full(n_features, 1.0 / math.sqrt(n_features))
        model = inner.fit(
            X,
            equity_returns,
            warm_start=warm_start,
            cold_starts=cold_starts,
            feature_weights=np.sqrt(w),
        )
        converged = False
        n_outer = 0
        while n_outer < self.max_outer:
            n_outer += 1
            w_new = sparse_weights(_bcss(Z, model.labels_, self.n_states), self.kappa)
            change = float(np.abs(w_new - w).sum() / np.abs(w).sum())
            w = w_new
            model = inner.fit(
                X, equity_returns, warm_start=model.params_, feature_weights=np.sqrt(w)
            )
            if change < self.tol_w:
                converged = True
                break
        self.weights_ = w
        self.params_: JumpParams = model.params_
        self.labels_ = model.labels_
        self.values_ = model.values_
        self.report_ = SparseFitReport(model.report_, tuple(w.tolist()), n_outer, converged)
        return self

    def _inner(self, scale: float) -> JumpModel:
        """The jump model of the inner fits: the base model with its Lambda times ``scale``."""
        return self.base.scaled_penalty(scale)


def _bcss(Z: np.ndarray, labels: np.ndarray, n_states: int) -> np.ndarray:
    """Per-feature between-cluster sum of squares of the unweighted standardised data."""
    total = Z.mean(axis=0)
    out = np.zeros(Z.shape[1])
    for k in range(n_states):
        members = labels == k
        if members.any():
            out += members.sum() * (Z[members].mean(axis=0) - total) ** 2
    return out
