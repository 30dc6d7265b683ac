"""What both online regime engines share: the bounded training window and the refit calendar.

:class:`TrainingWindow` holds the last ``maxlen`` daily rows a refit trains on -- the feature
row, the equity return that orders the states and, optionally, a payload the strategy needs
aligned with the same days (``RegimeERC`` keeps its asset returns there to seed the per-regime
covariances after the first fit) -- in one NumPy ring, so the columns cannot drift apart and
forgetting the oldest day costs O(1) instead of shifting a list.

:class:`WindowedTracker` is the part of
:class:`~regime_trader.strategies.regime_online.RegimeTracker` and
:class:`~regime_trader.strategies.jump_online.JumpTracker` that is the same: validating and
recording the day's row, the monthly refit schedule and the persisted fields common to both.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regime_trader.strategies._checks import check_at_least

__all__ = [
    "RegimeUpdate",
    "TrainingWindow",
    "WindowedTracker",
    "check_schedule",
    "float_array_or_none",
    "months_between",
]


@dataclass(frozen=True)
class RegimeUpdate:
    """What one day did to the regime estimate.

    Attributes
    ----------
    filtered : ndarray of shape (n_states,) or None
        P(state_t | data up to t); None before the first fit.
    predicted : ndarray of shape (n_states,) or None
        P(state_{t+1} | data up to t), through the transition matrix.
    refit : str or None
        "initial", "scheduled" or "drift" when the model was (re)fitted today.
    refit_error : str or None
        Why a refit failed (the previous model was kept).
    log_predictive : float or None
        log p(x_t | x_1..x_{t-1}) under the model in force before today's refit.
    window_filtered : ndarray of shape (n_window, n_states) or None
        On a refit, the filtered probabilities of the whole training window (today last)
        under the new parameters.
    """

    filtered: np.ndarray | None
    predicted: np.ndarray | None
    refit: str | None = None
    refit_error: str | None = None
    log_predictive: float | None = None
    window_filtered: np.ndarray | None = None


def check_schedule(min_train_obs: int, max_train_obs: int, refit_months: int) -> None:
    """Check the window and refit settings both engines share.

    Raises
    ------
    ValueError
        Unless ``50 <= min_train_obs <= max_train_obs`` and ``refit_months >= 0``.
    """
    if min_train_obs < 50 or max_train_obs < min_train_obs:
        raise ValueError(
            f"need 50 <= min_train_obs <= max_train_obs, got {min_train_obs}, {max_train_obs}"
        )
    check_at_least("refit_months", refit_months, 0)


def float_array_or_none(saved: Any) -> np.ndarray | None:
    """A saved array (list or ndarray) as floats, or ``None`` where none was saved."""
    return None if saved is None else np.asarray(saved, dtype=float)


def months_between(earlier: pd.Timestamp, later: pd.Timestamp) -> int:
    """Return the number of calendar-month boundaries from ``earlier`` to ``later``."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


