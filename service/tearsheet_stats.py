"""The numbers of a tearsheet, from daily returns, weights and asset returns (pure pandas).

Conventions (those of :mod:`regime_trader.strategies.metrics`): simple daily returns indexed by
the day they are earned, 252 days a year, risk-free rate 0, drawdowns as fractions <= 0.

Risk contributions are Euler's decomposition on a *realised* covariance: with the weights ``w``
that earned the returns and the sample covariance ``S`` of the assets' daily returns over the
same days, ``RC_i = w_i (S w)_i`` and ``sum_i RC_i = w' S w`` exactly, the variance of that
portfolio on those days (Roncalli, *Introduction to Risk Parity and Budgeting*, 2013, ch. 2;
:func:`regime_trader.strategies.riskparity.risk_contributions`). They are what the portfolio
carried, not the ERC target it aimed at (which is 1/N by construction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from regime_trader.strategies.metrics import TRADING_DAYS_PER_YEAR, drawdown
from regime_trader.strategies.riskparity import risk_contributions

__all__ = [
    "MONTHS",
    "DrawdownPeriod",
    "RegimeRisk",
    "annual_returns",
    "cumulative_costs",
    "drawdown_periods",
    "monthly_returns",
    "monthly_turnover",
    "relative_growth",
    "risk_by_regime",
    "rolling_risk_shares",
    "rolling_sharpe",
    "rolling_volatility",
    "yearly_statistic",
]

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ROLLING_WINDOW = TRADING_DAYS_PER_YEAR  # one year
RISK_WINDOW = 126  # half a year of daily returns for the rolling realised covariance


def _dates(frame: pd.Series | pd.DataFrame) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(frame.index)


def _compound(returns: pd.Series) -> float:
    return float(np.prod(1.0 + returns.to_numpy(dtype=float)) - 1.0)


def annual_returns(returns: pd.DataFrame) -> pd.DataFrame:
    """Compounded return of each calendar year (rows) and series (columns)."""
    years = _dates(returns).year
    rows = {
        str(year): {c: _compound(r[c]) for c in returns.columns}
        for year, r in returns.groupby(years)
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(returns.columns))


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded return of each month: a row per year, a column per month, then the year.

    Returns
    -------
    DataFrame of shape (n_years, 13)
        Columns :data:`MONTHS` and ``"Year"``; NaN for a month without returns.
    """
    dates = _dates(returns)
    rows: dict[str, list[float]] = {}
    for year, in_year in returns.groupby(dates.year):
        months = pd.DatetimeIndex(in_year.index).month
        by_month = {int(m): _compound(r) for m, r in in_year.groupby(months)}
        row = [by_month.get(m, math.nan) for m in range(1, 13)]
        rows[str(year)] = [*row, _compound(in_year)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=[*MONTHS, "Year"])


def yearly_statistic(returns: pd.DataFrame, statistic: str) -> pd.DataFrame:
    """``sharpe`` or ``max_drawdown`` of each calendar year and series."""
    out = {}
    for year, r in returns.groupby(_dates(returns).year):
        if statistic == "sharpe":
            vol = r.std(ddof=1)
            out[str(year)] = r.mean() / vol * math.sqrt(TRADING_DAYS_PER_YEAR)
        elif statistic == "max_drawdown":
            out[str(year)] = pd.Series({c: drawdown(r[c]).min() for c in r.columns})
        else:
            raise ValueError(f"statistic must be 'sharpe' or 'max_drawdown', got {statistic!r}")
    return pd.DataFrame(out).T


def rolling_volatility(returns: pd.DataFrame, window: int = ROLLING_WINDOW) -> pd.DataFrame:
    """Annualised volatility over the trailing ``window`` days (NaN until it is full)."""
    return returns.rolling(window).std(ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR)


def rolling_sharpe(returns: pd.DataFrame, window: int = ROLLING_WINDOW) -> pd.DataFrame:
    """Annualised Sharpe ratio (risk-free 0) over the trailing ``window`` days."""
    rolled = returns.rolling(window)
    return rolled.mean() / rolled.std(ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR)


def relative_growth(returns: pd.Series, reference: pd.Series) -> pd.Series:
    """The strategy's wealth relative to the reference's, minus 1: the excess return so far."""
    both = pd.concat([returns, reference], axis=1, join="inner").to_numpy(dtype=float)
    growth = np.cumprod(1.0 + both, axis=0)
    index = returns.index.intersection(reference.index)
    return pd.Series(growth[:, 0] / growth[:, 1] - 1.0, index=index)


@dataclass(frozen=True)
class DrawdownPeriod:
    """One drawdown: from the peak before it, to its trough, to the recovery of that peak.

    ``recovery`` is None while the equity has not regained the peak (then ``days_to_recover``
    is None too); day counts are trading days.
    """

    peak: pd.Timestamp
    trough: pd.Timestamp
    recovery: pd.Timestamp | None
    depth: float
    days_to_trough: int
    days_to_recover: int | None


