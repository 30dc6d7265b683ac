"""Online regime tracking: filter every bar, refit on a schedule or when the model drifts.

:class:`RegimeTracker` owns the training history (feature rows as they were computed, so
causal by construction), the current :class:`~regime_trader.strategies.regime.HMMParams` and the
filter's current distribution. Each :meth:`RegimeTracker.update` consumes one day:

1. before the first fit, it only collects history until ``min_train_obs`` rows exist;
2. otherwise it filters the new row with the current parameters;
3. it refits when the schedule says so (the first bar of a new month by default) or when
   :class:`DriftDetector` reports that recent observations have become unlikely under the
   model; the refit uses the history available *then* (the last ``max_train_obs`` rows),
   warm-started from the previous fit, and the current distribution is recomputed by
   filtering that window under the new parameters — still using nothing after today.

A refit that fails keeps the previous model and says so in the update (never silently).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from regime_trader.strategies._checks import at_least, check_fields, check_non_negative, checked
from regime_trader.strategies.params import record_from_dict
from regime_trader.strategies.regime import ForwardFilter, HMMParams, RegimeFitError, RegimeModel
from regime_trader.strategies.regime_window import (
    RegimeUpdate,
    WindowedTracker,
    check_schedule,
    float_array_or_none,
)

__all__ = ["DriftDetector", "RegimeSettings", "RegimeTracker", "RegimeUpdate"]


@dataclass(frozen=True)
class RegimeSettings:
    """Fitting, refitting and drift parameters.

    Parameters
    ----------
    n_states : int, default 2
        Number of regimes (2 to 4).
    n_init : int, default 4
        Random initialisations of a cold fit (the first fit; later refits warm-start).
    n_iter : int, default 100
        EM iteration cap.
    tol : float, default 1e-3
        EM tolerance.
    min_train_obs : int, default 250
        Feature rows needed before the first fit (about one year).
    max_train_obs : int, default 2520
        Longest training window (about ten years); older rows are forgotten.
    refit_months : int, default 1
        Scheduled refit on the first bar of every ``refit_months``-th new month; 0 disables.
    drift_window : int, default 21
        Days averaged by the drift detector.
    drift_quantile : float, default 0.01
        Drift when the recent mean log-likelihood falls below this quantile of the same
        rolling mean over the training window, less ``drift_margin``.
    drift_margin : float, default 1.0
        Nats per observation below the quantile before drift is declared; the quantile is
        in-sample, so without a margin ordinary out-of-sample days would trip it.
    min_days_between_refits : int, default 10
        A drift refit waits at least this long after the previous fit.
    random_state : int, default 0
        Seed of the cold fit's initialisations.
    """

    n_states: int = 2
    n_init: int = 4
    n_iter: int = 100
    tol: float = 1e-3
    min_train_obs: int = 250
    max_train_obs: int = 2520
    refit_months: int = 1
    drift_window: int = checked(21, at_least(2))
    drift_quantile: float = 0.01
    drift_margin: float = checked(1.0, check_non_negative)
    min_days_between_refits: int = checked(10, at_least(0))
    random_state: int = 0

    def __post_init__(self) -> None:
        check_schedule(self.min_train_obs, self.max_train_obs, self.refit_months)
        check_fields(self)
        if not 0 < self.drift_quantile < 0.5:
            raise ValueError(f"drift_quantile must be in (0, 0.5), got {self.drift_quantile}")
        self.model()  # the model's own checks (n_states, n_init, n_iter, tol) at construction

    def model(self) -> RegimeModel:
        return RegimeModel(
            self.n_states,
            n_init=self.n_init,
            n_iter=self.n_iter,
            tol=self.tol,
            random_state=self.random_state,
        )


class DriftDetector:
    """Flags when the mean predictive log-likelihood of recent days is abnormally low.

    The threshold is calibrated on the training window at each fit: the ``quantile`` of the
    rolling ``window``-day mean of log p(x_t | x_1..x_{t-1}), less ``margin`` nats.
    """

    def __init__(self, window: int, quantile: float, margin: float = 1.0) -> None:
        self.window = window
        self.quantile = quantile
        self.margin = margin
        self.threshold: float | None = None
        self.recent: deque[float] = deque(maxlen=window)

    def calibrate(self, log_predictive: np.ndarray) -> None:
        """Set the threshold from the training window's log-likelihoods and restart."""
        rolling = np.convolve(log_predictive, np.ones(self.window) / self.window, mode="valid")
        if rolling.size == 0:
            self.threshold = None
        else:
            self.threshold = float(np.quantile(rolling, self.quantile)) - self.margin
        self.recent.clear()

    def update(self, log_predictive: float) -> bool:
        """Add one day; True when the window is full and its mean is below the threshold."""
        self.recent.append(log_predictive)
        if self.threshold is None or len(self.recent) < self.window:
            return False
        return sum(self.recent) / self.window < self.threshold

    @property
    def score(self) -> float | None:
        """Recent mean log-likelihood minus the threshold (negative means drift)."""
        if self.threshold is None or not self.recent:
            return None
        return sum(self.recent) / len(self.recent) - self.threshold