class TrainingWindow:
    """The last ``maxlen`` rows of (features, equity return, payload), oldest first.

    Parameters
    ----------
    maxlen : int
        Rows kept; appending to a full window forgets the oldest row.

    Notes
    -----
    The widths are fixed by the first row appended (features ``d``, payload ``m``, 0 when no
    payload is given); a later row of another width is an error rather than a silent reshape.
    """

    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
        self.maxlen = maxlen
        self._ring: np.ndarray | None = None  # (maxlen, d + 1 + m): features | equity | payload
        self._n_features = 0
        self._start = 0  # ring index of the oldest row
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def append(self, x: np.ndarray, equity: float, payload: np.ndarray | None = None) -> None:
        """Record one day; forget the oldest day when the window is full.

        Raises
        ------
        ValueError
            If ``x`` or ``payload`` has another width than the rows already held.
        """
        extra = np.empty(0) if payload is None else np.asarray(payload, dtype=float).ravel()
        row = np.concatenate((np.asarray(x, dtype=float).ravel(), [float(equity)], extra))
        if self._ring is None:
            self._ring = np.empty((self.maxlen, row.size))
            self._n_features = row.size - 1 - extra.size
        elif row.size != self._ring.shape[1] or extra.size != self._payload_width:
            raise ValueError(
                f"a training row must have {self._n_features} features and a payload of "
                f"{self._payload_width}; got {row.size - 1 - extra.size} and {extra.size}"
            )
        if self._len < self.maxlen:
            self._ring[(self._start + self._len) % self.maxlen] = row
            self._len += 1
        else:
            self._ring[self._start] = row
            self._start = (self._start + 1) % self.maxlen

    @property
    def _payload_width(self) -> int:
        return 0 if self._ring is None else self._ring.shape[1] - 1 - self._n_features

    def _rows(self) -> np.ndarray:
        """All rows, oldest first, as a new array of shape (len, d + 1 + m)."""
        if self._ring is None:
            return np.empty((0, 1))
        end = self._start + self._len
        if end <= self.maxlen:
            return self._ring[self._start : end].copy()
        return np.concatenate((self._ring[self._start :], self._ring[: end - self.maxlen]))

    def features(self) -> np.ndarray:
        """Feature rows, shape (len, n_features)."""
        return self._rows()[:, : self._n_features]

    def equity(self) -> np.ndarray:
        """Equity returns, shape (len,)."""
        return self._rows()[:, self._n_features]

    def payload(self) -> np.ndarray:
        """Payload rows, shape (len, payload width)."""
        return self._rows()[:, self._n_features + 1 :]

    def drop_payload(self) -> None:
        """Forget the payload columns; later rows are appended without one."""
        if self._ring is not None and self._payload_width:
            self._ring = np.ascontiguousarray(self._ring[:, : self._n_features + 1])

    def state_dict(self) -> dict[str, Any]:
        """The ring as it is (rows in ring order, the oldest at ``start``): a day changes one row.

        Only the rows in use are saved (the first ``len`` before the window is full).
        """
        if self._ring is None:
            return {"ring": None, "start": 0, "n_features": 0}
        rows = self._ring if self._len == self.maxlen else self._ring[: self._len]
        return {"ring": rows.copy(), "start": self._start, "n_features": self._n_features}

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved.

        Raises
        ------
        ValueError
            If the saved ring does not fit this window.
        """
        if state["ring"] is None:
            self._ring, self._n_features, self._start, self._len = None, 0, 0, 0
            return
        rows = np.asarray(state["ring"], dtype=float)
        start = int(state["start"])
        if rows.ndim != 2 or rows.shape[0] > self.maxlen or not 0 <= start < max(rows.shape[0], 1):
            raise ValueError(
                f"a saved training ring of shape {rows.shape} (start {start}) does not fit a "
                f"window of {self.maxlen} rows"
            )
        if start and rows.shape[0] != self.maxlen:
            raise ValueError(f"a ring that is not full starts at 0, got start {start}")
        self._ring = np.empty((self.maxlen, rows.shape[1]))
        self._ring[: rows.shape[0]] = rows
        self._n_features = int(state["n_features"])
        self._start, self._len = start, rows.shape[0]

    def restore(
        self,
        features: Sequence[Sequence[float]],
        equity: Sequence[float],
        payload: Sequence[Sequence[float]] | None = None,
    ) -> None:
        """Replace the content with saved columns (oldest first), as :meth:`append` would.

        Reads the layout of state version 1 (see :meth:`state_dict` for version 2).

        Raises
        ------
        ValueError
            If the columns do not have one row per day each.
        """
        n = len(features)
        if len(equity) != n or (payload is not None and len(payload) != n):
            lengths = (n, len(equity), None if payload is None else len(payload))
            raise ValueError(
                f"saved training columns differ in length (X, equity, payload): {lengths}"
            )
        self._ring, self._start, self._len = None, 0, 0
        for i in range(n):
            extra = None if payload is None else np.asarray(payload[i], dtype=float)
            self.append(np.asarray(features[i], dtype=float), float(equity[i]), extra)


class WindowedTracker(ABC):
    """Base of the online regime trackers: the day's row, the window, the refit calendar.

    Subclasses say whether a model exists (:meth:`_has_model`), fit the first one
    (:meth:`_initial_fit`) and advance a fitted model by one day (:meth:`_advance`).

    Parameters
    ----------
    min_train_obs : int
        Rows needed before the first fit.
    max_train_obs : int
        Rows a refit trains on at most.
    refit_months : int
        Refit on the first bar of every ``refit_months``-th new month; 0 never.
    """

    def __init__(self, min_train_obs: int, max_train_obs: int, refit_months: int) -> None:
        self._min_train_obs = min_train_obs
        self._refit_months = refit_months
        self.window = TrainingWindow(max_train_obs)
        self._last_fit: pd.Timestamp | None = None
        self.n_seen = 0
        self.n_fits = 0
        self.last_fit_report: dict[str, Any] | None = None

    def update(
        self,
        date: pd.Timestamp,
        x: np.ndarray,
        equity_return: float,
        payload: np.ndarray | None = None,
    ) -> RegimeUpdate:
        """Consume one day's feature row.

        Before the first fit this only collects rows until ``min_train_obs`` exist; then the
        engine fits, and from there on advances its model by one day (refitting when due).

        Parameters
        ----------
        date : Timestamp
            The session of the row (drives the refit schedule).
        x : ndarray of shape (n_features,)
            Finite feature row.
        equity_return : float
            The equity asset's return that day (orders the states at each fit).
        payload : ndarray, optional
            Kept in the training window next to the row (see :class:`TrainingWindow`); the
            fit does not read it.

        Raises
        ------
        ValueError
            If the row or the equity return is not finite (the date is named); nothing is
            recorded then.
        """
        x = np.asarray(x, dtype=float)
        if not np.all(np.isfinite(x)) or not math.isfinite(equity_return):
            raise ValueError(f"regime features on {date.date()} are not finite: {x}")
        self.window.append(x, equity_return, payload)
        self.n_seen += 1
        if self._has_model():
            return self._advance(date, x)
        if len(self.window) < self._min_train_obs:
            return RegimeUpdate(None, None)
        return self._initial_fit(date)

    @abstractmethod
    def _has_model(self) -> bool:
        """Whether a fit has succeeded (the day is then advanced, not collected)."""

    @abstractmethod
    def _initial_fit(self, date: pd.Timestamp) -> RegimeUpdate:
        """Fit the first model on the window (a failure is reported in the update)."""

    @abstractmethod
    def _advance(self, date: pd.Timestamp, x: np.ndarray) -> RegimeUpdate:
        """Advance the fitted model by the day's row ``x``; refit when due."""

    def _scheduled_refit_due(self, date: pd.Timestamp) -> bool:
        months = self._refit_months
        if not months or self._last_fit is None:
            return False
        return months_between(self._last_fit, date) >= months

    def training_window(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows a refit today would use: features (n, d) and equity returns (n,)."""
        return self.window.features(), self.window.equity()

    def _common_state(self) -> dict[str, Any]:
        return {
            "window": self.window.state_dict(),
            "last_fit": None if self._last_fit is None else self._last_fit.isoformat(),
            "n_seen": self.n_seen,
            "n_fits": self.n_fits,
            "last_fit_report": self.last_fit_report,
        }

    def _restore_common(
        self, state: Mapping[str, Any], payload: Sequence[Sequence[float]] | None = None
    ) -> None:
        """Restore the window (version 2: its ring; version 1: columns and the payload)."""
        if "window" in state:
            self.window.load(state["window"])
        else:
            self.window.restore(state["X"], state["equity"], payload)
        self._last_fit = None if state["last_fit"] is None else pd.Timestamp(state["last_fit"])
        self.n_seen = int(state["n_seen"])
        self.n_fits = int(state["n_fits"])
        self.last_fit_report = state["last_fit_report"]