def drawdown_periods(returns: pd.Series, count: int = 5) -> list[DrawdownPeriod]:
    """The ``count`` deepest drawdowns that do not overlap, deepest first.

    The peak of the first one may be the starting capital (the day before the first return:
    shown as the first day).
    """
    dd = drawdown(returns)
    values, dates = dd.to_numpy(), dd.index
    periods: list[DrawdownPeriod] = []
    i, n = 0, len(values)
    while i < n:
        if values[i] >= 0:
            i += 1
            continue
        start = i  # the first day below the peak
        while i < n and values[i] < 0:
            i += 1
        segment = values[start:i]
        trough = start + int(np.argmin(segment))
        peak = max(start - 1, 0)
        recovered = i < n
        periods.append(
            DrawdownPeriod(
                peak=dates[peak],
                trough=dates[trough],
                recovery=dates[i] if recovered else None,
                depth=float(segment.min()),
                days_to_trough=trough - peak,
                days_to_recover=(i - trough) if recovered else None,
            )
        )
    return sorted(periods, key=lambda p: p.depth)[:count]


def monthly_turnover(turnover: pd.Series) -> pd.Series:
    """One-way turnover traded in each month (1.0 = the whole equity once), by month start."""
    months = _dates(turnover).to_period("M")
    summed = turnover.groupby(months).sum()
    return pd.Series(summed.to_numpy(), index=pd.PeriodIndex(summed.index).to_timestamp())


def cumulative_costs(turnover: pd.Series, cost_bps: float) -> pd.Series:
    """Costs paid so far as a fraction of capital: ``cost_bps`` per unit of one-way turnover.

    The backtest charges ``(1 - c T)`` on each day's growth, so this sum is the cost to first
    order (what the costs took from each day's return, not compounded).
    """
    return (turnover * cost_bps / 1e4).cumsum()


def _invested(weights: pd.DataFrame) -> pd.DataFrame:
    return weights.drop(columns=["cash"], errors="ignore")


def rolling_risk_shares(
    weights: pd.DataFrame, asset_returns: pd.DataFrame, window: int = RISK_WINDOW
) -> pd.DataFrame:
    """Each asset's share of the portfolio's realised variance, at each month end.

    At a month end t: ``w`` are the weights that earned t's return, ``S`` the sample covariance
    of the assets' returns over the ``window`` days to t; share_i = RC_i / (w' S w). Shares sum
    to 1 (they can be negative for a hedge).

    Parameters
    ----------
    weights : DataFrame of shape (n_days, n_assets [+ cash])
        The weights that earned each day's return, indexed by that day.
    asset_returns : DataFrame
        The assets' simple daily returns (columns include every asset of ``weights``).
    window : int
        Days of returns in each covariance.
    """
    w = _invested(weights)
    r = asset_returns[w.columns].reindex(w.index)
    rows = {}
    dates = _dates(w)
    month_ends = w.groupby([dates.year, dates.month]).tail(1).index
    for day in month_ends:
        pos = int(dates.searchsorted(day))
        if pos + 1 < window:
            continue
        sample = r.iloc[pos + 1 - window : pos + 1].dropna()
        if len(sample) < window // 2:
            continue
        held = w.loc[day].to_numpy(dtype=float)
        rc = risk_contributions(held, sample.cov().to_numpy())
        total = float(rc.sum())
        if total > 0:
            rows[day] = rc / total
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(w.columns))


@dataclass(frozen=True)
class RegimeRisk:
    """Realised risk of the days spent in one regime.

    ``weights`` are the mean invested weights of those days, ``contributions`` their Euler
    contributions on the sample covariance of those days (summing to ``variance``, a daily
    variance); ``volatility`` is ``sqrt(variance * 252)``.
    """

    regime: str
    days: int
    weights: Mapping[str, float]
    contributions: Mapping[str, float]
    variance: float

    @property
    def volatility(self) -> float:
        return math.sqrt(max(self.variance, 0.0) * TRADING_DAYS_PER_YEAR)

    @property
    def shares(self) -> dict[str, float]:
        if self.variance <= 0:
            return dict.fromkeys(self.contributions, 0.0)
        return {s: c / self.variance for s, c in self.contributions.items()}


def risk_by_regime(
    weights: pd.DataFrame, asset_returns: pd.DataFrame, regimes: pd.Series
) -> list[RegimeRisk]:
    """Euler risk contributions of each regime's days (see :class:`RegimeRisk`).

    Parameters
    ----------
    weights : DataFrame
        The weights that earned each day's return, indexed by that day.
    asset_returns : DataFrame
        The assets' daily returns.
    regimes : Series of str
        The regime in force for each return (the label of the decision that earned it).
    """
    w = _invested(weights)
    r = asset_returns[w.columns].reindex(w.index)
    labels = regimes.reindex(w.index)
    out = []
    for label in dict.fromkeys(labels.dropna()):
        days = labels[labels == label].index
        sample = r.loc[days].dropna()
        if len(sample) < 2:
            continue
        mean_w = w.loc[sample.index].mean().to_numpy(dtype=float)
        cov = sample.cov().to_numpy()
        rc = risk_contributions(mean_w, cov)
        out.append(
            RegimeRisk(
                regime=str(label),
                days=len(sample),
                weights=dict(zip(w.columns, mean_w.tolist(), strict=True)),
                contributions=dict(zip(w.columns, rc.tolist(), strict=True)),
                variance=float(mean_w @ cov @ mean_w),
            )
        )
    return out
