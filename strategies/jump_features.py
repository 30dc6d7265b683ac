"""Causal features of the jump-model literature, and a scaler fit on the training window.

The statistical jump model clusters a feature vector per day, so its regimes are only as good
as the features. These follow Shu, Yu & Mulvey (2024, arXiv 2402.05272, table 2) and Nystrup,
Kolm & Lindström (2021): for every asset ``S`` (r_t its log return) and half-life ``h``:

``S_ewret_h``
    the EWMA of r (the recent drift);
``S_logdd_h``
    log of the EWMA downside deviation sqrt(EWMA of min(r, 0)^2), annualised (the risk that
    separates calm from stress, on a log scale so that crises do not dominate the distance);
``S_sortino_h``
    the EWMA return over that downside deviation, annualised.

Cross-asset: ``corr_<EQUITY>_<BOND>``, the EWMA correlation of the equity and bond assets'
returns (the first two by default; the stock-bond correlation flips sign across inflation
regimes).

Every EWMA is bias-corrected (``pandas.ewm(halflife=h, adjust=True)``) and updated one bar at a
time, so row t depends on closes up to t only, the live service and a backtest compute identical
bits, and :class:`JumpFeatureEngine` restores exactly from a JSON-able state.

:class:`FeatureScaler` standardises with the mean and standard deviation of the *training*
rows only; applied unchanged afterwards, a later row never moves an earlier one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regime_trader.strategies._checks import check_at_least, check_positive
from regime_trader.strategies.paired_recursion import (
    PairedRecursion,
    check_closes,
    correlation_name,
    decay,
    stock_bond_pair,
)

__all__ = [
    "FeatureScaler",
    "JumpFeatureEngine",
    "JumpFeatureSpec",
    "compute_jump_features",
    "jump_feature_names",
]

TRADING_DAYS_PER_YEAR = 252
_DD_FLOOR = 1e-6  # daily volatility floor: log and ratio stay finite on a calm start


@dataclass(frozen=True)
class JumpFeatureSpec:
    """Parameters of the feature recursions.

    Parameters
    ----------
    halflives : tuple of float, default (5, 10, 21)
        Half-lives in days of the return, downside-deviation and Sortino EWMAs (short ones,
        as in Shu, Yu & Mulvey 2024: regimes must be seen within days, not months).
    corr_halflife : float, default 63
        Half-life in days of the stock-bond EWMA correlation.
    warmup : int, default 21
        Bars (closes) before a row is reported; earlier rows are NaN, since an EWMA of a
        handful of returns is mostly noise and would distort the training scaler.
    """

    halflives: tuple[float, ...] = (5.0, 10.0, 21.0)
    corr_halflife: float = 63.0
    warmup: int = 21

    def __post_init__(self) -> None:
        if not self.halflives or not all(h > 0 for h in self.halflives):
            raise ValueError(f"halflives must be positive and non-empty, got {self.halflives}")
        if len(set(self.halflives)) != len(self.halflives):
            raise ValueError(f"halflives must be distinct, got {self.halflives}")
        check_positive("corr_halflife", self.corr_halflife)
        check_at_least("warmup", self.warmup, 2)


KINDS = ("ewret", "logvol", "logdd", "sortino")


def _tag(h: float) -> str:
    return f"{h:g}"


def jump_feature_names(
    symbols: Sequence[str],
    spec: JumpFeatureSpec | None = None,
    *,
    equity: str | None = None,
    bond: str | None = None,
) -> list[str]:
    """Column names for ``symbols``: per asset and half-life, then the correlation."""
    pair = stock_bond_pair(symbols, equity, bond)
    return _per_asset_names(symbols, spec or JumpFeatureSpec()) + correlation_name(symbols, pair)


def _per_asset_names(symbols: Sequence[str], spec: JumpFeatureSpec) -> list[str]:
    return [f"{s}_{kind}_{_tag(h)}" for s in symbols for h in spec.halflives for kind in KINDS]


class JumpFeatureEngine(PairedRecursion[JumpFeatureSpec]):
    """Online jump-model feature recursions over a fixed list of symbols.

    Constructed as :class:`~regime_trader.strategies.paired_recursion.PairedRecursion` (symbols, a
    :class:`JumpFeatureSpec`, equity, bond).
    """

    @classmethod
    def default_spec(cls) -> JumpFeatureSpec:
        return JumpFeatureSpec()

    def _allocate(self) -> None:
        n, m = len(self.symbols), len(self.spec.halflives)
        self._lam = np.array([decay(h) for h in self.spec.halflives])  # (m,)
        self._last_log: np.ndarray | None = None
        self._ret_num = np.zeros((m, n))  # EWMA numerators of r
        self._var_num = np.zeros((m, n))  # ... of r^2
        self._dd_num = np.zeros((m, n))  # ... of min(r, 0)^2
        self._den = np.zeros(m)  # shared bias-correction denominators

    @property
    def names(self) -> list[str]:
        return _per_asset_names(self.symbols, self.spec) + correlation_name(self.symbols, self.pair)

    @property
    def ready(self) -> bool:
        """True once rows are reported (``spec.warmup`` bars seen)."""
        return self.n_bars >= self.spec.warmup

    def update(self, closes: np.ndarray) -> np.ndarray:
        """Consume one bar of closes and return its feature row.

        Parameters
        ----------
        closes : ndarray of shape (n_assets,)
            Positive closes in ``symbols`` order.

        Returns
        -------
        ndarray of shape (n_features,)
            NaN until :attr:`ready`.
        """
        log_p = np.log(check_closes(closes, len(self.symbols)))
        self.n_bars += 1
        previous, self._last_log = self._last_log, log_p
        row = np.full(self.n_features, np.nan)
        if previous is None:
            return row
        r = log_p - previous
        self.returns = r
        lam = self._lam[:, None]
        self._ret_num = lam * self._ret_num + r
        self._var_num = lam * self._var_num + r**2
        self._dd_num = lam * self._dd_num + np.minimum(r, 0.0) ** 2
        self._den = self._lam * self._den + 1.0
        corr = self._correlation(r)
        if not self.ready:
            return row
        den = self._den[:, None]
        mean = self._ret_num / den
        vol = np.maximum(np.sqrt(self._var_num / den), _DD_FLOOR)
        dd = np.maximum(np.sqrt(self._dd_num / den), _DD_FLOOR)
        root = math.sqrt(TRADING_DAYS_PER_YEAR)
        kinds = [mean, np.log(vol * root), np.log(dd * root), mean / dd * root]
        block = np.stack(kinds, axis=-1)  # (m, n, len(KINDS))
        per_asset = block.transpose(1, 0, 2).ravel()  # symbol, half-life, kind
        row[: per_asset.size] = per_asset
        if corr is not None:
            row[-1] = corr
        return row

    def _own_state(self) -> dict[str, Any]:
        return {
            "last_log": self._last_log,
            "ret_num": self._ret_num,
            "var_num": self._var_num,
            "dd_num": self._dd_num,
            "den": self._den,
        }

    def _load(self, state: dict[str, Any]) -> None:
        if state["last_log"] is not None:
            self._last_log = np.asarray(state["last_log"], dtype=float)
        self._ret_num = np.asarray(state["ret_num"], dtype=float)
        self._var_num = np.asarray(state["var_num"], dtype=float)
        self._dd_num = np.asarray(state["dd_num"], dtype=float)
        self._den = np.asarray(state["den"], dtype=float)


def compute_jump_features(
    prices: pd.DataFrame, spec: JumpFeatureSpec | None = None
) -> pd.DataFrame:
    """Run :class:`JumpFeatureEngine` over a frame of closes.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_assets)
        Positive closes indexed by date.
    spec : JumpFeatureSpec, optional

    Returns
    -------
    DataFrame of shape (n_days, n_features)
        Row t depends on rows up to t only; NaN during the warm-up.
    """
    engine = JumpFeatureEngine([str(c) for c in prices.columns], spec)
    rows = [engine.update(row) for row in prices.to_numpy(dtype=float)]
    return pd.DataFrame(rows, index=prices.index, columns=engine.names)


@dataclass(frozen=True)
class FeatureScaler:
    """Standardisation z = (x - mean) / scale, fit once on a training window.

    Attributes
    ----------
    mean, scale : ndarray of shape (n_features,)
        Column means and standard deviations of the training rows (scale floored at
        ``1e-8`` so that a constant column maps to 0 instead of dividing by zero).
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> FeatureScaler:
        """Fit on training rows only.

        Parameters
        ----------
        X : ndarray of shape (n_obs, n_features)
            Finite training features, n_obs >= 2.

        Raises
        ------
        ValueError
            If ``X`` is not a finite 2-d array with at least two rows.
        """
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] < 2:
            raise ValueError(f"X must be (n_obs >= 2, n_features), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("training features must be finite")
        return cls(X.mean(axis=0), np.maximum(X.std(axis=0), 1e-8))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise rows (any number) with the training moments."""
        return np.asarray((np.asarray(X, dtype=float) - self.mean) / self.scale)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureScaler:
        return cls(np.asarray(data["mean"], dtype=float), np.asarray(data["scale"], dtype=float))
