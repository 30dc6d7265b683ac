"""Realised risk contributions: who carries the risk of the portfolio as it is held.

The ERC target spreads *forecast* risk equally; what the account actually carries depends on the
weights it holds and the covariance the market delivered. With held weights ``w`` and the sample
covariance ``S`` of the last ``window`` daily returns, Euler's decomposition gives each asset's
contribution ``RC_i = w_i (S w)_i``; the contributions sum exactly to the portfolio's variance
``w' S w`` (Roncalli, *Introduction to Risk Parity and Budgeting*, 2013, ch. 2). The
decomposition is :func:`regime_trader.strategies.risk_attribution.realised_attribution`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from regime_trader.strategies.risk_attribution import realised_attribution

__all__ = ["REALISED_WINDOW", "RealisedRisk", "realised_risk"]

# Three months of daily returns: recent enough to show the market as it is, long enough for a
# 3x3 covariance (the cycle's EWMA half-life is the same 63 days).
REALISED_WINDOW = 63
TRADING_DAYS = 252


@dataclass(frozen=True)
class RealisedRisk:
    """Euler risk contributions of held weights on a realised covariance.

    Attributes
    ----------
    symbols : tuple of str
    weights : tuple of float
        Held weight of each symbol (fractions of equity; the rest is cash).
    contributions : tuple of float
        ``w_i (S w)_i`` in daily variance units; they sum to :attr:`variance`.
    variance : float
        The portfolio's daily variance ``w' S w``.
    n_returns : int
        Daily returns the covariance was estimated on.
    first, last : str
        Sessions of the first and the last return.
    """

    symbols: tuple[str, ...]
    weights: tuple[float, ...]
    contributions: tuple[float, ...]
    variance: float
    n_returns: int
    first: str
    last: str

    @property
    def shares(self) -> tuple[float, ...]:
        """Each contribution as a fraction of the variance (0 for a portfolio of cash)."""
        if self.variance <= 0:
            return tuple(0.0 for _ in self.contributions)
        return tuple(c / self.variance for c in self.contributions)

    @property
    def annual_volatility(self) -> float:
        """``sqrt(252 w' S w)``: the held portfolio's realised volatility, a year."""
        return math.sqrt(max(self.variance, 0.0) * TRADING_DAYS)


def realised_risk(
    weights: Mapping[str, float], closes: pd.DataFrame, window: int = REALISED_WINDOW
) -> RealisedRisk:
    """Risk contributions of held ``weights`` (a symbol without one holds 0) on the covariance
    of the last ``window`` simple returns of ``closes`` (daily, oldest first, one column per
    symbol on one price basis; fewer returns if it is shorter), in variance units and with the
    sessions they span.

    Raises ``ValueError`` with fewer than 2 returns, or a close that is not a positive number.
    """
    values = closes.to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError("closes must be positive numbers")
    symbols = tuple(str(s) for s in closes.columns)
    returns = pd.DataFrame(values[1:] / values[:-1] - 1.0, columns=list(symbols)).iloc[-window:]
    if len(returns) < 2:
        raise ValueError(f"realised risk needs at least 2 returns, got {len(returns)}")
    euler = realised_attribution(weights, returns, window)
    index = pd.DatetimeIndex(closes.index)
    return RealisedRisk(
        symbols=symbols,
        weights=euler.weights,
        # Volatility units times the volatility: the variance contributions w_i (S w)_i.
        contributions=tuple(c * euler.volatility for c in euler.contributions),
        variance=euler.volatility**2,
        n_returns=len(returns),
        first=str(index[-len(returns)].date()),
        last=str(index[-1].date()),
    )
