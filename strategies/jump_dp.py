"""Jump-model assignment and causal online inference: the dynamic programme and its state.

For a loss L[t, k] (here 0.5 * squared distance of day t to centroid k) and a K x K jump
penalty Lambda (zero diagonal; ``Lambda[i, j]`` the cost of moving from i to j), the
assignment minimising sum_t L[t, s_t] + sum_t Lambda[s_{t-1}, s_t] is found exactly by a
forward dynamic programme and a backtrack (Viterbi with costs, O(T K^2), its loop on Python
floats in :mod:`regime_trader.strategies.jump_dp_kernel`):
:func:`dp_assign`, used when fitting.

Online inference is causal (:class:`OnlineJumpFilter`): the forward value
V_t(k) = L_t(k) + min_j (V_{t-1}(j) + Lambda[j, k]) is the best objective of any path over
days 1..t that ends in state k, so argmin_k V_t(k) uses data up to t only and costs O(K^2)
per day (:func:`dp_step`). The backtracked path is never used for past days in a signal: it
is smoothing, and moves when later data arrive.

Reference: J. Nystrup, E. Lindström, H. Madsen, "Learning hidden Markov models with
persistent states by penalizing jumps", Expert Syst. Appl. 150 (2020); Y. Shu, C. Yu,
J. M. Mulvey, "Downside risk reduction using regime-switching signals: a statistical jump
model approach", arXiv 2402.05272 (2024), online inference section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from regime_trader.strategies.estimator import Transitions
from regime_trader.strategies.jump_dp_kernel import backtrack, forward_values

__all__ = [
    "JumpParams",
    "OnlineJumpFilter",
    "dp_assign",
    "dp_step",
    "kmeans_pp",
    "penalty_matrix",
    "with_penalty",
]


def penalty_matrix(
    n_states: int, jump_penalty: float, *, enter: float | None = None, exit: float | None = None
) -> np.ndarray:
    """Build a K x K jump-penalty matrix with a zero diagonal.

    Parameters
    ----------
    n_states : int
    jump_penalty : float
        The scalar lambda, used for every switch that ``enter``/``exit`` do not override.
    enter, exit : float, optional
        Cost of a switch toward a more stressed state (j > i) and toward a calmer one
        (j < i); states are numbered calmest first.

    Returns
    -------
    ndarray of shape (n_states, n_states)
        ``Lambda[i, j]`` is the cost of moving from state i to state j.
    """
    up = jump_penalty if enter is None else enter
    down = jump_penalty if exit is None else exit
    i, j = np.indices((n_states, n_states))
    return np.where(j > i, up, np.where(j < i, down, 0.0)).astype(float)


def check_penalty(penalty: np.ndarray, n_states: int) -> np.ndarray:
    penalty = np.asarray(penalty, dtype=float)
    if penalty.shape != (n_states, n_states):
        raise ValueError(f"penalty must be ({n_states}, {n_states}), got shape {penalty.shape}")
    if not np.all(np.isfinite(penalty)) or np.any(penalty < 0) or np.any(np.diag(penalty) != 0):
        raise ValueError(f"penalty must be finite, >= 0, with a zero diagonal, got {penalty}")
    return penalty


def dp_step(values: np.ndarray | None, loss: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """One causal DP step: V_t(k) = L_t(k) + min_j (V_{t-1}(j) + Lambda[j, k]), shifted to min 0.

    Shifting every entry by the same constant changes no argmin, now or later, and keeps the
    values bounded over an unbounded stream.

    Parameters
    ----------
    values : ndarray of shape (n_states,) or None
        V_{t-1}; None for the first day.
    loss : ndarray of shape (n_states,)
    penalty : ndarray of shape (n_states, n_states)
    """
    v = loss if values is None else loss + (values[:, None] + penalty).min(axis=0)
    return np.asarray(v - v.min())


def dp_assign(loss: np.ndarray, penalty: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact minimiser of sum_t L[t, s_t] + sum_t Lambda[s_{t-1}, s_t] (forward DP, backtrack).

    Parameters
    ----------
    loss : ndarray of shape (n_obs, n_states)
    penalty : ndarray of shape (n_states, n_states)

    Returns
    -------
    labels : ndarray of int of shape (n_obs,)
    objective : float
        The minimum.
    """
    # The loop runs on Python floats, unrolled for two states: see jump_dp_kernel (same bits).
    columns, offset = forward_values(loss, penalty, shift_first=False)
    labels = backtrack(columns, penalty)
    return labels, offset + min(column[-1] for column in columns)


