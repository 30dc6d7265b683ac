"""Out-of-sample QLIKE loss of daily variance forecasts: EWMA against GARCH and GJR-GARCH.

Each model runs online over the daily returns exactly as the strategy runs it, and its
forecast for day t is the one it held at the close of day t-1 (:func:`variance_forecasts`), so
every forecast is made before the day it forecasts. The realised variance proxy is the day's
squared return, and the loss is QLIKE (A. Patton, "Volatility forecast comparison using
imperfect volatility proxies", J. Econometrics 160(1), 2011, robust to the proxy's noise)::

    L(r2, h) = r2 / h - log(r2 / h) - 1   (0 for a perfect forecast, > 0 otherwise).

A day whose return is exactly zero (a stale close) has no finite loss and is left out for every
model alike (:func:`qlike`). :func:`compare_forecasts` scores every model on the same days of
an evaluation window (those on which every model has a forecast) and tests each model's loss
against the EWMA's: a Diebold-Mariano statistic with a Newey-West (Bartlett) variance and a
stationary block-bootstrap interval of the mean loss difference (negative: better than EWMA).

Nothing here reads a file: ``benchmarks/garch_qlike.py`` is the command line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from regime_trader.strategies.covariance import EwmaCovariance
from regime_trader.strategies.garch import GarchCovariance, GarchSettings
from regime_trader.strategies.research_stats import (
    DEFAULT_BLOCK_LENGTH,
    stationary_bootstrap_indices,
)

__all__ = [
    "ForecastComparison",
    "LossDifference",
    "ModelName",
    "compare_forecasts",
    "loss_difference",
    "markdown_table",
    "qlike",
    "variance_forecasts",
]

ModelName = Literal["ewma", "garch", "gjr"]
MEAN = "mean"
"""The row of the cross-asset average (each day's mean over its assets with a loss)."""


def qlike(realised: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """QLIKE loss per element; NaN where ``realised`` is not > 0 or ``forecast`` not finite > 0.

    Parameters
    ----------
    realised, forecast : array_like of the same shape
        The variance proxy (squared return) and the forecast of the same day.
    """
    r = np.asarray(realised, dtype=float)
    h = np.asarray(forecast, dtype=float)
    valid = (r > 0) & np.isfinite(r) & (h > 0) & np.isfinite(h)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(valid, r / np.where(valid, h, 1.0), 1.0)
        out: np.ndarray = np.where(valid, ratio - np.log(ratio) - 1.0, np.nan)
    return out


def variance_forecasts(
    returns: pd.DataFrame,
    model: ModelName,
    halflife: float = 63.0,
    settings: GarchSettings | None = None,
) -> pd.DataFrame:
    """Each day's variance forecast per asset, as held at the previous close.

    Parameters
    ----------
    returns : DataFrame of shape (n_days, n_assets)
        Finite daily returns indexed by session (the sessions drive the refit calendar).
    model : {"ewma", "garch", "gjr"}
        The strategy's EWMA covariance's variances (``halflife``), or per-asset GARCH(1,1) /
        GJR-GARCH(1,1,1) (:class:`~regime_trader.strategies.garch.GarchCovariance` with
        ``settings``).

    Returns
    -------
    DataFrame like ``returns``
        Row t uses the returns of rows before t only; NaN where the model had no forecast.
    """
    values = returns.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError("returns must be finite")
    n_days, n_assets = values.shape
    out = np.full((n_days, n_assets), np.nan)
    ewma = EwmaCovariance(n_assets, halflife) if model == "ewma" else None
    garch = None if model == "ewma" else GarchCovariance(n_assets, model, settings)
    for t, date in enumerate(pd.DatetimeIndex(returns.index)):
        if ewma is not None:
            if ewma.n_obs:
                out[t] = np.diag(ewma.covariance)
            ewma.update(values[t])
        elif garch is not None:
            out[t] = garch.variances
            garch.update(date, values[t])
    return pd.DataFrame(out, index=returns.index, columns=returns.columns)


@dataclass(frozen=True)
class LossDifference:
    """Mean daily loss of a model less the reference's, on the same days, with its tests.

    Attributes
    ----------
    mean : float
        Negative when the model's forecasts lose less than the reference's.
    dm_stat, p_value : float
        Diebold-Mariano statistic (mean over its Newey-West standard error) and its two-sided
        normal p-value.
    ci_low, ci_high : float
        95% stationary block-bootstrap interval of ``mean``.
    n_days : int
    """

    mean: float
    dm_stat: float
    p_value: float
    ci_low: float
    ci_high: float
    n_days: int


def newey_west_variance(d: np.ndarray, lag: int) -> float:
    """Long-run variance of ``d`` (Bartlett weights up to ``lag``), for the mean's variance."""
    x = d - d.mean()
    n = len(x)
    total = float(x @ x) / n
    for k in range(1, lag + 1):
        total += 2.0 * (1.0 - k / (lag + 1)) * float(x[k:] @ x[:-k]) / n
    return total


def loss_difference(
    d: np.ndarray,
    n_boot: int = 2000,
    block_length: float = DEFAULT_BLOCK_LENGTH,
    seed: int = 0,
) -> LossDifference:
    """Diebold-Mariano test and bootstrap interval of the mean of daily loss differences ``d``.

    The Newey-West lag is ``floor(4 (n / 100)^(2/9))``, the usual automatic choice; the
    bootstrap resamples blocks of mean length ``block_length`` (one trading month keeps the
    volatility clustering of the losses inside a block).
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n < 2:
        raise ValueError(f"need at least 2 loss differences, got {n}")
    lag = int(4 * (n / 100) ** (2 / 9))
    se = math.sqrt(max(newey_west_variance(d, lag), 0.0) / n)
    mean = float(d.mean())
    stat = mean / se if se > 0 else 0.0
    p_value = math.erfc(abs(stat) / math.sqrt(2.0))
    idx = stationary_bootstrap_indices(n, n_boot, block_length, np.random.default_rng(seed))
    boot = d[idx].mean(axis=1)
    low, high = (float(v) for v in np.quantile(boot, [0.025, 0.975]))
    return LossDifference(mean, stat, p_value, low, high, n)


@dataclass(frozen=True)
class ForecastComparison:
    """QLIKE of each model per asset on a common evaluation sample.

    Attributes
    ----------
    start, end : Timestamp
        First and last evaluated day (forecasts made the session before each).
    models : tuple of str
        The reference (EWMA) first.
    losses : DataFrame
        Mean QLIKE, one row per asset and the row ``"mean"``, one column per model.
    n_days : Series
        Days scored per asset (the common sample less its zero-return days).
    differences : dict
        ``(model, asset or "mean")`` to :class:`LossDifference` against the first model.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    models: tuple[str, ...]
    losses: pd.DataFrame
    n_days: pd.Series
    differences: dict[tuple[str, str], LossDifference]


def compare_forecasts(
    returns: pd.DataFrame,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    models: Sequence[ModelName] = ("ewma", "garch", "gjr"),
    halflife: float = 63.0,
    settings: GarchSettings | None = None,
    n_boot: int = 2000,
) -> ForecastComparison:
    """Score every model's out-of-sample forecasts on the days in ``[start, end]``.

    Returns after ``end`` are dropped before any model runs: nothing after the evaluation
    window can shape a forecast. Returns before ``start`` warm the models up (fits, EWMA).
    The evaluated days are those in the window on which every model has a forecast.

    Raises
    ------
    ValueError
        If no day of the window has a forecast from every model.
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    returns = returns.loc[:end]
    forecasts = {m: variance_forecasts(returns, m, halflife, settings) for m in models}
    in_window = returns.index >= start
    common = in_window & np.all([f.notna().all(axis=1) for f in forecasts.values()], axis=0)
    if not common.any():
        raise ValueError(f"no day in {start.date()}..{end.date()} has every model's forecast")
    realised = returns.to_numpy()[common] ** 2
    loss = {m: qlike(realised, f.to_numpy()[common]) for m, f in forecasts.items()}
    assets = [str(c) for c in returns.columns]
    daily = {m: _cross_asset_mean(v) for m, v in loss.items()}
    table = pd.DataFrame(
        {m: [*np.nanmean(v, axis=0), float(np.nanmean(daily[m]))] for m, v in loss.items()},
        index=[*assets, MEAN],
    )
    scored = np.isfinite(loss[models[0]])
    differences: dict[tuple[str, str], LossDifference] = {}
    for m in models[1:]:
        diff = loss[m] - loss[models[0]]
        for i, asset in enumerate(assets):
            differences[(m, asset)] = loss_difference(diff[scored[:, i], i], n_boot)
        mean_diff = _cross_asset_mean(diff)
        differences[(m, MEAN)] = loss_difference(mean_diff[np.isfinite(mean_diff)], n_boot)
    dates = returns.index[common]
    return ForecastComparison(
        dates[0],
        dates[-1],
        tuple(models),
        table,
        pd.Series(scored.sum(axis=0), index=assets),
        differences,
    )


def _cross_asset_mean(values: np.ndarray) -> np.ndarray:
    """Each day's mean over its finite values (NaN on a day with none), without a warning."""
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    total = np.where(finite, values, 0.0).sum(axis=1)
    out: np.ndarray = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def markdown_table(comparison: ForecastComparison) -> str:
    """The comparison as a Markdown table: mean QLIKE per model, and each model less EWMA
    with its Diebold-Mariano p-value and bootstrap interval."""
    ref, others = comparison.models[0], comparison.models[1:]
    head = ["asset", "days", *comparison.models]
    head += [f"{m} - {ref} [95% CI] (DM p)" for m in others]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for asset in comparison.losses.index:
        days = comparison.n_days.get(asset)
        if days is None and others:  # the mean row: days with a loss on some asset
            days = comparison.differences[(others[0], MEAN)].n_days
        row = [str(asset), str(days)]
        row += [f"{comparison.losses.loc[asset, m]:.4f}" for m in comparison.models]
        for m in others:
            d = comparison.differences[(m, str(asset))]
            row.append(f"{d.mean:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}] ({d.p_value:.3f})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
