"""The allocation policy: regime probabilities and risk-parity weights to target weights + cash.

Given the equal-risk-contribution weights w (fully invested) on the regime-conditioned
covariance S, the policy only decides how much of the portfolio to invest (the exposure e);
the rest is cash. Long-only and no leverage: 0 <= e <= max_exposure <= 1.

1. **Stress probability** s_t: the predicted probability of the stressed regimes tomorrow,
   each state k weighted by its severity k / (K - 1) (the calmest counts 0, the most
   stressed 1).
2. **Asymmetric smoothing**: s~_t = s~_{t-1} + a (s_t - s~_{t-1}) with a = ``alpha_up`` when
   stress rises and ``alpha_down`` when it falls. With alpha_up > alpha_down the policy cuts
   risk quickly on entering a stressed regime and restores it slowly on leaving it: a false
   alarm costs a few days of lower exposure, a missed crash costs far more.
3. **Regime sizing**: e_regime = 1 - ``stress_cut`` * s~_t * pi_t, where pi_t is the predicted
   persistence of the stress over ``persistence_days``: the severity-weighted mean of A_kk^h
   over the stressed states. A stress the transition matrix expects to end soon cuts less.
4. **Volatility sizing**: e_vol = ``target_vol`` / sigma_t, with sigma_t = sqrt(252 w'Sw) the
   forecast annualised volatility of the risk-parity portfolio.
5. e = clip(min(e_regime, e_vol), ``min_exposure``, ``max_exposure``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Allocation", "AllocationPolicy", "stress_probability"]

TRADING_DAYS_PER_YEAR = 252


def stress_probability(probs: np.ndarray) -> float:
    """Severity-weighted probability of the stressed states, in [0, 1].

    Parameters
    ----------
    probs : ndarray of shape (n_states,)
        State probabilities, calmest first.
    """
    k = probs.shape[0]
    severity = np.arange(k) / (k - 1)
    return float(np.clip(probs @ severity, 0.0, 1.0))


@dataclass(frozen=True)
class Allocation:
    """One day's decision with the reasons behind it."""

    weights: np.ndarray
    cash: float
    exposure: float
    stress: float
    smoothed_stress: float
    persistence: float
    regime_exposure: float
    vol_exposure: float
    forecast_vol: float


@dataclass(frozen=True)
class AllocationPolicy:
    """How much to invest, from regime and volatility forecasts.

    Parameters
    ----------
    target_vol : float, default 0.08
        Annualised volatility the portfolio aims not to exceed.
    stress_cut : float in [0, 1], default 0.5
        Share of exposure removed at certain, fully persistent stress.
    alpha_up : float in (0, 1], default 1.0
        Smoothing gain when the stress probability rises (1 = follow at once).
    alpha_down : float in (0, 1], default 0.1
        Smoothing gain when it falls (0.1 = about a week's half-life).
    persistence_days : int, default 5
        Horizon h of the persistence pi = A_kk^h.
    min_exposure : float, default 0.0
        Floor on the invested fraction.
    max_exposure : float, default 1.0
        Cap on the invested fraction (no leverage: at most 1).
    """

    target_vol: float = 0.08
    stress_cut: float = 0.5
    alpha_up: float = 1.0
    alpha_down: float = 0.1
    persistence_days: int = 5
    min_exposure: float = 0.0
    max_exposure: float = 1.0

    def __post_init__(self) -> None:
        if not self.target_vol > 0:
            raise ValueError(f"target_vol must be positive, got {self.target_vol}")
        for name in ("stress_cut", "min_exposure", "max_exposure"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        for name in ("alpha_up", "alpha_down"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if self.min_exposure > self.max_exposure:
            raise ValueError(
                f"min_exposure {self.min_exposure} exceeds max_exposure {self.max_exposure}"
            )
        if self.persistence_days < 1:
            raise ValueError(f"persistence_days must be >= 1, got {self.persistence_days}")

    def smooth(self, previous: float | None, stress: float) -> float:
        """Asymmetric exponential smoothing of the stress probability."""
        if previous is None:
            return stress
        gain = self.alpha_up if stress > previous else self.alpha_down
        return previous + gain * (stress - previous)

    def persistence(self, predicted: np.ndarray, transmat: np.ndarray) -> float:
        """Severity-and-probability weighted A_kk^h over the stressed states (0 if none)."""
        k = predicted.shape[0]
        weight = predicted * (np.arange(k) / (k - 1))
        total = float(weight.sum())
        if total <= 0:
            return 0.0
        stay = np.diag(transmat) ** self.persistence_days
        return float(weight @ stay / total)

    def allocate(
        self,
        erc_weights: np.ndarray,
        cov: np.ndarray,
        predicted: np.ndarray | None,
        transmat: np.ndarray | None,
        previous_smoothed: float | None,
    ) -> Allocation:
        """Scale fully invested risk-parity weights to today's exposure.

        Parameters
        ----------
        erc_weights : ndarray of shape (n_assets,)
            Non-negative, summing to 1.
        cov : ndarray of shape (n_assets, n_assets)
            Daily covariance the weights were solved on.
        predicted : ndarray of shape (n_states,) or None
            Tomorrow's regime distribution; None sizes on volatility alone.
        transmat : ndarray of shape (n_states, n_states) or None
        previous_smoothed : float or None
            Yesterday's smoothed stress (None on the first day).
        """
        forecast_vol = math.sqrt(
            max(float(erc_weights @ cov @ erc_weights), 0.0) * TRADING_DAYS_PER_YEAR
        )
        vol_exposure = self.target_vol / forecast_vol if forecast_vol > 0 else self.max_exposure
        if predicted is None or transmat is None:
            stress = smoothed = persistence = 0.0
        else:
            stress = stress_probability(predicted)
            smoothed = self.smooth(previous_smoothed, stress)
            persistence = self.persistence(predicted, transmat)
        regime_exposure = 1.0 - self.stress_cut * smoothed * persistence
        exposure = float(
            np.clip(min(regime_exposure, vol_exposure), self.min_exposure, self.max_exposure)
        )
        weights = exposure * erc_weights
        return Allocation(
            weights=weights,
            cash=1.0 - float(weights.sum()),
            exposure=exposure,
            stress=stress,
            smoothed_stress=smoothed,
            persistence=persistence,
            regime_exposure=regime_exposure,
            vol_exposure=vol_exposure,
            forecast_vol=forecast_vol,
        )