@dataclass(frozen=True)
class JumpParams(Transitions):
    """A fitted jump model, in its standardised (and weighted) feature space.

    Attributes
    ----------
    centers : ndarray of shape (n_states, n_features)
        Centroids of z * feature_weights, state 0 calmest.
    penalty : ndarray of shape (n_states, n_states)
        The Lambda the model was fitted with (sparse models: already scaled).
    feature_weights : ndarray of shape (n_features,)
        Multipliers of the standardised features (ones, or sqrt(w) for the sparse model).
    transmat : ndarray of shape (n_states, n_states)
        Empirical transitions of the fitted path with add-one smoothing: a diagnostic and a
        drop-in for code that reads an HMM's matrix (expected durations, persistence).
    scaler_mean, scaler_scale : ndarray of shape (n_features,)
        Training-window standardisation.
    temperature : float
        Of the soft probabilities, in loss units (see :meth:`OnlineJumpFilter.probabilities`).
    """

    centers: np.ndarray
    penalty: np.ndarray
    feature_weights: np.ndarray
    transmat: np.ndarray
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    temperature: float

    def raw_centers(self) -> np.ndarray:
        """Centroids in raw feature units (zero-weight features at their training mean)."""
        w = self.feature_weights
        z = np.divide(self.centers, w, out=np.zeros_like(self.centers), where=w > 0)
        return np.asarray(z * self.scaler_scale + self.scaler_mean)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: every array as nested lists."""
        return {
            name: getattr(self, name).tolist() if name != "temperature" else self.temperature
            for name in self.__dataclass_fields__
        }

    def arrays(self) -> dict[str, Any]:
        """The fields as they are (for :class:`~regime_trader.strategies.state.StrategyState`)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JumpParams:
        """Read :meth:`to_dict` or :meth:`arrays`."""
        arrays = {
            k: np.asarray(data[k], dtype=float)
            for k in cls.__dataclass_fields__
            if k != "temperature"
        }
        return cls(**arrays, temperature=float(data["temperature"]))


class OnlineJumpFilter:
    """Causal labels and heuristic probabilities for fixed parameters.

    Parameters
    ----------
    params : JumpParams
        Observations are given in raw feature units and standardised here.
    """

    def __init__(self, params: JumpParams) -> None:
        self.params = params

    def loss(self, X: np.ndarray) -> np.ndarray:
        """0.5 * squared distance of each row to each centroid, shape (n_obs, n_states)."""
        p = self.params
        Z = (np.atleast_2d(np.asarray(X, dtype=float)) - p.scaler_mean) / p.scaler_scale
        return half_sq_dist(Z * p.feature_weights, p.centers)

    def step(self, values: np.ndarray | None, x: np.ndarray) -> np.ndarray:
        """Values after one more day (shifted to min 0); ``None`` starts the recursion."""
        return dp_step(values, self.loss(x)[0], self.params.penalty)

    def run(self, X: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """Value vectors of every day, strictly left to right, shape (n_obs, n_states)."""
        loss = self.loss(X)
        if loss.shape[0] == 0:
            return loss
        # dp_step's arithmetic day by day, on Python floats (jump_dp_kernel: the same bits).
        columns, _ = forward_values(loss, self.params.penalty, shift_first=True, previous=values)
        return np.array(columns, dtype=float).T

    def probabilities(self, values: np.ndarray) -> np.ndarray:
        """softmax(-V / temperature) per row: a heuristic confidence, not a posterior.

        V_t(k) - min V_t is the extra cost of believing state k today; a difference of one
        temperature makes a state e times less likely. The argmax is the causal label.
        """
        v = np.atleast_2d(values)
        e = np.exp(-(v - v.min(axis=1, keepdims=True)) / self.params.temperature)
        probs = e / e.sum(axis=1, keepdims=True)
        return np.asarray(probs[0] if np.ndim(values) == 1 else probs)


def half_sq_dist(Z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    diff = Z[:, None, :] - centers[None, :, :]
    return np.asarray(0.5 * np.einsum("tkd,tkd->tk", diff, diff))


def kmeans_pp(Z: np.ndarray, n_states: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next centre drawn ~ D(z)^2."""
    centers = [Z[rng.integers(Z.shape[0])]]
    for _ in range(1, n_states):
        d2 = half_sq_dist(Z, np.asarray(centers)).min(axis=1)
        total = d2.sum()
        idx = rng.integers(Z.shape[0]) if total <= 0 else rng.choice(Z.shape[0], p=d2 / total)
        centers.append(Z[idx])
    return np.asarray(centers, dtype=float)


def with_penalty(params: JumpParams, penalty: np.ndarray) -> JumpParams:
    """The same centroids under another Lambda (e.g. to study asymmetric online switching)."""
    return replace(params, penalty=check_penalty(penalty, params.n_states))