class RegimeTracker(WindowedTracker):
    """Causal, self-refitting regime probabilities.

    Parameters
    ----------
    settings : RegimeSettings
    """

    def __init__(self, settings: RegimeSettings | None = None) -> None:
        self.settings = settings or RegimeSettings()
        super().__init__(
            self.settings.min_train_obs, self.settings.max_train_obs, self.settings.refit_months
        )
        self.params: HMMParams | None = None
        self.filtered: np.ndarray | None = None
        self._last_fit_index = 0  # n_seen at the last fit
        self.drift = DriftDetector(
            self.settings.drift_window, self.settings.drift_quantile, self.settings.drift_margin
        )
        self._filter: ForwardFilter | None = None

    def _has_model(self) -> bool:
        return self.params is not None

    def _initial_fit(self, date: pd.Timestamp) -> RegimeUpdate:
        return self._refit(date, "initial", None)

    def _advance(self, date: pd.Timestamp, x: np.ndarray) -> RegimeUpdate:
        """Filter the day's row; refit when scheduled or when the drift detector fires."""
        # Set together with params at every fit; this only narrows the types.
        assert self._filter is not None and self.filtered is not None  # nosec B101
        prior = self._filter.predict(self.filtered)
        self.filtered, loglik = self._filter.step(prior, self._filter.log_emission(x)[0])
        drifted = self.drift.update(loglik)
        reason = self._refit_reason(date, drifted)
        if reason is not None:
            return self._refit(date, reason, loglik)
        return RegimeUpdate(self.filtered, self._filter.predict(self.filtered), None, None, loglik)

    def _refit_reason(self, date: pd.Timestamp, drifted: bool) -> str | None:
        if self._scheduled_refit_due(date):
            return "scheduled"
        since = self.n_seen - self._last_fit_index
        if drifted and since >= self.settings.min_days_between_refits:
            return "drift"
        return None

    def _refit(self, date: pd.Timestamp, reason: str, loglik: float | None) -> RegimeUpdate:
        X, equity = self.training_window()
        # Routine refits warm-start alone (fast, states stay aligned); after drift the seeded
        # cold starts compete too, since the old optimum may no longer be the right one.
        cold_starts = self.settings.n_init if reason == "drift" else None
        try:
            model = self.settings.model().fit(
                X, equity, warm_start=self.params, cold_starts=cold_starts
            )
        except (RegimeFitError, ValueError) as e:
            if self.params is None:
                return RegimeUpdate(None, None, None, f"{reason} fit failed: {e}", loglik)
            self._last_fit = date  # do not retry every day; the schedule retries next period
            self._last_fit_index = self.n_seen
            # Set together with params at every fit; this only narrows the types.
            assert self._filter is not None and self.filtered is not None  # nosec B101
            predicted = self._filter.predict(self.filtered)
            return RegimeUpdate(
                self.filtered, predicted, None, f"{reason} refit failed: {e}", loglik
            )
        forward = self._use_params(model.params_)
        self.last_fit_report = {**asdict(model.report_), "date": str(date.date()), "reason": reason}
        self.filtered = model.filtered_[-1]
        self.drift.calibrate(model.log_predictive_)
        self._last_fit = date
        self._last_fit_index = self.n_seen
        self.n_fits += 1
        return RegimeUpdate(
            self.filtered,
            forward.predict(self.filtered),
            reason,
            None,
            loglik,
            window_filtered=model.filtered_,
        )

    def _use_params(self, params: HMMParams) -> ForwardFilter:
        """Filter with ``params`` from now on (after a fit, or restored); return the filter."""
        self.params = params
        self._filter = ForwardFilter(params)
        return self._filter

    def state_dict(self) -> dict[str, Any]:
        """State that continues exactly: JSON values and arrays (the window holds the payload)."""
        return {
            "settings": asdict(self.settings),
            "params": None if self.params is None else self.params.arrays(),
            "filtered": self.filtered,
            **self._common_state(),
            "last_fit_index": self._last_fit_index,
            "drift_threshold": self.drift.threshold,
            "drift_recent": np.array(self.drift.recent, dtype=float),
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], payload: Sequence[Sequence[float]] | None = None
    ) -> RegimeTracker:
        """Rebuild a tracker from :meth:`state_dict` (version 1: with its owner's payload)."""
        tracker = cls(record_from_dict(RegimeSettings, state["settings"]))
        if state["params"] is not None:
            tracker._use_params(HMMParams.from_dict(state["params"]))
        tracker.filtered = float_array_or_none(state["filtered"])
        tracker._restore_common(state, payload)
        tracker._last_fit_index = int(state["last_fit_index"])
        tracker.drift.threshold = state["drift_threshold"]
        tracker.drift.recent.extend(float(v) for v in state["drift_recent"])
        return tracker
