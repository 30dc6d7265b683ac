"""Covariance estimates recalibrated every day, per regime, and their blend.

Three estimates, all online (one update per bar, state in a few arrays) and causal:

- :class:`EwmaCovariance` — the RiskMetrics-style exponentially weighted covariance of daily
  returns (zero mean, bias-corrected weights as pandas' ``ewm(adjust=True)``);
- :class:`RegimeCovariance` — one probability-weighted EWMA mean and covariance per regime,
  each day's return weighted by the *filtered* probability of each state (never smoothed ones,
  which would carry the future). Num and den decay together, so a regime absent for a long
  time keeps its last estimate and new observations of it count more;
- :func:`mixture_covariance` — the next day's covariance under the predicted regime
  distribution q: sum_k q_k (S_k + m_k m_k^T) - m m^T with m = sum_k q_k m_k (law of total
  covariance).

:func:`blend_covariance` combines the EWMA and the mixture with weight ``regime_blend`` and
:func:`regularize` shrinks toward the diagonal and adds a ridge, so the result is always
symmetric positive definite (shrinkage: O. Ledoit and M. Wolf, "Honey, I shrunk the sample
covariance matrix", J. Portfolio Management 30(4), 2004 — here with a fixed intensity).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

__all__ = [
    "EwmaCovariance",
    "RegimeCovariance",
    "blend_covariance",
    "mixture_covariance",
    "regularize",
]


def _decay(halflife: float) -> float:
    if not halflife > 0:
        raise ValueError(f"halflife must be positive, got {halflife}")
    return math.exp(-math.log(2.0) / halflife)


class _DecayedSums(ABC):
    """An online estimate held as exponentially decayed sums, saved with its half-life."""

    def __init__(self, halflife: float) -> None:
        self.halflife = halflife
        self._lam = _decay(halflife)

    def state_dict(self) -> dict[str, Any]:
        """The half-life and the sums: the layout ``from_state`` reads."""
        return {"halflife": self.halflife, **self._sums()}

    @abstractmethod
    def _sums(self) -> dict[str, Any]:
        """The sums under their state keys."""


class EwmaCovariance(_DecayedSums):
    """Exponentially weighted covariance of returns around zero.

    Parameters
    ----------
    n_assets : int
    halflife : float
        Half-life in days of the weights.
    """

    def __init__(self, n_assets: int, halflife: float) -> None:
        super().__init__(halflife)
        self._num = np.zeros((n_assets, n_assets))
        self._den = 0.0
        self.n_obs = 0

    def update(self, returns: np.ndarray) -> None:
        """Add one day of returns, shape (n_assets,)."""
        r = np.asarray(returns, dtype=float)
        self._num = self._lam * self._num + np.outer(r, r)
        self._den = self._lam * self._den + 1.0
        self.n_obs += 1

    @property
    def covariance(self) -> np.ndarray:
        """Current estimate, shape (n_assets, n_assets); zeros before any update."""
        return self._num / self._den if self._den > 0 else self._num.copy()

    def _sums(self) -> dict[str, Any]:
        return {"num": self._num, "den": self._den, "n_obs": self.n_obs}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EwmaCovariance:
        num = np.asarray(state["num"], dtype=float)
        est = cls(num.shape[0], float(state["halflife"]))
        est._num, est._den, est.n_obs = num, float(state["den"]), int(state["n_obs"])
        return est


class RegimeCovariance(_DecayedSums):
    """Per-regime EWMA means and covariances weighted by filtered probabilities.

    Parameters
    ----------
    n_states, n_assets : int
    halflife : float
        Half-life in days; long (a year or more) because stressed regimes are rare.
    """

    def __init__(self, n_states: int, n_assets: int, halflife: float) -> None:
        super().__init__(halflife)
        self._m1 = np.zeros((n_states, n_assets))
        self._m2 = np.zeros((n_states, n_assets, n_assets))
        self._w = np.zeros(n_states)

    def update(self, returns: np.ndarray, probs: np.ndarray) -> None:
        """Add one day's returns, shape (n_assets,), with its filtered probabilities."""
        r = np.asarray(returns, dtype=float)
        p = np.asarray(probs, dtype=float)
        self._m1 = self._lam * self._m1 + p[:, None] * r[None, :]
        self._m2 = self._lam * self._m2 + p[:, None, None] * np.outer(r, r)[None, :, :]
        self._w = self._lam * self._w + p

    @property
    def weights(self) -> np.ndarray:
        """Effective (decayed) number of observations behind each regime's estimate."""
        return self._w.copy()

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Means (n_states, n_assets) and covariances (n_states, n_assets, n_assets)."""
        w = np.maximum(self._w, 1e-300)
        means = self._m1 / w[:, None]
        covs = self._m2 / w[:, None, None] - np.einsum("ki,kj->kij", means, means)
        return means, covs

    def _sums(self) -> dict[str, Any]:
        return {"m1": self._m1, "m2": self._m2, "w": self._w}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RegimeCovariance:
        m1, m2, w = (np.asarray(state[key], dtype=float) for key in ("m1", "m2", "w"))
        est = cls(m1.shape[0], m1.shape[1], float(state["halflife"]))
        est._m1, est._m2, est._w = m1, m2, w
        return est


def mixture_covariance(probs: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """Covariance of a mixture of regimes (law of total covariance).

    Parameters
    ----------
    probs : ndarray of shape (n_states,)
        Predicted regime probabilities, summing to 1.
    means : ndarray of shape (n_states, n_assets)
    covs : ndarray of shape (n_states, n_assets, n_assets)

    Returns
    -------
    ndarray of shape (n_assets, n_assets)
    """
    q = np.asarray(probs, dtype=float)
    mean = q @ means
    second = np.einsum("k,kij->ij", q, covs + np.einsum("ki,kj->kij", means, means))
    out = second - np.outer(mean, mean)
    return np.asarray(0.5 * (out + out.T))


def regularize(cov: np.ndarray, shrinkage: float = 0.1, ridge: float = 1e-8) -> np.ndarray:
    """Shrink toward the diagonal and add a relative ridge: always symmetric positive definite.

    Parameters
    ----------
    cov : ndarray of shape (n, n)
        Symmetric, positive semi-definite up to rounding.
    shrinkage : float in [0, 1], default 0.1
        Weight of the diagonal target: (1 - s) cov + s diag(cov).
    ridge : float, default 1e-8
        Added to the diagonal, relative to the mean variance (absolute 1e-12 if all zero).

    Returns
    -------
    ndarray of shape (n, n)
    """
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
    c = 0.5 * (cov + cov.T)
    diag = np.diag(np.diag(c))
    out = (1.0 - shrinkage) * c + shrinkage * diag
    scale = float(np.mean(np.diag(c)))
    out = out + (ridge * scale if scale > 0 else 1e-12) * np.eye(c.shape[0])
    # An indefinite input (rounding in a mixture) is lifted to its smallest eigenvalue + ridge.
    lowest = float(np.linalg.eigvalsh(out)[0])
    if lowest <= 0:
        out = out + (abs(lowest) + (ridge * scale if scale > 0 else 1e-12)) * np.eye(c.shape[0])
    return np.asarray(out)


def blend_covariance(
    ewma: np.ndarray, mixture: np.ndarray | None, regime_blend: float
) -> np.ndarray:
    """(1 - b) * ewma + b * mixture; the EWMA alone when there is no mixture yet.

    The EWMA reacts within days to any change; the regime mixture brings the long memory of
    how assets co-move in each regime, weighted by where the filter says we are heading.
    """
    if not 0.0 <= regime_blend <= 1.0:
        raise ValueError(f"regime_blend must be in [0, 1], got {regime_blend}")
    if mixture is None:
        return ewma
    return (1.0 - regime_blend) * ewma + regime_blend * mixture
