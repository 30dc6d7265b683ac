"""Performance and risk statistics of a daily return series.

Conventions (stated once, used everywhere):

- returns are simple daily returns, net of costs; 252 trading days a year;
- the risk-free rate is 0 (cash earns nothing in the backtest, so Sharpe and Sortino compare
  like with like);
- ``max_drawdown`` is the worst peak-to-trough fall of the equity curve, a number <= 0;
- ``var_95`` and ``cvar_95`` are one-day historical Value-at-Risk and Expected Shortfall at
  95%, reported as positive losses;
- a statistic that is undefined (zero volatility, no drawdown) is ``None``, never a made-up
  number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["METRIC_NAMES", "drawdown", "per_regime_metrics", "performance_metrics"]

TRADING_DAYS_PER_YEAR = 252

METRIC_NAMES = (
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "turnover_per_year",
    "var_95",
    "cvar_95",
)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def drawdown(returns: pd.Series) -> pd.Series:
    """Drawdown of the equity curve built from ``returns``: equity / running peak - 1."""
    equity = (1.0 + returns).cumprod()
    peak = equity.cummax().clip(lower=1.0)  # the starting capital is the first peak
    return equity / peak - 1.0


def performance_metrics(
    returns: pd.Series, turnover: pd.Series | None = None
) -> dict[str, float | None]:
    """Annualised performance and tail risk.

    Parameters
    ----------
    returns : Series of shape (n_days,)
        Simple daily net returns.
    turnover : Series of shape (n_days,), optional
        Daily one-way turnover (sum of absolute weight changes); gives ``turnover_per_year``.

    Returns
    -------
    dict
        The keys of :data:`METRIC_NAMES`.
    """
    r = returns.to_numpy(dtype=float)
    n = r.size
    if n < 2:
        return dict.fromkeys(METRIC_NAMES)
    growth = float(np.prod(1.0 + r))
    cagr = growth ** (TRADING_DAYS_PER_YEAR / n) - 1.0 if growth > 0 else -1.0
    vol = float(np.std(r, ddof=1)) * math.sqrt(TRADING_DAYS_PER_YEAR)
    mean = float(np.mean(r)) * TRADING_DAYS_PER_YEAR
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) * math.sqrt(TRADING_DAYS_PER_YEAR)
    mdd = float(drawdown(returns).min())
    cutoff = float(np.quantile(r, 0.05))
    tail = r[r <= cutoff]
    years = n / TRADING_DAYS_PER_YEAR
    return {
        "cagr": _finite(cagr),
        "volatility": _finite(vol),
        "sharpe": _finite(mean / vol) if vol > 0 else None,
        "sortino": _finite(mean / downside) if downside > 0 else None,
        "max_drawdown": _finite(mdd),
        "calmar": _finite(cagr / abs(mdd)) if mdd < 0 else None,
        "turnover_per_year": None if turnover is None else _finite(float(turnover.sum()) / years),
        "var_95": _finite(-cutoff),
        "cvar_95": _finite(-float(tail.mean())) if tail.size else None,
    }


def per_regime_metrics(
    returns: pd.Series, regimes: pd.Series, labels: Mapping[int, str]
) -> dict[str, dict[str, float | int | None]]:
    """Statistics of the days spent in each regime.

    Parameters
    ----------
    returns : Series
        Daily returns, indexed by the day they are earned.
    regimes : Series of int
        The regime in force for each return (the decision day's filtered regime), same index.
    labels : mapping of int to str
        Regime names.

    Returns
    -------
    dict
        Per label: ``days``, ``share`` of days, annualised ``mean_return`` and
        ``volatility``, ``sharpe``, and ``hit_rate`` (share of positive days).
    """
    out: dict[str, dict[str, float | int | None]] = {}
    total = int(regimes.notna().sum())
    for state, label in labels.items():
        r = returns[regimes == state].to_numpy(dtype=float)
        if r.size == 0:
            out[label] = {
                "days": 0,
                "share": 0.0,
                "mean_return": None,
                "volatility": None,
                "sharpe": None,
                "hit_rate": None,
            }
            continue
        mean = float(r.mean()) * TRADING_DAYS_PER_YEAR
        vol = float(r.std(ddof=1)) * math.sqrt(TRADING_DAYS_PER_YEAR) if r.size > 1 else math.nan
        out[label] = {
            "days": int(r.size),
            "share": r.size / total if total else None,
            "mean_return": _finite(mean),
            "volatility": _finite(vol),
            "sharpe": _finite(mean / vol) if vol > 0 else None,
            "hit_rate": float((r > 0).mean()),
        }
    return out
