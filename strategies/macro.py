"""Macro and market-stress signals: VIX and the Treasury curve, true or proxied by ETFs.

Two sources of the same three signals, each causal (the value of day t uses data up to t):

- the true series (:func:`macro_signals`): the VIX close and the 10y-2y and 10y-3m spreads in
  percentage points, as in ``../shared/data/macro_vix_ust_1990_2019.csv`` (FRED series) or a
  file an operator points the service at (:mod:`regime_trader.service.macro_source`);
- proxies from ETFs Alpaca serves (:func:`proxy_signals`), because Alpaca has neither VIX nor
  yields: the annualised realised volatility of an equity ETF (percent, the scale of VIX), and
  the curve's *change* over a window from duration-mismatched Treasury ETFs. A bond price falls
  when its yield rises, by about its duration times the move; when long yields rise against
  short ones (the curve steepens) the long ETF lags the short one, so ``short - long`` log
  return over ``curve_window`` days rises with the spread's change over those days.

A proxy is not the series: the VIX is implied (forward-looking, with a risk premium) where
realised volatility looks back, and a return spread measures the curve's change, not its level.
:func:`proxy_correlations` says how close each proxy comes on given dates; the README reports
it on the development window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "MACRO_COLUMNS",
    "MAX_MACRO_STALE_DAYS",
    "ProxyCorrelation",
    "ProxySpec",
    "join_macro",
    "macro_signals",
    "proxy_correlations",
    "proxy_signals",
]

# The true series' columns, as FRED names them in the shared file.
MACRO_COLUMNS = ("VIX", "SPREAD_10Y2Y", "SPREAD_10Y3M")
TRADING_DAYS_PER_YEAR = 252
# A session takes the latest macro row dated on or before it, if at most this many calendar
# days older: a long weekend and a holiday pass, a series that stopped updating does not.
MAX_MACRO_STALE_DAYS = 7


@dataclass(frozen=True)
class ProxySpec:
    """Which ETFs stand in for what, and over how many sessions.

    Parameters
    ----------
    equity : str, default "SPY"
        Its realised volatility stands in for the VIX.
    intermediate, long, short : str, default "IEF", "TLT" and "SHY"
        Treasury ETFs of about 7.5, 17 and 1.9 years' duration: ``short - intermediate``
        stands in for the 10y-2y spread's change, ``short - long`` for the 10y-3m one's
        (no bill ETF is in the data; the 1-3 year one is the shortest).
    vol_window : int, default 21
        Sessions of the realised volatility (about a month, as the VIX's 30 calendar days).
    curve_window : int, default 63
        Sessions of the curve's change (a quarter).
    change_window : int, default 5
        Sessions of the VIX's change (a week).
    """

    equity: str = "SPY"
    intermediate: str = "IEF"
    long: str = "TLT"
    short: str = "SHY"
    vol_window: int = 21
    curve_window: int = 63
    change_window: int = 5

    def __post_init__(self) -> None:
        for name in ("vol_window", "curve_window", "change_window"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2, got {getattr(self, name)}")

    @property
    def symbols(self) -> tuple[str, ...]:
        return (self.equity, self.intermediate, self.long, self.short)


def macro_signals(macro: pd.DataFrame, spec: ProxySpec | None = None) -> pd.DataFrame:
    """The true series as signals: ``vix``, ``vix_change``, ``curve_10y2y``, ``curve_10y3m``
    (the spreads' change over ``curve_window`` sessions) and the spreads' levels.

    Raises
    ------
    ValueError
        If a column of :data:`MACRO_COLUMNS` is missing or a value is not finite.
    """
    spec = spec or ProxySpec()
    values = _series(macro).astype(float)
    if not np.isfinite(values.to_numpy()).all():
        raise ValueError("macro series hold a missing or non-finite value")
    return pd.DataFrame(
        {
            "vix": values["VIX"],
            "vix_change": values["VIX"].diff(spec.change_window),
            "curve_10y2y": values["SPREAD_10Y2Y"].diff(spec.curve_window),
            "curve_10y3m": values["SPREAD_10Y3M"].diff(spec.curve_window),
            "spread_10y2y": values["SPREAD_10Y2Y"],
            "spread_10y3m": values["SPREAD_10Y3M"],
        },
        index=macro.index,
    )


def _series(macro: pd.DataFrame) -> pd.DataFrame:
    """The :data:`MACRO_COLUMNS` of ``macro``, in that order, or the error naming the missing."""
    missing = [c for c in MACRO_COLUMNS if c not in macro.columns]
    if missing:
        raise ValueError(f"macro series lack columns {missing}; have {list(macro.columns)}")
    return macro.loc[:, list(MACRO_COLUMNS)]


def join_macro(
    closes: pd.DataFrame, macro: pd.DataFrame, max_stale_days: int = MAX_MACRO_STALE_DAYS
) -> pd.DataFrame:
    """``closes`` with the :data:`MACRO_COLUMNS` of ``macro`` beside them, as of each session.

    Each session takes the latest row of ``macro`` dated on or before it (never a later one:
    the join is causal whatever the file holds), or NaN where that row is more than
    ``max_stale_days`` calendar days older or there is none; a strategy refuses a NaN input
    (:class:`~regime_trader.strategies.base.BarsError` naming the column and the session).
    The backtest and the live cycle join the same way, so they feed a strategy the same rows.

    Raises
    ------
    ValueError
        If ``macro`` lacks a column of :data:`MACRO_COLUMNS` or its dates are unsorted.
    """
    index = pd.DatetimeIndex(macro.index)
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise ValueError("macro series dates must be strictly increasing")
    series = pd.DataFrame(_series(macro).to_numpy(dtype=float), index=index)
    aligned = series.reindex(
        pd.DatetimeIndex(closes.index),
        method="ffill",
        tolerance=pd.Timedelta(days=max_stale_days),
    )
    aligned.columns = pd.Index(MACRO_COLUMNS)
    aligned.index = closes.index
    return pd.concat([closes, aligned], axis=1)


def proxy_signals(closes: pd.DataFrame, spec: ProxySpec | None = None) -> pd.DataFrame:
    """The ETF proxies of :func:`macro_signals`' first four columns, from daily closes.

    Raises
    ------
    ValueError
        If a symbol of ``spec`` is missing or a close is not a positive finite number.
    """
    spec = spec or ProxySpec()
    missing = [s for s in spec.symbols if s not in closes.columns]
    if missing:
        raise ValueError(f"the proxies need closes of {missing}; have {list(closes.columns)}")
    prices = closes.loc[:, list(spec.symbols)].astype(float)
    raw = prices.to_numpy()
    if not (np.isfinite(raw).all() and (raw > 0).all()):
        raise ValueError("closes must be positive finite numbers")
    logs = pd.DataFrame(np.log(raw), index=prices.index, columns=prices.columns)
    returns = logs.diff()
    # Percent, annualised, around zero (daily means are noise at this window): the VIX's scale.
    vol = returns[spec.equity].pow(2).rolling(spec.vol_window).mean()
    vix = 100.0 * np.sqrt(vol * TRADING_DAYS_PER_YEAR)
    moved = logs.diff(spec.curve_window)
    return pd.DataFrame(
        {
            "vix": vix,
            "vix_change": vix.diff(spec.change_window),
            "curve_10y2y": moved[spec.short] - moved[spec.intermediate],
            "curve_10y3m": moved[spec.short] - moved[spec.long],
        },
        index=closes.index,
    )


@dataclass(frozen=True)
class ProxyCorrelation:
    """How one proxy follows its true series on common dates.

    ``daily`` is Pearson's r over every common date (overlapping windows: it overstates how
    many independent observations there are); ``independent`` is r on every ``step``-th date
    only, whose windows do not overlap, with its Fisher-z 95% interval over ``n_independent``.
    """

    signal: str
    daily: float
    n_daily: int
    independent: float
    n_independent: int
    low: float
    high: float


def proxy_correlations(
    closes: pd.DataFrame,
    macro: pd.DataFrame,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    spec: ProxySpec | None = None,
) -> list[ProxyCorrelation]:
    """Correlate each proxy with its true series over ``start..end`` (inclusive)."""
    spec = spec or ProxySpec()
    true = macro_signals(macro, spec).loc[start:end]
    proxy = proxy_signals(closes, spec).loc[start:end]
    steps = {
        "vix": spec.vol_window,
        "vix_change": spec.change_window,
        "curve_10y2y": spec.curve_window,
        "curve_10y3m": spec.curve_window,
    }
    out = []
    for signal, step in steps.items():
        both = pd.concat([true[signal], proxy[signal]], axis=1, join="inner").dropna()
        spaced = both.iloc[::step]
        r, n = _pearson(both), len(both)
        r_ind, n_ind = _pearson(spaced), len(spaced)
        low, high = _fisher_interval(r_ind, n_ind)
        out.append(ProxyCorrelation(signal, r, n, r_ind, n_ind, low, high))
    return out


def _pearson(pair: pd.DataFrame) -> float:
    if len(pair) < 3:
        return float("nan")
    x, y = pair.iloc[:, 0].to_numpy(), pair.iloc[:, 1].to_numpy()
    return float(np.corrcoef(x, y)[0, 1])


def _fisher_interval(r: float, n: int) -> tuple[float, float]:
    if n < 4 or not math.isfinite(r) or abs(r) >= 1.0:
        return float("nan"), float("nan")
    z, half = math.atanh(r), 1.959964 / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)
