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
3. **Regime sizing**: e_regime = f(s~_t), by default f(s) = 1 - ``stress_cut`` * s; with
   ``regime_levels`` (one exposure per state, calmest first) f interpolates them linearly on
   the severity axis. With ``persistence_multiplier`` the cut 1 - f(s~) is further multiplied
   by pi_t, the predicted persistence of the stress over ``persistence_days`` (the
   severity-weighted mean of A_kk^h over the stressed states), so a stress the transition
   matrix expects to end soon cuts less. Off by default: on real data a filtered label that
   flips often makes A_kk^h collapse exactly when the cut should bite (issue 10).
4. **Volatility sizing**, by ``vol_target_mode``, with sigma_t = sqrt(252 w'Sw) the forecast
   annualised volatility of the risk-parity portfolio:

   - ``"absolute"``: e_vol = ``target_vol`` / sigma_t;
   - ``"relative"``: e_vol = min(1, ``vol_multiple`` * m_t / sigma_t), m_t the median of the
     forecasts of the last ``vol_median_days`` decisions (today's included, kept causally by
     :class:`VolatilityHistory` in the strategy's state): it scales down only when risk is
     high *for this portfolio*, so a change of correlation regime that lifts the level of
     every forecast does not bind on most days as an absolute target does;
   - ``"none"``: e_vol = 1.

5. e = clip(min(e_regime, e_vol), ``min_exposure``, ``max_exposure``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from regime_trader.strategies._checks import (
    at_least,
    check_at_least,
    check_choice,
    check_fields,
    check_fraction,
    check_positive,
    check_unit_interval,
    checked,
)

__all__ = [
    "Allocation",
    "AllocationPolicy",
    "VolTargetMode",
    "VolatilityHistory",
    "stress_probability",
]

TRADING_DAYS_PER_YEAR = 252

# The fields of Allocation that Signal.diagnostics carries, in the order it stores them.
_DIAGNOSTICS = (
    "exposure",
    "regime_exposure",
    "vol_exposure",
    "forecast_vol",
    "vol_median",
    "vol_target_mode",
    "stress",
    "smoothed_stress",
    "persistence",
)

VolTargetMode = Literal["absolute", "relative", "none"]


def _severity(n_states: int) -> np.ndarray:
    return np.arange(n_states) / (n_states - 1)


def stress_probability(probs: np.ndarray) -> float:
    """Severity-weighted probability of the stressed states, in [0, 1].

    Parameters
    ----------
    probs : ndarray of shape (n_states,)
        State probabilities, calmest first.
    """
    return _clip(float(probs @ _severity(probs.shape[0])), 0.0, 1.0)


def _clip(value: float, low: float, high: float) -> float:
    """``np.clip`` of one number (the same value, without the array round trip)."""
    return min(max(value, low), high)


class VolatilityHistory:
    """The forecast volatilities of the last ``days`` decisions and their median.

    Parameters
    ----------
    days : int
        Decisions remembered (the oldest is forgotten first).
    """

    def __init__(self, days: int) -> None:
        check_at_least("vol_median_days", days, 1)
        self._values: deque[float] = deque(maxlen=days)
        self._sorted: list[float] = []  # the same values, ascending: no sort per day

    def push(self, forecast_vol: float) -> float:
        """Record today's forecast; return the median of the remembered ones (today's too).

        The middle value, or the mean of the two middle values, as ``np.median`` computes
        it: (a + b) / 2 (the same bits).
        """
        value = float(forecast_vol)
        if len(self._values) == self._values.maxlen:
            del self._sorted[int(np.searchsorted(self._sorted, self._values[0]))]
        self._values.append(value)
        self._sorted.insert(int(np.searchsorted(self._sorted, value, side="right")), value)
        n = len(self._sorted)
        middle = n // 2
        if n % 2:
            return self._sorted[middle]
        return (self._sorted[middle - 1] + self._sorted[middle]) / 2.0

    def state_dict(self) -> np.ndarray:
        """The remembered forecasts, oldest first."""
        return np.array(self._values, dtype=float)

    def load(self, values: Iterable[float]) -> None:
        self._values.clear()
        self._values.extend(float(v) for v in values)
        self._sorted = sorted(self._values)


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
    vol_median: float | None
    vol_target_mode: str

    def diagnostics(self) -> dict[str, Any]:
        """Every component of the exposure, JSON-serialisable (for ``Signal.diagnostics``)."""
        return {name: getattr(self, name) for name in _DIAGNOSTICS}


@dataclass(frozen=True)
class AllocationPolicy:
    """How much to invest, from regime and volatility forecasts.

    Parameters
    ----------
    target_vol : float, default 0.08
        Annualised volatility the portfolio aims not to exceed (``vol_target_mode="absolute"``).
    vol_target_mode : {"absolute", "relative", "none"}, default "absolute"
        The volatility sizing (see the module docstring).
    vol_multiple : float, default 1.5
        ``"relative"``: scale down once the forecast exceeds this multiple of its median. A
        prior, not fitted: the research protocol chooses it.
    vol_median_days : int, default 252
        ``"relative"``: decisions in the trailing median (about a year).
    stress_cut : float in [0, 1], default 0.5
        Share of exposure removed at certain stress (when ``regime_levels`` is None).
    regime_levels : tuple of float in [0, 1], optional
        Exposure in each state, calmest first (one per state of the regime engine); replaces
        ``stress_cut``.
    persistence_multiplier : bool, default False
        Multiply the regime cut by the predicted persistence A_kk^h.
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

    target_vol: float = checked(0.08, check_positive)
    vol_target_mode: VolTargetMode = "absolute"
    vol_multiple: float = checked(1.5, check_positive)
    vol_median_days: int = checked(252, at_least(1))
    stress_cut: float = checked(0.5, check_unit_interval)
    regime_levels: tuple[float, ...] | None = None
    persistence_multiplier: bool = False
    alpha_up: float = checked(1.0, check_fraction)
    alpha_down: float = checked(0.1, check_fraction)
    persistence_days: int = checked(5, at_least(1))
    min_exposure: float = checked(0.0, check_unit_interval)
    max_exposure: float = checked(1.0, check_unit_interval)

    def __post_init__(self) -> None:
        check_fields(self)
        check_choice("vol_target_mode", self.vol_target_mode, get_args(VolTargetMode))
        if self.regime_levels is not None:
            if not 2 <= len(self.regime_levels) <= 4:
                raise ValueError(
                    f"regime_levels must give 2 to 4 exposures, got {self.regime_levels}"
                )
            for i, level in enumerate(self.regime_levels):
                check_unit_interval(f"regime_levels[{i}]", level)
        if self.min_exposure > self.max_exposure:
            raise ValueError(
                f"min_exposure {self.min_exposure} exceeds max_exposure {self.max_exposure}"
            )

    def check_states(self, n_states: int) -> None:
        """Refuse ``regime_levels`` of another length than the engine's states."""
        if self.regime_levels is not None and len(self.regime_levels) != n_states:
            raise ValueError(
                f"regime_levels has {len(self.regime_levels)} exposures for {n_states} states"
            )

    def smooth(self, previous: float | None, stress: float) -> float:
        """Asymmetric exponential smoothing of the stress probability."""
        if previous is None:
            return stress
        gain = self.alpha_up if stress > previous else self.alpha_down
        return previous + gain * (stress - previous)

    def persistence(self, predicted: np.ndarray, transmat: np.ndarray) -> float:
        """Severity-and-probability weighted A_kk^h over the stressed states (0 if none)."""
        weight = predicted * _severity(predicted.shape[0])
        total = float(weight.sum())
        if total <= 0:
            return 0.0
        stay = np.diag(transmat) ** self.persistence_days
        return float(weight @ stay / total)

    def regime_cut(self, smoothed: float, n_states: int) -> float:
        """Share of exposure removed at smoothed stress ``smoothed``, before persistence."""
        if self.regime_levels is None:
            return self.stress_cut * smoothed
        levels = np.asarray(self.regime_levels, dtype=float)
        return 1.0 - float(np.interp(smoothed, _severity(n_states), levels))

    @staticmethod
    def forecast_vol(erc_weights: np.ndarray, cov: np.ndarray) -> float:
        """sqrt(252 w'Sw): the annualised forecast volatility of the invested portfolio."""
        return math.sqrt(max(float(erc_weights @ cov @ erc_weights), 0.0) * TRADING_DAYS_PER_YEAR)

    def vol_exposure(self, forecast_vol: float, vol_median: float | None) -> float:
        """The exposure the volatility sizing allows (before the clip)."""
        if self.vol_target_mode == "absolute":
            return self.target_vol / forecast_vol if forecast_vol > 0 else self.max_exposure
        if self.vol_target_mode == "relative" and vol_median is not None and forecast_vol > 0:
            return min(1.0, self.vol_multiple * vol_median / forecast_vol)
        return 1.0

    def allocate(
        self,
        erc_weights: np.ndarray,
        cov: np.ndarray,
        predicted: np.ndarray | None,
        transmat: np.ndarray | None,
        previous_smoothed: float | None,
        vol_median: float | None = None,
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
        vol_median : float or None
            Trailing median of the forecast volatility (``"relative"``; see
            :class:`VolatilityHistory`); None sizes ``"relative"`` as ``"none"``.
        """
        forecast_vol = self.forecast_vol(erc_weights, cov)
        vol_exposure = self.vol_exposure(forecast_vol, vol_median)
        if predicted is None or transmat is None:
            stress = smoothed = persistence = 0.0
            regime_exposure = 1.0
        else:
            stress = stress_probability(predicted)
            smoothed = self.smooth(previous_smoothed, stress)
            persistence = self.persistence(predicted, transmat)
            cut = self.regime_cut(smoothed, predicted.shape[0])
            regime_exposure = 1.0 - (cut * persistence if self.persistence_multiplier else cut)
        exposure = _clip(min(regime_exposure, vol_exposure), self.min_exposure, self.max_exposure)
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
            vol_median=vol_median,
            vol_target_mode=self.vol_target_mode,
        )
