"""Causal features of daily prices, computed online one bar at a time.

Every feature of day t is a function of closes up to and including t only, and is computed by
a recursion whose whole state fits in a small JSON-serialisable dict, so the live service and
the backtest compute bit-identical features and a restored strategy continues exactly.

Per asset ``S`` (r_t is the log return of day t):

``S_ret``
    r_t, the log return.
``S_vnr``
    r_t / sigma_{t-1}: the volatility-normalised return, scaled by the EWMA volatility known
    *before* the day (so a crash day is a large value, not a unit one).
``S_logvol``
    log of the annualised EWMA volatility sigma_t (bias-corrected EWMA of r^2, as pandas'
    ``ewm(adjust=True)``), the feature that separates calm from stressed markets.
``S_trend``
    The adaptive trend: Kaufman's efficiency ratio over ``trend_window`` days, signed by the
    direction of the move, in [-1, 1]. Near +-1 for a clean trend, near 0 for noise.
``S_kama_gap``
    The distance of the log price above its noise-reduced series (Kaufman's adaptive moving
    average, KAMA), in units of sigma_t. KAMA follows the price quickly in trends and barely
    moves in noise, so the gap is a denoised trend position.

Cross-asset: ``corr_<EQUITY>_<BOND>``, the EWMA correlation of the equity and bond assets'
returns (the first two by default; stock-bond correlation flips sign across inflation regimes),
from :mod:`regime_trader.strategies.paired_recursion`, shared with the jump models' features.

Reference: P. J. Kaufman, *Trading Systems and Methods*, 5th ed., ch. 17 (efficiency ratio,
KAMA); J.P. Morgan/Reuters, *RiskMetrics — Technical Document* (1996) for EWMA volatility.

Features need a warm-up (``FeatureSpec.warmup``) before all of them are defined; rows before
that are NaN and :attr:`FeatureEngine.ready` is False.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regime_trader.strategies._checks import at_least, check_fields, check_positive, checked
from regime_trader.strategies.paired_recursion import (
    PairedRecursion,
    check_closes,
    correlation_name,
    decay,
    stock_bond_pair,
)

__all__ = ["FeatureEngine", "FeatureSpec", "compute_features", "feature_names"]

TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True)
class FeatureSpec:
    """Parameters of the feature recursions.

    Parameters
    ----------
    vol_halflife : float, default 10
        Half-life in days of the EWMA variance behind ``vnr`` and ``logvol``.
    trend_window : int, default 20
        Days of the efficiency ratio and of KAMA's efficiency.
    kama_fast, kama_slow : int, default 2 and 30
        Fastest and slowest equivalent EMA spans of KAMA.
    corr_halflife : float, default 63
        Half-life in days of the stock-bond EWMA correlation.
    """

    vol_halflife: float = checked(10.0, check_positive)
    trend_window: int = checked(20, at_least(2))
    kama_fast: int = 2
    kama_slow: int = 30
    corr_halflife: float = checked(63.0, check_positive)

    def __post_init__(self) -> None:
        check_fields(self)
        if not 1 <= self.kama_fast < self.kama_slow:
            raise ValueError(
                f"need 1 <= kama_fast < kama_slow, got {self.kama_fast}, {self.kama_slow}"
            )

    @property
    def warmup(self) -> int:
        """Bars (prices) needed before every feature is defined."""
        return self.trend_window + 1


PER_ASSET = ("ret", "vnr", "logvol", "trend", "kama_gap")


def feature_names(
    symbols: Sequence[str], equity: str | None = None, bond: str | None = None
) -> list[str]:
    """Column names produced for ``symbols`` (per-asset blocks, then the correlation)."""
    names = [f"{s}_{kind}" for s in symbols for kind in PER_ASSET]
    return names + correlation_name(symbols, stock_bond_pair(symbols, equity, bond))


class FeatureEngine(PairedRecursion[FeatureSpec]):
    """Online feature recursions over a fixed list of symbols, by a :class:`FeatureSpec`.

    Constructed as :class:`PairedRecursion` (symbols, spec, equity, bond).
    """

    @classmethod
    def default_spec(cls) -> FeatureSpec:
        return FeatureSpec()

    def _allocate(self) -> None:
        n = len(self.symbols)
        self._lam_vol = decay(self.spec.vol_halflife)
        self._log_prices: list[list[float]] = []  # last trend_window + 1 log closes
        self._var_num = np.zeros(n)
        self._var_den = 0.0
        self._kama = np.zeros(n)  # set to the first log close on the first bar

    @property
    def ready(self) -> bool:
        """True once every feature is defined."""
        return self.n_bars >= self.spec.warmup

    @property
    def names(self) -> list[str]:
        """Feature column names."""
        names = [f"{s}_{kind}" for s in self.symbols for kind in PER_ASSET]
        return names + correlation_name(self.symbols, self.pair)

    def update(self, closes: np.ndarray) -> np.ndarray:
        """Consume one bar of closes and return its feature row.

        Parameters
        ----------
        closes : ndarray of shape (n_assets,)
            Positive closes of the new bar, in ``symbols`` order.

        Returns
        -------
        ndarray of shape (n_features,)
            The features of this bar; NaN where not yet defined.
        """
        log_p = np.log(check_closes(closes, len(self.symbols)))
        self.n_bars += 1
        window = self.spec.trend_window
        self._log_prices.append(log_p.tolist())
        if len(self._log_prices) > window + 1:
            del self._log_prices[0]
        row = np.full(self.n_features, np.nan)
        if len(self._log_prices) < 2:
            self._kama = log_p.copy()
            return row
        ret = log_p - np.asarray(self._log_prices[-2])
        self.returns = ret
        prev_vol = np.sqrt(self._var_num / self._var_den) if self._var_den > 0 else None
        self._var_num = self._lam_vol * self._var_num + ret**2
        self._var_den = self._lam_vol * self._var_den + 1.0
        vol = np.sqrt(self._var_num / self._var_den)
        er = self._efficiency_ratio()
        self._update_kama(log_p, er)
        n = len(self.symbols)
        block = np.full((n, len(PER_ASSET)), np.nan)
        block[:, 0] = ret
        if prev_vol is not None:
            block[:, 1] = _ratio(ret, prev_vol)
        block[:, 2] = np.log(np.maximum(vol, 1e-12) * math.sqrt(TRADING_DAYS_PER_YEAR))
        if er is not None:
            block[:, 3] = er
            block[:, 4] = _ratio(log_p - self._kama, vol)
        row[: n * len(PER_ASSET)] = block.ravel()
        corr = self._correlation(ret)
        if corr is not None:
            row[-1] = corr
        return row

    def _efficiency_ratio(self) -> np.ndarray | None:
        window = self.spec.trend_window
        if len(self._log_prices) < window + 1:
            return None
        path = np.asarray(self._log_prices)
        change = path[-1] - path[0]
        noise = np.abs(np.diff(path, axis=0)).sum(axis=0)
        return _ratio(change, noise)

    def _update_kama(self, log_p: np.ndarray, er: np.ndarray | None) -> None:
        fast = 2.0 / (self.spec.kama_fast + 1)
        slow = 2.0 / (self.spec.kama_slow + 1)
        efficiency = np.abs(er) if er is not None else np.zeros_like(log_p)
        smoothing = (efficiency * (fast - slow) + slow) ** 2
        self._kama = self._kama + smoothing * (log_p - self._kama)

    def _own_state(self) -> dict[str, Any]:
        return {
            "log_prices": np.array(self._log_prices, dtype=float).reshape(
                len(self._log_prices), len(self.symbols)
            ),
            "var_num": self._var_num,
            "var_den": self._var_den,
            "kama": self._kama,
        }

    def _load(self, state: dict[str, Any]) -> None:
        self._log_prices = np.asarray(state["log_prices"], dtype=float).tolist()
        self._var_num = np.asarray(state["var_num"], dtype=float)
        self._var_den = float(state["var_den"])
        self._kama = np.asarray(state["kama"], dtype=float)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, else 0 (no division happens there, so no warning)."""
    return np.asarray(np.divide(num, den, out=np.zeros(np.shape(num)), where=den > 0))


def compute_features(prices: pd.DataFrame, spec: FeatureSpec | None = None) -> pd.DataFrame:
    """Run :class:`FeatureEngine` over a frame of closes.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_assets)
        Positive closes indexed by date.
    spec : FeatureSpec, optional
        Recursion parameters.

    Returns
    -------
    DataFrame of shape (n_days, n_features)
        Row t depends on rows up to t only.
    """
    engine = FeatureEngine([str(c) for c in prices.columns], spec)
    rows = [engine.update(row) for row in prices.to_numpy(dtype=float)]
    return pd.DataFrame(rows, index=prices.index, columns=engine.names)
